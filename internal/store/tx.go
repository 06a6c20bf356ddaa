package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/directory"
)

// tx is a write transaction: the reads of conn plus the writes of change.Tx.
type tx struct {
	*conn
	// nextEvent is the index the next appended audit event gets, once the first append of
	// the transaction has read it (0 before).
	nextEvent int64
	memo      memo
	// tail is the store's committed log edge; app the transaction's own, from its first append.
	tail     *logTail
	app      *audit.Appender
	unlogged bool // see Store.unlogged
	// lastLogged is the log time of the transaction's last event, once lastLoggedKnown.
	lastLogged      int64
	lastLoggedKnown bool
}

// checkUpdated interprets the result of an optimistic "UPDATE ... WHERE id = ? AND version = ?":
// no row changed means the object is gone or at another version.
func (t *tx) checkUpdated(ctx context.Context, res sql.Result, err error, table string, kind directory.Kind,
	id string, version int64, what string) error {
	if err != nil {
		return mapWriteError(err, what)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: update %s: %w", what, err)
	}
	if n == 1 {
		return nil
	}
	var have int64
	err = t.queryRow(ctx, "SELECT version FROM "+table+" WHERE id = ?", id).Scan(&have)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return directory.NotFound(kind, id)
	case err != nil:
		return fmt.Errorf("store: update %s: %w", what, err)
	}
	return directory.StaleVersion(version, have)
}

// Savepoint implements change.Tx. Savepoints do not nest here: the pipeline uses one per op.
func (t *tx) Savepoint(ctx context.Context, fn func() error) error {
	if _, err := t.exec(ctx, "SAVEPOINT op"); err != nil {
		return fmt.Errorf("%w: savepoint: %w", change.ErrTxBroken, err)
	}
	if err := fn(); err != nil {
		// What fn read into the memo, or wrote, may be undone now: forget it all.
		t.memo, t.nextEvent, t.app, t.lastLoggedKnown = memo{}, 0, nil, false
		if _, rerr := t.exec(ctx, "ROLLBACK TO SAVEPOINT op"); rerr != nil {
			return fmt.Errorf("%w: roll back to savepoint: %w (after: %w)", change.ErrTxBroken, rerr, err)
		}
		if _, rerr := t.exec(ctx, "RELEASE SAVEPOINT op"); rerr != nil {
			return fmt.Errorf("%w: release savepoint: %w (after: %w)", change.ErrTxBroken, rerr, err)
		}
		return err
	}
	if _, err := t.exec(ctx, "RELEASE SAVEPOINT op"); err != nil {
		return fmt.Errorf("%w: release savepoint: %w", change.ErrTxBroken, err)
	}
	return nil
}
