-- Image apps: the image branch of a version's code (ImageSpec as JSON:
-- source, git_ref, context_dir, dockerfile_path, secret_ref, health_path).
-- versions.image_ref now holds the image a version runs, by digest, once it
-- is built.
ALTER TABLE versions ADD COLUMN image_source jsonb;

-- Credentials that image sources name (a registry's, a git host's). The
-- password is encrypted with the server's secrets key (state dir), so a
-- database dump alone does not reveal it.
CREATE TABLE secrets (
    organization       text   NOT NULL,
    name               text   NOT NULL,
    username           text   NOT NULL DEFAULT '',
    password_encrypted bytea  NOT NULL,
    created_at_ms      bigint NOT NULL,
    updated_at_ms      bigint NOT NULL,
    PRIMARY KEY (organization, name)
);
