package api_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoSecretInTheLog runs every kind of write the API has (applied, denied and failed), collects
// every secret the server handed out (API tokens), and scans the whole audit log, through the
// export and in the raw database files, for any of them.
func TestNoSecretInTheLog(t *testing.T) {
	e := newEnv(t)
	secrets := []string{e.tokens["admin"]}
	issue := func(user string) string {
		tok := e.must(http.StatusCreated, "POST", "/api/v1/users/"+user+"/tokens", map[string]any{"name": "t-" + user})["token"].(string)
		secrets = append(secrets, tok)
		return tok
	}
	e.must(201, "POST", "/api/v1/ous", map[string]any{"name": "corp"})
	e.must(201, "POST", "/api/v1/ous", map[string]any{"name": "sales", "parent": "corp"})
	e.must(200, "PATCH", "/api/v1/ous/corp%2Fsales", map[string]any{"name": "sales-emea"})
	e.newUser("ann", map[string]any{"ou": "corp/sales-emea", "email": "ann@example.com"})
	e.newUser("bob", map[string]any{"ou": "corp", "manager": "ann"})
	e.must(200, "PATCH", "/api/v1/users/ann", map[string]any{"title": "Lead", "attributes": map[string]any{"badge": "B-1"}})
	e.must(200, "POST", "/api/v1/users/bob/move", map[string]any{"to": "corp/sales-emea"})
	e.must(200, "POST", "/api/v1/users/bob/disable", nil)
	e.must(200, "POST", "/api/v1/users/bob/enable", nil)
	e.tokens["ann"] = issue("ann")
	issue("bob")
	e.must(201, "POST", "/api/v1/groups", map[string]any{"name": "crm", "ou": "corp", "owners": []string{"ann"}})
	e.must(200, "PATCH", "/api/v1/groups/crm", map[string]any{"description": "CRM users"})
	e.must(201, "POST", "/api/v1/groups/crm/members", map[string]any{"member": "bob"})
	e.must(204, "DELETE", "/api/v1/groups/crm/members/bob", nil)
	e.must(200, "POST", "/api/v1/groups/crm/move", map[string]any{"to": "corp/sales-emea"})
	e.must(201, "POST", "/api/v1/service-accounts", map[string]any{"name": "bot", "ou": "corp", "owners": []string{"ann"}})
	e.must(200, "PATCH", "/api/v1/service-accounts/bot", map[string]any{"description": "a bot"})
	e.must(200, "POST", "/api/v1/service-accounts/bot/move", map[string]any{"to": "corp/sales-emea"})
	e.must(201, "POST", "/api/v1/roles", map[string]any{"name": "desk", "actions": []string{"user.unlock", "user.update"}, "user_attributes": []string{"title"}})
	e.must(200, "PATCH", "/api/v1/roles/desk", map[string]any{"description": "desk"})
	a := e.must(201, "POST", "/api/v1/assignments", map[string]any{"role": "desk", "holder": map[string]any{"user": "ann"},
		"scope": map[string]any{"ou": "corp/sales-emea"}, "eligible": true, "max_activation": "1h", "justification": "cover"})
	id := a["id"].(string)
	if r := e.do(request{Method: "POST", Path: "/api/v1/assignments/" + id + "/activate", As: "ann",
		Body: map[string]any{"justification": "ticket 7"}}); r.Status != 200 {
		t.Fatalf("activate: %d %s", r.Status, r.Body)
	}
	// Denied and failed attempts, the secret in hand: as ann, and with a token in the body.
	for _, r := range []request{
		{Method: "POST", Path: "/api/v1/users/bob/tokens", As: "ann", Body: map[string]any{"name": e.tokens["ann"]}},
		{Method: "PATCH", Path: "/api/v1/users/bob", As: "ann", Body: map[string]any{"email": "x@example.com"}},
		{Method: "POST", Path: "/api/v1/users", Body: map[string]any{"username": "ann", "ou": "corp"}},
		{Method: "POST", Path: "/api/v1/ous", As: "dpy_not_a_token", Body: map[string]any{"name": "x"}},
	} {
		if res := e.do(r); res.Status < 400 {
			t.Fatalf("%s %s: %d", r.Method, r.Path, res.Status)
		}
	}
	e.must(204, "DELETE", "/api/v1/assignments/"+id, nil)
	e.must(204, "DELETE", "/api/v1/roles/desk", nil)
	e.must(204, "DELETE", "/api/v1/service-accounts/bot", nil)
	e.must(204, "DELETE", "/api/v1/groups/crm", nil)
	e.must(204, "DELETE", "/api/v1/users/bob", nil)

	export := e.do(request{Method: "GET", Path: "/api/v1/audit/export"})
	if export.Status != 200 || bytes.Count(export.Body, []byte("\n")) < 30 ||
		!bytes.Contains(export.Body, []byte(`"action":"user.issue_token"`)) || !bytes.Contains(export.Body, []byte(`"outcome":"denied"`)) {
		t.Fatalf("export: %d, %d events", export.Status, bytes.Count(export.Body, []byte("\n")))
	}
	files, _ := filepath.Glob(filepath.Join(e.app.Config.DataDir, "deputy.db*"))
	if len(files) == 0 {
		t.Fatal("no database files to scan")
	}
	// The scan finds what is there: each issued token's public id is in the log (secrets[0] is
	// the bootstrap token, issued by init).
	for _, s := range secrets[1:] {
		if pub := strings.Split(s, "_")[1]; !bytes.Contains(export.Body, []byte(pub)) {
			t.Errorf("the token id %q is not in the log: the scan would not see a secret either", pub)
		}
	}
	for _, s := range secrets {
		// The whole token, and its secret part alone (after the prefix and public id).
		parts := []string{s, s[strings.LastIndex(s, "_")+1:]}
		for _, p := range parts {
			if bytes.Contains(export.Body, []byte(p)) {
				t.Errorf("the audit log holds a token secret %q", p)
			}
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(b, []byte(p)) {
					t.Errorf("%s holds a token secret %q", filepath.Base(f), p)
				}
			}
		}
	}
}
