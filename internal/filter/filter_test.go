package filter

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var schema = Schema{"username": String, "department": String, "title": String, "protected": Bool,
	"created": Time, "attributes.": String}

// object is a getter over a fixed set of attributes.
func object(attrs map[string]any) Getter {
	return func(a string) (any, bool) { v, ok := attrs[a]; return v, ok }
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		filter string
		want   string // a fragment the message must contain
	}{
		{`department eq`, "not a valid SCIM filter"},
		{`colour eq "red"`, `unknown attribute "colour"`},
		{`department eq 5`, "compares to a string"},
		{`department eq ""`, "empty string"},
		{`protected eq "yes"`, "true or false"},
		{`protected gt true`, "only eq, ne and pr"},
		{`created gt "yesterday"`, "RFC 3339"},
		{`created co "2026"`, "is a time"},
		{`emails[type eq "work"]`, "value paths"},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"`, "schema URIs"},
		{strings.Repeat("a", MaxLength+1), "longer than"},
	}
	for _, c := range cases {
		t.Run(c.filter[:min(len(c.filter), 30)], func(t *testing.T) {
			_, err := Parse(c.filter, schema)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded; want an error", c.filter)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

func TestParseEmptyMatchesAll(t *testing.T) {
	e, err := Parse("  ", schema)
	if err != nil || e != nil {
		t.Fatalf("Parse(blank) = %v, %v; want nil, nil", e, err)
	}
	if !Match(e, object(nil)) {
		t.Error("a nil expression must match everything")
	}
}

func TestMatch(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	obj := object(map[string]any{
		"username": "Élodie.Martin", "department": "Sales", "title": `Senior "Key" Account_Exec 100%`,
		"protected": false, "created": created, "attributes.cost_center": "CC-120",
	})
	cases := []struct {
		filter string
		want   bool
	}{
		{`department eq "sales"`, true},
		{`DEPARTMENT EQ "SALES"`, true},
		{`department ne "Sales"`, false},
		{`username eq "élodie.martin"`, true},
		{`username eq "ÉLODIE.MARTIN"`, true},
		{`username sw "élo"`, true},
		{`username ew "MARTIN"`, true},
		{`title co "\"key\""`, true},
		{`title co "_exec"`, true},
		{`title co "100%"`, true},
		{`title co "%"`, true},
		{`title co "x%"`, false},
		{`title sw "senior" and department eq "Sales"`, true},
		{`title sw "junior" or department eq "Sales"`, true},
		{`not (department eq "Sales")`, false},
		{`department gt "Marketing"`, true},
		{`department lt "Marketing"`, false},
		{`department ge "sales"`, true},
		{`department le "sales"`, true},
		{`protected eq false`, true},
		{`protected ne false`, false},
		{`created gt "2026-01-01T00:00:00Z"`, true},
		{`created lt "2026-01-01T00:00:00+01:00"`, false},
		{`created eq "2026-03-01T13:00:00+01:00"`, true},
		{`attributes.cost_center eq "cc-120"`, true},
		{`attributes.missing pr`, false},
		{`attributes.missing ne "x"`, true},
		{`attributes.missing eq "x"`, false},
		{`not (attributes.missing pr)`, true},
		{`department pr`, true},
		{`username eq "\u00c9lodie.martin"`, true},
		{`username eq "\u00e9lodie.martin"`, true},
	}
	for _, c := range cases {
		t.Run(c.filter, func(t *testing.T) {
			e, err := Parse(c.filter, schema)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := Match(e, obj); got != c.want {
				t.Errorf("Match = %v, want %v", got, c.want)
			}
		})
	}
}

func TestMatchAbsentOrderings(t *testing.T) {
	obj := object(map[string]any{"department": ""})
	for _, f := range []string{`department gt "a"`, `department lt "z"`, `department eq "a"`, `department co "a"`} {
		e, err := Parse(f, schema)
		if err != nil {
			t.Fatal(err)
		}
		if Match(e, obj) {
			t.Errorf("%s matched an absent value", f)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`department eq "Sales"`, `a eq "\"" or not (b pr)`, `x eq "\u00e9"`, `((a pr))`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s, Schema{"a": String, "b": String, "department": String, "x": String})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q): error %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		Match(e, object(map[string]any{"a": "1", "department": "Sales"}))
	})
}
