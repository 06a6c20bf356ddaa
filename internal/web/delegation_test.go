package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/deputy-iam/deputy/internal/app"
	"github.com/deputy-iam/deputy/internal/config"
)

// newDelegPortal is newPortal with a step-up window of 0s (a fresh authenticator code for every
// activation) and, when policies is set, the default approval policies.
func newDelegPortal(t *testing.T, policies bool) *portal {
	t.Helper()
	return newPortalWith(t, func(c *config.Config) { c.StepUpWindow = "0s" }, func(a *app.App, _ string) {
		if !policies {
			return
		}
		if err := a.PreparePolicies(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// delegOrg makes OUs sales and finance with sally (Sales) and fred (Finance), and hank and maria
// at the root.
func delegOrg(p *portal) {
	p.api("POST", "/api/v1/ous", map[string]any{"name": "sales"})
	p.api("POST", "/api/v1/ous", map[string]any{"name": "finance"})
	for _, u := range []map[string]any{{"username": "hank", "ou": "/"}, {"username": "maria", "ou": "/"},
		{"username": "sally", "ou": "sales", "department": "Sales"}, {"username": "fred", "ou": "finance", "department": "Finance"}} {
		p.api("POST", "/api/v1/users", u)
	}
}

// heldBy returns the assignments the admin's API lists for holder.
func heldBy(p *portal, holder string) []any {
	items, _ := p.api("GET", "/api/v1/assignments?holder=user:"+holder, nil)["items"].([]any)
	return items
}

// TestDelegationActivate: a person activates their eligible assignment on /delegation with a
// justification and a fresh code from their authenticator; without the code (or without a
// justification) it is refused and stays inactive.
func TestDelegationActivate(t *testing.T) {
	p := newDelegPortal(t, false)
	delegOrg(p)
	id := p.api("POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "hank"},
		"scope": map[string]any{"ou": "sales"}, "eligible": true, "max_activation": "2h", "justification": "on call desk"})["id"].(string)
	hank := p.signedIn("hank")

	secret, t0 := hank.enrolTOTP("hank")

	_, page := hank.get("/delegation")
	for _, want := range []string{"helpdesk", "OU sales and below", "eligible", "on call desk", `action="/delegation/assignments/` + id + `/activate"`,
		`name="totp"`, "2 hours"} {
		if !strings.Contains(page, want) {
			t.Fatalf("hank's delegation page lacks %q:\n%s", want, page)
		}
	}
	if code, _ := hank.get("/users/sally"); code != http.StatusNotFound {
		t.Fatalf("before the activation hank sees sally: %d", code)
	}
	activate := "/delegation/assignments/" + id + "/activate"
	if body := hank.post(activate, url.Values{"justification": {"ticket 4711"}}, true); !strings.Contains(body, "Enter a current code from your authenticator first") {
		t.Fatalf("an activation without a code:\n%s", body)
	}
	code, _ := totp.GenerateCode(secret, t0.Add(30*time.Second))
	if body := hank.post(activate, url.Values{"totp": {code}}, true); !strings.Contains(body, "Some of what you entered is not right") ||
		!strings.Contains(body, "justification") {
		t.Fatalf("an activation without a justification:\n%s", body)
	}
	if a := p.api("GET", "/api/v1/assignments/"+id, nil); a["active"] != false {
		t.Fatalf("refused activations activated it: %v", a)
	}
	// The code was not spent on the refusal without a justification.
	body := hank.post(activate, url.Values{"justification": {"ticket 4711"}, "totp": {code}}, true)
	if !strings.Contains(body, "Activated: helpdesk over OU sales and below") || !strings.Contains(body, "activated, until") {
		t.Fatalf("the activation:\n%s", body)
	}
	if a := p.api("GET", "/api/v1/assignments/"+id, nil); a["active"] != true {
		t.Fatalf("after the activation: %v", a)
	}
	if code, page := hank.get("/users/sally"); code != http.StatusOK || !strings.Contains(page, "Reset password") {
		t.Fatalf("after the activation hank on sally's page: %d", code)
	}
}

// grantForm is the grant form of helpdesk-like grants over the OU sales.
func grantForm(role, holder, mode string) url.Values {
	return url.Values{"role": {role}, "holder_kind": {"user"}, "holder": {holder}, "scope_kind": {"ou"}, "ou": {"sales"},
		"subtree": {"on"}, "mode": {mode}, "justification": {"covers the sales desk"}}
}

// TestDelegationGrant: a granter previews a grant (the actions in words, what it covers, the
// decision) and nothing exists until they confirm; a grant of more than they hold is refused in
// plain words, in the preview and on submission; they revoke what they granted.
func TestDelegationGrant(t *testing.T) {
	p := newDelegPortal(t, false)
	delegOrg(p)
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "maria"},
		"scope": map[string]any{"ou": "sales"}, "can_redelegate": true, "justification": "desk lead"})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "reader", "holder": map[string]any{"user": "maria"},
		"scope": map[string]any{"ou": "/"}, "justification": "finds whom to grant to"})
	maria := p.signedIn("maria")
	_, home := maria.get("/delegation")
	if !strings.Contains(home, `href="/delegation/grant"`) || !strings.Contains(home, "You have granted nothing yet") {
		t.Fatalf("maria's delegation page:\n%s", home)
	}
	if _, form := maria.get("/delegation/grant"); !strings.Contains(form, `action="/delegation/grant/preview"`) {
		t.Fatalf("the grant form:\n%s", form)
	}

	preview := maria.post("/delegation/grant/preview", grantForm("helpdesk", "hank", "eligible"), true)
	for _, want := range []string{"What this grant would do", "reset passwords", "unlock locked-out accounts", "OU sales and below",
		"covers 1 person (sally)", "Allowed:", `action="/delegation/grant"`} {
		if !strings.Contains(preview, want) {
			t.Fatalf("the preview lacks %q:\n%s", want, preview)
		}
	}
	if got := heldBy(p, "hank"); len(got) != 0 {
		t.Fatalf("a preview granted: %v", got)
	}
	done := maria.post("/delegation/grant", grantForm("helpdesk", "hank", "eligible"), true)
	if !strings.Contains(done, "Granted: helpdesk to hank") {
		t.Fatalf("the grant:\n%s", done)
	}
	got := heldBy(p, "hank")
	if len(got) != 1 || got[0].(map[string]any)["eligible"] != true || got[0].(map[string]any)["role"] != "helpdesk" {
		t.Fatalf("after the grant hank holds %v", got)
	}
	id := got[0].(map[string]any)["id"].(string)
	if !strings.Contains(done, `action="/delegation/assignments/`+id+`/revoke"`) {
		t.Fatalf("maria's page offers no revocation of what she granted:\n%s", done)
	}

	// hr is more than maria holds: refused in plain words, before and on submission.
	preview = maria.post("/delegation/grant/preview", grantForm("hr", "hank", "in_force"), true)
	if !strings.Contains(preview, "Refused: You can only grant part of what you may pass on") ||
		!strings.Contains(preview, "does not include everything hr does") || strings.Contains(preview, `action="/delegation/grant"`) {
		t.Fatalf("the preview of a grant of more than maria holds:\n%s", preview)
	}
	refused := maria.post("/delegation/grant", grantForm("hr", "hank", "in_force"), true)
	if !strings.Contains(refused, "You can only grant part of what you may pass on") || !strings.Contains(refused, "exceeds_grant") {
		t.Fatalf("the grant of more than maria holds:\n%s", refused)
	}
	if got := heldBy(p, "hank"); len(got) != 1 {
		t.Fatalf("a refused grant left %v", got)
	}

	// A mistake comes back on the form, as typed, with what is wrong.
	bad := maria.post("/delegation/grant/preview", grantForm("helpdesk", "nobody", "in_force"), true)
	if !strings.Contains(bad, "Some of what you entered is not right") || !strings.Contains(bad, `there is no user`) ||
		!strings.Contains(bad, `value="nobody"`) {
		t.Fatalf("a grant to nobody:\n%s", bad)
	}

	// hank may not revoke it; maria may.
	hank := p.signedIn("hank")
	if body := hank.post("/delegation/assignments/"+id+"/revoke", url.Values{}, true); !strings.Contains(body, "cannot grant or revoke your own") {
		t.Fatalf("hank revokes his own assignment:\n%s", body)
	}
	if body := maria.post("/delegation/assignments/"+id+"/revoke", url.Values{}, true); !strings.Contains(body, "Assignment revoked") {
		t.Fatalf("the revocation:\n%s", body)
	}
	if got := heldBy(p, "hank"); len(got) != 0 {
		t.Fatalf("after the revocation hank holds %v", got)
	}
}

