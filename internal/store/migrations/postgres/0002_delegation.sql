-- Delegation: custom roles (the built-in ones live in code) and the full assignment record.

CREATE TABLE roles (
    name            TEXT PRIMARY KEY,
    description     TEXT NOT NULL DEFAULT '',
    actions         TEXT NOT NULL,
    user_attributes TEXT NOT NULL DEFAULT '[]',
    version         BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- scope is the assignment's delegation.Scope as JSON (OUs and groups by ID).
ALTER TABLE assignments ADD COLUMN holder_name TEXT NOT NULL DEFAULT '';
ALTER TABLE assignments ADD COLUMN scope TEXT NOT NULL DEFAULT '{}';
ALTER TABLE assignments ADD COLUMN valid_from BIGINT NOT NULL DEFAULT 0;
ALTER TABLE assignments ADD COLUMN valid_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE assignments ADD COLUMN can_redelegate BIGINT NOT NULL DEFAULT 0;
ALTER TABLE assignments ADD COLUMN eligible BIGINT NOT NULL DEFAULT 0;
ALTER TABLE assignments ADD COLUMN max_activation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE assignments ADD COLUMN active_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE assignments ADD COLUMN granted_by_name TEXT NOT NULL DEFAULT '';
ALTER TABLE assignments ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
CREATE INDEX assignments_role ON assignments (role);

-- The first admin's tier-0 assignment predates scopes: it covers the whole tree.
UPDATE assignments SET holder_name = COALESCE((SELECT username FROM users WHERE users.id = assignments.holder_id), ''),
    scope = '{"ou_id":"' || (SELECT id FROM ous WHERE parent_id IS NULL) || '","subtree":true}'
WHERE scope = '{}' AND EXISTS (SELECT 1 FROM ous WHERE parent_id IS NULL);
