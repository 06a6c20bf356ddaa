package store

import (
	"context"
	"fmt"
	"time"

	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// Token returns the stored token with key id.
func (c *conn) Token(ctx context.Context, id string) (credential.Token, error) {
	var (
		t                                   credential.Token
		created, expires, lastUsed, revoked int64
	)
	err := c.queryRow(ctx, `SELECT id, owner_kind, owner_id, name, hash, created_at, expires_at, last_used_at, revoked_at
		FROM api_tokens WHERE id = ?`, id).Scan(&t.ID, &t.OwnerKind, &t.OwnerID, &t.Name, &t.Hash,
		&created, &expires, &lastUsed, &revoked)
	if err != nil {
		return t, notFound(err, directory.KindToken, id)
	}
	t.Created, t.Expires, t.LastUsed, t.Revoked = fromMicros(created), fromMicros(expires), fromMicros(lastUsed), fromMicros(revoked)
	return t, nil
}

// TouchToken records a use of the token. It runs outside the change pipeline: last-used is
// bookkeeping, not identity state, and must not queue behind (or block) writers for long.
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	return s.writer(ctx, func(c *conn) error {
		if _, err := c.exec(ctx, "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", micros(at), id); err != nil {
			return fmt.Errorf("store: touch token: %w", err)
		}
		return nil
	})
}

func (t *tx) InsertToken(ctx context.Context, tok *credential.Token) error {
	_, err := t.exec(ctx, `INSERT INTO api_tokens (id, owner_kind, owner_id, name, hash, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, tok.ID, tok.OwnerKind, tok.OwnerID, tok.Name, tok.Hash, micros(tok.Created), micros(tok.Expires))
	return mapWriteError(err, "token")
}

// IsTier0 reports whether the user holds the tier-0 role, whatever their status.
func (t *tx) IsTier0(ctx context.Context, userID string) (bool, error) {
	var n int
	err := t.queryRow(ctx, "SELECT COUNT(*) FROM assignments WHERE holder_id = ? AND role = ?", userID, delegation.RoleTier0).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: read tier-0 holding: %w", err)
	}
	return n > 0, nil
}

// Tier0Holders counts the active users holding the tier-0 role. On PostgreSQL it first takes
// the tier-0 lock, so two transactions cannot each remove one of the last two admins.
func (t *tx) Tier0Holders(ctx context.Context) (int, error) {
	if err := t.lock(ctx, lockTier0); err != nil {
		return 0, err
	}
	var n int
	err := t.queryRow(ctx, `SELECT COUNT(DISTINCT a.holder_id) FROM assignments a JOIN users u ON u.id = a.holder_id
		WHERE a.role = ? AND u.status = 'active'`, delegation.RoleTier0).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count tier-0 holders: %w", err)
	}
	return n, nil
}

// DeleteTokens removes every API token of a user.
func (t *tx) DeleteTokens(ctx context.Context, userID string) error {
	if _, err := t.exec(ctx, "DELETE FROM api_tokens WHERE owner_kind = 'user' AND owner_id = ?", userID); err != nil {
		return fmt.Errorf("store: delete tokens: %w", err)
	}
	return nil
}

// CountTokens counts the API tokens of a user.
func (c *conn) CountTokens(ctx context.Context, userID string) (int, error) {
	var n int
	if err := c.queryRow(ctx, "SELECT COUNT(*) FROM api_tokens WHERE owner_kind = 'user' AND owner_id = ?", userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count tokens: %w", err)
	}
	return n, nil
}
