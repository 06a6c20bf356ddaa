-- Credentials: a user's password hash and second factor, and the counters of failed sign-ins
-- (kept apart from the users table, which events and exports read); sign-in sessions, of which
-- only a hash of the ID is stored; and identity-verification codes for delegated resets.
CREATE TABLE user_credentials (
    user_id             TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    password_hash       TEXT NOT NULL DEFAULT '',
    must_change         INTEGER NOT NULL DEFAULT 0,
    password_changed_at BIGINT NOT NULL DEFAULT 0,
    totp_secret         TEXT NOT NULL DEFAULT '',
    totp_enabled        INTEGER NOT NULL DEFAULT 0,
    totp_last_step      BIGINT NOT NULL DEFAULT 0,
    failed_count        INTEGER NOT NULL DEFAULT 0,
    failed_since        BIGINT NOT NULL DEFAULT 0,
    locked_until        BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    mfa_at       BIGINT NOT NULL DEFAULT 0,
    restricted   TEXT NOT NULL DEFAULT '',
    csrf         TEXT NOT NULL,
    client_addr  TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE verifications (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    actor_id   TEXT NOT NULL,
    code_hash  TEXT NOT NULL,
    channel    TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, actor_id)
);

-- A role may require the user's identity verified before a password reset.
ALTER TABLE roles ADD COLUMN verify_identity INTEGER NOT NULL DEFAULT 0;
