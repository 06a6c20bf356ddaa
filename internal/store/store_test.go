package store_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/deputy-iam/deputy/internal/audit"
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

// TestMerkleMigration takes a database with events back to schema version 2 (no leaf hashes, no
// tree) and reopens it: migration 3 gives every event its leaf and the tree its nodes, and the
// log verifies.
func TestMerkleMigration(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.SQLiteDSN(t)
	st, err := store.Open(ctx, dsn, storetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	env := storetest.Bootstrap(t, st)
	for i := range 40 {
		if _, err := env.Pipeline.Submit(ctx, env.Admin, change.Meta{Transport: "test"},
			change.Op{Action: delegation.OUCreate, OU: &directory.OUInput{Name: fmt.Sprintf("ou%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	want, err := audit.Tree{Src: st}.Root(ctx, 41)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range storetest.BackToSchema2() {
		if err := st.ExecRaw(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	st.Close()
	again := storetest.Open(t, dsn)
	size, err := again.LogSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v := audit.NewVerifier(nil)
	if err := again.EachLeaf(ctx, v.AddStored); err != nil {
		t.Fatalf("after the migration: %v", err)
	}
	got, err := v.Finish()
	if err != nil || got.Size != size || size < 41 {
		t.Fatalf("verified %d of %d: %v", got.Size, size, err)
	}
	if root, err := (audit.Tree{Src: again}).Root(ctx, 41); err != nil || !bytes.Equal(root, want) {
		t.Fatalf("root after the migration %x (%v), before %x", root, err, want)
	}
}
