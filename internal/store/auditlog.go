package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/compact"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/directory"
)

// logTail is the committed right edge of the Merkle log, kept between transactions so that
// appending needs no read of the tree. A transaction appends to a clone and hands it back when
// it commits; after a rollback, or when another process appended meanwhile (PostgreSQL), the
// sizes differ and the next transaction reloads the edge from the stored nodes.
type logTail struct {
	mu  sync.Mutex
	app *audit.Appender
}

// appender returns the appender a transaction continues from at size.
func (l *logTail) appender(ctx context.Context, t *tx, size int64) (*audit.Appender, error) {
	l.mu.Lock()
	cached := l.app
	l.mu.Unlock()
	if cached != nil && cached.Size() == uint64(size) {
		return cached.Clone(), nil
	}
	r, err := audit.Tree{Src: t.conn}.Range(ctx, uint64(size))
	if err != nil {
		return nil, fmt.Errorf("store: load the audit log's edge: %w", err)
	}
	return audit.NewAppender(r), nil
}

// committed records a committed transaction's appender as the new edge.
func (l *logTail) committed(app *audit.Appender) {
	if app == nil {
		return
	}
	l.mu.Lock()
	l.app = app
	l.mu.Unlock()
}

// appendLeaf adds an event's leaf to the log within the transaction: the stored nodes it
// completes are written beside the event.
func (t *tx) appendLeaf(ctx context.Context, index int64, leaf []byte) error {
	if t.app == nil {
		app, err := t.tail.appender(ctx, t, index)
		if err != nil {
			return err
		}
		t.app = app
	}
	if t.app.Size() != uint64(index) {
		return fmt.Errorf("%w: audit log edge at %d, appending %d", change.ErrTxBroken, t.app.Size(), index)
	}
	if _, err := t.exec(ctx, "INSERT INTO audit_leaves (idx, hash) VALUES (?, ?)", index, leaf); err != nil {
		return fmt.Errorf("store: store audit leaf: %w", err)
	}
	nodes, err := t.app.Append(leaf)
	if err != nil {
		return fmt.Errorf("store: append to the audit log: %w", err)
	}
	for _, n := range nodes {
		if _, err := t.exec(ctx, "INSERT INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?)",
			int64(n.ID.Level), int64(n.ID.Index), n.Hash); err != nil {
			return fmt.Errorf("store: store audit log node: %w", err)
		}
	}
	return nil
}

// StoredNodes implements audit.NodeSource, reading every node asked for in one query.
func (c *conn) StoredNodes(ctx context.Context, ids []compact.NodeID) ([][]byte, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var q strings.Builder
	q.WriteString("SELECT level, idx, hash FROM audit_nodes WHERE (level, idx) IN (VALUES ")
	args := make([]any, 0, 2*len(ids))
	for i, id := range ids {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(CAST(? AS INTEGER), CAST(? AS BIGINT))") // typed, for PostgreSQL
		args = append(args, int64(id.Level), int64(id.Index))
	}
	q.WriteString(")")
	rows, err := c.rawQuery(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("store: audit log nodes: %w", err)
	}
	defer rows.Close()
	found := make(map[compact.NodeID][]byte, len(ids))
	for rows.Next() {
		var level, idx int64
		var h []byte
		if err := rows.Scan(&level, &idx, &h); err != nil {
			return nil, fmt.Errorf("store: audit log nodes: %w", err)
		}
		found[compact.NewNodeID(uint(level), uint64(idx))] = h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: audit log nodes: %w", err)
	}
	out := make([][]byte, len(ids))
	for i, id := range ids {
		h, ok := found[id]
		if !ok {
			return nil, fmt.Errorf("store: audit log node %d/%d is missing", id.Level, id.Index)
		}
		out[i] = h
	}
	return out, nil
}

