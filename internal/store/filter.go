package store

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
)

// colKind says how a filter compares against a column.
type colKind int

const (
	colFold colKind = iota // free text: compared case-folded
	colKey                 // holds the folded key already (username_key, path_key)
	colPath                // an OU path key ("" for the root, NULL for none), compared as displayed: "/" for the root
	colBool                // 0/1
	colTime                // Unix microseconds, 0 = absent
	colJSON                // a member of a JSON object column; the sub-attribute names the key
)

// column maps a filter attribute to SQL. expr must never be NULL except for colJSON and colPath.
type column struct {
	expr string
	kind colKind
}

// fieldMap maps a kind's filter attributes (its schema's names) to columns. A "attributes."
// entry serves every custom attribute.
type fieldMap map[string]column

// where translates a checked filter into a SQL condition with "?" arguments. Its semantics are
// filter.Match's: string comparisons are case-insensitive, an absent value equals nothing and
// only "ne" holds for it. ordered says the query walks a sort order page by page (see
// dialect.perRow); an unordered one leaves the planner every index.
func (c *conn) where(e filter.Expr, fm fieldMap, ordered bool) (string, []any, error) {
	perRow := func(col string) string { return col }
	if ordered {
		perRow = c.d.perRow
	}
	var args []any
	var build func(filter.Expr) (string, error)
	build = func(e filter.Expr) (string, error) {
		switch e := e.(type) {
		case nil:
			return "1=1", nil
		case *filter.And, *filter.Or:
			l, r, op := binary(e)
			ls, err := build(l)
			if err != nil {
				return "", err
			}
			rs, err := build(r)
			if err != nil {
				return "", err
			}
			return "(" + ls + " " + op + " " + rs + ")", nil
		case *filter.Not:
			s, err := build(e.X)
			if err != nil {
				return "", err
			}
			return "NOT (" + s + ")", nil
		case *filter.Compare:
			s, a, err := c.compare(e, fm)
			args = append(args, a...)
			return s, err
		case *filter.Within, *filter.MemberOf, *filter.Related, *filter.Nothing:
			s, a := structural(e, fm, perRow)
			args = append(args, a...)
			return s, nil
		}
		return "", fmt.Errorf("store: unsupported filter node %T", e)
	}
	s, err := build(e)
	return s, args, err
}

func binary(e filter.Expr) (filter.Expr, filter.Expr, string) {
	if a, ok := e.(*filter.And); ok {
		return a.Left, a.Right, "AND"
	}
	o := e.(*filter.Or)
	return o.Left, o.Right, "OR"
}

// structural translates the structural filter nodes (delegation scopes) for the kind whose
// field map is fm. A node the kind cannot satisfy (a manager on a group) selects nothing, as
// filter.Match does.
func structural(e filter.Expr, fm fieldMap, perRow func(string) string) (string, []any) {
	id := fm["$id"].expr
	switch e := e.(type) {
	case *filter.Within:
		ou := fm["$ou"].expr
		if ou == "" {
			return "1=0", nil
		}
		if !e.Subtree {
			return perRow(ou) + " = ?", []any{e.OU}
		}
		// The OU itself or below it (the root's subtree is everything): the subtree's OUs are
		// selected once, and each row's OU looked up among them.
		return perRow(ou) + " IN (SELECT x.id FROM ous w JOIN ous x ON x.id = w.id OR w.path_key = '' OR " +
			"substr(x.path_key, 1, length(w.path_key) + 1) = w.path_key || '/' WHERE w.id = ?)", []any{e.OU}
	case *filter.MemberOf:
		if len(e.Groups) == 0 {
			return "1=0", nil
		}
		in := placeholders(len(e.Groups))
		args := make([]any, 0, 2*len(e.Groups))
		for range 2 {
			for _, g := range e.Groups {
				args = append(args, g)
			}
		}
		return "(" + id + " IN (" + in + ") OR " + id + " IN (WITH RECURSIVE m(id) AS (SELECT member_id FROM group_members WHERE group_id IN (" +
			in + ") UNION SELECT gm.member_id FROM group_members gm JOIN m ON gm.group_id = m.id) SELECT id FROM m))", args
	case *filter.Related:
		switch e.Attr {
		case "id":
			return id + " = ?", []any{e.ID}
		case filter.AttrManagerID:
			if col := fm["$manager"].expr; col != "" {
				// A user without a manager has a NULL manager_id, which "= ?" would turn into
				// NULL and NOT (...) into NULL again: it must be false, as in filter.Match,
				// so that an exclusion or a negation keeps the user. (IS NOT NULL, not
				// COALESCE, so the manager index still serves direct_reports scopes.)
				return "(" + col + " IS NOT NULL AND " + col + " = ?)", []any{e.ID}
			}
		case filter.AttrOwnerIDs:
			if q := fm["$owners"].expr; q != "" {
				return id + " IN (" + q + ")", []any{e.ID}
			}
		}
	}
	return "1=0", nil
}

