package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/app"
	"github.com/deputy-iam/deputy/internal/store"
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

// TestPortalRevokeTokens: a delegate whose role allows user.revoke_tokens revokes a person's
// API tokens from their page, and the tokens stop at once; a helpdesk agent is not offered it.
func TestPortalRevokeTokens(t *testing.T) {
	p := newPortal(t)
	p.api("POST", "/api/v1/ous", map[string]any{"name": "sales"})
	for _, u := range []string{"rita", "hank"} {
		p.api("POST", "/api/v1/users", map[string]any{"username": u, "ou": "/"})
	}
	p.api("POST", "/api/v1/users", map[string]any{"username": "sally", "ou": "sales"})
	p.api("POST", "/api/v1/roles", map[string]any{"name": "token-desk", "actions": []string{"directory.read", "user.revoke_tokens"}})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "token-desk", "holder": map[string]any{"user": "rita"},
		"scope": map[string]any{"ou": "sales"}, "justification": "leaks"})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "hank"},
		"scope": map[string]any{"ou": "sales"}, "justification": "desk"})
	token := p.api("POST", "/api/v1/users/sally/tokens", map[string]any{"name": "laptop"})["token"].(string)
	me := func() int {
		req, _ := http.NewRequest("GET", p.srv.URL+"/api/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := me(); code != 200 {
		t.Fatalf("sally's token before: %d", code)
	}
	if _, page := p.signedIn("hank").get("/users/sally"); strings.Contains(page, "Revoke all API tokens") {
		t.Fatalf("a helpdesk agent is offered the revocation:\n%s", page)
	}
	rita := p.signedIn("rita")
	if _, page := rita.get("/users/sally"); !strings.Contains(page, "Revoke all API tokens") {
		t.Fatalf("rita is not offered the revocation:\n%s", page)
	}
	if body := rita.post("/users/sally/revoke-tokens", url.Values{}, true); !strings.Contains(body, "Their API tokens are revoked") {
		t.Fatalf("the revocation:\n%s", body)
	}
	if code := me(); code != 401 {
		t.Fatalf("sally's token after the revocation: %d", code)
	}
}

// TestPortalNestedGroups: a person's page lists the groups they hold through nesting, with the
// chain of groups that brings each.
func TestPortalNestedGroups(t *testing.T) {
	p := newPortal(t)
	p.api("POST", "/api/v1/users", map[string]any{"username": "hank", "ou": "/"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "sally", "ou": "/"})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "hank"},
		"scope": map[string]any{"ou": "/"}, "justification": "desk"})
	for _, g := range []string{"sales-east", "sales-all", "all-staff"} {
		p.api("POST", "/api/v1/groups", map[string]any{"name": g, "ou": "/"})
	}
	p.api("POST", "/api/v1/groups/sales-east/members", map[string]any{"member": "sally"})
	p.api("POST", "/api/v1/groups/sales-all/members", map[string]any{"member": "group:sales-east"})
	p.api("POST", "/api/v1/groups/all-staff/members", map[string]any{"member": "group:sales-all"})
	_, page := p.signedIn("hank").get("/users/sally")
	i := strings.Index(page, "Through nested groups")
	if i < 0 {
		t.Fatalf("no nested groups on sally's page:\n%s", page)
	}
	nested := page[i:]
	for _, want := range []string{`>sales-all</a> <span class="muted">through <a href="/groups/sales-east">sales-east</a>`,
		`>all-staff</a> <span class="muted">through <a href="/groups/sales-east">sales-east</a> → <a href="/groups/sales-all">sales-all</a>`} {
		if !strings.Contains(nested, want) {
			t.Errorf("the nested groups lack %q:\n%s", want, nested)
		}
	}
}