// LeafHashes implements audit.NodeSource.
func (c *conn) LeafHashes(ctx context.Context, begin, end uint64) ([][]byte, error) {
	rows, err := c.query(ctx, "SELECT hash FROM audit_leaves WHERE idx >= ? AND idx < ? ORDER BY idx", int64(begin), int64(end))
	if err != nil {
		return nil, fmt.Errorf("store: audit leaves: %w", err)
	}
	defer rows.Close()
	out := make([][]byte, 0, end-begin)
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("store: audit leaves: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// LogSize returns the number of events in the audit log.
func (c *conn) LogSize(ctx context.Context) (uint64, error) {
	var n int64
	if err := c.queryRow(ctx, "SELECT COALESCE(MAX(idx), -1) + 1 FROM audit_events").Scan(&n); err != nil {
		return 0, fmt.Errorf("store: audit log size: %w", err)
	}
	return uint64(n), nil
}

// EachLeaf calls fn with every event's canonical encoding and stored leaf hash, in index order,
// for verification.
func (c *conn) EachLeaf(ctx context.Context, fn func(body, leaf []byte) error) error {
	rows, err := c.rawQuery(ctx, "SELECT e.body, l.hash FROM audit_events e LEFT JOIN audit_leaves l ON l.idx = e.idx ORDER BY e.idx")
	if err != nil {
		return fmt.Errorf("store: read the audit log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var body, leaf []byte
		if err := rows.Scan(&body, &leaf); err != nil {
			return fmt.Errorf("store: read the audit log: %w", err)
		}
		if err := fn(body, leaf); err != nil {
			return err
		}
	}
	return rows.Err()
}

// AllNodes returns every stored interior node, for verification.
func (c *conn) AllNodes(ctx context.Context) (map[compact.NodeID][]byte, error) {
	rows, err := c.rawQuery(ctx, "SELECT level, idx, hash FROM audit_nodes")
	if err != nil {
		return nil, fmt.Errorf("store: read the audit log's nodes: %w", err)
	}
	defer rows.Close()
	out := map[compact.NodeID][]byte{}
	for rows.Next() {
		var level, idx int64
		var h []byte
		if err := rows.Scan(&level, &idx, &h); err != nil {
			return nil, fmt.Errorf("store: read the audit log's nodes: %w", err)
		}
		out[compact.NewNodeID(uint(level), uint64(idx))] = h
	}
	return out, rows.Err()
}

// SaveCheckpoint stores a signed checkpoint (once per size).
func (s *Store) SaveCheckpoint(ctx context.Context, cp audit.Checkpoint, signed []byte) error {
	return s.writer(ctx, func(c *conn) error {
		_, err := c.exec(ctx, "INSERT INTO audit_checkpoints (size, root, signed, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (size) DO NOTHING",
			int64(cp.Size), cp.Root, string(signed), micros(nowUTC()))
		if err != nil {
			return fmt.Errorf("store: save checkpoint %d: %w", cp.Size, err)
		}
		return nil
	})
}

// LatestCheckpoint returns the signed checkpoint of the largest size, or nil when there is none.
func (c *conn) LatestCheckpoint(ctx context.Context) ([]byte, error) {
	var signed string
	err := c.queryRow(ctx, "SELECT signed FROM audit_checkpoints ORDER BY size DESC LIMIT 1").Scan(&signed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: latest checkpoint: %w", err)
	}
	return []byte(signed), nil
}

// Checkpoints returns every stored signed checkpoint, smallest size first.
func (c *conn) Checkpoints(ctx context.Context) ([][]byte, error) {
	rows, err := c.rawQuery(ctx, "SELECT signed FROM audit_checkpoints ORDER BY size")
	if err != nil {
		return nil, fmt.Errorf("store: checkpoints: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("store: checkpoints: %w", err)
		}
		out = append(out, []byte(s))
	}
	return out, rows.Err()
}

// fillLeaves gives the events logged before the Merkle log existed (schema version 2) their
// leaf hashes and tree nodes, in the migration's transaction. It runs once: an event found
// without a leaf later was added outside the log, and verification reports it.
func fillLeaves(ctx context.Context, s *Store, t *tx) error {
	rows, err := t.query(ctx, "SELECT idx, body FROM audit_events ORDER BY idx")
	if err != nil {
		return fmt.Errorf("fill audit leaves: %w", err)
	}
	type ev struct {
		idx  int64
		body []byte
	}
	var evs []ev
	for rows.Next() {
		var e ev
		if err := rows.Scan(&e.idx, &e.body); err != nil {
			rows.Close()
			return fmt.Errorf("fill audit leaves: %w", err)
		}
		evs = append(evs, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("fill audit leaves: %w", err)
	}
	for _, e := range evs {
		ev, err := audit.Decode(e.body)
		if err != nil {
			return fmt.Errorf("fill audit leaf %d: %w", e.idx, err)
		}
		if err := t.indexAuthority(ctx, e.idx, ev.Authority); err != nil {
			return err
		}
		logged, err := t.loggedAt(ctx, &ev)
		if err != nil {
			return err
		}
		if _, err := t.exec(ctx, "UPDATE audit_events SET logged_at = ? WHERE idx = ?", logged, e.idx); err != nil {
			return fmt.Errorf("fill audit log time %d: %w", e.idx, err)
		}
		leaf := audit.LeafHash(e.body)
		if err := t.appendLeaf(ctx, e.idx, leaf); err != nil {
			return err
		}
	}
	if len(evs) > 0 && s.log != nil {
		s.log.Info("store: audit events added to the Merkle log", "count", len(evs))
	}
	return nil
}

// EventBody returns the canonical encoding of event index.
func (c *conn) EventBody(ctx context.Context, index int64) ([]byte, error) {
	var body []byte
	err := c.queryRow(ctx, "SELECT body FROM audit_events WHERE idx = ?", index).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: audit event %d: %w", index, directory.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: audit event %d: %w", index, err)
	}
	return body, nil
}

// EachEncoded calls fn with the canonical encoding of every event from index from on (and at
// or after since, when set), in index order: an export.
func (c *conn) EachEncoded(ctx context.Context, from int64, since time.Time, fn func(body []byte) error) error {
	if !since.IsZero() {
		first, err := c.firstLoggedAt(ctx, since)
		if err != nil {
			return err
		}
		from = max(from, first)
	}
	rows, err := c.rawQuery(ctx, "SELECT body FROM audit_events WHERE idx >= ? ORDER BY idx", from)
	if err != nil {
		return fmt.Errorf("store: export the audit log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return fmt.Errorf("store: export the audit log: %w", err)
		}
		if err := fn(body); err != nil {
			return err
		}
	}
	return rows.Err()
}

// SinkCursor returns the index of the next event sink name must receive (0 for a new sink).
func (c *conn) SinkCursor(ctx context.Context, name string) (int64, error) {
	var next int64
	err := c.queryRow(ctx, "SELECT next_idx FROM audit_sinks WHERE name = ?", name).Scan(&next)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: audit sink %s: %w", name, err)
	}
	return next, nil
}

// SaveSinkCursor records a sink's cursor and its last error ("" after a delivery). It is the
// sink's bookkeeping, not a change: it does not go through the pipeline.
func (s *Store) SaveSinkCursor(ctx context.Context, name string, next int64, lastErr string) error {
	return s.writer(ctx, func(c *conn) error {
		_, err := c.exec(ctx, `INSERT INTO audit_sinks (name, next_idx, last_error, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET next_idx = excluded.next_idx, last_error = excluded.last_error, updated_at = excluded.updated_at`,
			name, next, lastErr, micros(nowUTC()))
		if err != nil {
			return fmt.Errorf("store: save audit sink %s: %w", name, err)
		}
		return nil
	})
}
