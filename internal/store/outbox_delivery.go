package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/deputy-iam/deputy/internal/directory"
)

// The delivery bookkeeping of the outbox, for a consumer that marks each message delivered
// (notifications) rather than keeping a cursor of its own. It is bookkeeping, not a change:
// it runs on the writer outside the pipeline and records no audit event.

// Undelivered returns up to limit messages of topic not yet marked delivered, in ID order (the
// order in which they were enqueued). A limit outside [1, directory.StreamLimit] is clamped as
// for lists. A message stays in the answer, with its attempts, until MarkDelivered.
func (s *Store) Undelivered(ctx context.Context, topic string, limit int) ([]OutboxMessage, error) {
	rows, err := s.query(ctx, `SELECT id, topic, event_idx, payload, created_at, attempts, delivered_at FROM outbox
		WHERE topic = ? AND delivered_at = 0 ORDER BY id LIMIT ?`, topic, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("store: read undelivered %s outbox: %w", topic, err)
	}
	defer rows.Close()
	out, err := scanOutbox(rows)
	if err != nil {
		return nil, fmt.Errorf("store: read undelivered %s outbox: %w", topic, err)
	}
	return out, nil
}

// MarkDelivered records that message id was delivered at at (the zero time means now). It is
// idempotent: a message already marked keeps its first delivery time. An unknown id is an
// error matching directory.ErrNotFound.
func (s *Store) MarkDelivered(ctx context.Context, id int64, at time.Time) error {
	if at.IsZero() {
		at = nowUTC()
	}
	return s.writer(ctx, func(c *conn) error {
		res, err := c.exec(ctx, `UPDATE outbox SET delivered_at = CASE WHEN delivered_at = 0 THEN ? ELSE delivered_at END
			WHERE id = ?`, micros(at), id)
		return outboxUpdated(res, err, "mark outbox message %d delivered", id)
	})
}

// MarkAttempt counts one more failed delivery attempt of message id. An unknown id is an error
// matching directory.ErrNotFound.
func (s *Store) MarkAttempt(ctx context.Context, id int64) error {
	return s.writer(ctx, func(c *conn) error {
		res, err := c.exec(ctx, "UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", id)
		return outboxUpdated(res, err, "count an attempt of outbox message %d", id)
	})
}

// outboxUpdated checks that an update of one outbox message by id found it.
func outboxUpdated(res sql.Result, err error, what string, id int64) error {
	if err != nil {
		return fmt.Errorf("store: "+what+": %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: "+what+": %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("store: "+what+": %w", id, directory.ErrNotFound)
	}
	return nil
}

// scanOutbox reads the rows of an outbox query in the column order of Outbox.
func scanOutbox(rows *sql.Rows) ([]OutboxMessage, error) {
	var out []OutboxMessage
	for rows.Next() {
		var (
			m                  OutboxMessage
			created, delivered int64
		)
		if err := rows.Scan(&m.ID, &m.Topic, &m.EventIndex, &m.Payload, &created, &m.Attempts, &delivered); err != nil {
			return nil, err
		}
		m.Created, m.Delivered = fromMicros(created), fromMicros(delivered)
		out = append(out, m)
	}
	return out, rows.Err()
}
