package delegation

import (
	"slices"
	"testing"
)

// TestSetLayer holds a shadow set layer to a plain map of sets: the shadow sees the base and its
// own changes, and the base stays as it was.
func TestSetLayer(t *testing.T) {
	base := newSetLayer()
	base.put("g", "a")
	base.put("g", "b")
	base.put("h", "a")

	type step struct {
		op      string // "put" or "drop"
		key, id string
		changed bool
	}
	steps := []step{
		{"put", "g", "a", false},  // already in the base
		{"drop", "g", "a", true},  // removed over the base
		{"drop", "g", "a", false}, // already removed
		{"put", "g", "a", true},   // back again: no longer removed
		{"put", "g", "c", true},   // the shadow's own
		{"drop", "g", "c", true},  // and gone again
		{"drop", "h", "a", true},  // the key's last
		{"put", "k", "z", true},   // a new key
		{"drop", "k", "nope", false},
	}
	sh := base.shadow()
	want := map[string][]string{"g": {"a", "b"}, "h": {"a"}}
	for i, s := range steps {
		var changed bool
		if s.op == "put" {
			changed = sh.put(s.key, s.id)
			if !slices.Contains(want[s.key], s.id) {
				want[s.key] = append(want[s.key], s.id)
			}
		} else {
			changed = sh.drop(s.key, s.id)
			want[s.key] = slices.DeleteFunc(want[s.key], func(x string) bool { return x == s.id })
		}
		if changed != s.changed {
			t.Errorf("step %d %s %s %s: changed %v, want %v", i, s.op, s.key, s.id, changed, s.changed)
		}
		for key, ids := range want {
			got := sh.ids(key)
			slices.Sort(got)
			slices.Sort(ids)
			if !slices.Equal(got, ids) {
				t.Errorf("step %d: %s holds %v, want %v", i, key, got, ids)
			}
			for _, id := range ids {
				if !sh.has(key, id) {
					t.Errorf("step %d: %s does not have %s", i, key, id)
				}
			}
		}
	}
	got := base.ids("g")
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "b"}) || !base.has("h", "a") || base.has("k", "z") {
		t.Errorf("the base changed under its shadow: g %v, h/a %v, k/z %v", got, base.has("h", "a"), base.has("k", "z"))
	}
	// In the base, a dropped key's last ID takes the key with it.
	base.drop("h", "a")
	if _, ok := base.base["h"]; ok {
		t.Error("an emptied set stays in the base")
	}
}
