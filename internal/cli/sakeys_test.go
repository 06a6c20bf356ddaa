package cli_test

import (
	"strings"
	"testing"
)

// TestServiceAccountKeyCommands: `sa key issue|list|rotate|revoke` by an owner holding sa-owner,
// refused to someone else; `report keys` and `report orphaned-service-accounts` (with
// --fail-if-any) before and after the owner is disabled.
func TestServiceAccountKeyCommands(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ids := map[string]string{}
	issued := func(key string) func(t *testing.T, s *server, v map[string]any) {
		return func(t *testing.T, s *server, v map[string]any) {
			saveID(ids, key)(t, s, v)
			if !strings.HasPrefix(get(v, "key"), "dpy_"+ids[key]+"_") || get(v, "service_account") != "ci-bot" {
				t.Errorf("issued key %v", v)
			}
		}
	}
	s.run(t, []cliCase{
		{name: "boss", args: []string{"user", "create", "boss", "--ou", "/"}},
		{name: "owner", args: []string{"user", "create", "owner", "--ou", "/", "--manager", "boss"}},
		{name: "plain", args: []string{"user", "create", "plain", "--ou", "/"}},
		{name: "owner token", args: []string{"user", "token", "owner", "--name", "t", "-o", "json"}, json: saveToken("owner")},
		{name: "plain token", args: []string{"user", "token", "plain", "--name", "t", "-o", "json"}, json: saveToken("plain")},
		{name: "sa-owner", args: []string{"assign", "create", "--role", "sa-owner", "--user", "owner", "--relation", "owned_service_accounts",
			"--justification", "owners rotate their keys"}},
		{name: "account", args: []string{"sa", "create", "ci-bot", "--ou", "/", "--owner", "owner"}},
		{name: "issue without a name", as: "owner", args: []string{"sa", "key", "issue", "ci-bot"}, code: 1, errOut: `"name" not set`},
		{name: "issue", as: "owner", args: []string{"sa", "key", "issue", "ci-bot", "--name", "deploy", "--days", "30", "-o", "json"},
			json: issued("k1")},
		{name: "issue as a table", as: "owner", args: []string{"sa", "key", "issue", "ci-bot", "--name", "spare"},
			out: []string{"API key ", "for service account ci-bot, expires ", "(shown once):\ndpy_"}},
		{name: "issue by someone else", as: "plain", args: []string{"sa", "key", "issue", "ci-bot", "--name", "x"}, code: 3, errOut: "not_authorized"},
		{name: "too long", as: "owner", args: []string{"sa", "key", "issue", "ci-bot", "--name", "x", "--days", "400"}, code: 1, errOut: "expires_in_days"},
	})
	s.run(t, []cliCase{
		{name: "rotate", as: "owner", args: []string{"sa", "key", "rotate", "ci-bot", ids["k1"], "--overlap-hours", "2"},
			out: []string{"API key ", "Key " + ids["k1"] + " stays valid until "}},
		{name: "rotate json", as: "owner", args: []string{"sa", "key", "rotate", "ci-bot", ids["k1"], "--name", "deploy-3", "-o", "json"},
			json: func(t *testing.T, s *server, v map[string]any) {
				issued("k3")(t, s, v)
				if get(v, "rotated.id") != ids["k1"] || get(v, "name") != "deploy-3" {
					t.Errorf("rotation %v", v)
				}
			}},
		{name: "list", as: "owner", args: []string{"sa", "key", "list", "ci-bot"},
			out: []string{"ID", "NAME", "EXPIRES", "LAST USED", "ACTIVE", ids["k1"], "deploy", "spare", "true"}},
		{name: "list json", as: "owner", args: []string{"sa", "key", "list", "ci-bot", "-o", "json"},
			json: items("name", "deploy", "deploy", "deploy-3", "spare")},
	})
	s.run(t, []cliCase{
		{name: "revoke", as: "owner", args: []string{"sa", "key", "revoke", "ci-bot", ids["k3"]},
			out: []string{"revoked key " + ids["k3"] + " of service account ci-bot"}},
		{name: "revoke again", as: "owner", args: []string{"sa", "key", "revoke", "ci-bot", ids["k3"]}, code: 1, errOut: "already revoked"},
		{name: "revoke by someone else", as: "plain", args: []string{"sa", "key", "revoke", "ci-bot", ids["k1"]}, code: 3},
		{name: "expiring", args: []string{"report", "keys", "--expiring-within", "1"}, out: []string{"SERVICE ACCOUNT", "ci-bot", ids["k1"]}},
		{name: "expiring json", args: []string{"report", "keys", "--expiring-within", "1", "-o", "json"}, json: items("id", ids["k1"])},
		{name: "not rotated", args: []string{"report", "keys", "--not-rotated-for", "30", "--fail-if-any"}, out: []string{"no keys match"}},
		{name: "unused", args: []string{"report", "keys", "--unused-for", "0"}, code: 1, errOut: "unused_for_days"},
		{name: "unused fails", args: []string{"report", "keys", "--expiring-within", "400", "--fail-if-any"}, code: 1, answer: true,
			out: []string{"ci-bot"}},
		{name: "keys by a delegate", as: "owner", args: []string{"report", "keys"}, code: 3},
		{name: "no orphans", args: []string{"report", "orphaned-service-accounts", "--fail-if-any"}, out: []string{"no orphaned service accounts"}},
		{name: "owner leaves", args: []string{"user", "disable", "owner"}},
		{name: "orphans", args: []string{"report", "orphaned-service-accounts"}, out: []string{"NAME", "OWNERS", "ci-bot", "boss,owner"}},
		{name: "orphans fail", args: []string{"report", "orphaned-service-accounts", "--fail-if-any", "-o", "json"}, code: 1, answer: true,
			json: items("name", "ci-bot")},
		{name: "review", args: []string{"sa", "update", "ci-bot", "--set", "owners=boss"}, out: []string{"orphaned:", "false"}},
		{name: "reviewed", args: []string{"report", "orphaned-service-accounts", "--fail-if-any"}, out: []string{"no orphaned service accounts"}},
	})
}
