-- Approvals: policies in force (in order), requests with their whole state as JSON, and the
-- inbox: who may act on each open request's current stage.

CREATE TABLE approval_policies (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    position   BIGINT NOT NULL,
    doc        TEXT NOT NULL,
    version    BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- settings holds one-off facts about the installation ("approval_defaults": the shipped
-- policies were installed once; deleting them later must not bring them back).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE requests (
    id           TEXT PRIMARY KEY,
    state        TEXT NOT NULL,
    requester_id TEXT NOT NULL,
    action       TEXT NOT NULL,
    target_id    TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    due_at       BIGINT,
    doc          TEXT NOT NULL,
    version      BIGINT NOT NULL
);
CREATE INDEX requests_requester ON requests (requester_id, id);
CREATE INDEX requests_state ON requests (state, id);
CREATE INDEX requests_due ON requests (due_at);

CREATE TABLE request_inbox (
    user_id    TEXT NOT NULL,
    request_id TEXT NOT NULL,
    PRIMARY KEY (user_id, request_id)
);
CREATE INDEX request_inbox_request ON request_inbox (request_id);

-- The notifier reads what is still undelivered of a topic.
CREATE INDEX outbox_undelivered ON outbox (topic, id) WHERE delivered_at = 0;
