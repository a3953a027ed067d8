-- Asynchronous executions. A row is claimed by a worker under a lease
-- (lease_owner, lease_expires_ms); an expired lease makes it claimable again.

CREATE TABLE executions (
    id               text    PRIMARY KEY,           -- a ULID: sorts by creation time
    app_uid          bigint  NOT NULL REFERENCES apps (uid) ON DELETE CASCADE,
    organization     text    NOT NULL,
    app_name         text    NOT NULL,
    requested_version integer NOT NULL DEFAULT 0,   -- 0: whatever is active when it runs
    function_version integer NOT NULL DEFAULT 0,    -- what actually ran
    status           integer NOT NULL,
    method           text    NOT NULL,
    path             text    NOT NULL,
    query            text    NOT NULL,
    headers          jsonb   NOT NULL,
    body             bytea   NOT NULL,
    idempotency_key  text,
    result           bytea,
    status_code      integer NOT NULL DEFAULT 0,
    error            text    NOT NULL DEFAULT '',
    error_class      text    NOT NULL DEFAULT '',
    metrics          jsonb   NOT NULL DEFAULT '{}',
    attempts         integer NOT NULL DEFAULT 0,
    run_after_ms     bigint  NOT NULL,               -- retry back-off
    lease_owner      text,
    lease_expires_ms bigint,
    cancel_requested boolean NOT NULL DEFAULT false,
    created_at_ms    bigint  NOT NULL,
    started_at_ms    bigint  NOT NULL DEFAULT 0,
    completed_at_ms  bigint  NOT NULL DEFAULT 0,
    expires_at_ms    bigint                          -- retention (TTL / EPHEMERAL)
);

-- One execution per idempotency key and app.
CREATE UNIQUE INDEX executions_idempotency
    ON executions (app_uid, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- What workers scan: pending work, and running work whose lease may expire.
CREATE INDEX executions_claimable ON executions (run_after_ms) WHERE status IN (1, 2);
CREATE INDEX executions_listing ON executions (organization, app_name, id DESC);
CREATE INDEX executions_by_org ON executions (organization, id DESC);
CREATE INDEX executions_expiry ON executions (expires_at_ms) WHERE expires_at_ms IS NOT NULL;
