-- Lifecycle: where an assignment came from (a birthright rule: "rule:NAME"; empty when granted
-- by hand), the rule set, and the HR feed runs.
ALTER TABLE assignments ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE INDEX assignments_source ON assignments (source) WHERE source <> '';

CREATE TABLE lifecycle_runs (
    id          TEXT PRIMARY KEY,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL DEFAULT 0,
    state       TEXT NOT NULL,
    doc         TEXT NOT NULL
);
