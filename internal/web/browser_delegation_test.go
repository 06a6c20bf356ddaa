package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// choose sets the select with the given id to value.
func (b *browserTab) choose(id, value string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.SetValue(chromedp.ID(id), value)); err != nil {
		b.t.Fatalf("%s chooses %q in #%s: %v", b.who, value, id, err)
	}
}

// TestBrowserDelegationGrant: a desk lead who may pass on her helpdesk role grants it to a
// colleague as an eligible assignment, after a preview that says what it unlocks (nothing is
// granted before she confirms); the colleague activates it with a justification and can then
// reset the Sales user's password. The delegation pages fit a phone's width.
func TestBrowserDelegationGrant(t *testing.T) {
	p := startJourney(t, "optional", false)
	p.must(http.StatusCreated, "POST", "/api/v1/ous", map[string]any{"name": "sales"})
	p.newUser("maria", "/", map[string]any{"title": "Desk lead"})
	p.newUser("hank", "/", map[string]any{"title": "Service desk"})
	p.newUser("sally", "sales", map[string]any{"department": "Sales"})
	p.must(http.StatusCreated, "POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "maria"},
		"scope": map[string]any{"ou": "sales"}, "can_redelegate": true, "justification": "browser test set-up"})
	p.assign("reader", "maria", "/")
	p.setPassword("maria", "amber glacier pocket drum")
	p.setPassword("hank", "blue harbour lantern seven")
	held := func() []any {
		items, _ := p.must(http.StatusOK, "GET", "/api/v1/assignments?holder=user:hank", nil)["items"].([]any)
		return items
	}

	c := p.browser(1280, 900, false)
	maria := c.tab("maria")
	maria.signIn("maria", "amber glacier pocket drum")
	maria.click(`nav a[href="/delegation"]`)
	maria.expect("Your assignments", "helpdesk", "OU sales and below", "Assignments you manage")
	maria.click(`main a[href="/delegation/grant"]`)
	maria.choose("role", "helpdesk")
	maria.fill("holder", "hank")
	maria.fill("ou", "sales")
	maria.choose("mode", "eligible")
	maria.fill("max_activation", "2h")
	maria.fill("justification", "Hank covers the Sales desk on call")
	maria.click(`form[action="/delegation/grant/preview"] button[type=submit]`)
	maria.expect("What this grant would do", "reset passwords", "OU sales and below", "covers 1 person (sally)", "Allowed")
	maria.screenshot("delegation-grant.png")
	if got := held(); len(got) != 0 {
		t.Fatalf("the preview granted: %v", got)
	}
	maria.click(`form[action="/delegation/grant"] button[type=submit]`)
	maria.expect("Granted: helpdesk to hank", "eligible")
	got := held()
	if len(got) != 1 {
		t.Fatalf("after the grant hank holds %v", got)
	}
	id, _ := got[0].(map[string]any)["id"].(string)

	phone := p.browser(360, 740, true)
	hank := phone.tab("hank")
	hank.signIn("hank", "blue harbour lantern seven")
	hank.open("/delegation")
	hank.expect("helpdesk", "eligible: activate it when you need it", "Hank covers the Sales desk on call", "2 hours")
	hank.fill("justification-"+id, "Ticket 4711: Sally is locked out")
	hank.screenshot("delegation.png")
	hank.click(`form[action="/delegation/assignments/` + id + `/activate"] button[type=submit]`)
	hank.expect("Activated: helpdesk over OU sales and below", "activated, until")
	if strings.Contains(hank.text("main"), "Why you need it now") {
		t.Fatalf("an active assignment is offered for activation again: %s", hank.text("main"))
	}
	for _, path := range []string{"/delegation", "/delegation/roles", "/delegation/roles/helpdesk", "/delegation/grant",
		"/delegation/who-can?type=user&id=sally"} {
		hank.open(path)
		if w, past := hank.overflow(); w > 0 {
			t.Errorf("%s scrolls sideways at 360 px: %d px wide; past the edge: %v", path, w, past)
		}
	}
	hank.open("/users/sally")
	hank.expect("Reset password")
	if !strings.Contains(hank.text("main"), "Who can change this?") {
		t.Fatalf("sally's page has no who-can link: %s", hank.text("main"))
	}
}
