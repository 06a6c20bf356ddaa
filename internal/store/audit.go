package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

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
	logged, err := t.loggedAt(ctx, e)
	if err != nil {
		return 0, err
	}
	_, err = t.exec(ctx, `INSERT INTO audit_events (idx, at, logged_at, actor_id, actor_name, action, target_type, target_id,
		target_name, outcome, transport, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Index, micros(e.Time), logged, e.Actor.ID, e.Actor.Name, e.Action, e.Target.Type, e.Target.ID, e.Target.Name,
		string(e.Outcome), e.Transport, body)
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

// loggedAt returns the event's log time: its time, or the previous event's log time if later.
func (t *tx) loggedAt(ctx context.Context, e *audit.Event) (int64, error) {
	if !t.lastLoggedKnown {
		if e.Index > 0 {
			if err := t.queryRow(ctx, "SELECT logged_at FROM audit_events WHERE idx = ?", e.Index-1).Scan(&t.lastLogged); err != nil {
				return 0, fmt.Errorf("store: previous audit log time: %w", err)
			}
		}
		t.lastLoggedKnown = true
	}
	t.lastLogged = max(t.lastLogged, micros(e.Time))
	return t.lastLogged, nil
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

// Events searches the trail, newest first. Each filter has an index that yields events in index
// order; when several are given, the planner is pointed at the one most likely to be selective
// (target, actor, authority, action, transport, outcome, in that order) and tests the others
// row by row: SQLite keeps no statistics that would let it choose. A time window becomes a range
// of indexes (log times only grow with the index), so it narrows every search.
func (c *conn) Events(ctx context.Context, q audit.Query) ([]audit.Event, int64, error) {
	var (
		conds []string
		args  []any
	)
	indexed := false
	// col returns the column for an equality test: the first one indexed, the rest row by row.
	col := func(name string) string {
		if indexed {
			return c.d.perRow(name)
		}
		indexed = true
		return name
	}
	add := func(cond string, a ...any) {
		conds = append(conds, cond)
		args = append(args, a...)
	}
	if q.Target != "" {
		cond, cargs, err := c.principalCond(ctx, "target", q.Target, col, directory.KindUser, directory.KindGroup,
			directory.KindServiceAccount, directory.KindOU)
		if err != nil {
			return nil, 0, err
		}
		add(cond, cargs...)
	}
	if q.Actor != "" {
		cond, cargs, err := c.principalCond(ctx, "actor", q.Actor, col, directory.KindUser, directory.KindServiceAccount)
		if err != nil {
			return nil, 0, err
		}
		add(cond, cargs...)
	}
	// An authority names a set of events in audit_authority: as the indexed filter, the search
	// walks that set newest first and joins each event; otherwise each event is tested.
	from, idx := "audit_events", "idx"
	if q.Authority != "" {
		if !indexed {
			indexed = true
			from, idx = "audit_authority JOIN audit_events ON audit_events.idx = audit_authority.idx", "audit_authority.idx"
			add("audit_authority.ref = ?", q.Authority)
		} else {
			add(c.d.perRow("idx")+" IN (SELECT idx FROM audit_authority WHERE ref = ?)", q.Authority)
		}
	}
	if q.Action != "" {
		add(col("action")+" = ?", q.Action)
	}
	if q.Transport != "" {
		add(col("transport")+" = ?", q.Transport)
	}
	if q.Outcome != "" {
		add(col("outcome")+" = ?", string(q.Outcome))
	}
	lo, hi := int64(0), int64(-1) // the index range [lo, hi) of the time window; hi -1: unbounded
	if !q.Since.IsZero() {
		n, err := c.firstLoggedAt(ctx, q.Since)
		if err != nil {
			return nil, 0, err
		}
		lo = n
	}
	if !q.Until.IsZero() {
		n, err := c.firstLoggedAt(ctx, q.Until)
		if err != nil {
			return nil, 0, err
		}
		hi = n
	}
	if q.Before > 0 && (hi < 0 || q.Before < hi) {
		hi = q.Before
	}
	if lo > 0 {
		add(idx+" >= ?", lo)
	}
	if hi >= 0 {
		add(idx+" < ?", hi)
	}
	limit := clampLimit(q.Limit)
	query := "SELECT " + idx + ", body FROM " + from
	if len(conds) > 0 {
		query += " WHERE " + strings.Join(conds, " AND ")
	}
	query += fmt.Sprintf(" ORDER BY %s DESC LIMIT %d", idx, limit+1)
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
func (c *conn) principalCond(ctx context.Context, prefix, key string, col func(string) string, kinds ...directory.Kind) (string, []any, error) {
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
			return fmt.Sprintf("%s(%s_name) = ?", c.d.fold, prefix), []any{filter.Fold(key)}, nil
		}
	}
	return fmt.Sprintf("%s IN (%s)", col(prefix+"_id"), placeholders(len(ids))), ids, nil
}

// firstLoggedAt returns the index of the first event logged at or after t (the log's size when
// none is). Log times never decrease along the index, so a binary search over point reads finds
// it: about 25 reads for 10,000,000 events, with no index on time.
func (c *conn) firstLoggedAt(ctx context.Context, t time.Time) (int64, error) {
	size, err := c.LogSize(ctx)
	if err != nil {
		return 0, err
	}
	want := micros(t)
	lo, hi := int64(0), int64(size)
	for lo < hi {
		mid := lo + (hi-lo)/2
		var at int64
		if err := c.queryRow(ctx, "SELECT logged_at FROM audit_events WHERE idx = ?", mid).Scan(&at); err != nil {
			return 0, fmt.Errorf("store: search the audit log by time: %w", err)
		}
		if at >= want {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}
