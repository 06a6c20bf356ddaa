// Package store persists Deputy's state in SQLite (embedded, the default) or PostgreSQL, behind
// the interfaces the domain packages declare. All SQL lives here. Both engines share one schema,
// migrated by numbered embedded files per dialect, and one test suite (storetest).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/change"
)

// Store is an open database: a pool of readers and, for writes, the pipeline's transactions.
// Its read methods (promoted from the reader connection) implement directory.Reader,
// audit.Reader and the authorizers' stores.
type Store struct {
	*conn              // reads, outside any transaction
	write   *sql.DB    // PostgreSQL: the shared pool; SQLite: the writer, a pool of one connection
	wcache  *stmtCache // SQLite: statements prepared on the writer
	closers []*sql.DB
	log     *slog.Logger
	tail    logTail // the audit log's committed edge
	// unlogged makes AppendEvent skip the Merkle log. Only the benchmark that measures what
	// the log costs sets it (from a test file); nothing else can.
	unlogged bool
}

// Open connects to the database at dsn: a "postgres://" or "postgresql://" URL selects
// PostgreSQL, anything else is the path of an SQLite file (created when missing). It applies
// pending migrations before returning.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*Store, error) {
	if err := checkSchemas(); err != nil {
		return nil, err
	}
	var (
		s   *Store
		err error
	)
	if IsPostgres(dsn) {
		s, err = openPostgres(ctx, dsn)
	} else {
		s, err = openSQLite(ctx, dsn)
	}
	if err != nil {
		return nil, err
	}
	s.log = log
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// IsPostgres reports whether dsn selects PostgreSQL.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Dialect names the engine: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// Close closes every connection. On SQLite it first checkpoints the write-ahead log so the
// database file is complete on its own.
func (s *Store) Close() error {
	s.wcache.close()
	s.cache.close()
	if s.d.name == "sqlite" {
		if _, err := s.write.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil && s.log != nil {
			s.log.Warn("store: checkpoint on close", "err", err)
		}
	}
	var errs []error
	for _, db := range s.closers {
		errs = append(errs, db.Close())
	}
	return errors.Join(errs...)
}

// Ping checks that the database answers (for readiness probes).
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// InTx implements change.Store: fn runs in one write transaction that commits when it returns
// nil. On SQLite the transaction takes the write lock at its start (BEGIN IMMEDIATE), so it never
// fails half-way on a lock upgrade.
func (s *Store) InTx(ctx context.Context, fn func(tx change.Tx) error) error {
	// Statements first used inside this transaction are prepared once it has ended: on
	// SQLite the transaction holds the writer's only connection until then.
	defer s.wcache.prepareWanted(ctx)
	sqlTx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	t := s.wrapTx(sqlTx)
	// Every write transaction appends to the audit log, whose indexes must be dense and in
	// commit order, so writers take the audit lock first and hold it to commit. Taking it
	// first, before any row lock, is what keeps a transaction of several ops from deadlocking
	// with one that holds a row it needs. (SQLite's single writer serializes the same way.)
	if err := t.lock(ctx, lockAudit); err != nil {
		sqlTx.Rollback()
		return err
	}
	if err := fn(t); err != nil {
		if rerr := sqlTx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("store: rollback: %w", rerr))
		}
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	s.tail.committed(t.app)
	return nil
}

// writer runs fn with a conn on the writer outside any transaction (bookkeeping writes).
func (s *Store) writer(ctx context.Context, fn func(c *conn) error) error {
	return fn(&conn{d: s.d, db: s.write, cache: s.wcache})
}

// micros converts a time to the stored form: Unix microseconds, 0 for the zero time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros converts a stored time back; 0 is the zero time.
func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// nullable stores an empty string as NULL (for optional unique columns).
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nowUTC is the wall clock for bookkeeping columns that are not part of any event.
func nowUTC() time.Time { return time.Now().UTC() }
