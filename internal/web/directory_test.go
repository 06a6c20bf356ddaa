package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// withKey calls GET path on the REST API with a bearer token and returns the status.
func (p *portal) withKey(key, path string) int {
	p.t.Helper()
	req, _ := http.NewRequest("GET", p.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// mustSay fails the test unless body contains every one of want.
func mustSay(t *testing.T, what, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Fatalf("%s does not say %q:\n%s", what, w, body)
		}
	}
}

// mustNotSay fails the test when body contains any of unwanted.
func mustNotSay(t *testing.T, what, body string, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(body, w) {
			t.Fatalf("%s says %q, and should not:\n%s", what, w, body)
		}
	}
}

// TestDirectoryListsScope: a helpdesk agent over OU sales sees the Sales OU, group and service
// account, and not Finance's, in the OU tree, the group list (search included) and the service
// account list; the OU's people page lists only that OU's people.
func TestDirectoryListsScope(t *testing.T) {
	p := newPortal(t)
	p.api("POST", "/api/v1/ous", map[string]any{"name": "sales"})
	p.api("POST", "/api/v1/ous", map[string]any{"name": "east", "parent": "sales"})
	p.api("POST", "/api/v1/ous", map[string]any{"name": "finance"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "hank", "ou": "/"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "sally", "ou": "sales"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "ed", "ou": "sales/east"})
	p.api("POST", "/api/v1/groups", map[string]any{"name": "sales-team", "ou": "sales", "description": "Everyone selling"})
	p.api("POST", "/api/v1/groups", map[string]any{"name": "fin-team", "ou": "finance"})
	p.api("POST", "/api/v1/service-accounts", map[string]any{"name": "crm-sync", "ou": "sales", "owners": []string{"sally"}})
	p.api("POST", "/api/v1/service-accounts", map[string]any{"name": "ledger-bot", "ou": "finance", "owners": []string{"hank"}})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "hank"},
		"scope": map[string]any{"ou": "sales"}, "justification": "desk"})
	hank := p.signedIn("hank")

	code, ous := hank.get("/ous")
	if code != 200 {
		t.Fatalf("/ous: %d", code)
	}
	mustSay(t, "hank's OU tree", ous, ">sales<", ">sales/east<", `href="/ous/people?ou=sales%2feast"`)
	mustNotSay(t, "hank's OU tree", ous, "finance", "New person", "New group")

	_, groups := hank.get("/groups")
	mustSay(t, "hank's groups", groups, `href="/groups/sales-team"`, "Everyone selling")
	mustNotSay(t, "hank's groups", groups, "fin-team", "New group")
	_, found := hank.get("/groups?q=fin")
	mustSay(t, "a search for fin", found, "No group matches.")
	mustNotSay(t, "a search for fin", found, "fin-team")
	_, inOU := hank.get("/groups?ou=finance")
	mustNotSay(t, "groups in finance", inOU, "fin-team")
	_, inSales := hank.get("/groups?ou=sales&q=sales")
	mustSay(t, "groups in sales", inSales, "sales-team")

	_, sas := hank.get("/service-accounts")
	mustSay(t, "hank's service accounts", sas, `href="/service-accounts/crm-sync"`)
	mustNotSay(t, "hank's service accounts", sas, "ledger-bot")
	if code, _ := hank.get("/service-accounts/ledger-bot"); code != 404 {
		t.Fatalf("a service account out of scope: %d, want 404", code)
	}

	_, people := hank.get("/ous/people?ou=sales")
	mustSay(t, "people in sales", people, `href="/users/sally"`)
	mustNotSay(t, "people in sales", people, `href="/users/ed"`, `href="/users/hank"`)
}

var (
	secretRe = regexp.MustCompile(`dpy_([a-z0-9]+)_[a-z0-9]+`)
	eventRe  = regexp.MustCompile(`recorded as audit event (\d+)`)
)

