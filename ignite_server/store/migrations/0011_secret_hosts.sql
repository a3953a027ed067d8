-- Secrets are bound to the hosts they are for: a registry's, a git host's
-- ("host" or "host:port", as image references and git URLs name them).
-- They are sent to no other host.
ALTER TABLE secrets ADD COLUMN hosts text[] NOT NULL DEFAULT '{}';

-- A secret made before is bound to the hosts the versions naming it already
-- use, so that what deployed before deploys again; one no version names is
-- bound to none, and must be created again with its hosts to be used.
UPDATE secrets s SET hosts = ARRAY(
    SELECT DISTINCT lower(CASE
        WHEN v.upload_kind = 'image_from_git' THEN
            substring(v.image_source ->> 'source' FROM '^[a-z]+://(?:[^@/]*@)?([^/?#]+)')
        WHEN position('/' IN v.image_source ->> 'source') > 0
             AND split_part(v.image_source ->> 'source', '/', 1) ~ '([.:]|^localhost$)' THEN
            split_part(v.image_source ->> 'source', '/', 1)
        ELSE 'docker.io'
    END)
    FROM versions v JOIN apps a ON a.uid = v.app_uid
    WHERE a.organization = s.organization
      AND v.image_source ->> 'secret_ref' = s.name
      AND v.upload_kind IN ('prebuilt_image', 'image_from_git')
);
