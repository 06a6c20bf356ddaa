package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/directory"
)

// tokenCols are the api_tokens columns scanTokens reads, in order.
const tokenCols = `t.id, t.owner_kind, t.owner_id, t.name, t.created_at, t.expires_at, t.last_used_at, t.revoked_at`

// scanToken reads a row of tokenCols (and extra). The hash is not read: listings and reports
// have no use for it.
func scanToken(r rowScanner, extra ...any) (credential.Token, error) {
	var (
		t                                   credential.Token
		created, expires, lastUsed, revoked int64
	)
	dest := []any{&t.ID, &t.OwnerKind, &t.OwnerID, &t.Name, &created, &expires, &lastUsed, &revoked}
	if err := r.Scan(append(dest, extra...)...); err != nil {
		return t, err
	}
	t.Created, t.Expires, t.LastUsed, t.Revoked = fromMicros(created), fromMicros(expires), fromMicros(lastUsed), fromMicros(revoked)
	return t, nil
}

// SetTokenExpiry moves the expiry of the token id to expires (a rotation's overlap). It is a
// not-found error when there is no such token.
func (t *tx) SetTokenExpiry(ctx context.Context, id string, expires time.Time) error {
	res, err := t.exec(ctx, "UPDATE api_tokens SET expires_at = ? WHERE id = ?", micros(expires), id)
	return oneTokenUpdated(res, err, id, "set token expiry")
}

// RevokeToken marks the token id revoked at at; a revoked token never authenticates again.
func (t *tx) RevokeToken(ctx context.Context, id string, at time.Time) error {
	res, err := t.exec(ctx, "UPDATE api_tokens SET revoked_at = ? WHERE id = ?", micros(at), id)
	return oneTokenUpdated(res, err, id, "revoke token")
}

// oneTokenUpdated checks that an UPDATE of one token changed it.
func oneTokenUpdated(res sql.Result, err error, id, what string) error {
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if n != 1 {
		return directory.NotFound(directory.KindToken, id)
	}
	return nil
}

// LastActiveOwnerOf lists the service accounts the user id owns that have no other active
// owner, in name order.
func (t *tx) LastActiveOwnerOf(ctx context.Context, id string) ([]directory.Ref, error) {
	rows, err := t.query(ctx, `SELECT s.id, s.name FROM sa_owners o JOIN service_accounts s ON s.id = o.sa_id
		WHERE o.user_id = ? AND NOT EXISTS (SELECT 1 FROM sa_owners x JOIN users u ON u.id = x.user_id
			WHERE x.sa_id = o.sa_id AND x.user_id <> o.user_id AND u.status = 'active')
		ORDER BY s.name_key`, id)
	if err != nil {
		return nil, fmt.Errorf("store: last active ownerships: %w", err)
	}
	defer rows.Close()
	var refs []directory.Ref
	for rows.Next() {
		r := directory.Ref{Kind: directory.KindServiceAccount}
		if err := rows.Scan(&r.ID, &r.Name); err != nil {
			return nil, fmt.Errorf("store: last active ownerships: %w", err)
		}
		refs = append(refs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: last active ownerships: %w", err)
	}
	return refs, nil
}

// ServiceAccountKeys lists every API key of the service account id (active, expired and
// revoked), newest first, without their hashes.
func (c *conn) ServiceAccountKeys(ctx context.Context, id string) ([]credential.Token, error) {
	rows, err := c.query(ctx, "SELECT "+tokenCols+` FROM api_tokens t WHERE t.owner_kind = ? AND t.owner_id = ?
		ORDER BY t.created_at DESC, t.id`, credential.OwnerServiceAccount, id)
	if err != nil {
		return nil, fmt.Errorf("store: list keys: %w", err)
	}
	defer rows.Close()
	out := []credential.Token{}
	for rows.Next() {
		tok, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list keys: %w", err)
		}
		out = append(out, tok)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list keys: %w", err)
	}
	return out, nil
}

// AccountKeys lists the active service-account keys q selects, by account name and then age.
func (c *conn) AccountKeys(ctx context.Context, q credential.KeyQuery) ([]credential.AccountKey, error) {
	if q.Now.IsZero() {
		return nil, fmt.Errorf("store: key report: no time given")
	}
	where := []string{"t.owner_kind = ?", "t.revoked_at = 0", "(t.expires_at = 0 OR t.expires_at > ?)"}
	args := []any{credential.OwnerServiceAccount, micros(q.Now)}
	if !q.ExpiringBefore.IsZero() {
		where = append(where, "t.expires_at <> 0", "t.expires_at <= ?")
		args = append(args, micros(q.ExpiringBefore))
	}
	if !q.UnusedSince.IsZero() {
		where = append(where, "(CASE WHEN t.last_used_at = 0 THEN t.created_at ELSE t.last_used_at END) < ?")
		args = append(args, micros(q.UnusedSince))
	}
	if !q.CreatedBefore.IsZero() {
		where = append(where, "t.created_at < ?")
		args = append(args, micros(q.CreatedBefore))
	}
	rows, err := c.rawQuery(ctx, "SELECT "+tokenCols+`, s.id, s.name FROM api_tokens t
		JOIN service_accounts s ON s.id = t.owner_id WHERE `+strings.Join(where, " AND ")+`
		ORDER BY s.name_key, t.created_at, t.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: key report: %w", err)
	}
	defer rows.Close()
	out := []credential.AccountKey{}
	for rows.Next() {
		k := credential.AccountKey{Account: directory.Ref{Kind: directory.KindServiceAccount}}
		if k.Token, err = scanToken(rows, &k.Account.ID, &k.Account.Name); err != nil {
			return nil, fmt.Errorf("store: key report: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: key report: %w", err)
	}
	return out, nil
}

// OrphanedServiceAccounts lists the service accounts flagged orphaned, in name order, with
// their owners.
func (c *conn) OrphanedServiceAccounts(ctx context.Context) ([]directory.ServiceAccount, error) {
	rows, err := c.query(ctx, "SELECT "+saCols+" "+saFrom+" WHERE s.orphaned <> 0 ORDER BY s.name_key")
	if err != nil {
		return nil, fmt.Errorf("store: orphaned service accounts: %w", err)
	}
	out := []directory.ServiceAccount{}
	for rows.Next() {
		s, err := scanSA(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: orphaned service accounts: %w", err)
		}
		out = append(out, s)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("store: orphaned service accounts: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	ids := make([]string, len(out))
	for i, s := range out {
		ids[i] = s.ID
	}
	owners, err := c.owners(ctx, "sa_owners", "sa_id", ids)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Owners = owners[out[i].ID]
	}
	return out, nil
}
