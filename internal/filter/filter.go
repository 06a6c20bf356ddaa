// Package filter parses filters written in SCIM filter syntax (RFC 7644 §3.4.2.2), checks them
// against a schema of known attributes, and evaluates them on objects. The store translates the
// same checked expression into SQL, so a list and an in-memory match agree.
package filter

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	scim "github.com/scim2/filter-parser/v2"
)

// ErrInvalid is wrapped by every error Parse returns.
var ErrInvalid = errors.New("invalid filter")

// Type is the type of an attribute's values.
type Type int

// Attribute value types.
const (
	String Type = iota
	Bool
	Time
)

// Schema maps attribute names (lower case) to their types. Names that start with an entry
// ending in "." (such as "attributes.") admit any sub-attribute of that type.
type Schema map[string]Type

// Op is a comparison operator.
type Op string

// The comparison operators of RFC 7644.
const (
	Eq Op = "eq"
	Ne Op = "ne"
	Co Op = "co"
	Sw Op = "sw"
	Ew Op = "ew"
	Gt Op = "gt"
	Ge Op = "ge"
	Lt Op = "lt"
	Le Op = "le"
	Pr Op = "pr"
)

// Expr is a checked filter expression: *Compare, *And, *Or or *Not.
type Expr interface{ isExpr() }

// Compare tests one attribute. Attr is the schema's canonical (lower-case) name; Value is a
// string (decoded escapes, for String), a bool, or a time.Time, and nil for Pr.
type Compare struct {
	Attr  string
	Type  Type
	Op    Op
	Value any
}

// And holds when both sides hold.
type And struct{ Left, Right Expr }

// Or holds when either side holds.
type Or struct{ Left, Right Expr }

// Not holds when its expression does not.
type Not struct{ X Expr }

func (*Compare) isExpr() {}
func (*And) isExpr()     {}
func (*Or) isExpr()      {}
func (*Not) isExpr()     {}

// MaxLength bounds a filter's text; longer filters are refused rather than parsed.
const MaxLength = 4096

// lowerHexEscape finds \u escapes with lower-case hex digits, which the parser does not accept
// although RFC 8259 does.
var lowerHexEscape = regexp.MustCompile(`\\u[0-9A-Fa-f]{4}`)

// Parse parses s and checks every attribute against schema. An empty s is a nil Expr that
// matches everything. Errors wrap ErrInvalid and say what is wrong in words a user can act on.
func Parse(s string, schema Schema) (Expr, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if len(s) > MaxLength {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxLength)
	}
	normalized := lowerHexEscape.ReplaceAllStringFunc(s, func(m string) string { return `\u` + strings.ToUpper(m[2:]) })
	raw, err := scim.ParseFilter([]byte(normalized))
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not a valid SCIM filter%s (expected: attribute operator value, joined with and/or/not, such as department eq \"Sales\")",
			ErrInvalid, s, parsePosition(err))
	}
	return convert(raw, schema)
}

// parsePosition extracts the "[line:column]" the parser reports, as words.
var positionRE = regexp.MustCompile(`\[(\d+):(\d+)\]`)

func parsePosition(err error) string {
	m := positionRE.FindStringSubmatch(err.Error())
	if m == nil {
		return ""
	}
	col, _ := strconv.Atoi(m[2])
	return fmt.Sprintf(" near character %d", col+1)
}

func convert(e scim.Expression, schema Schema) (Expr, error) {
	switch e := e.(type) {
	case *scim.LogicalExpression:
		l, err := convert(e.Left, schema)
		if err != nil {
			return nil, err
		}
		r, err := convert(e.Right, schema)
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(string(e.Operator), "or") {
			return &Or{l, r}, nil
		}
		return &And{l, r}, nil
	case *scim.NotExpression:
		x, err := convert(e.Expression, schema)
		if err != nil {
			return nil, err
		}
		return &Not{x}, nil
	case *scim.AttributeExpression:
		return compare(e, schema)
	case *scim.ValuePath:
		return nil, fmt.Errorf("%w: value paths such as %s[...] are not supported", ErrInvalid, e.AttributePath.AttributeName)
	}
	return nil, fmt.Errorf("%w: unsupported expression %T", ErrInvalid, e)
}

func compare(e *scim.AttributeExpression, schema Schema) (*Compare, error) {
	if e.AttributePath.URIPrefix != nil {
		return nil, fmt.Errorf("%w: schema URIs are not supported in attribute %q", ErrInvalid, e.AttributePath.String())
	}
	name := strings.ToLower(e.AttributePath.AttributeName)
	if sub := e.AttributePath.SubAttributeName(); sub != "" {
		name += "." + sub
	}
	canonical, typ, ok := lookup(schema, name)
	if !ok {
		return nil, fmt.Errorf("%w: unknown attribute %q", ErrInvalid, e.AttributePath.String())
	}
	c := &Compare{Attr: canonical, Type: typ, Op: Op(strings.ToLower(string(e.Operator)))}
	if c.Op == Pr {
		return c, nil
	}
	switch typ {
	case Bool:
		b, ok := e.CompareValue.(bool)
		if !ok {
			return nil, fmt.Errorf("%w: %s compares to true or false", ErrInvalid, canonical)
		}
		if c.Op != Eq && c.Op != Ne {
			return nil, fmt.Errorf("%w: %s takes only eq, ne and pr", ErrInvalid, canonical)
		}
		c.Value = b
	case Time:
		if c.Op == Co || c.Op == Sw || c.Op == Ew {
			return nil, fmt.Errorf("%w: %s is a time; use eq, ne, gt, ge, lt, le or pr", ErrInvalid, canonical)
		}
		s, ok := e.CompareValue.(string)
		t, err := time.Parse(time.RFC3339, s)
		if !ok || err != nil {
			return nil, fmt.Errorf("%w: %s compares to an RFC 3339 time in quotes, such as \"2026-01-31T00:00:00Z\"", ErrInvalid, canonical)
		}
		c.Value = t.UTC()
	default:
		s, ok := e.CompareValue.(string)
		if !ok {
			return nil, fmt.Errorf("%w: %s compares to a string in double quotes, not %v", ErrInvalid, canonical, e.CompareValue)
		}
		decoded, err := decodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: the string %q: %v", ErrInvalid, s, err)
		}
		if decoded == "" {
			return nil, fmt.Errorf("%w: %s compares to an empty string; to test whether it is set, write %s pr or not (%s pr)",
				ErrInvalid, canonical, canonical, canonical)
		}
		c.Value = decoded
	}
	return c, nil
}

// lookup finds name in schema, directly or under a prefix entry such as "attributes.".
// Sub-attribute names under a prefix keep their case: custom attribute keys are case-sensitive.
func lookup(schema Schema, name string) (string, Type, bool) {
	if t, ok := schema[name]; ok {
		return name, t, true
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if t, ok := schema[name[:i+1]]; ok && i+1 < len(name) {
			return name, t, true
		}
	}
	return "", 0, false
}

// decodeString decodes the escapes of a SCIM (JSON) string body.
func decodeString(raw string) (string, error) {
	if !strings.ContainsRune(raw, '\\') {
		return raw, nil
	}
	var s string
	if err := json.Unmarshal([]byte(`"`+raw+`"`), &s); err != nil {
		return "", errors.New("has an invalid escape")
	}
	return s, nil
}
