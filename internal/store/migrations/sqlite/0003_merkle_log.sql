-- The audit trail as a Merkle log: each event's leaf hash in a dense table (a proof reads 16
-- neighbours; kept apart from the event rows they stay in memory), the tree's interior nodes
-- from level 4 up (the lower ones are recomputed from at most 16 leaves), and the signed
-- checkpoints; and what searching a large log by authority, outcome and transport needs. Events
-- logged before this migration get their leaves and authority rows in the migration.

-- logged_at is when the event was logged: its time, or the previous event's logged_at if that
-- is later (a denial is recorded after its attempt's transaction rolled back; clocks step
-- back). It never decreases along the index, so a time window is a range of indexes, found by
-- binary search; the index on the event time is no longer needed.
ALTER TABLE audit_events ADD COLUMN logged_at INTEGER NOT NULL DEFAULT 0;
DROP INDEX audit_events_at;

CREATE TABLE audit_leaves (
    idx  INTEGER PRIMARY KEY,
    hash BLOB NOT NULL
);

CREATE TABLE audit_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

CREATE TABLE audit_checkpoints (
    size       INTEGER PRIMARY KEY,
    root       BLOB NOT NULL,
    signed     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- The authority of each event (assignment IDs, approval request, lifecycle rule, review
-- decision), one row per reference, for GET /api/v1/audit/events?authority=.
CREATE TABLE audit_authority (
    ref TEXT NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (ref, idx)
) WITHOUT ROWID;

-- Each search index leads with its column and the event index (newest-first pages walk it in
-- order), then carries the other filter columns, so that a second filter is tested on the
-- index entry without reading the event: an actor's denied events are found among their
-- entries, not among their events' rows.
DROP INDEX audit_events_actor;
DROP INDEX audit_events_target;
DROP INDEX audit_events_action;
CREATE INDEX audit_events_actor ON audit_events (actor_id, idx, action, outcome, transport);
CREATE INDEX audit_events_target ON audit_events (target_id, idx, actor_id, action, outcome, transport);
CREATE INDEX audit_events_action ON audit_events (action, idx, outcome, transport);
CREATE INDEX audit_events_outcome ON audit_events (outcome, idx, transport);
CREATE INDEX audit_events_transport ON audit_events (transport, idx, outcome);

-- Each audit sink's cursor: the index of the next event to deliver, and the last error.
CREATE TABLE audit_sinks (
    name       TEXT PRIMARY KEY,
    next_idx   INTEGER NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL
);
