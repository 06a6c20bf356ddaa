package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations
var migrations embed.FS

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the dialect's migrations in version order. Files are named
// NNNN_description.sql; numbers must be unique and start at 1 without gaps.
func loadMigrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return nil, fmt.Errorf("store: read migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("store: migration %s: name must be NNNN_description.sql", e.Name())
		}
		b, err := migrations.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("store: read migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("store: migration %s: expected number %d", m.name, i+1)
		}
	}
	return out, nil
}

// migrate applies the migrations newer than the database's version, each in its own
// transaction together with the row that records it.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations(s.d.name)
	if err != nil {
		return err
	}
	if _, err := s.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("store: create schema_migrations: %w", err)
	}
	for {
		done, err := s.migrateOne(ctx, ms)
		if err != nil || done {
			return err
		}
	}
}

// migrateOne applies the next pending migration in a transaction of its own, with the row that
// records it, and reports whether none was pending. On PostgreSQL the transaction first takes a
// lock, so replicas starting together apply each migration once.
func (s *Store) migrateOne(ctx context.Context, ms []migration) (bool, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: migrate: %w", err)
	}
	defer tx.Rollback()
	if s.d.lockSQL != "" {
		if _, err := tx.ExecContext(ctx, s.d.rebind(s.d.lockSQL), int32(4242)); err != nil {
			return false, fmt.Errorf("store: lock for migration: %w", err)
		}
	}
	var current int
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return false, fmt.Errorf("store: read schema version: %w", err)
	}
	if current > len(ms) {
		return false, fmt.Errorf("store: the database is at schema version %d, newer than this binary knows (%d); upgrade deputy", current, len(ms))
	}
	if current == len(ms) {
		return true, tx.Commit()
	}
	m := ms[current]
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("store: migration %s: %w", m.name, err)
	}
	if hook := afterMigration[m.version]; hook != nil {
		if err := hook(ctx, s, s.wrapTx(tx)); err != nil {
			return false, fmt.Errorf("store: migration %s: %w", m.name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
		m.version, m.name, time.Now().UnixMicro()); err != nil {
		return false, fmt.Errorf("store: record migration %s: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store: commit migration %s: %w", m.name, err)
	}
	if s.log != nil {
		s.log.Info("store: migrated", "version", m.version, "name", m.name, "dialect", s.d.name)
	}
	return false, nil
}

// afterMigration holds the Go steps of migrations, run in the migration's transaction after its
// SQL: what SQL alone cannot compute.
var afterMigration = map[int]func(ctx context.Context, s *Store, t *tx) error{
	3: fillLeaves,
}

// wrapTx gives a migration's transaction the store's write methods.
func (s *Store) wrapTx(sqlTx *sql.Tx) *tx {
	return &tx{conn: &conn{d: s.d, db: s.write, tx: sqlTx, cache: s.wcache}, tail: &s.tail, unlogged: s.unlogged}
}

// SchemaVersion returns the number of the last applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("store: read schema version: %w", err)
	}
	return v, nil
}
