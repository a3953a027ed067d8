-- Apps and their versions. Version 0 of an app is its mutable draft;
-- versions 1..N are immutable snapshots made by PublishDraft.

CREATE TABLE apps (
    uid                   bigserial PRIMARY KEY,
    organization          text    NOT NULL,
    name                  text    NOT NULL,
    runtime               jsonb,
    tier                  integer NOT NULL,
    limits                jsonb   NOT NULL,
    scaling               jsonb   NOT NULL,
    env                   jsonb   NOT NULL,
    storage_mode          integer NOT NULL,
    ttl_seconds           integer NOT NULL DEFAULT 0,
    description           text    NOT NULL DEFAULT '',
    input_schema          text    NOT NULL DEFAULT '',
    output_schema         text    NOT NULL DEFAULT '',
    mcp_enabled           boolean NOT NULL DEFAULT false,
    max_concurrency       integer NOT NULL DEFAULT 0,
    allow_unauthenticated boolean NOT NULL DEFAULT false,
    active_version        integer NOT NULL DEFAULT 0,
    -- The number the next publish takes; only ever grows, so a number is
    -- never reused even after versions are removed.
    next_version          integer NOT NULL DEFAULT 1,
    created_at_ms         bigint  NOT NULL,
    updated_at_ms         bigint  NOT NULL,
    UNIQUE (organization, name)
);

CREATE TABLE versions (
    app_uid          bigint  NOT NULL REFERENCES apps (uid) ON DELETE CASCADE,
    version          integer NOT NULL CHECK (version >= 0),
    status           integer NOT NULL,
    code_hash        text    NOT NULL,
    code_kind        integer NOT NULL,
    code_size_bytes  bigint  NOT NULL,
    upload_kind      text    NOT NULL,
    runtime          jsonb,
    build_args       jsonb   NOT NULL DEFAULT '{}',
    image_ref        text    NOT NULL DEFAULT '',
    artifact_digest  text    NOT NULL DEFAULT '',
    error            text    NOT NULL DEFAULT '',
    build_log        text    NOT NULL DEFAULT '',
    created_at_ms    bigint  NOT NULL,
    PRIMARY KEY (app_uid, version)
);

-- Exactly one ACTIVE (status 3) version per app, whatever the code does.
CREATE UNIQUE INDEX versions_one_active ON versions (app_uid) WHERE status = 3;
