package api_test

import (
	"net/http"
	"testing"
)

// TestServiceAccountSignsIn: a service account's key authenticates as the account, which acts
// within its own assignments; a disabled account's key stops at once.
func TestServiceAccountSignsIn(t *testing.T) {
	e := newEnv(t)
	e.newUser("owner", nil)
	e.must(http.StatusCreated, "POST", "/api/v1/ous", map[string]any{"name": "apps"})
	e.must(http.StatusCreated, "POST", "/api/v1/service-accounts", map[string]any{"name": "sync-bot", "ou": "/", "owners": []string{"owner"}})
	key := e.must(http.StatusCreated, "POST", "/api/v1/service-accounts/sync-bot/keys", map[string]any{"name": "prod"})["key"].(string)
	e.tokens["bot"] = key
	if r := e.do(request{Method: "GET", Path: "/api/v1/me", As: "bot"}); r.Status != 200 || r.JSON(t)["name"] != "sync-bot" {
		t.Fatalf("me as the key: %d %s", r.Status, r.Body)
	}
	if r := e.do(request{Method: "POST", Path: "/api/v1/users", As: "bot", Body: map[string]any{"username": "made", "ou": "apps"}}); r.Status != 403 {
		t.Fatalf("without an assignment: %d %s", r.Status, r.Body)
	}
	// Rights come to a service account through a group it is in.
	e.must(http.StatusCreated, "POST", "/api/v1/groups", map[string]any{"name": "bots", "ou": "/"})
	e.must(http.StatusCreated, "POST", "/api/v1/groups/bots/members", map[string]any{"member": "sa:sync-bot"})
	e.must(http.StatusCreated, "POST", "/api/v1/roles", map[string]any{"name": "app-users", "actions": []string{"directory.read", "user.create"}})
	e.must(http.StatusCreated, "POST", "/api/v1/assignments", map[string]any{"role": "app-users",
		"holder": map[string]any{"group": "bots"}, "scope": map[string]any{"ou": "apps"}, "justification": "x"})
	r := e.do(request{Method: "POST", Path: "/api/v1/users", As: "bot", Body: map[string]any{"username": "made", "ou": "apps"}})
	if r.Status != 201 {
		t.Fatalf("with the group's assignment: %d %s", r.Status, r.Body)
	}
	ev := e.get("/api/v1/audit/events/" + r.Header.Get("Deputy-Audit-Event"))
	if actor := ev["actor"].(map[string]any); actor["type"] != "service_account" || actor["name"] != "sync-bot" {
		t.Fatalf("the event's actor: %v", actor)
	}
}
