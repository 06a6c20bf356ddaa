-- Service-account API keys: a service account whose last active owner left or was disabled is
-- handed to that owner's manager and flagged orphaned until someone reviews its ownership; key
-- reports and listings select a service account's keys by owner kind and owner.
ALTER TABLE service_accounts ADD COLUMN orphaned INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS api_tokens_owner_kind ON api_tokens (owner_kind, owner_id);
