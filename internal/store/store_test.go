package store_test

import (
	"context"
	"testing"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/store"
	"github.com/deputy-iam/deputy/internal/store/storetest"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, storetest.SQLite)
}

func TestPostgres(t *testing.T) {
	storetest.Run(t, storetest.Postgres)
}

// TestMigrations opens the same database twice on each engine: the second open applies
// nothing and keeps the data, and SchemaVersion reports the newest migration.
func TestMigrations(t *testing.T) {
	engines := []struct {
		name, dialect string
		dsn           func(t testing.TB) string
	}{
		{"sqlite", "sqlite", storetest.SQLiteDSN},
		{"postgres", "postgres", storetest.PostgresDSN},
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := context.Background()
			latest, err := store.LatestSchemaVersion(e.dialect)
			if err != nil || latest < 1 {
				t.Fatalf("latest schema version: %d, %v", latest, err)
			}
			dsn := e.dsn(t)
			first, err := store.Open(ctx, dsn, storetest.Logger(t))
			if err != nil {
				t.Fatal(err)
			}
			if first.Dialect() != e.dialect {
				t.Errorf("dialect %q, want %q", first.Dialect(), e.dialect)
			}
			env := storetest.Bootstrap(t, first)
			if _, err := env.Pipeline.Submit(ctx, env.Admin, change.Meta{Transport: "test"},
				change.Op{Action: delegation.OUCreate, OU: &directory.OUInput{Name: "kept"}}); err != nil {
				first.Close()
				t.Fatal(err)
			}
			if err := first.Close(); err != nil {
				t.Fatal(err)
			}

			for range 2 {
				again := storetest.Open(t, dsn)
				v, err := again.SchemaVersion(ctx)
				if err != nil || v != latest {
					t.Errorf("schema version after reopening: %d, %v; want %d", v, err, latest)
				}
				if _, err := again.OU(ctx, directory.ParseRef(directory.KindOU, "kept")); err != nil {
					t.Errorf("data after reopening: %v", err)
				}
				if _, err := change.New(again, delegation.NewEngine(storetest.Logger(t)), storetest.Logger(t)).
					Bootstrap(ctx, change.Meta{}, "other"); err == nil {
					t.Error("a reopened database can be bootstrapped again")
				}
				if err := again.Ping(ctx); err != nil {
					t.Error(err)
				}
			}
		})
	}
}
