-- The directory, the foundation's assignments, API tokens, the audit trail and the outbox.
-- Times are Unix microseconds (0 = never); booleans are 0/1; *_key columns hold the
-- case-folded value that uniqueness and lookups use.

CREATE TABLE ous (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    parent_id  TEXT REFERENCES ous(id),
    path       TEXT NOT NULL,
    path_key   TEXT NOT NULL,
    protected  INTEGER NOT NULL DEFAULT 0,
    version    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX ous_path_uq ON ous (path_key);
CREATE INDEX ous_parent ON ous (parent_id);

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    username        TEXT NOT NULL,
    username_key    TEXT NOT NULL,
    given_name      TEXT NOT NULL DEFAULT '',
    family_name     TEXT NOT NULL DEFAULT '',
    display_name    TEXT NOT NULL DEFAULT '',
    email           TEXT NOT NULL DEFAULT '',
    email_key       TEXT,
    phone           TEXT NOT NULL DEFAULT '',
    employee_id     TEXT NOT NULL DEFAULT '',
    employee_id_key TEXT,
    department      TEXT NOT NULL DEFAULT '',
    title           TEXT NOT NULL DEFAULT '',
    manager_id      TEXT REFERENCES users(id),
    location        TEXT NOT NULL DEFAULT '',
    employment_type TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    ou_id           TEXT NOT NULL REFERENCES ous(id),
    attributes      TEXT NOT NULL DEFAULT '{}',
    protected       INTEGER NOT NULL DEFAULT 0,
    version         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_sign_in_at INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX users_username_uq ON users (username_key);
CREATE UNIQUE INDEX users_email_uq ON users (email_key);
CREATE UNIQUE INDEX users_employee_id_uq ON users (employee_id_key);
CREATE INDEX users_ou ON users (ou_id);
CREATE INDEX users_manager ON users (manager_id);

CREATE TABLE groups (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    ou_id       TEXT NOT NULL REFERENCES ous(id),
    protected   INTEGER NOT NULL DEFAULT 0,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX groups_name_uq ON groups (name_key);
CREATE INDEX groups_ou ON groups (ou_id);

CREATE TABLE group_owners (
    group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_owners_user ON group_owners (user_id);

-- member_id points at a user, group or service account (member_type says which); the
-- provenance columns say why the membership exists.
CREATE TABLE group_members (
    group_id      TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    member_type   TEXT NOT NULL,
    member_id     TEXT NOT NULL,
    source        TEXT NOT NULL,
    source_id     TEXT NOT NULL DEFAULT '',
    added_by_type TEXT NOT NULL,
    added_by_id   TEXT NOT NULL,
    added_by_name TEXT NOT NULL,
    added_at      INTEGER NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX group_members_member ON group_members (member_id);

CREATE TABLE service_accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    ou_id       TEXT NOT NULL REFERENCES ous(id),
    status      TEXT NOT NULL,
    protected   INTEGER NOT NULL DEFAULT 0,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX service_accounts_name_uq ON service_accounts (name_key);
CREATE INDEX service_accounts_ou ON service_accounts (ou_id);

CREATE TABLE sa_owners (
    sa_id   TEXT NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (sa_id, user_id)
);
CREATE INDEX sa_owners_user ON sa_owners (user_id);

CREATE TABLE assignments (
    id            TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    holder_kind   TEXT NOT NULL,
    holder_id     TEXT NOT NULL,
    granted_by    TEXT NOT NULL,
    justification TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL
);
CREATE INDEX assignments_holder ON assignments (holder_id, role);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    owner_kind   TEXT NOT NULL,
    owner_id     TEXT NOT NULL,
    name         TEXT NOT NULL,
    hash         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL DEFAULT 0,
    last_used_at INTEGER NOT NULL DEFAULT 0,
    revoked_at   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_tokens_owner ON api_tokens (owner_id);

-- The audit trail: body is the event's canonical encoding (the Merkle leaf); the other
-- columns are copies for searching. idx is dense from 0: appenders take the next one under a
-- lock held to commit (the single writer on SQLite, an advisory lock on PostgreSQL).
CREATE TABLE audit_events (
    idx         INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor_id    TEXT NOT NULL,
    actor_name  TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    target_name TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    transport   TEXT NOT NULL,
    body        BLOB NOT NULL
);
CREATE INDEX audit_events_actor ON audit_events (actor_id, idx);
CREATE INDEX audit_events_target ON audit_events (target_id, idx);
CREATE INDEX audit_events_action ON audit_events (action, idx);
CREATE INDEX audit_events_at ON audit_events (at);


-- Consumers read the outbox in id order from their own cursor, so it needs no index.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    topic        TEXT NOT NULL,
    event_idx    INTEGER NOT NULL,
    payload      BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    delivered_at INTEGER NOT NULL DEFAULT 0
);
