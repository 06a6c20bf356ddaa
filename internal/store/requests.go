package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/deputy-iam/deputy/internal/approval"
	"github.com/deputy-iam/deputy/internal/directory"
)

// Requests and approval policies are stored as JSON documents with the columns that select
// them beside: a request's state, requester and next due time; and the inbox, one row per user
// who may act on an open request's current stage, so that "waiting for me" is one index range.

// Request returns the approval request with id.
func (c *conn) Request(ctx context.Context, id string) (approval.Request, error) {
	var doc string
	if err := c.queryRow(ctx, "SELECT doc FROM requests WHERE id = ?", id).Scan(&doc); err != nil {
		return approval.Request{}, notFound(err, directory.KindRequest, id)
	}
	return decodeRequest(doc)
}

func decodeRequest(doc string) (approval.Request, error) {
	var r approval.Request
	if err := json.Unmarshal([]byte(doc), &r); err != nil {
		return r, fmt.Errorf("store: decode request: %w", err)
	}
	return r, nil
}

// Requests lists requests in ID (submission) order after q.After: those waiting for
// q.Approver, or submitted by q.Requester, or (neither set) all, optionally in one state.
func (c *conn) Requests(ctx context.Context, q approval.Query) ([]approval.Request, error) {
	limit := q.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	var (
		sqlq  string
		args  []any
		order = "r.id"
	)
	switch {
	case q.Approver != "":
		order = "i.request_id" // the inbox's primary key gives the order
		sqlq = "SELECT r.doc FROM request_inbox i JOIN requests r ON r.id = i.request_id WHERE i.user_id = ? AND i.request_id > ?"
		args = []any{q.Approver, q.After}
	case q.Requester != "":
		sqlq = "SELECT doc FROM requests r WHERE requester_id = ? AND id > ?"
		args = []any{q.Requester, q.After}
	default:
		sqlq = "SELECT doc FROM requests r WHERE id > ?"
		args = []any{q.After}
	}
	if q.State != "" {
		sqlq += " AND r.state = ?"
		args = append(args, string(q.State))
	}
	sqlq += fmt.Sprintf(" ORDER BY %s LIMIT %d", order, limit)
	rows, err := c.rawQuery(ctx, sqlq, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list requests: %w", err)
	}
	defer rows.Close()
	var out []approval.Request
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("store: list requests: %w", err)
		}
		r, err := decodeRequest(doc)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// CountRequests counts the requests in state.
func (c *conn) CountRequests(ctx context.Context, state approval.State) (int, error) {
	var n int
	if err := c.queryRow(ctx, "SELECT COUNT(*) FROM requests WHERE state = ?", string(state)).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count requests: %w", err)
	}
	return n, nil
}

