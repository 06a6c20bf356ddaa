-- The audit trail as a Merkle log: each event's leaf hash beside it, the tree's interior nodes
-- from level 4 up (the lower ones are recomputed from at most 16 leaves), and the signed
-- checkpoints. Events logged before this migration get their leaves when the store opens.

ALTER TABLE audit_events ADD COLUMN leaf BLOB;

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
