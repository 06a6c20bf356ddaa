package web

import "testing"

func TestReadable(t *testing.T) {
	for _, c := range []struct {
		in   any
		want string
	}{
		{nil, "—"},
		{"", "—"},
		{"sales", "sales"},
		{map[string]any{"id": "0193", "name": "rob", "type": "user"}, "rob (user)"},
		{map[string]any{"id": "0193", "name": "crm-users"}, "crm-users"},
		{map[string]any{"b": 2.0, "a": "x"}, "a: x; b: 2"},
		{[]any{"x", map[string]any{"name": "y", "type": "service_account"}}, "x, y (service account)"},
		{[]any{}, "—"},
		{true, "true"},
	} {
		if got := readable(c.in); got != c.want {
			t.Errorf("readable(%#v) = %q, want %q", c.in, got, c.want)
		}
	}
}