// InsertRequest stores a new request and its inbox.
func (t *tx) InsertRequest(ctx context.Context, r *approval.Request) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("store: encode request: %w", err)
	}
	if _, err := t.exec(ctx, `INSERT INTO requests (id, state, requester_id, action, target_id, created_at, due_at, doc, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, string(r.State), r.Requester.ID, string(r.Action), r.Target.ID,
		micros(r.Created), dueAt(r), string(doc), r.Version); err != nil {
		return mapWriteError(err, "request")
	}
	return t.fillInbox(ctx, r)
}

// UpdateRequest writes r at version r.Version+1 if the stored version is still r.Version (so
// that of two deciders racing, one wins and the other sees directory.ErrStale), and rewrites
// its inbox. r.Version is advanced on success.
func (t *tx) UpdateRequest(ctx context.Context, r *approval.Request) error {
	r.Version++
	doc, err := json.Marshal(r)
	if err != nil {
		r.Version--
		return fmt.Errorf("store: encode request: %w", err)
	}
	res, err := t.exec(ctx, "UPDATE requests SET state = ?, due_at = ?, doc = ?, version = ? WHERE id = ? AND version = ?",
		string(r.State), dueAt(r), string(doc), r.Version, r.ID, r.Version-1)
	if err := t.checkUpdated(ctx, res, err, "requests", directory.KindRequest, r.ID, r.Version-1, "request"); err != nil {
		r.Version--
		return err
	}
	if _, err := t.exec(ctx, "DELETE FROM request_inbox WHERE request_id = ?", r.ID); err != nil {
		return fmt.Errorf("store: clear request inbox: %w", err)
	}
	return t.fillInbox(ctx, r)
}

func (t *tx) fillInbox(ctx context.Context, r *approval.Request) error {
	for _, u := range r.Inbox() {
		if _, err := t.exec(ctx, "INSERT INTO request_inbox (user_id, request_id) VALUES (?, ?)", u, r.ID); err != nil {
			return fmt.Errorf("store: fill request inbox: %w", err)
		}
	}
	return nil
}

// DueRequests lists the open requests due at or before now (expiry, escalation, reminder).
func (t *tx) DueRequests(ctx context.Context, now time.Time, limit int) ([]approval.Request, error) {
	rows, err := t.rawQuery(ctx, fmt.Sprintf("SELECT doc FROM requests WHERE due_at <= ? ORDER BY due_at LIMIT %d", limit), micros(now))
	if err != nil {
		return nil, fmt.Errorf("store: due requests: %w", err)
	}
	defer rows.Close()
	var out []approval.Request
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("store: due requests: %w", err)
		}
		r, err := decodeRequest(doc)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// dueAt is the due column: NULL for a request the scheduler has nothing more to do with.
func dueAt(r *approval.Request) any {
	if at, ok := r.Due(); ok {
		return micros(at)
	}
	return nil
}

// Policies returns the approval policies in force, in order.
func (c *conn) Policies(ctx context.Context) ([]approval.Policy, error) {
	rows, err := c.query(ctx, "SELECT doc, version FROM approval_policies ORDER BY position, id")
	if err != nil {
		return nil, fmt.Errorf("store: list approval policies: %w", err)
	}
	defer rows.Close()
	var out []approval.Policy
	for rows.Next() {
		var (
			doc string
			p   approval.Policy
		)
		if err := rows.Scan(&doc, &p.Version); err != nil {
			return nil, fmt.Errorf("store: list approval policies: %w", err)
		}
		v := p.Version
		if err := json.Unmarshal([]byte(doc), &p); err != nil {
			return nil, fmt.Errorf("store: decode approval policy: %w", err)
		}
		p.Version = v
		out = append(out, p)
	}
	return out, rows.Err()
}

// InsertPolicy stores a new policy after the others.
func (t *tx) InsertPolicy(ctx context.Context, p *approval.Policy) error {
	doc, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("store: encode approval policy: %w", err)
	}
	var pos int64
	if err := t.queryRow(ctx, "SELECT COALESCE(MAX(position), 0) FROM approval_policies").Scan(&pos); err != nil {
		return fmt.Errorf("store: insert approval policy: %w", err)
	}
	_, err = t.exec(ctx, "INSERT INTO approval_policies (id, name, position, doc, version, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
		p.ID, p.Name, pos+1, string(doc), p.Version, micros(time.Now()))
	return mapWriteError(err, "approval policy")
}

// UpdatePolicy writes p at version p.Version+1 if the stored version is still p.Version.
func (t *tx) UpdatePolicy(ctx context.Context, p *approval.Policy) error {
	doc, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("store: encode approval policy: %w", err)
	}
	res, err := t.exec(ctx, "UPDATE approval_policies SET name = ?, doc = ?, version = version + 1, updated_at = ? WHERE id = ? AND version = ?",
		p.Name, string(doc), micros(time.Now()), p.ID, p.Version)
	return t.checkUpdated(ctx, res, err, "approval_policies", directory.KindPolicy, p.ID, p.Version, "approval policy")
}

// DeletePolicy removes a policy.
func (t *tx) DeletePolicy(ctx context.Context, id string) error {
	if _, err := t.exec(ctx, "DELETE FROM approval_policies WHERE id = ?", id); err != nil {
		return fmt.Errorf("store: delete approval policy: %w", err)
	}
	return nil
}

// Setting reads a one-off fact; ok is false when it was never set.
func (t *tx) Setting(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := t.queryRow(ctx, "SELECT value FROM settings WHERE key = ?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("store: read setting %s: %w", key, err)
	}
	return v, true, nil
}

// SetSetting records a one-off fact.
func (t *tx) SetSetting(ctx context.Context, key, value string) error {
	if _, err := t.exec(ctx, "DELETE FROM settings WHERE key = ?", key); err != nil {
		return fmt.Errorf("store: write setting %s: %w", key, err)
	}
	if _, err := t.exec(ctx, "INSERT INTO settings (key, value) VALUES (?, ?)", key, value); err != nil {
		return fmt.Errorf("store: write setting %s: %w", key, err)
	}
	return nil
}
