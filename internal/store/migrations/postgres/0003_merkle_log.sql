-- The audit trail as a Merkle log: each event's leaf hash beside it, the tree's interior nodes
-- from level 4 up (the lower ones are recomputed from at most 16 leaves), and the signed
-- checkpoints. Events logged before this migration get their leaves when the store opens.

ALTER TABLE audit_events ADD COLUMN leaf BYTEA;

CREATE TABLE audit_nodes (
    level INTEGER NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE audit_checkpoints (
    size       BIGINT PRIMARY KEY,
    root       BYTEA NOT NULL,
    signed     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
