-- Fair shares between organizations (docs/limits.md, "Organizations").
--
-- Claims take runnable executions round-robin across organizations and
-- count, per organization, what runs and what waits: both walk this index
-- (one organization's backlog never has to be read to serve another's).
CREATE INDEX executions_claimable_by_org
    ON executions (organization, run_after_ms) WHERE status IN (1, 2);

-- Bytes of app log lines stored per organization and UTC day, for the
-- daily log quota; rows of past days are removed with expired logs.
CREATE TABLE log_usage (
    organization text   NOT NULL,
    day          date   NOT NULL,
    bytes        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (organization, day)
);
