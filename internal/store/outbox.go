package store

import (
	"context"

	"fmt"
	"github.com/deputy-iam/deputy/internal/change"
)

// OutboxMessage is one message of the outbox (change.OutboxMessage: consumers know it from there).
type OutboxMessage = change.OutboxMessage

// Outbox returns up to limit messages of topic whose ID is greater than after, in ID order
// (the order in which they were enqueued). A limit outside [1, directory.MaxLimit] is clamped
// as for lists.
func (c *conn) Outbox(ctx context.Context, topic string, after int64, limit int) ([]OutboxMessage, error) {
	rows, err := c.query(ctx, `SELECT id, topic, event_idx, payload, created_at, attempts, delivered_at FROM outbox
		WHERE topic = ? AND id > ? ORDER BY id LIMIT ?`, topic, after, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("store: read outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxMessage
	for rows.Next() {
		var (
			m                  OutboxMessage
			created, delivered int64
		)
		if err := rows.Scan(&m.ID, &m.Topic, &m.EventIndex, &m.Payload, &created, &m.Attempts, &delivered); err != nil {
			return nil, fmt.Errorf("store: read outbox: %w", err)
		}
		m.Created, m.Delivered = fromMicros(created), fromMicros(delivered)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read outbox: %w", err)
	}
	return out, nil
}
