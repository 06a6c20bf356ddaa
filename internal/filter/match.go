package filter

import (
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"
)

// Getter returns an object's value for a canonical attribute name: a string, a bool or a
// time.Time. ok is false when the object has no such attribute; an empty string or a zero time
// counts as absent too.
type Getter func(attr string) (v any, ok bool)

// Match evaluates e on the object behind get. A nil e matches everything. String comparisons
// ignore case (SCIM's caseExact=false), using Unicode lower-casing as the store does.
func Match(e Expr, get Getter) bool {
	switch e := e.(type) {
	case nil:
		return true
	case *And:
		return Match(e.Left, get) && Match(e.Right, get)
	case *Or:
		return Match(e.Left, get) || Match(e.Right, get)
	case *Not:
		return !Match(e.X, get)
	case *Within, *MemberOf, *Related, *Nothing:
		ok, _ := matchStructural(e, get)
		return ok
	case *Compare:
		v, ok := get(e.Attr)
		if ok {
			ok = present(v)
		}
		if e.Op == Pr {
			return ok
		}
		if !ok {
			// An absent attribute equals nothing, so only ne holds.
			return e.Op == Ne
		}
		return compareValue(e, v)
	}
	return false
}

func present(v any) bool {
	switch v := v.(type) {
	case string:
		return v != ""
	case time.Time:
		return !v.IsZero()
	case nil:
		return false
	}
	return true
}

func compareValue(e *Compare, v any) bool {
	switch want := e.Value.(type) {
	case bool:
		got, _ := v.(bool)
		return (got == want) == (e.Op == Eq)
	case time.Time:
		got, _ := v.(time.Time)
		return ordered(e.Op, got.Compare(want))
	case string:
		got, _ := v.(string)
		g, w := Fold(got), Fold(want)
		switch e.Op {
		case Co:
			return strings.Contains(g, w)
		case Sw:
			return strings.HasPrefix(g, w)
		case Ew:
			return strings.HasSuffix(g, w)
		}
		return ordered(e.Op, strings.Compare(g, w))
	}
	return false
}

func ordered(op Op, cmp int) bool {
	switch op {
	case Eq:
		return cmp == 0
	case Ne:
		return cmp != 0
	case Gt:
		return cmp > 0
	case Ge:
		return cmp >= 0
	case Lt:
		return cmp < 0
	case Le:
		return cmp <= 0
	}
	return false
}

// Fold is the case folding filters compare under: Unicode NFC, then lower case. The store
// registers the same function with SQLite and keeps unique keys in this form, so SQL and Match
// agree.
func Fold(s string) string { return strings.ToLower(norm.NFC.String(s)) }
