-- Tenancy and credentials. Secrets are stored only as salted SHA-256
-- hashes (they are 256-bit random strings, so a slow hash adds nothing).

CREATE TABLE organizations (
    name          text   PRIMARY KEY,
    display_name  text   NOT NULL DEFAULT '',
    created_at_ms bigint NOT NULL
);

CREATE TABLE service_accounts (
    organization  text   NOT NULL REFERENCES organizations (name) ON DELETE CASCADE,
    name          text   NOT NULL,
    client_id     text   NOT NULL UNIQUE,
    secret_hash   text   NOT NULL,
    roles         integer[] NOT NULL DEFAULT '{}',
    description   text   NOT NULL DEFAULT '',
    platform_admin boolean NOT NULL DEFAULT false,
    created_at_ms bigint NOT NULL,
    PRIMARY KEY (organization, name)
);

-- Token signing keys (Ed25519). The newest unretired key signs; every key
-- not retired longer than a token's lifetime verifies.
CREATE TABLE signing_keys (
    kid           text   PRIMARY KEY,
    private_pem   text   NOT NULL,
    created_at_ms bigint NOT NULL,
    retired_at_ms bigint
);
