package web_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserEvidenceHRAndUndo: on a phone-wide screen, the admin uploads a small HR feed, sees
// its plan, applies it, opens the audit event of one of the run's changes (a birthright group
// membership) from the run's page and undoes it; the member is gone from the group. Every page
// on the way fits 360 px and labels its inputs.
func TestBrowserEvidenceHRAndUndo(t *testing.T) {
	p := startJourney(t, "optional", false)
	p.must(http.StatusOK, "PUT", "/api/v1/lifecycle/rules", map[string]any{"default_ou": "corp", "rules": []any{map[string]any{
		"name": "sales", "when": `department eq "Sales"`, "ou": "corp/sales", "groups": []string{"sales-all"}}}})
	p.must(http.StatusOK, "POST", "/api/v1/hr/setup", nil)
	p.setPassword("admin", "orange tundra velvet engine")
	feed, err := filepath.Abs(filepath.Join("testdata", "hr-small.csv"))
	if err != nil {
		t.Fatal(err)
	}

	c := p.browser(360, 740, true)
	admin := c.tab("admin")
	fits := func() {
		t.Helper()
		if w, past := admin.overflow(); w > 0 {
			t.Errorf("%s scrolls sideways at 360 px: %d px wide; past the edge: %v", admin.path(), w, past)
		}
	}
	admin.signIn("admin", "orange tundra velvet engine")
	if status := admin.open("/hr"); status != http.StatusOK {
		t.Fatalf("the HR page: %d", status)
	}
	fits()
	if err := chromedp.Do(admin.ctx, chromedp.SetUploadFiles(chromedp.ID("feed"), []string{feed})); err != nil {
		t.Fatalf("choose the feed file: %v", err)
	}
	if status := admin.click(`form[action="/hr/plan"] button[type=submit]`); status != http.StatusOK {
		t.Fatalf("the plan: %d: %s", status, admin.text("main"))
	}
	admin.expect("Plan of hr-small.csv", "Nothing has changed yet", "ada.lovelace", "bob.smith", "cleo.jones")
	if got := admin.rows(); !slices.ContainsFunc(got, func(r []string) bool { return slices.Equal(r, []string{"joiner", "3"}) }) {
		t.Fatalf("the plan's totals: %v", got)
	}
	fits()
	admin.screenshot("hr-plan.png")
	if status, _ := p.call("GET", "/api/v1/users/ada.lovelace", nil); status != http.StatusNotFound {
		t.Fatalf("the plan created ada: %d", status)
	}

	if status := admin.click(`form[action="/hr/apply"] button[type=submit]`); status != http.StatusOK {
		t.Fatalf("the apply: %d: %s", status, admin.text("main"))
	}
	if !strings.HasPrefix(admin.path(), "/hr/runs/") {
		t.Fatalf("the apply ends on %s", admin.path())
	}
	admin.expect("Applied: the changes of 3 people", "HR feed run")
	fits()
	p.must(http.StatusOK, "GET", "/api/v1/users/ada.lovelace", nil)

	// The run's newest birthright membership (bob's: the group has not changed since), from the
	// run's list of events.
	event := ""
	for _, r := range admin.rows() {
		if len(r) == 4 && r[1] == "group.add_member" && r[2] == "sales-all" {
			event = r[0]
			break
		}
	}
	if event == "" {
		t.Fatalf("the run lists no group.add_member: %v", admin.rows())
	}
	if status := admin.click(fmt.Sprintf(`main table a[href="/audit/%s"]`, event)); status != http.StatusOK {
		t.Fatalf("the event's page: %d", status)
	}
	admin.expect("Event "+event+": group.add_member sales-all", "system:lifecycle", "on behalf of", "bob.smith (user)", "HR feed run", "Undo")
	fits()
	admin.screenshot("audit-event.png")
	admin.fill("justification", "a birthright given by mistake")
	if status := admin.click(fmt.Sprintf(`form[action="/audit/%s/revert"] button[type=submit]`, event)); status != http.StatusOK {
		t.Fatalf("the undo: %d: %s", status, admin.text("main"))
	}
	admin.expect("Undone: event "+event+" reverted", "group.remove_member", "a birthright given by mistake")
	out := p.must(http.StatusOK, "GET", "/api/v1/groups/sales-all/members", nil)
	items, _ := out["items"].([]any)
	var members []string
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			members = append(members, fmt.Sprint(m["name"]))
		}
	}
	if slices.Contains(members, "bob.smith") || !slices.Contains(members, "ada.lovelace") {
		t.Fatalf("sales-all after the undo of bob's membership: %v (items %v)", members, items)
	}
}
