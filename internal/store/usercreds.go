package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/deputy-iam/deputy/internal/credential"
)

const userCredentialCols = `user_id, password_hash, must_change, password_changed_at, totp_secret, totp_enabled,
	totp_last_step, failed_count, failed_since, locked_until`

// UserCredential returns a user's credential state; a user without one gets an empty state.
func (c *conn) UserCredential(ctx context.Context, userID string) (credential.UserCredential, error) {
	var (
		uc                     credential.UserCredential
		changed, since, locked int64
		mustChange, totpOn     bool
	)
	err := c.queryRow(ctx, "SELECT "+userCredentialCols+" FROM user_credentials WHERE user_id = ?", userID).Scan(
		&uc.UserID, &uc.PasswordHash, &mustChange, &changed, &uc.TOTPSecret, &totpOn, &uc.TOTPLastStep, &uc.FailedCount,
		&since, &locked)
	if errors.Is(err, sql.ErrNoRows) {
		return credential.UserCredential{UserID: userID}, nil
	}
	if err != nil {
		return uc, fmt.Errorf("store: read credential: %w", err)
	}
	uc.MustChange, uc.TOTPEnabled = mustChange, totpOn
	uc.PasswordChanged, uc.FailedSince, uc.LockedUntil = fromMicros(changed), fromMicros(since), fromMicros(locked)
	return uc, nil
}

// saveUserCredential writes a credential state (insert or replace) through c.
func saveUserCredential(ctx context.Context, c *conn, uc *credential.UserCredential) error {
	args := []any{uc.PasswordHash, boolInt(uc.MustChange), micros(uc.PasswordChanged), uc.TOTPSecret, boolInt(uc.TOTPEnabled),
		uc.TOTPLastStep, uc.FailedCount, micros(uc.FailedSince), micros(uc.LockedUntil), uc.UserID}
	res, err := c.exec(ctx, `UPDATE user_credentials SET password_hash = ?, must_change = ?, password_changed_at = ?,
		totp_secret = ?, totp_enabled = ?, totp_last_step = ?, failed_count = ?, failed_since = ?, locked_until = ? WHERE user_id = ?`, args...)
	if err != nil {
		return fmt.Errorf("store: save credential: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	if _, err := c.exec(ctx, "INSERT INTO user_credentials (password_hash, must_change, password_changed_at, totp_secret, "+
		"totp_enabled, totp_last_step, failed_count, failed_since, locked_until, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", args...); err != nil {
		return mapWriteError(err, "credential")
	}
	return nil
}

// SaveUserCredential writes a user's credential state in the transaction (a reset, a change,
// an enrolment: with its audit event).
func (t *tx) SaveUserCredential(ctx context.Context, uc *credential.UserCredential) error {
	return saveUserCredential(ctx, t.conn, uc)
}

// SaveSignInState writes the counters and hash a sign-in attempt changed, outside any change
// (bookkeeping: the attempt's audit event is written on its own).
func (s *Store) SaveSignInState(ctx context.Context, uc *credential.UserCredential) error {
	return s.writer(ctx, func(c *conn) error { return saveUserCredential(ctx, c, uc) })
}

const sessionCols = `id_hash, user_id, created_at, last_seen_at, expires_at, mfa_at, restricted, csrf, client_addr, user_agent`

// Session returns the session whose ID hashes to idHash.
func (c *conn) Session(ctx context.Context, idHash string) (credential.Session, error) {
	var (
		s                           credential.Session
		created, seen, expires, mfa int64
	)
	err := c.queryRow(ctx, "SELECT "+sessionCols+" FROM sessions WHERE id_hash = ?", idHash).Scan(&s.IDHash, &s.UserID,
		&created, &seen, &expires, &mfa, &s.Restricted, &s.CSRF, &s.ClientAddr, &s.UserAgent)
	if err != nil {
		return s, notFound(err, "session", "")
	}
	s.Created, s.LastSeen, s.Expires, s.MFAAt = fromMicros(created), fromMicros(seen), fromMicros(expires), fromMicros(mfa)
	return s, nil
}

// SaveSession inserts or replaces a session.
func (s *Store) SaveSession(ctx context.Context, se *credential.Session) error {
	return s.writer(ctx, func(c *conn) error {
		if _, err := c.exec(ctx, "DELETE FROM sessions WHERE id_hash = ?", se.IDHash); err != nil {
			return fmt.Errorf("store: save session: %w", err)
		}
		_, err := c.exec(ctx, "INSERT INTO sessions ("+sessionCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", se.IDHash, se.UserID,
			micros(se.Created), micros(se.LastSeen), micros(se.Expires), micros(se.MFAAt), se.Restricted, se.CSRF, se.ClientAddr, se.UserAgent)
		if err != nil {
			return fmt.Errorf("store: save session: %w", err)
		}
		// The user's last sign-in: bookkeeping, not a change (no version, no audit event of
		// its own; the sign-in's event records it).
		if _, err := c.exec(ctx, "UPDATE users SET last_sign_in_at = ? WHERE id = ? AND COALESCE(last_sign_in_at, 0) < ?", micros(se.Created), se.UserID, micros(se.Created)); err != nil {
			return fmt.Errorf("store: record the last sign-in: %w", err)
		}
		return nil
	})
}

// TouchSession records a session's use.
func (s *Store) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	return s.writer(ctx, func(c *conn) error {
		_, err := c.exec(ctx, "UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?", micros(at), idHash)
		return err
	})
}

// DeleteSession ends one session.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	return s.writer(ctx, func(c *conn) error {
		_, err := c.exec(ctx, "DELETE FROM sessions WHERE id_hash = ?", idHash)
		return err
	})
}