// TestPortalAskToJoin: a delegate who sees a group but may not add themselves asks its owners;
// the owner gets the request (with a link that fills in the name) and adds them in their own
// name. Asking grants nothing by itself.
func TestPortalAskToJoin(t *testing.T) {
	p := newPortal(t)
	p.api("POST", "/api/v1/ous", map[string]any{"name": "sales"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "hank", "ou": "/"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "olga", "ou": "/"})
	p.api("POST", "/api/v1/groups", map[string]any{"name": "crm-users", "ou": "sales", "owners": []string{"olga"}})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "hank"},
		"scope": map[string]any{"ou": "sales"}, "justification": "desk"})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "group-owner", "holder": map[string]any{"user": "olga"},
		"scope": map[string]any{"relation": "owned_groups"}, "justification": "owners manage their groups"})
	// An owner adds only people they may see (the model's rule): olga reads the directory.
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "reader", "holder": map[string]any{"user": "olga"},
		"scope": map[string]any{"ou": "/"}, "justification": "staff directory"})
	hank := p.signedIn("hank")
	if _, page := hank.get("/groups/crm-users"); !strings.Contains(page, "Ask the owners to add me") {
		t.Fatalf("hank is not offered to ask:\n%s", page)
	}
	if body := hank.post("/groups/crm-users/join", url.Values{}, true); !strings.Contains(body, "justification") {
		t.Fatalf("a request without a reason:\n%s", body)
	}
	if body := hank.post("/groups/crm-users/join", url.Values{"justification": {"CRM access for the Sales desk"}}, true); !strings.Contains(body, "Your request went to the owners") {
		t.Fatalf("the request:\n%s", body)
	}
	msgs, err := p.app.Store.Outbox(context.Background(), "notify", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range msgs {
		payload := string(m.Payload)
		found = found || strings.Contains(payload, "join_request") && strings.Contains(payload, "CRM access for the Sales desk") &&
			strings.Contains(payload, "/groups/crm-users?add=hank")
	}
	if !found {
		t.Fatalf("no join request to the owner in the outbox (%d messages)", len(msgs))
	}
	members := func() []any {
		items, _ := p.api("GET", "/api/v1/groups/crm-users/members", nil)["items"].([]any)
		return items
	}
	if n := len(members()); n != 0 {
		t.Fatalf("asking made %d member(s)", n)
	}
	olga := p.signedIn("olga")
	if _, page := olga.get("/groups/crm-users?add=hank"); !strings.Contains(page, `name="member" required value="hank"`) {
		t.Fatalf("the owner's form is not filled in:\n%s", page)
	}
	if body := olga.post("/groups/crm-users/members", url.Values{"member": {"hank"}, "justification": {"asked, CRM access"}}, true); !strings.Contains(body, "Member added") {
		t.Fatalf("the owner adds hank:\n%s", body)
	}
	if n := len(members()); n != 1 {
		t.Fatalf("members after the owner's add: %d", n)
	}
	if _, page := hank.get("/groups/crm-users"); strings.Contains(page, "Ask the owners to add me") {
		t.Fatalf("a member is offered to ask again")
	}
	events, _ := p.api("GET", "/api/v1/audit/events?action=group.request_join", nil)["items"].([]any)
	if len(events) != 1 {
		t.Fatalf("request_join events: %v", events)
	}
}

// TestPortalResetLink: from a person's page, a reset can go as a one-time link to their own
// address: the delegate sees no password, the person gets the link.
func TestPortalResetLink(t *testing.T) {
	p := newPortal(t)
	p.api("POST", "/api/v1/users", map[string]any{"username": "hank", "ou": "/"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "sally", "ou": "/", "email": "sally@example.com"})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "hank"},
		"scope": map[string]any{"ou": "/"}, "justification": "desk"})
	hank := p.signedIn("hank")
	if _, page := hank.get("/users/sally"); !strings.Contains(page, `<option value="email">`) || strings.Contains(page, `<option value="manager">`) {
		t.Fatalf("the reset form's ways:\n%s", page)
	}
	body := hank.post("/users/sally/reset-password", url.Values{"deliver": {"email"}}, true)
	if !strings.Contains(body, "A one-time reset link is on its way") || strings.Contains(body, "Temporary password") {
		t.Fatalf("a reset by link:\n%s", body)
	}
	msgs, err := p.app.Store.Outbox(context.Background(), "notify", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(msgs, func(m store.OutboxMessage) bool {
		return strings.Contains(string(m.Payload), "password_reset_link") && strings.Contains(string(m.Payload), "/activate?user=sally")
	}) {
		t.Fatalf("no reset link in the outbox (%d messages)", len(msgs))
	}
}

