package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/deputy-iam/deputy/internal/directory"
)

// dialect holds what differs between the engines. Queries are written once, with "?"
// placeholders, and rebound for PostgreSQL.
type dialect struct {
	name    string
	dollar  bool   // placeholders are $1, $2, ...
	fold    string // the SQL function that folds case like filter.Fold
	collate string // appended to string comparisons so ordering is by code point
	// jsonText extracts the string member key of a JSON text column; key has been checked
	// to hold only letters, digits, _ and -.
	jsonText func(col, key string) string
	// perRow marks a column so that the planner tests it row by row instead of reaching
	// rows through an index on it. SQLite keeps no statistics: given an index on an object's
	// OU it would fetch a whole subtree and sort it for every page, where walking the page's
	// order and testing each row against the subtree's OUs (a set it computes once) is what
	// serves a large scope. PostgreSQL plans from statistics and is left to choose.
	perRow func(col string) string
	// lockSQL takes a transaction-scoped lock on a named resource, or is empty when the
	// engine's single writer already serializes every write transaction.
	lockSQL string
}

var (
	sqliteDialect = &dialect{
		name: "sqlite", fold: "deputy_fold",
		jsonText: func(col, key string) string { return fmt.Sprintf(`json_extract(%s, '$."%s"')`, col, key) },
		perRow:   func(col string) string { return "+" + col }, // SQLite's way to set an index aside
	}
	postgresDialect = &dialect{
		name: "postgres", dollar: true, fold: "lower", collate: ` COLLATE "C"`,
		jsonText: func(col, key string) string { return fmt.Sprintf("(%s::jsonb ->> '%s')", col, key) },
		perRow:   func(col string) string { return col },
		// Keys are scoped to the schema, so installations sharing a database (or tests in
		// schemas of their own) do not serialize each other.
		lockSQL: "SELECT pg_advisory_xact_lock(hashtext(current_schema()), ?)",
	}
)

// Lock keys for serializing checks that read more than the rows they write (write skew).
const (
	lockNesting = 1 // group nesting cycle checks
	lockTier0   = 2 // "is this the last tier-0 admin" checks
	lockAudit   = 3 // audit index allocation
)

// rebind rewrites "?" placeholders as "$n" for PostgreSQL, leaving quoted text alone.
func (d *dialect) rebind(q string) string {
	if !d.dollar {
		return q
	}
	var b strings.Builder
	n, quoted := 0, false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// stmtCache keeps SQLite statements prepared on a pool, by query text, so hot paths do not
// re-parse SQL on every call. (PostgreSQL needs none: pgx caches prepared statements per
// connection.) A statement must be prepared on the pool outside any transaction: inside one, on
// the writer's single connection, preparing on the pool would wait for the transaction itself.
// So a miss inside a transaction runs unprepared and is prepared once the transaction ends.
type stmtCache struct {
	db     *sql.DB
	mu     sync.Mutex
	m      map[string]*sql.Stmt
	wanted map[string]bool
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}, wanted: map[string]bool{}}
}

// lookup returns the prepared statement for q, or records q as wanted and returns nil.
func (c *stmtCache) lookup(q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.m[q]
	if st == nil {
		c.wanted[q] = true
	}
	return st
}

// prepare returns the statement for q, preparing it now when needed (outside a transaction).
func (c *stmtCache) prepare(ctx context.Context, d *dialect, q string) (*sql.Stmt, error) {
	if st := c.lookup(q); st != nil {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, d.rebind(q))
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", firstLine(q), err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[q]; old != nil {
		st.Close()
		return old, nil
	}
	c.m[q] = st
	delete(c.wanted, q)
	return st, nil
}

// prepareWanted prepares the statements that missed inside a transaction. Failures are left
// for the next use to report.
func (c *stmtCache) prepareWanted(ctx context.Context) {
	if c == nil {
		return
	}
	c.mu.Lock()
	var qs []string
	for q := range c.wanted {
		qs = append(qs, q)
	}
	c.mu.Unlock()
	for _, q := range qs {
		_, _ = c.prepare(context.WithoutCancel(ctx), sqliteDialect, q)
	}
}

func (c *stmtCache) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = map[string]*sql.Stmt{}
}

