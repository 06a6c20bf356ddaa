package api_test

import (
	"net/http"
	"net/url"
	"testing"
)

// TestNoOpPatch checks that a patch setting fields to the values they have changes nothing but
// is still recorded.
func TestNoOpPatch(t *testing.T) {
	e := newEnv(t)
	u := e.newUser("ada", map[string]any{"title": "Engineer"})
	before := u["version"].(float64)
	r := e.do(request{Method: "PATCH", Path: "/api/v1/users/ada", Body: map[string]any{"title": "Engineer"}})
	if r.Status != http.StatusOK {
		t.Fatalf("no-op patch: %d %s", r.Status, r.Body)
	}
	if v := r.JSON(t)["version"].(float64); v != before {
		t.Errorf("version after a no-op patch = %v, want %v", v, before)
	}
	if etag := r.Header.Get("ETag"); etag != `"1"` {
		t.Errorf("ETag = %q, want \"1\"", etag)
	}
	evs := e.events(url.Values{"action": {"user.update"}, "target": {"ada"}})
	if len(evs) != 1 || evs[0]["outcome"] != "applied" || evs[0]["message"] == nil || evs[0]["after"] != nil {
		t.Fatalf("no-op patch events = %v; want one applied event saying nothing changed", evs)
	}
	// A real change still bumps the version.
	r = e.do(request{Method: "PATCH", Path: "/api/v1/users/ada", Body: map[string]any{"title": "Director"}})
	if r.Status != http.StatusOK || r.JSON(t)["version"].(float64) != before+1 {
		t.Fatalf("patch: %d %s", r.Status, r.Body)
	}
}

// TestDeleteRecordsAndBumpsLinks checks that deleting a user moves the groups and service
// accounts that lose a member or an owner to their next version, and that the delete's audit
// event lists those links.
func TestDeleteRecordsAndBumpsLinks(t *testing.T) {
	e := newEnv(t)
	e.newUser("ada", nil)
	e.newUser("bob", nil)
	e.must(http.StatusCreated, "POST", "/api/v1/groups", map[string]any{"name": "crm", "ou": "/", "owners": []string{"ada"}})
	e.must(http.StatusCreated, "POST", "/api/v1/groups", map[string]any{"name": "vpn", "ou": "/"})
	e.must(http.StatusCreated, "POST", "/api/v1/groups/vpn/members", map[string]any{"member": "ada"})
	e.must(http.StatusCreated, "POST", "/api/v1/service-accounts",
		map[string]any{"name": "ci-bot", "ou": "/", "owners": []string{"ada", "bob"}})
	versions := map[string]float64{}
	for _, p := range []string{"/api/v1/groups/crm", "/api/v1/groups/vpn", "/api/v1/service-accounts/ci-bot"} {
		versions[p] = e.get(p)["version"].(float64)
	}

	if r := e.do(request{Method: "DELETE", Path: "/api/v1/users/ada"}); r.Status != http.StatusNoContent {
		t.Fatalf("delete ada: %d %s", r.Status, r.Body)
	}
	for p, v := range versions {
		got := e.get(p)
		if got["version"].(float64) != v+1 {
			t.Errorf("%s: version %v after the delete, want %v", p, got["version"], v+1)
		}
	}
	if owners := e.get("/api/v1/groups/crm")["owners"].([]any); len(owners) != 0 {
		t.Errorf("crm owners after the delete: %v", owners)
	}
	if owners := e.get("/api/v1/service-accounts/ci-bot")["owners"].([]any); len(owners) != 1 || owners[0] != "bob" {
		t.Errorf("ci-bot owners after the delete: %v", owners)
	}
	evs := e.events(url.Values{"action": {"user.delete"}, "outcome": {"applied"}})
	if len(evs) != 1 {
		t.Fatalf("user.delete events: %v", evs)
	}
	before, _ := evs[0]["before"].(map[string]any)
	for field, want := range map[string]string{"member_of": "vpn", "owns_groups": "crm", "owns_service_accounts": "ci-bot"} {
		list, _ := before[field].([]any)
		if len(list) != 1 || list[0].(map[string]any)["name"] != want {
			t.Errorf("delete event before.%s = %v, want [%s]", field, before[field], want)
		}
	}
}

// TestAuditFiltersByName checks that actor and target filters take an ID or a name in any
// case, and still find the events of an object deleted since, by its recorded name.
func TestAuditFiltersByName(t *testing.T) {
	e := newEnv(t)
	ada := e.newUser("Ada.Lovelace", nil)
	e.must(http.StatusOK, "PATCH", "/api/v1/users/ada.lovelace", map[string]any{"title": "Countess"})
	for _, key := range []string{"ada.lovelace", "ADA.LOVELACE", ada["id"].(string)} {
		if evs := e.events(url.Values{"target": {key}}); len(evs) != 2 {
			t.Errorf("target=%s: %d events, want 2 (create, update)", key, len(evs))
		}
	}
	if evs := e.events(url.Values{"actor": {"ADMIN"}, "target": {"ada.lovelace"}}); len(evs) != 2 {
		t.Errorf("actor=ADMIN: %d events, want 2", len(evs))
	}
	if evs := e.events(url.Values{"actor": {"system:bootstrap"}}); len(evs) != 4 {
		t.Errorf("actor=system:bootstrap: %d events, want 4", len(evs))
	}
	e.must(http.StatusNoContent, "DELETE", "/api/v1/users/ada.lovelace", nil)
	if evs := e.events(url.Values{"target": {"Ada.Lovelace"}}); len(evs) != 3 {
		t.Errorf("target of a deleted user by name: %d events, want 3", len(evs))
	}
}