// TestPortalDeletePerson: a delegate whose role allows user.delete deletes a person after
// typing their username; with the shipped approval policies the deletion waits for approval.
func TestPortalDeletePerson(t *testing.T) {
	for _, policies := range []bool{false, true} {
		p := newPortalWith(t, nil, func(a *app.App, _ string) {
			if policies {
				if err := a.PreparePolicies(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		})
		p.api("POST", "/api/v1/ous", map[string]any{"name": "sales"})
		p.api("POST", "/api/v1/users", map[string]any{"username": "rita", "ou": "/"})
		p.api("POST", "/api/v1/users", map[string]any{"username": "sally", "ou": "sales"})
		p.api("POST", "/api/v1/roles", map[string]any{"name": "offboarder", "actions": []string{"directory.read", "user.delete"}})
		p.api("POST", "/api/v1/assignments", map[string]any{"role": "offboarder", "holder": map[string]any{"user": "rita"},
			"scope": map[string]any{"ou": "sales"}, "justification": "leavers"})
		rita := p.signedIn("rita")
		if _, page := rita.get("/users/sally"); !strings.Contains(page, "To delete sally, type the username") {
			t.Fatalf("rita is not offered the deletion:\n%s", page)
		}
		if body := rita.post("/users/sally/delete", url.Values{"confirm": {"sal"}, "justification": {"left"}}, true); !strings.Contains(body, "type the username to confirm") {
			t.Fatalf("a deletion without the right confirmation:\n%s", body)
		}
		body := rita.post("/users/sally/delete", url.Values{"confirm": {"sally"}, "justification": {"left in October"}}, true)
		code, _ := rita.get("/users/sally")
		switch {
		case !policies && (!strings.Contains(body, "sally is deleted") || code != 404):
			t.Fatalf("the deletion (%d afterwards):\n%s", code, body)
		case policies && (!strings.Contains(body, "Sent for approval") || code != 200):
			t.Fatalf("the deletion under the shipped policies (%d afterwards):\n%s", code, body)
		}
	}
}

// TestPortalResidualAccess: the leaver report lists a disabled person who kept a membership,
// for an auditor; anyone else finds no such page.
func TestPortalResidualAccess(t *testing.T) {
	p := newPortal(t)
	for _, u := range []string{"audrey", "hank", "leo"} {
		p.api("POST", "/api/v1/users", map[string]any{"username": u, "ou": "/"})
	}
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "auditor", "holder": map[string]any{"user": "audrey"},
		"scope": map[string]any{"ou": "/"}, "justification": "audit"})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "hank"},
		"scope": map[string]any{"ou": "/"}, "justification": "desk"})
	p.api("POST", "/api/v1/groups", map[string]any{"name": "builders", "ou": "/"})
	p.api("POST", "/api/v1/groups/builders/members", map[string]any{"member": "leo"})
	audrey := p.signedIn("audrey")
	if _, page := audrey.get("/reports/residual-access"); !strings.Contains(page, "Nobody disabled or departed holds anything") {
		t.Fatalf("the report before anyone left:\n%s", page)
	}
	p.api("POST", "/api/v1/users/leo/disable", nil)
	_, page := audrey.get("/reports/residual-access")
	if !strings.Contains(page, `<a href="/users/leo">leo</a>`) || !strings.Contains(page, "builders") {
		t.Fatalf("the report after leo was disabled with a membership:\n%s", page)
	}
	if _, trail := audrey.get("/audit"); !strings.Contains(trail, `href="/reports/residual-access"`) {
		t.Fatalf("the auditor's audit page does not link the report")
	}
	if code, _ := p.signedIn("hank").get("/reports/residual-access"); code != 404 {
		t.Fatalf("a helpdesk agent's report: %d", code)
	}
}

