package store

import (
	"context"
	"fmt"
	"time"
)

// OutboxMessage is one message of the outbox: what the connectors are told about an applied
// change. Payload is the JSON the pipeline enqueued with it.
type OutboxMessage struct {
	ID         int64
	Topic      string
	EventIndex int64 // the audit event of the change
	Payload    []byte
	Created    time.Time
	Attempts   int
	Delivered  time.Time // zero while undelivered
}

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
