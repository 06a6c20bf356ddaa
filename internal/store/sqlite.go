package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"modernc.org/sqlite"

	"github.com/deputy-iam/deputy/internal/filter"
)

// registerFold registers deputy_fold with the SQLite driver. The driver's function registry is
// process-wide, so this happens once per process rather than per database.
var registerFold = sync.OnceValue(func() error {
	return sqlite.RegisterDeterministicScalarFunction("deputy_fold", 1,
		func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			switch v := args[0].(type) {
			case string:
				return filter.Fold(v), nil
			case []byte:
				return filter.Fold(string(v)), nil
			case nil:
				return "", nil
			default:
				return filter.Fold(fmt.Sprint(v)), nil
			}
		})
})

// sqlitePragmas are applied to every connection: WAL so readers never block the writer, a
// busy timeout instead of immediate SQLITE_BUSY, synchronous=NORMAL (in WAL mode a committed
// transaction survives a crash of the process; only a power loss can take the last ones),
// and foreign keys on.
var sqlitePragmas = []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)", "cache_size(-65536)", "wal_autocheckpoint(10000)", "temp_store(MEMORY)"}

func openSQLite(ctx context.Context, path string) (*Store, error) {
	if err := registerFold(); err != nil {
		return nil, fmt.Errorf("store: register sqlite functions: %w", err)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create %s: %w", dir, err)
		}
	}
	dsn := func(extra ...string) string {
		q := url.Values{}
		for _, p := range append(sqlitePragmas, extra...) {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
		return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	}
	w, err := sql.Open("sqlite", dsn())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// One writer: SQLite allows one at a time anyway, and a single connection makes writers
	// queue in Go instead of spinning on the busy timeout.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn("query_only(1)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s for reading: %w", path, err)
	}
	n := max(4, 2*runtime.NumCPU())
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	return &Store{
		conn:    &conn{d: sqliteDialect, db: r, cache: newStmtCache(r)},
		write:   w,
		wcache:  newStmtCache(w),
		closers: []*sql.DB{r, w},
	}, nil
}