// TestDelegationGrantApproval: with the default approval policies, the preview says a grant
// needs approval and by whom, and the grant is sent for approval.
func TestDelegationGrantApproval(t *testing.T) {
	p := newDelegPortal(t, true)
	delegOrg(p)
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "maria"},
		"scope": map[string]any{"ou": "sales"}, "can_redelegate": true, "justification": "desk lead"})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "reader", "holder": map[string]any{"user": "maria"},
		"scope": map[string]any{"ou": "/"}, "justification": "finds whom to grant to"})
	maria := p.signedIn("maria")
	preview := maria.post("/delegation/grant/preview", grantForm("helpdesk", "hank", "in_force"), true)
	if !strings.Contains(preview, "Needs approval") || !strings.Contains(preview, "role-assignment") ||
		!strings.Contains(preview, "Ask for approval") {
		t.Fatalf("the preview of a gated grant:\n%s", preview)
	}
	sent := maria.post("/delegation/grant", grantForm("helpdesk", "hank", "in_force"), true)
	if !strings.Contains(sent, "Sent for approval") || !strings.Contains(sent, "role.assign") {
		t.Fatalf("the gated grant:\n%s", sent)
	}
	if got := heldBy(p, "hank"); len(got) != 0 {
		t.Fatalf("a parked grant applied: %v", got)
	}
}