// jsonKey is what a custom attribute key may look like when it is written into SQL.
var jsonKey = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)

// column finds the SQL column for a filter attribute.
func (c *conn) column(attr string, fm fieldMap) (column, error) {
	if col, ok := fm[attr]; ok {
		return col, nil
	}
	if i := strings.IndexByte(attr, '.'); i > 0 {
		if col, ok := fm[attr[:i+1]]; ok && col.kind == colJSON {
			key := attr[i+1:]
			if !jsonKey.MatchString(key) {
				return column{}, fmt.Errorf("%w: custom attribute names hold only letters, digits, _ and -", filter.ErrInvalid)
			}
			col.expr = "COALESCE(" + c.d.jsonText(col.expr, key) + ", '')"
			return col, nil
		}
	}
	return column{}, fmt.Errorf("store: no column for filter attribute %q", attr)
}

func (c *conn) compare(e *filter.Compare, fm fieldMap) (string, []any, error) {
	col, err := c.column(e.Attr, fm)
	if err != nil {
		return "", nil, err
	}
	expr := col.expr
	switch col.kind {
	case colBool:
		if e.Op == filter.Pr {
			return "1=1", nil, nil
		}
		return expr + sqlOp(e.Op) + "?", []any{boolInt(e.Value.(bool))}, nil
	case colTime:
		if e.Op == filter.Pr {
			return expr + " <> 0", nil, nil
		}
		t := e.Value.(time.Time)
		v, op := micros(t), e.Op
		if !t.IsZero() && !t.Equal(fromMicros(v)) {
			// The value is finer than the stored microseconds: no stored time equals it, and
			// against the whole microsecond v below it, >= is > and < is <=.
			switch op {
			case filter.Eq:
				return "1=0", nil, nil
			case filter.Ne:
				return "1=1", nil, nil
			case filter.Ge:
				op = filter.Gt
			case filter.Lt:
				op = filter.Le
			}
		}
		if op == filter.Ne {
			// An absent time (0) differs from every value, even one stored as 0.
			return "(" + expr + " = 0 OR " + expr + " <> ?)", []any{v}, nil
		}
		return "(" + expr + " <> 0 AND " + expr + sqlOp(op) + "?)", []any{v}, nil
	case colFold, colJSON:
		expr = c.d.fold + "(" + expr + ")"
	case colPath:
		// Compare the path as users see it and filter.Match gets it (the display path), so the
		// root is "/" and present, and sw "corp/" selects corp's subtree, not "corporate".
		expr = "(CASE WHEN " + expr + " = '' THEN '/' ELSE COALESCE(" + expr + ", '') END)"
	}
	if e.Op == filter.Pr {
		return "(" + expr + " <> '')", nil, nil
	}
	v := filter.Fold(e.Value.(string))
	switch e.Op {
	case filter.Co:
		return "(" + expr + " LIKE ? ESCAPE '\\')", []any{"%" + escapeLike(v) + "%"}, nil
	case filter.Sw:
		return "(" + expr + " LIKE ? ESCAPE '\\')", []any{escapeLike(v) + "%"}, nil
	case filter.Ew:
		return "(" + expr + " LIKE ? ESCAPE '\\')", []any{"%" + escapeLike(v)}, nil
	case filter.Eq, filter.Ne:
		return "(" + expr + sqlOp(e.Op) + "?)", []any{v}, nil
	}
	// Ordering: an absent value is not ordered against anything.
	return "(" + expr + " <> '' AND " + expr + c.d.collate + sqlOp(e.Op) + "?)", []any{v}, nil
}

