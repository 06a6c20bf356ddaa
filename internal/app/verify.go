package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/mod/sumdb/note"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/config"
	"github.com/deputy-iam/deputy/internal/store"
)

// VerifyDatabase verifies the audit log in the configured database offline: it recomputes the
// tree from every event, compares the leaf hashes and tree nodes stored beside them, and checks
// the root against every checkpoint, those the database stores and those given (signed notes,
// from a witness's files). Checkpoints not signed by a known key are reported, not used. The
// server need not run; the database is only read.
func VerifyDatabase(ctx context.Context, cfg config.Config, known note.Verifiers, given [][]byte, givenFrom string) (audit.Verified, error) {
	if !store.IsPostgres(cfg.DSN()) {
		if _, err := os.Stat(cfg.DSN()); errors.Is(err, fs.ErrNotExist) {
			return audit.Verified{}, fmt.Errorf("no database at %s: give --data or --database-url", cfg.DSN())
		}
	}
	st, err := store.Open(ctx, cfg.DSN(), nil)
	if err != nil {
		return audit.Verified{}, err
	}
	defer st.Close()
	stored, err := st.Checkpoints(ctx)
	if err != nil {
		return audit.Verified{}, err
	}
	cps, sigErr := audit.OpenCheckpoints(stored, known, "the database")
	more, moreErr := audit.OpenCheckpoints(given, known, givenFrom)
	cps = append(cps, more...)
	nodes, err := st.AllNodes(ctx)
	if err != nil {
		return audit.Verified{}, err
	}
	v := audit.NewVerifier(cps)
	v.StoredNodes(nodes)
	if err := st.EachLeaf(ctx, v.AddStored); err != nil {
		var m *audit.Mismatch
		if errors.As(err, &m) {
			return audit.Verified{}, errors.Join(err, sigErr, moreErr)
		}
		return audit.Verified{}, err
	}
	got, err := v.Finish()
	return got, errors.Join(err, sigErr, moreErr)
}
