// Package storetest is the shared test suite of internal/store and the helpers every
// integration test in the repository uses to get a real database: SQLite opens a fresh file in
// a temporary directory, Postgres a fresh schema in the database DEPUTY_TEST_POSTGRES_DSN names.
// Bootstrap puts a change pipeline over a store and creates its first tier-0 admin.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"github.com/deputy-iam/deputy/internal/approval"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for creating and dropping schemas

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/store"
)

// Environment variables the engine helpers read.
const (
	// PostgresDSNEnv names the PostgreSQL database the tests may use, as a postgres:// URL. Each
	// Postgres call works in a schema of its own inside it, so the database can be shared.
	PostgresDSNEnv = "DEPUTY_TEST_POSTGRES_DSN"
	// RequireIntegrationEnv, set to 1, turns a missing PostgresDSNEnv from a skip into a
	// failure, so that CI cannot pass without having run the PostgreSQL tests.
	RequireIntegrationEnv = "DEPUTY_REQUIRE_INTEGRATION"
)

// Logger returns a logger that writes warnings and errors to the test's output.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// SQLite opens a store on a new SQLite file in a temporary directory. The store is closed when
// the test ends.
func SQLite(t *testing.T) *store.Store {
	t.Helper()
	return Open(t, SQLiteDSN(t))
}

// SQLiteDSN returns the path of a new SQLite file in a temporary directory, for a test that
// opens (and reopens) the database itself.
func SQLiteDSN(t testing.TB) string {
	return filepath.Join(t.TempDir(), "deputy.db")
}

// Postgres opens a store on a new, empty schema of the database named by
// DEPUTY_TEST_POSTGRES_DSN, with the schema as the connections' search_path. The store is
// closed and the schema dropped when the test ends. Without the variable the test is skipped,
// unless DEPUTY_REQUIRE_INTEGRATION=1, where it fails.
func Postgres(t *testing.T) *store.Store {
	t.Helper()
	return Open(t, PostgresDSN(t))
}

// PostgresDSN creates a new, empty schema as Postgres does and returns the URL that selects
// it, for a test that opens (and reopens) the database itself. The schema is dropped when the
// test ends, after the cleanups registered later (such as closing stores opened on it).
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(PostgresDSNEnv)
	if dsn == "" {
		if os.Getenv(RequireIntegrationEnv) == "1" {
			t.Fatalf("%s is 1 but %s is not set; set %s=postgres://user@host:5432/db?sslmode=disable",
				RequireIntegrationEnv, PostgresDSNEnv, PostgresDSNEnv)
		}
		t.Skip("PostgreSQL tests skipped: set " + PostgresDSNEnv + "=postgres://user@host:5432/db?sslmode=disable")
	}
	if !store.IsPostgres(dsn) {
		t.Fatalf("%s must be a postgres:// or postgresql:// URL", PostgresDSNEnv)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("%s: %v", PostgresDSNEnv, err)
	}
	schema := "t_" + strings.ToLower(rand.Text()[:16])

	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if err := admin.Close(); err != nil {
			t.Errorf("close PostgreSQL admin connection: %v", err)
		}
	})
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	// Registered before the store's Close, so it runs after it.
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open opens the store at dsn and closes it when the test ends.
func Open(t testing.TB, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, Logger(t))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return st
}

// AdminName is the username of the admin Bootstrap creates.
const AdminName = "admin"

// Env is a store with a change pipeline over it (the tier-0 authorizer) and the first tier-0
// admin that Bootstrap created.
type Env struct {
	Store    *store.Store
	Pipeline *change.Pipeline
	// Admin is the bootstrapped tier-0 admin as an actor; AdminUser is their record and
	// AdminToken their API token ("dpy_...").
	Admin      delegation.Actor
	AdminUser  directory.User
	AdminToken string
	// Engine is the pipeline's authorizer; Gate its approval gate, with no policies until a
	// test sets some (Gate.Set, or the pipeline's policy methods).
	Engine *delegation.Engine
	Gate   *approval.Gate
}

// Bootstrap builds a pipeline over st with the delegation engine and opts, and bootstraps the
// directory: the root OU and the tier-0 admin AdminName. It fails the test on any error.
func Bootstrap(t testing.TB, st *store.Store, opts ...change.Option) *Env {
	t.Helper()
	log := Logger(t)
	engine := delegation.NewEngine(log)
	if err := engine.Load(context.Background(), st); err != nil {
		t.Fatalf("load the delegation engine: %v", err)
	}
	gate := approval.NewGate(engine)
	p := change.New(st, engine, log, append([]change.Option{change.WithGate(gate)}, opts...)...)
	b, err := p.Bootstrap(context.Background(), change.Meta{Transport: audit.TransportCLI}, AdminName)
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	return &Env{Store: st, Pipeline: p, Admin: ActorOf(b.Admin), AdminUser: b.Admin, AdminToken: b.Token,
		Engine: engine, Gate: gate}
}

// ActorOf returns the user u as an actor.
func ActorOf(u directory.User) delegation.Actor {
	return delegation.Actor{Kind: delegation.ActorUser, ID: u.ID, Name: u.Username}
}

// BackToSchema2 is the SQLite that takes a database back to schema version 2 (before the
// Merkle log), so that a test can run migration 3's backfill on a log that has events: every
// later migration is undone and forgotten. A migration that adds tables or columns adds their
// undoing here.
func BackToSchema2() []string {
	return []string{
		// 7: service-account keys
		"DROP INDEX IF EXISTS api_tokens_owner_kind", "ALTER TABLE service_accounts DROP COLUMN orphaned",
		// 6: credentials
		"DROP TABLE verifications", "DROP TABLE sessions", "DROP TABLE user_credentials", "ALTER TABLE roles DROP COLUMN verify_identity",
		// 5: lifecycle
		"DROP TABLE lifecycle_runs", "DROP INDEX assignments_source", "ALTER TABLE assignments DROP COLUMN source",
		// 4: approvals
		"DROP TABLE request_inbox", "DROP INDEX outbox_undelivered", "DROP TABLE requests", "DROP TABLE approval_policies",
		"DROP TABLE settings",
		// 3: the Merkle log
		"DROP TABLE audit_nodes", "DROP TABLE audit_checkpoints", "DROP TABLE audit_authority", "DROP INDEX audit_events_outcome",
		"DROP INDEX audit_events_transport", "DROP TABLE audit_sinks", "DROP TABLE audit_leaves", "ALTER TABLE audit_events DROP COLUMN logged_at",
		"CREATE INDEX audit_events_at ON audit_events (at)",
		"DELETE FROM schema_migrations WHERE version >= 3",
	}
}