// TestDirectoryServiceAccountKeys: an owner issues a key, sees its secret once (the account's
// page then shows only its ID), rotates it, revokes a key, which then stops authenticating;
// someone who may only read sees no key action, and their post is refused and recorded.
func TestDirectoryServiceAccountKeys(t *testing.T) {
	p := newPortal(t)
	p.api("POST", "/api/v1/users", map[string]any{"username": "olly", "ou": "/"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "pat", "ou": "/"})
	p.api("POST", "/api/v1/service-accounts", map[string]any{"name": "ci-bot", "ou": "/", "owners": []string{"olly"},
		"description": "Deploys the shop"})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "sa-owner", "holder": map[string]any{"user": "olly"},
		"scope": map[string]any{"relation": "owned_service_accounts"}, "justification": "owners rotate their keys"})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "reader", "holder": map[string]any{"user": "pat"},
		"scope": map[string]any{"ou": "/"}, "justification": "reads"})
	olly := p.signedIn("olly")

	_, page := olly.get("/service-accounts/ci-bot")
	mustSay(t, "ci-bot's page for its owner", page, "Deploys the shop", "Issue key", "No keys.",
		`href="/delegation/who-can?type=service_account&amp;id=ci-bot"`)
	if code, who := olly.get("/delegation/who-can?type=service_account&id=ci-bot&action=sa.issue_key"); code != 200 || !strings.Contains(who, "olly") {
		t.Fatalf("who can issue ci-bot's keys, as its owner sees it: %d\n%s", code, who)
	}
	issued := olly.post("/service-accounts/ci-bot/keys", url.Values{"name": {"deploy"}}, true)
	mustSay(t, "the issued key's page", issued, "New key for ci-bot", "It is shown only on this page")
	m := secretRe.FindStringSubmatch(issued)
	if m == nil {
		t.Fatalf("no key on the issue page:\n%s", issued)
	}
	secret, id := m[0], m[1]
	if code := p.withKey(secret, "/api/v1/me"); code != 200 {
		t.Fatalf("the new key authenticates: %d", code)
	}
	_, page = olly.get("/service-accounts/ci-bot")
	mustSay(t, "ci-bot's page after the issue", page, id, "deploy", "active", "Revoke key "+id)
	mustNotSay(t, "ci-bot's page after the issue", page, secret, "dpy_")

	// A rotation: the new key replaces the old one, which keeps working for the overlap.
	rotated := olly.post("/service-accounts/ci-bot/keys", url.Values{"name": {"deploy-2"}, "rotate_from": {id},
		"overlap_hours": {"1"}}, true)
	mustSay(t, "the rotation's page", rotated, "Replaces", id)
	m2 := secretRe.FindStringSubmatch(rotated)
	if m2 == nil || m2[1] == id {
		t.Fatalf("no new key on the rotation page:\n%s", rotated)
	}
	if p.withKey(secret, "/api/v1/me") != 200 || p.withKey(m2[0], "/api/v1/me") != 200 {
		t.Fatal("during the overlap both keys should work")
	}

	// Revoke the first key: it stops at once.
	done := olly.post("/service-accounts/ci-bot/keys/"+id+"/revoke", url.Values{}, true)
	mustSay(t, "after the revocation", done, "Key "+id+" revoked", "revoked")
	if code := p.withKey(secret, "/api/v1/me"); code != http.StatusUnauthorized {
		t.Fatalf("a revoked key authenticates: %d, want 401", code)
	}
	if code := p.withKey(m2[0], "/api/v1/me"); code != 200 {
		t.Fatalf("the rotated-in key: %d", code)
	}

	// A reader sees the account and its keys, and no action; a post is refused and recorded.
	pat := p.signedIn("pat")
	code, page := pat.get("/service-accounts/ci-bot")
	if code != 200 {
		t.Fatalf("ci-bot's page for a reader: %d", code)
	}
	mustSay(t, "ci-bot's page for a reader", page, m2[1], "You may look, not change.")
	mustNotSay(t, "ci-bot's page for a reader", page, "Issue key", "Revoke key", "Rotate key")
	refused := pat.post("/service-accounts/ci-bot/keys", url.Values{"name": {"mine"}}, true)
	mustSay(t, "pat's issue", refused, "None of your roles allows this here", "not_authorized")
	mustNotSay(t, "pat's issue", refused, "dpy_")
	ev := eventRe.FindStringSubmatch(refused)
	if ev == nil {
		t.Fatalf("the refusal names no audit event:\n%s", refused)
	}
	event := p.api("GET", "/api/v1/audit/events/"+ev[1], nil)
	if raw, _ := json.Marshal(event); event["action"] != "sa.issue_key" || !strings.Contains(string(raw), "pat") ||
		!strings.Contains(fmt.Sprint(event["outcome"]), "denied") {
		t.Fatalf("the recorded refusal: %s", raw)
	}
	revoke := pat.post("/service-accounts/ci-bot/keys/"+m2[1]+"/revoke", url.Values{}, true)
	mustSay(t, "pat's revoke", revoke, "None of your roles allows this here")
	if code := p.withKey(m2[0], "/api/v1/me"); code != 200 {
		t.Fatalf("a refused revoke revoked: %d", code)
	}
}

