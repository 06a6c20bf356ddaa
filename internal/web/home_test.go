package web_test

import (
	"fmt"
	"regexp"
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
	// The audit trail shows them the same: changes about what they may see, not the rest.
	_, trail := hank.get("/audit")
	if !strings.Contains(trail, "sally") || strings.Contains(trail, "fred") {
		t.Errorf("hank's audit trail:\n%s", trail)
	}
}

// TestPortalPeoplePaging: a search with more people than a page links to the next page, whose
// page is whole (a template error would cut it short).
func TestPortalPeoplePaging(t *testing.T) {
	p := newPortal(t)
	p.api("POST", "/api/v1/users", map[string]any{"username": "hank", "ou": "/"})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "hank"},
		"scope": map[string]any{"ou": "/"}, "justification": "desk"})
	for i := range 55 {
		p.api("POST", "/api/v1/users", map[string]any{"username": fmt.Sprintf("person%02d", i), "ou": "/"})
	}
	hank := p.signedIn("hank")
	_, first := hank.get("/users?q=person")
	m := regexp.MustCompile(`href="(/users\?q=person&amp;cursor=[^"]+)"`).FindStringSubmatch(first)
	if m == nil || !strings.Contains(first, "</html>") {
		t.Fatalf("the first page has no link to the next, or is cut short:\n%s", first)
	}
	_, second := hank.get(strings.ReplaceAll(m[1], "&amp;", "&"))
	if !strings.Contains(second, ">person54<") || strings.Contains(second, ">person00<") || !strings.Contains(second, "</html>") {
		t.Fatalf("the second page:\n%s", second)
	}
}
