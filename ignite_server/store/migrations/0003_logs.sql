-- App logs: handler output, runtime errors, platform events and builds.
CREATE TABLE logs (
    id            bigserial PRIMARY KEY,
    app_uid       bigint  NOT NULL REFERENCES apps (uid) ON DELETE CASCADE,
    version       integer NOT NULL,
    execution_id  text    NOT NULL DEFAULT '',
    stream        integer NOT NULL,
    message       text    NOT NULL,
    ts_ms         bigint  NOT NULL
);

CREATE INDEX logs_by_app ON logs (app_uid, id);
CREATE INDEX logs_by_execution ON logs (execution_id, id) WHERE execution_id <> '';
CREATE INDEX logs_by_time ON logs (ts_ms);