// DeleteUserSessions ends every session of a user (sign out everywhere), outside a change.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) error {
	return s.writer(ctx, func(c *conn) error {
		_, err := c.exec(ctx, "DELETE FROM sessions WHERE user_id = ?", userID)
		return err
	})
}

// DeleteSessions ends every session of a user in the transaction (a password reset, a disable).
func (t *tx) DeleteSessions(ctx context.Context, userID string) error {
	if _, err := t.exec(ctx, "DELETE FROM sessions WHERE user_id = ?", userID); err != nil {
		return fmt.Errorf("store: delete sessions: %w", err)
	}
	return nil
}

// Verification returns the pending identity verification a delegate asked for a user.
func (c *conn) Verification(ctx context.Context, userID, actorID string) (credential.Verification, error) {
	var (
		v       credential.Verification
		expires int64
	)
	err := c.queryRow(ctx, "SELECT user_id, actor_id, code_hash, channel, expires_at, attempts FROM verifications WHERE user_id = ? AND actor_id = ?",
		userID, actorID).Scan(&v.UserID, &v.ActorID, &v.CodeHash, &v.Channel, &expires, &v.Attempts)
	if err != nil {
		return v, notFound(err, "verification", userID)
	}
	v.Expires = fromMicros(expires)
	return v, nil
}

// SaveVerification stores (replacing) a pending verification.
func (s *Store) SaveVerification(ctx context.Context, v *credential.Verification) error {
	return s.writer(ctx, func(c *conn) error { return putVerification(ctx, c, v) })
}

// InsertVerification stores a new user's first verification (their activation code) in the
// transaction that creates them: there is none to replace.
func (t *tx) InsertVerification(ctx context.Context, v *credential.Verification) error {
	return insertVerification(ctx, t.conn, v)
}

func putVerification(ctx context.Context, c *conn, v *credential.Verification) error {
	if _, err := c.exec(ctx, "DELETE FROM verifications WHERE user_id = ? AND actor_id = ?", v.UserID, v.ActorID); err != nil {
		return fmt.Errorf("store: save verification: %w", err)
	}
	return insertVerification(ctx, c, v)
}

func insertVerification(ctx context.Context, c *conn, v *credential.Verification) error {
	if _, err := c.exec(ctx, "INSERT INTO verifications (user_id, actor_id, code_hash, channel, expires_at, attempts) VALUES (?, ?, ?, ?, ?, ?)",
		v.UserID, v.ActorID, v.CodeHash, v.Channel, micros(v.Expires), v.Attempts); err != nil {
		return fmt.Errorf("store: save verification: %w", err)
	}
	return nil
}

// CountVerificationTry records one wrong code entered against a verification.
func (t *tx) CountVerificationTry(ctx context.Context, userID, actorID string) error {
	if _, err := t.exec(ctx, "UPDATE verifications SET attempts = attempts + 1 WHERE user_id = ? AND actor_id = ?", userID, actorID); err != nil {
		return fmt.Errorf("store: count a verification try: %w", err)
	}
	return nil
}

// DeleteVerification removes a verification in the transaction (it was used).
func (t *tx) DeleteVerification(ctx context.Context, userID, actorID string) error {
	_, err := t.exec(ctx, "DELETE FROM verifications WHERE user_id = ? AND actor_id = ?", userID, actorID)
	return err
}

// UserTokens lists a user's API tokens (active, expired and revoked), newest first, without
// their hashes.
func (c *conn) UserTokens(ctx context.Context, userID string) ([]credential.Token, error) {
	out := []credential.Token{}
	err := c.eachRow(ctx, "SELECT "+tokenCols+` FROM api_tokens t WHERE t.owner_kind = 'user' AND t.owner_id = ?
		ORDER BY t.created_at DESC, t.id`, func(r rowScanner) error {
		tok, err := scanToken(r)
		if err != nil {
			return err
		}
		out = append(out, tok)
		return nil
	}, userID)
	if err != nil {
		return nil, fmt.Errorf("store: list tokens: %w", err)
	}
	return out, nil
}