// TestPortalEditGroup: a group's owner changes its description and owners from its page; an
// edit made on a page read before someone else's change is refused as stale.
func TestPortalEditGroup(t *testing.T) {
	p := newPortal(t)
	for _, u := range []string{"olga", "otto"} {
		p.api("POST", "/api/v1/users", map[string]any{"username": u, "ou": "/"})
	}
	p.api("POST", "/api/v1/groups", map[string]any{"name": "crm-users", "ou": "/", "owners": []string{"olga"}})
	// The built-in group-owner manages members only; this custom role may edit the group too.
	p.api("POST", "/api/v1/roles", map[string]any{"name": "group-steward", "actions": []string{"directory.read", "group.update", "group.set_owner"}})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "group-steward", "holder": map[string]any{"user": "olga"},
		"scope": map[string]any{"relation": "owned_groups"}, "justification": "owners keep their groups described"})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "reader", "holder": map[string]any{"user": "olga"},
		"scope": map[string]any{"ou": "/"}, "justification": "staff directory"})
	olga := p.signedIn("olga")
	_, page := olga.get("/groups/crm-users")
	if !strings.Contains(page, "Edit the description and owners") || !strings.Contains(page, `name="owners" value="olga"`) {
		t.Fatalf("olga's group page:\n%s", page)
	}
	body := olga.post("/groups/crm-users/edit", url.Values{"version": {"1"}, "description": {"CRM access"}, "owners": {"olga, otto"},
		"justification": {"otto co-owns"}}, true)
	if !strings.Contains(body, "Saved") {
		t.Fatalf("the edit:\n%s", body)
	}
	g := p.api("GET", "/api/v1/groups/crm-users", nil)
	if g["description"] != "CRM access" || len(g["owners"].([]any)) != 2 {
		t.Fatalf("the group after the edit: %v", g)
	}
	if body := olga.post("/groups/crm-users/edit", url.Values{"version": {"1"}, "description": {"old page"}, "owners": {"olga"}}, true); !strings.Contains(body, "Someone changed this meanwhile") {
		t.Fatalf("an edit from a stale page:\n%s", body)
	}
}

// TestPortalCreateOU: a delegate whose role allows ou.create makes an OU inside their scope,
// and is refused outside it.
func TestPortalCreateOU(t *testing.T) {
	p := newPortal(t)
	p.api("POST", "/api/v1/ous", map[string]any{"name": "sales"})
	p.api("POST", "/api/v1/ous", map[string]any{"name": "finance"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "rita", "ou": "/"})
	p.api("POST", "/api/v1/roles", map[string]any{"name": "ou-keeper", "actions": []string{"directory.read", "ou.create"}})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "ou-keeper", "holder": map[string]any{"user": "rita"},
		"scope": map[string]any{"ou": "sales"}, "justification": "sales structure"})
	rita := p.signedIn("rita")
	if _, page := rita.get("/ous"); !strings.Contains(page, "New organisational unit") {
		t.Fatalf("rita is not offered a new OU:\n%s", page)
	}
	if body := rita.post("/ous", url.Values{"parent": {"sales"}, "name": {"east"}, "justification": {"new region"}}, true); !strings.Contains(body, "Created sales/east") {
		t.Fatalf("an OU inside the scope:\n%s", body)
	}
	if body := rita.post("/ous", url.Values{"parent": {"finance"}, "name": {"west"}}, true); !strings.Contains(body, "None of your roles allows this here") {
		t.Fatalf("an OU outside the scope:\n%s", body)
	}
	if _, page := rita.get("/ous"); !strings.Contains(page, "sales/east") {
		t.Fatalf("the tree after the create:\n%s", page)
	}
}
