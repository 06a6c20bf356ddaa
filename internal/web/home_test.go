package web_test

import (
	"strings"
	"testing"
	"time"
)

// TestPortalHome: the home page lists what changed this week in the person's scope (and not
// outside it), the assignments that end soon, and those waiting to be activated.
func TestPortalHome(t *testing.T) {
	p := newPortal(t)
	p.api("POST", "/api/v1/ous", map[string]any{"name": "sales"})
	p.api("POST", "/api/v1/ous", map[string]any{"name": "finance"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "hank", "ou": "/"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "sally", "ou": "sales"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "fred", "ou": "finance"})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "hank"},
		"scope": map[string]any{"ou": "sales"}, "justification": "desk",
		"until": time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "group-owner", "holder": map[string]any{"user": "hank"},
		"scope": map[string]any{"ou": "sales"}, "justification": "on call", "eligible": true})
	p.api("PATCH", "/api/v1/users/sally", map[string]any{"title": "Account Executive"})
	p.api("PATCH", "/api/v1/users/fred", map[string]any{"title": "Controller"})
	hank := p.signedIn("hank")
	_, home := hank.get("/")
	for _, want := range []string{"Changed in your scope this week", ">sally<", "helpdesk", "ends ", "group-owner", "is eligible"} {
		if !strings.Contains(home, want) {
			t.Errorf("home lacks %q", want)
		}
	}
	if strings.Contains(home, ">fred<") {
		t.Errorf("home shows a change outside hank's scope:\n%s", home)
	}
	if t.Failed() {
		t.Logf("home:\n%s", home)
	}
}