// conn runs queries on the read pool or inside a write transaction.
type conn struct {
	d     *dialect
	db    *sql.DB    // the pool for queries outside a transaction
	tx    *sql.Tx    // the write transaction, or nil
	cache *stmtCache // nil: run queries unprepared
}

// stmt returns the cached statement for q, bound to the transaction when there is one, or nil
// when this connection does not cache statements.
func (c *conn) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	switch {
	case c.cache == nil:
		return nil, nil
	case c.tx == nil:
		return c.cache.prepare(ctx, c.d, q)
	}
	if st := c.cache.lookup(q); st != nil {
		// The statement was prepared on the pool's connection, which this transaction holds,
		// so binding it to the transaction reuses it rather than preparing again.
		return c.tx.StmtContext(ctx, st), nil
	}
	return nil, nil
}

func (c *conn) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, err := c.stmt(ctx, q)
	switch {
	case err != nil:
		return nil, err
	case st == nil:
		q = c.d.rebind(q)
		if c.tx != nil {
			return c.tx.ExecContext(ctx, q, args...)
		}
		return c.db.ExecContext(ctx, q, args...)
	}
	return st.ExecContext(ctx, args...)
}

func (c *conn) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := c.stmt(ctx, q)
	switch {
	case err != nil:
		return nil, err
	case st == nil:
		return c.rawQuery(ctx, q, args...)
	}
	return st.QueryContext(ctx, args...)
}

func (c *conn) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := c.stmt(ctx, q)
	if err != nil || st == nil {
		// On a preparation error, running the query unprepared makes Scan report it.
		return c.rawQueryRow(ctx, q, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// rawQuery runs a query built at run time (filters), which is not worth caching.
func (c *conn) rawQuery(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	q = c.d.rebind(q)
	if c.tx != nil {
		return c.tx.QueryContext(ctx, q, args...)
	}
	return c.db.QueryContext(ctx, q, args...)
}

func (c *conn) rawQueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	q = c.d.rebind(q)
	if c.tx != nil {
		return c.tx.QueryRowContext(ctx, q, args...)
	}
	return c.db.QueryRowContext(ctx, q, args...)
}

// lock takes a transaction-scoped lock on key where the engine needs one.
func (c *conn) lock(ctx context.Context, key int64) error {
	if c.d.lockSQL == "" || c.tx == nil {
		return nil
	}
	if _, err := c.exec(ctx, c.d.lockSQL, int32(key)); err != nil {
		return fmt.Errorf("store: lock %d: %w", key, err)
	}
	return nil
}

// uniqueFields maps unique indexes (by name on PostgreSQL, by column on SQLite) to the field a
// client wrote.
var uniqueFields = map[string]string{
	"users_username_uq": "username", "users.username_key": "username",
	"users_email_uq": "email", "users.email_key": "email",
	"users_employee_id_uq": "employee_id", "users.employee_id_key": "employee_id",
	"groups_name_uq": "name", "groups.name_key": "name",
	"service_accounts_name_uq": "name", "service_accounts.name_key": "name",
	"ous_path_uq": "name", "ous.path_key": "name",
	"group_members_pkey": "member", "group_members.group_id": "member",
	"roles_pkey": "name", "roles.name": "name",
}

// mapWriteError turns a unique-constraint violation into a directory conflict naming the field.
func mapWriteError(err error, what string) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return conflictOn(uniqueFields[pgErr.ConstraintName], what)
	}
	msg := err.Error()
	if i := strings.Index(msg, "UNIQUE constraint failed: "); i >= 0 {
		cols := msg[i+len("UNIQUE constraint failed: "):]
		if j := strings.IndexAny(cols, ", )"); j >= 0 {
			cols = cols[:j]
		}
		return conflictOn(uniqueFields[cols], what)
	}
	return fmt.Errorf("store: write %s: %w", what, err)
}

func conflictOn(field, what string) error {
	if field == "" {
		return directory.Conflict("", "%s collides with an existing object", what)
	}
	switch what {
	case "OU":
		return directory.Conflict(field, "an OU of that name already exists under the same parent")
	case "membership":
		return directory.Conflict(field, "is already a member of this group")
	}
	return directory.Conflict(field, "is already used by another %s", what)
}

func firstLine(q string) string {
	q = strings.TrimSpace(q)
	if i := strings.IndexByte(q, '\n'); i > 0 {
		return q[:i]
	}
	return q
}