func sqlOp(op filter.Op) string {
	switch op {
	case filter.Eq:
		return " = "
	case filter.Ne:
		return " <> "
	case filter.Gt:
		return " > "
	case filter.Ge:
		return " >= "
	case filter.Lt:
		return " < "
	case filter.Le:
		return " <= "
	}
	return " = "
}

// escapeLike escapes LIKE's wildcards so a filter value matches literally.
func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// Field maps of each kind, over the aliases the list queries use.
var (
	ouFields = fieldMap{
		"id": {"o.id", colKey}, "name": {"o.name", colFold}, "path": {"o.path_key", colPath},
		"parent": {"p.path_key", colPath}, "protected": {"o.protected", colBool},
		"created": {"o.created_at", colTime}, "updated": {"o.updated_at", colTime},
		"$id": {"o.id", 0}, "$ou": {"o.id", 0},
	}
	userFields = fieldMap{
		"id": {"u.id", colKey}, "username": {"u.username_key", colKey}, "given_name": {"u.given_name", colFold},
		"family_name": {"u.family_name", colFold}, "display_name": {"u.display_name", colFold},
		"email": {"COALESCE(u.email_key, '')", colKey}, "phone": {"u.phone", colFold},
		"employee_id": {"COALESCE(u.employee_id_key, '')", colKey}, "department": {"u.department", colFold},
		"title": {"u.title", colFold}, "manager": {"COALESCE(m.username_key, '')", colKey},
		"location": {"u.location", colFold}, "employment_type": {"u.employment_type", colFold},
		"status": {"u.status", colKey}, "ou": {"o.path_key", colPath}, "protected": {"u.protected", colBool},
		"created": {"u.created_at", colTime}, "updated": {"u.updated_at", colTime},
		"last_sign_in": {"u.last_sign_in_at", colTime}, "attributes.": {"u.attributes", colJSON},
		"$id": {"u.id", 0}, "$ou": {"u.ou_id", 0}, "$manager": {"u.manager_id", 0},
	}
	groupFields = fieldMap{
		"id": {"g.id", colKey}, "name": {"g.name_key", colKey}, "description": {"g.description", colFold},
		"ou": {"o.path_key", colPath}, "protected": {"g.protected", colBool},
		"created": {"g.created_at", colTime}, "updated": {"g.updated_at", colTime},
		"$id": {"g.id", 0}, "$ou": {"g.ou_id", 0}, "$owners": {"SELECT group_id FROM group_owners WHERE user_id = ?", 0},
	}
	saFields = fieldMap{
		"id": {"s.id", colKey}, "name": {"s.name_key", colKey}, "description": {"s.description", colFold},
		"ou": {"o.path_key", colPath}, "status": {"s.status", colKey}, "protected": {"s.protected", colBool},
		"created": {"s.created_at", colTime}, "updated": {"s.updated_at", colTime},
		"$id": {"s.id", 0}, "$ou": {"s.ou_id", 0}, "$owners": {"SELECT sa_id FROM sa_owners WHERE user_id = ?", 0},
	}
	memberFields = fieldMap{
		"id": {"gm.member_id", colKey}, "name": {memberNameKey, colKey}, "type": {"gm.member_type", colKey},
		"source": {"gm.source", colKey}, "$id": {"gm.member_id", 0},
	}
)

// memberNameKey is the folded name of a member of any kind.
const memberNameKey = "COALESCE(mu.username_key, mg.name_key, ms.name_key, '')"

// checkSchemas verifies at start-up that every filter attribute has a column (a programming
// error otherwise).
func checkSchemas() error {
	pairs := []struct {
		schema filter.Schema
		fields fieldMap
	}{{directory.OUSchema, ouFields}, {directory.UserSchema, userFields}, {directory.GroupSchema, groupFields},
		{directory.ServiceAccountSchema, saFields}, {directory.MemberSchema, memberFields}}
	for _, p := range pairs {
		for attr := range p.schema {
			if _, ok := p.fields[attr]; !ok {
				return fmt.Errorf("store: filter attribute %q has no column", attr)
			}
		}
	}
	return nil
}
