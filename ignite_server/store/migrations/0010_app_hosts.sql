-- App hosts. An app's direct URL is http://<app>-<org>.<apps domain>, and
-- that one DNS label splits more than one way (app a-b of org c and app a
-- of org b-c are both a-b-c), so every label belongs to exactly one app:
-- the primary key below is the rule, whatever the code does and however
-- many creates race.
CREATE TABLE app_hosts (
    label         text   PRIMARY KEY CHECK (length(label) <= 63),
    -- The app the label is; NULL while it is disputed (host_conflicts).
    app_uid       bigint UNIQUE REFERENCES apps (uid) ON DELETE CASCADE,
    created_at_ms bigint NOT NULL
);

-- Labels that more than one app held when the rule came in. The label's URL
-- serves none of them (which one it served before depended on the order
-- the edge tried the splits in); each keeps its name and its API. Once all
-- but one are deleted, the last one holds the label again.
CREATE TABLE host_conflicts (
    label       text   NOT NULL REFERENCES app_hosts (label) ON DELETE CASCADE,
    app_uid     bigint NOT NULL REFERENCES apps (uid) ON DELETE CASCADE,
    found_at_ms bigint NOT NULL,
    PRIMARY KEY (label, app_uid)
);

WITH labels AS (
    SELECT name || '-' || organization AS label, uid FROM apps
), counted AS (
    SELECT label, count(*) AS claimants, min(uid) AS uid FROM labels GROUP BY label
)
INSERT INTO app_hosts (label, app_uid, created_at_ms)
SELECT label, CASE WHEN claimants = 1 THEN uid END,
       (extract(epoch FROM clock_timestamp()) * 1000)::bigint
FROM counted;

INSERT INTO host_conflicts (label, app_uid, found_at_ms)
SELECT a.name || '-' || a.organization, a.uid,
       (extract(epoch FROM clock_timestamp()) * 1000)::bigint
FROM apps a JOIN app_hosts h ON h.label = a.name || '-' || a.organization
WHERE h.app_uid IS NULL;

-- After apps are deleted (one, or an organization's), a dispute left with
-- one claimant ends in its favour, and one left with none frees the label.
-- Their host_conflicts rows are gone by then (ON DELETE CASCADE runs
-- before statement-level triggers).
CREATE FUNCTION settle_host_conflicts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE app_hosts h SET app_uid = c.uid
    FROM (SELECT label, min(app_uid) AS uid FROM host_conflicts
          GROUP BY label HAVING count(*) = 1) c
    WHERE h.label = c.label AND h.app_uid IS NULL;
    DELETE FROM host_conflicts c USING app_hosts h
    WHERE c.label = h.label AND h.app_uid IS NOT NULL;
    DELETE FROM app_hosts h
    WHERE h.app_uid IS NULL
      AND NOT EXISTS (SELECT 1 FROM host_conflicts c WHERE c.label = h.label);
    RETURN NULL;
END;
$$;

CREATE TRIGGER apps_settle_host_conflicts
    AFTER DELETE ON apps FOR EACH STATEMENT EXECUTE FUNCTION settle_host_conflicts();
