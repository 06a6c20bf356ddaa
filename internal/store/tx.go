package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/deputy-iam/deputy/internal/directory"
)

// tx is a write transaction: the reads of conn plus the writes of change.Tx.
type tx struct {
	*conn
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
