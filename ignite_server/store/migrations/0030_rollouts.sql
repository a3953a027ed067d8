-- Safe rollouts (docs/rollouts.md): a version is code plus the settings its
-- pods start and scale with; an app's traffic can be split between versions
-- and versions tagged; a gradual rollout moves traffic in steps.

-- The settings snapshotted at publish: {"tier", "limits", "scaling",
-- "max_concurrency", "env"}, env sealed with the server's secrets key
-- ({"$sealed": <token>}; store/sealing.py). NULL for the draft, which runs
-- with the app's settings.
ALTER TABLE versions ADD COLUMN settings jsonb;
ALTER TABLE versions ADD COLUMN published_by text NOT NULL DEFAULT '';
ALTER TABLE versions ADD COLUMN message text NOT NULL DEFAULT '';

-- Versions published before carried no settings: they ran with the app's,
-- so that is what they keep (env is sealed by the server's first start).
UPDATE versions v
SET settings = jsonb_build_object(
    'tier', a.tier, 'limits', a.limits, 'scaling', a.scaling,
    'max_concurrency', a.max_concurrency, 'env', a.env)
FROM apps a
WHERE a.uid = v.app_uid AND v.version > 0;

-- [{"version": N, "percent": P}, ...] summing to 100; [] = all to
-- active_version.
ALTER TABLE apps ADD COLUMN traffic jsonb NOT NULL DEFAULT '[]';
-- {"tag": version, ...}
ALTER TABLE apps ADD COLUMN tags jsonb NOT NULL DEFAULT '{}';

-- The app's gradual rollout: the running one, or the last one (shown by
-- GetApp). A server drives a running rollout under a lease, so that one
-- server judges each step and another takes over when it stops.
CREATE TABLE rollouts (
    app_uid            bigint  PRIMARY KEY REFERENCES apps (uid) ON DELETE CASCADE,
    state              integer NOT NULL,
    from_version       integer NOT NULL,
    to_version         integer NOT NULL,
    policy             jsonb   NOT NULL,
    step               integer NOT NULL DEFAULT 0,
    decision           text    NOT NULL DEFAULT '',
    started_at_ms      bigint  NOT NULL,
    step_started_at_ms bigint  NOT NULL,
    updated_at_ms      bigint  NOT NULL,
    lease_owner        text,
    lease_expires_ms   bigint
);

CREATE INDEX rollouts_running ON rollouts (app_uid) WHERE state = 1;
