package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
)

// AppendEvent gives the event the next index, stores its canonical encoding and appends it to
// the Merkle log (its leaf hash and the tree nodes it completes), all in the transaction. The index is
// one past the largest stored, read under the audit lock that every write transaction holds
// from its start to its commit (see InTx): appenders are serialized, so indexes are dense and
// follow commit order.
func (t *tx) AppendEvent(ctx context.Context, e *audit.Event) (int64, error) {
	if t.nextEvent == 0 {
		if err := t.queryRow(ctx, "SELECT COALESCE(MAX(idx), -1) + 1 FROM audit_events").Scan(&t.nextEvent); err != nil {
			return 0, fmt.Errorf("store: allocate audit index: %w", err)
		}
	}
	e.Index = t.nextEvent
	body, err := audit.Encode(e)
	if err != nil {
		return 0, err
	}
	var leaf []byte
	if !t.unlogged {
		leaf = audit.LeafHash(body)
	}
	_, err = t.exec(ctx, `INSERT INTO audit_events (idx, at, actor_id, actor_name, action, target_type, target_id,
		target_name, outcome, transport, body, leaf) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Index, micros(e.Time), e.Actor.ID, e.Actor.Name, e.Action, e.Target.Type, e.Target.ID, e.Target.Name,
		string(e.Outcome), e.Transport, body, leaf)
	if err != nil {
		return 0, fmt.Errorf("store: append audit event: %w", err)
	}
	if err := t.indexAuthority(ctx, e.Index, e.Authority); err != nil {
		return 0, err
	}
	if !t.unlogged {
		if err := t.appendLeaf(ctx, e.Index, leaf); err != nil {
			return 0, err
		}
	}
	t.nextEvent++
	return e.Index, nil
}

// indexAuthority records what the event's authority names, for searching by it.
func (t *tx) indexAuthority(ctx context.Context, index int64, a audit.Authority) error {
	for _, ref := range a.Refs() {
		if _, err := t.exec(ctx, "INSERT INTO audit_authority (ref, idx) VALUES (?, ?) ON CONFLICT DO NOTHING", ref, index); err != nil {
			return fmt.Errorf("store: index audit authority: %w", err)
		}
	}
	return nil
}

// Enqueue adds an outbox message.
func (t *tx) Enqueue(ctx context.Context, topic string, eventIndex int64, payload []byte) error {
	_, err := t.exec(ctx, "INSERT INTO outbox (topic, event_idx, payload, created_at) VALUES (?, ?, ?, ?)",
		topic, eventIndex, payload, micros(nowUTC()))
	if err != nil {
		return fmt.Errorf("store: enqueue: %w", err)
	}
	return nil
}

// Event returns the event at index.
func (c *conn) Event(ctx context.Context, index int64) (audit.Event, error) {
	var body []byte
	err := c.queryRow(ctx, "SELECT body FROM audit_events WHERE idx = ?", index).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return audit.Event{}, fmt.Errorf("audit event %d: %w", index, directory.ErrNotFound)
	}
	if err != nil {
		return audit.Event{}, fmt.Errorf("store: read audit event %d: %w", index, err)
	}
	return audit.Decode(body)
}

// Events searches the trail, newest first.
func (c *conn) Events(ctx context.Context, q audit.Query) ([]audit.Event, int64, error) {
	var (
		conds []string
		args  []any
	)
	add := func(cond string, a ...any) {
		conds = append(conds, cond)
		args = append(args, a...)
	}
	if q.Actor != "" {
		cond, args, err := c.principalCond(ctx, "actor", q.Actor, directory.KindUser, directory.KindServiceAccount)
		if err != nil {
			return nil, 0, err
		}
		add(cond, args...)
	}
	if q.Target != "" {
		cond, args, err := c.principalCond(ctx, "target", q.Target, directory.KindUser, directory.KindGroup,
			directory.KindServiceAccount, directory.KindOU)
		if err != nil {
			return nil, 0, err
		}
		add(cond, args...)
	}
	if q.Action != "" {
		add("action = ?", q.Action)
	}
	if q.Outcome != "" {
		add("outcome = ?", string(q.Outcome))
	}
	if q.Transport != "" {
		add("transport = ?", q.Transport)
	}
	if q.Authority != "" {
		add("idx IN (SELECT idx FROM audit_authority WHERE ref = ?)", q.Authority)
	}
	if !q.Since.IsZero() {
		add("at >= ?", micros(q.Since))
	}
	if !q.Until.IsZero() {
		add("at < ?", micros(q.Until))
	}
	if q.Before > 0 {
		add("idx < ?", q.Before)
	}
	limit := clampLimit(q.Limit)
	query := "SELECT idx, body FROM audit_events"
	if len(conds) > 0 {
		query += " WHERE " + strings.Join(conds, " AND ")
	}
	query += fmt.Sprintf(" ORDER BY idx DESC LIMIT %d", limit+1)
	rows, err := c.rawQuery(ctx, query, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("store: search audit events: %w", err)
	}
	defer rows.Close()
	var (
		events []audit.Event
		next   int64
	)
	for rows.Next() {
		var (
			idx  int64
			body []byte
		)
		if err := rows.Scan(&idx, &body); err != nil {
			return nil, 0, fmt.Errorf("store: search audit events: %w", err)
		}
		if len(events) == limit {
			next = events[len(events)-1].Index
			break
		}
		e, err := audit.Decode(body)
		if err != nil {
			return nil, 0, err
		}
		events = append(events, e)
	}
	return events, next, rows.Err()
}

// principalCond matches the actor or target column pair (col_id, col_name) against key: an ID
// or system actor name directly, a name through the IDs of the objects of kinds now called that
// (case-insensitively, using the ID index). A name no object has now (a deleted object, or one
// renamed since) is matched against the recorded name snapshots, case-insensitively, which
// scans the log.
func (c *conn) principalCond(ctx context.Context, col, key string, kinds ...directory.Kind) (string, []any, error) {
	ids := []any{key}
	if !directory.IsID(key) {
		for _, k := range kinds {
			var ref directory.Ref
			var err error
			if k == directory.KindOU {
				var o directory.OU
				o, err = c.OU(ctx, directory.ParseRef(k, key))
				ref = directory.Ref{Kind: k, ID: o.ID}
			} else {
				ref, err = c.resolve(ctx, directory.Ref{Kind: k, Name: key})
			}
			switch {
			case err == nil:
				ids = append(ids, ref.ID)
			case !errors.Is(err, directory.ErrNotFound):
				return "", nil, err
			}
		}
		if len(ids) == 1 && !strings.HasPrefix(key, "system:") {
			return fmt.Sprintf("%s(%s_name) = ?", c.d.fold, col), []any{filter.Fold(key)}, nil
		}
	}
	return fmt.Sprintf("%s_id IN (%s)", col, placeholders(len(ids))), ids, nil
}
