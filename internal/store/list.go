package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/deputy-iam/deputy/internal/directory"
)

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// listSpec describes a paginated list: the select list and FROM clause, a fixed condition,
// and the sort order, by a key and a unique tie-breaker.
type listSpec struct {
	cols    string
	from    string
	where   string // fixed condition, "" for none
	args    []any  // its arguments
	sortKey string
	tieKey  string
	fields  fieldMap
}

// cursor is the position after the last row of a page.
type cursor struct {
	Key string `json:"k"`
	Tie string `json:"t"`
}

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil {
		return c, directory.Invalid("cursor", "is not a cursor this server issued")
	}
	return c, nil
}

// clampLimit applies the page-size bounds (the API has already refused more than MaxLimit from a
// client; internal readers may ask for up to StreamLimit).
func clampLimit(n int) int {
	switch {
	case n <= 0:
		return directory.DefaultLimit
	case n > directory.StreamLimit:
		return directory.StreamLimit
	}
	return n
}

// list runs a paginated query. scan reads one row and returns the item with its sort key and
// tie-breaker values, from which the next cursor is made.
func list[T any](ctx context.Context, c *conn, spec listSpec, q directory.ListQuery,
	scan func(rowScanner) (T, cursor, error)) (directory.Page[T], error) {
	var (
		conds []string
		args  []any
	)
	if spec.where != "" {
		conds = append(conds, spec.where)
		args = append(args, spec.args...)
	}
	if q.Filter != nil {
		w, wargs, err := c.where(q.Filter, spec.fields, true)
		if err != nil {
			return directory.Page[T]{}, err
		}
		conds = append(conds, w)
		args = append(args, wargs...)
	}
	if q.Cursor != "" {
		cur, err := decodeCursor(q.Cursor)
		if err != nil {
			return directory.Page[T]{}, err
		}
		conds = append(conds, fmt.Sprintf("(%[1]s%[3]s > ? OR (%[1]s = ? AND %[2]s%[3]s > ?))", spec.sortKey, spec.tieKey, c.d.collate))
		args = append(args, cur.Key, cur.Key, cur.Tie)
	}
	limit := clampLimit(q.Limit)
	var b strings.Builder
	b.WriteString("SELECT " + spec.cols + " " + spec.from)
	if len(conds) > 0 {
		b.WriteString(" WHERE " + strings.Join(conds, " AND "))
	}
	fmt.Fprintf(&b, " ORDER BY %s%s, %s%s LIMIT %d", spec.sortKey, c.d.collate, spec.tieKey, c.d.collate, limit+1)

	rows, err := c.rawQuery(ctx, b.String(), args...)
	if err != nil {
		return directory.Page[T]{}, fmt.Errorf("store: list: %w", err)
	}
	defer rows.Close()
	page := directory.Page[T]{Items: make([]T, 0, min(limit, 64))}
	var last cursor
	for rows.Next() {
		if len(page.Items) == limit {
			page.Next = encodeCursor(last)
			break
		}
		item, cur, err := scan(rows)
		if err != nil {
			return directory.Page[T]{}, fmt.Errorf("store: list: scan: %w", err)
		}
		page.Items = append(page.Items, item)
		last = cur
	}
	if err := rows.Err(); err != nil {
		return directory.Page[T]{}, fmt.Errorf("store: list: %w", err)
	}
	return page, nil
}

// notFound maps sql.ErrNoRows to directory.ErrNotFound for the looked-up object.
func notFound(err error, kind directory.Kind, key string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return directory.NotFound(kind, key)
	}
	return fmt.Errorf("store: read %s %q: %w", kind.Noun(), key, err)
}

// countSpecs are the FROM clauses and field maps of the kinds Count counts.
var countSpecs = map[directory.Kind]struct {
	from   string
	fields fieldMap
}{
	directory.KindOU:             {"FROM ous o LEFT JOIN ous p ON p.id = o.parent_id", ouFields},
	directory.KindUser:           {userFrom, userFields},
	directory.KindGroup:          {groupFrom, groupFields},
	directory.KindServiceAccount: {saFrom, saFields},
}

// Count counts the objects of kind that q's filter selects (its cursor and limit are ignored).
func (c *conn) Count(ctx context.Context, kind directory.Kind, q directory.ListQuery) (int, error) {
	spec, ok := countSpecs[kind]
	if !ok {
		return 0, fmt.Errorf("store: cannot count %s objects", kind)
	}
	w, args, err := c.where(q.Filter, spec.fields, false)
	if err != nil {
		return 0, err
	}
	var n int
	if err := c.rawQueryRow(ctx, "SELECT COUNT(*) "+spec.from+" WHERE "+w, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count %s: %w", kind, err)
	}
	return n, nil
}