// TestDirectoryCreate: an HR delegate over sales creates a person through the form (and is
// refused in finance); a bad form comes back with the reason and the values; a delegate whose
// role may create groups creates one.
func TestDirectoryCreate(t *testing.T) {
	p := newPortal(t)
	p.api("POST", "/api/v1/ous", map[string]any{"name": "sales"})
	p.api("POST", "/api/v1/ous", map[string]any{"name": "finance"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "hilda", "ou": "/"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "boss", "ou": "sales"})
	p.api("POST", "/api/v1/roles", map[string]any{"name": "group-maker", "actions": []string{"directory.read", "group.create"}})
	for _, role := range []string{"hr", "group-maker"} {
		p.api("POST", "/api/v1/assignments", map[string]any{"role": role, "holder": map[string]any{"user": "hilda"},
			"scope": map[string]any{"ou": "sales"}, "justification": "hr"})
	}
	hilda := p.signedIn("hilda")
	_, ous := hilda.get("/ous")
	mustSay(t, "hilda's OU tree", ous, `href="/users/new"`, `href="/groups/new"`)
	_, form := hilda.get("/users/new?ou=sales")
	mustSay(t, "the new-person form", form, `<option value="sales" selected>`, `for="f-username"`, `for="f-ou"`)

	created := hilda.post("/users/new", url.Values{"username": {"nina"}, "given_name": {"Nina"}, "family_name": {"North"},
		"department": {"Sales"}, "title": {"Account manager"}, "manager": {"boss"}, "email": {"nina@example.com"},
		"ou": {"sales"}, "justification": {"new hire"}}, true)
	mustSay(t, "after the create", created, "Person created", "Nina North", "Account manager")
	u := p.api("GET", "/api/v1/users/nina", nil)
	if raw, _ := json.Marshal(u); !strings.Contains(string(raw), `"sales"`) || !strings.Contains(string(raw), "boss") {
		t.Fatalf("the created person: %s", raw)
	}

	bad := hilda.post("/users/new", url.Values{"username": {"-bad name-"}, "given_name": {"Kept"}, "ou": {"sales"}}, true)
	mustSay(t, "a bad form", bad, `role="alert"`, "username", `value="Kept"`)
	refused := hilda.post("/users/new", url.Values{"username": {"fin"}, "ou": {"finance"}}, true)
	mustSay(t, "a create in finance", refused, "None of your roles allows this here")

	group := hilda.post("/groups/new", url.Values{"name": {"sales-leads"}, "description": {"Leads"}, "ou": {"sales"},
		"owners": {"boss"}}, true)
	mustSay(t, "after the group's create", group, "Group created", "sales-leads", `href="/users/boss"`)
}

// TestDirectoryEdit: a delegate edits only the attributes their role allows; a save on a
// version someone else changed meanwhile is refused as stale and changes nothing; a fresh one
// saves; a move needs the move action and lands in the new OU.
func TestDirectoryEdit(t *testing.T) {
	p := newPortal(t)
	p.api("POST", "/api/v1/ous", map[string]any{"name": "sales"})
	p.api("POST", "/api/v1/ous", map[string]any{"name": "east", "parent": "sales"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "hilda", "ou": "/"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "hank", "ou": "/"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "sally", "ou": "sales", "title": "Clerk", "email": "s@example.com"})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "hr", "holder": map[string]any{"user": "hilda"},
		"scope": map[string]any{"ou": "sales"}, "justification": "hr"})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "hank"},
		"scope": map[string]any{"ou": "sales"}, "justification": "desk"})
	hilda := p.signedIn("hilda")

	_, person := hilda.get("/users/sally")
	mustSay(t, "sally's page for hr", person, `href="/users/sally/edit"`, `action="/users/sally/move"`)
	_, edit := hilda.get("/users/sally/edit")
	mustSay(t, "the edit form", edit, `id="f-title"`, `id="f-department"`, "s@example.com")
	mustNotSay(t, "the edit form", edit, `id="f-email"`, `id="f-username"`)
	version := regexp.MustCompile(`name="version" value="(\d+)"`).FindStringSubmatch(edit)
	if version == nil {
		t.Fatalf("no version in the edit form:\n%s", edit)
	}

	p.api("PATCH", "/api/v1/users/sally", map[string]any{"title": "Senior clerk"}) // someone else, meanwhile
	stale := hilda.post("/users/sally/edit", url.Values{"version": {version[1]}, "title": {"Manager"}, "department": {""}}, true)
	mustSay(t, "a stale save", stale, "Someone changed this meanwhile", "stale_version")
	if u := p.api("GET", "/api/v1/users/sally", nil); u["title"] != "Senior clerk" {
		t.Fatalf("a stale save changed the title: %v", u["title"])
	}
	_, edit = hilda.get("/users/sally/edit")
	version = regexp.MustCompile(`name="version" value="(\d+)"`).FindStringSubmatch(edit)
	saved := hilda.post("/users/sally/edit", url.Values{"version": {version[1]}, "title": {"Manager"}, "department": {"Sales"},
		"email": {"evil@example.com"}}, true)
	mustSay(t, "a fresh save", saved, "Saved", "Manager", "Sales", "s@example.com")
	if u := p.api("GET", "/api/v1/users/sally", nil); u["title"] != "Manager" || u["email"] != "s@example.com" {
		t.Fatalf("after the save: title %v, email %v", u["title"], u["email"])
	}

	moved := hilda.post("/users/sally/move", url.Values{"to": {"sales/east"}}, true)
	mustSay(t, "after the move", moved, "Moved to sales/east", "<dd>sales/east</dd>")

	hank := p.signedIn("hank")
	_, person = hank.get("/users/sally")
	mustSay(t, "sally's page for helpdesk", person, `href="/users/sally/edit"`)
	mustNotSay(t, "sally's page for helpdesk", person, `action="/users/sally/move"`)
	_, edit = hank.get("/users/sally/edit")
	mustSay(t, "helpdesk's edit form", edit, `id="f-phone"`, `id="f-title"`)
	mustNotSay(t, "helpdesk's edit form", edit, `id="f-department"`)
	refused := hank.post("/users/sally/move", url.Values{"to": {"sales"}}, true)
	mustSay(t, "a move by helpdesk", refused, "None of your roles allows this here")
}