// TestDelegationWhoCanAndReports: an auditor sees who can act on a Sales user (the helpdesk
// agent, through their assignment) and not on a Finance user; the agent sees only their own
// rights there; the roles pages say what roles allow; the escalation report is an auditor's
// only.
func TestDelegationWhoCanAndReports(t *testing.T) {
	p := newDelegPortal(t, false)
	delegOrg(p)
	p.api("POST", "/api/v1/users", map[string]any{"username": "audrey", "ou": "/"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "hana", "ou": "/"})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "auditor", "holder": map[string]any{"user": "audrey"},
		"scope": map[string]any{"ou": "/"}, "justification": "audit"})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "hank"},
		"scope": map[string]any{"ou": "sales"}, "justification": "desk"})
	// hana (hr) can set anyone's manager in sales; maria's manager role follows direct reports.
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "hr", "holder": map[string]any{"user": "hana"},
		"scope": map[string]any{"ou": "sales"}, "justification": "people team"})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "manager", "holder": map[string]any{"user": "maria"},
		"scope": map[string]any{"relation": "direct_reports"}, "justification": "managers"})

	audrey := p.signedIn("audrey")
	if _, page := audrey.get("/users/sally"); !strings.Contains(page, `href="/delegation/who-can?type=user&amp;id=sally"`) {
		t.Fatalf("sally's page has no who-can link:\n%s", page)
	}
	_, sales := audrey.get("/delegation/who-can?type=user&id=sally&action=user.reset_password")
	if !strings.Contains(sales, ">hank<") || !strings.Contains(sales, "helpdesk over OU sales and below") || !strings.Contains(sales, ">admin<") {
		t.Fatalf("who can reset sally's password:\n%s", sales)
	}
	_, finance := audrey.get("/delegation/who-can?type=user&id=fred&action=user.reset_password")
	if strings.Contains(finance, ">hank<") || !strings.Contains(finance, ">admin<") {
		t.Fatalf("who can reset fred's password:\n%s", finance)
	}
	if _, all := audrey.get("/delegation/who-can?type=user&id=sally"); !strings.Contains(all, "Who can unlock locked-out accounts") ||
		!strings.Contains(all, ">hana<") || !strings.Contains(all, "helpdesk over OU sales and below (only phone, title)") {
		t.Fatalf("who can do anything to sally:\n%s", all)
	}
	p.api("POST", "/api/v1/groups", map[string]any{"name": "sales-team", "ou": "sales"})
	if _, page := audrey.get("/groups/sales-team"); !strings.Contains(page, `href="/delegation/who-can?type=group&amp;id=sales-team"`) {
		t.Fatalf("the group's page has no who-can link:\n%s", page)
	}
	if _, group := audrey.get("/delegation/who-can?type=group&id=sales-team&action=group.add_member"); !strings.Contains(group, ">admin<") ||
		strings.Contains(group, ">hank<") || !strings.Contains(group, "Who can add members to groups") {
		t.Fatalf("who can add members to sales-team:\n%s", group)
	}
	if code, _ := audrey.get("/delegation/who-can?type=user&id=nobody"); code != http.StatusNotFound {
		t.Fatalf("who-can on nobody: %d", code)
	}
	_, esc := audrey.get("/delegation/escalations")
	if !strings.Contains(esc, "hana") || !strings.Contains(esc, "direct reports") {
		t.Fatalf("the escalation report:\n%s", esc)
	}

	hank := p.signedIn("hank")
	_, own := hank.get("/delegation/who-can?type=user&id=sally&action=user.reset_password")
	if !strings.Contains(own, "Only auditors and tier-0 admins see everyone") || !strings.Contains(own, ">hank<") || strings.Contains(own, ">admin<") {
		t.Fatalf("who-can for hank:\n%s", own)
	}
	if code, _ := hank.get("/delegation/who-can?type=user&id=fred"); code != http.StatusNotFound {
		t.Fatalf("who-can on someone hank may not see: %d", code)
	}
	if code, _ := hank.get("/delegation/escalations"); code != http.StatusNotFound {
		t.Fatalf("the escalation report for hank: %d", code)
	}
	_, roles := hank.get("/delegation/roles")
	if !strings.Contains(roles, `href="/delegation/roles/helpdesk"`) || !strings.Contains(roles, "reset passwords") {
		t.Fatalf("the roles page:\n%s", roles)
	}
	_, role := hank.get("/delegation/roles/helpdesk")
	if !strings.Contains(role, "(only phone, title)") || !strings.Contains(role, "Verifies identity") || strings.Contains(role, "Who holds it") {
		t.Fatalf("the helpdesk role for hank:\n%s", role)
	}
	if _, role := audrey.get("/delegation/roles/helpdesk"); !strings.Contains(role, "Who holds it") || !strings.Contains(role, "hank") {
		t.Fatalf("the helpdesk role for an auditor:\n%s", role)
	}
	if code, _ := hank.get("/delegation/roles/nope"); code != http.StatusNotFound {
		t.Fatalf("a role that does not exist: %d", code)
	}
}
