package cli_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// saveToken is a json check that stores the token a "user token -o json" printed under name.
func saveToken(name string) func(t *testing.T, s *server, v map[string]any) {
	return func(t *testing.T, s *server, v map[string]any) { s.tokens[name] = get(v, "token") }
}

// saveID is a json check that stores the printed object's id under key.
func saveID(ids map[string]string, key string) func(t *testing.T, s *server, v map[string]any) {
	return func(t *testing.T, s *server, v map[string]any) {
		if ids[key] = get(v, "id"); ids[key] == "" {
			t.Fatalf("no id in %v", v)
		}
	}
}

func TestRoleCommands(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.run(t, []cliCase{
		{name: "setup user", args: []string{"user", "create", "bob", "--ou", "/"}},
		{name: "setup token", args: []string{"user", "token", "bob", "--name", "t", "-o", "json"}, json: saveToken("bob")},
		{name: "list", args: []string{"role", "list"}, out: []string{"NAME", "BUILTIN", "ACTIONS", "helpdesk", "phone,title", "tier0-admin"}},
		{name: "list json", args: []string{"role", "list", "-o", "json"},
			json: items("name", "auditor", "group-owner", "helpdesk", "hr", "manager", "reader", "sa-owner", "tier0-admin")},
		{name: "get", args: []string{"role", "get", "helpdesk"}, out: []string{"builtin:", "true", "user_attributes:", "phone,title"}},
		{name: "create from actions", args: []string{"role", "create", "badge-admin", "--action", "directory.read", "--action", "user.update",
			"--user-attribute", "attributes.badge", "--description", "Badges", "-o", "json"},
			json: fields(map[string]string{"name": "badge-admin", "builtin": "false", "version": "1", "description": "Badges"})},
		{name: "create as a copy", args: []string{"role", "create", "sales-helpdesk", "--copy-of", "helpdesk", "--user-attribute", "phone"},
			out: []string{"description:", "Copy of helpdesk", "user_attributes:", "phone", "user.reset_password"}},
		{name: "create with comma-separated actions", args: []string{"role", "create", "unlocker", "--action", "directory.read,user.unlock",
			"-o", "json"}, json: func(t *testing.T, s *server, v map[string]any) {
			if a, _ := v["actions"].([]any); len(a) != 2 {
				t.Errorf("actions = %v", v["actions"])
			}
		}},
		{name: "create unknown action", args: []string{"role", "create", "x", "--action", "user.fly"}, code: 1,
			errOut: `actions: unknown action "user.fly" (invalid)`},
		{name: "create unknown attribute", args: []string{"role", "create", "x", "--action", "user.update", "--user-attribute", "shoe"},
			code: 1, errOut: "user_attributes"},
		{name: "create without a name", args: []string{"role", "create"}, code: 1, errOut: "usage: deputy role create NAME"},
		{name: "create denied", as: "bob", args: []string{"role", "create", "mine", "--action", "user.unlock"}, code: 3,
			errOut: "(not_authorized)"},
		{name: "update", args: []string{"role", "update", "badge-admin", "--set", "user_attributes=attributes.badge,phone", "-o", "json"},
			json: func(t *testing.T, s *server, v map[string]any) {
				if a, _ := v["user_attributes"].([]any); len(a) != 2 || get(v, "version") != "2" {
					t.Errorf("after update: %v", v)
				}
			}},
		{name: "update stale", args: []string{"role", "update", "badge-admin", "--set", "description=x", "--if-match", "1"}, code: 1,
			errOut: "stale_version"},
		{name: "update a built-in", args: []string{"role", "update", "helpdesk", "--set", "description=x"}, code: 1,
			errOut: "built-in role and cannot be changed"},
		{name: "listed", args: []string{"role", "list", "-o", "json"},
			json: items("name", "auditor", "badge-admin", "group-owner", "helpdesk", "hr", "manager", "reader", "sa-owner",
				"sales-helpdesk", "tier0-admin", "unlocker")},
		{name: "delete", args: []string{"role", "delete", "unlocker"}, out: []string{"deleted role unlocker"}},
		{name: "delete a built-in", args: []string{"role", "delete", "hr"}, code: 1, errOut: "(conflict)"},
		{name: "get deleted", args: []string{"role", "get", "unlocker"}, code: 1, errOut: "not_found"},
	})
}

func TestAssignCommands(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ids := map[string]string{}
	until := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	s.run(t, []cliCase{
		{name: "setup ou", args: []string{"ou", "create", "corp"}},
		{name: "setup sales", args: []string{"ou", "create", "sales", "--parent", "corp"}},
		{name: "setup vip", args: []string{"ou", "create", "vip", "--parent", "corp/sales"}},
		{name: "setup it", args: []string{"ou", "create", "it", "--parent", "corp"}},
		{name: "setup helen", args: []string{"user", "create", "helen", "--ou", "corp/it"}},
		{name: "setup sam", args: []string{"user", "create", "sam", "--ou", "corp/sales", "--department", "Sales"}},
		{name: "setup vic", args: []string{"user", "create", "vic", "--ou", "corp/sales/vip", "--department", "Sales"}},
		{name: "setup group", args: []string{"group", "create", "it-helpdesk", "--ou", "corp/it"}},
		{name: "setup member", args: []string{"group", "add-member", "it-helpdesk", "helen"}},
		{name: "setup helen's token", args: []string{"user", "token", "helen", "--name", "t", "-o", "json"}, json: saveToken("helen")},
		{name: "setup sam's token", args: []string{"user", "token", "sam", "--name", "t", "-o", "json"}, json: saveToken("sam")},
		// This test is about grants themselves; approvals of grants are TestRequestCommands'.
		{name: "setup: grants need no approval here", args: []string{"policy", "update", "role-assignment", "--disable"}},

		{name: "dry run", args: []string{"assign", "create", "--role", "helpdesk", "--group", "it-helpdesk", "--ou", "corp/sales",
			"--exclude-ou", "corp/sales/vip", "--justification", "Sales helpdesk", "--dry-run"},
			out: []string{"dry run: you may grant helpdesk to group:it-helpdesk over OU corp/sales and below, except OU corp/sales/vip",
				"nothing was granted", "users: 1 (sam)", "OUs: 1 (corp/sales)", "actions: directory.read,user.reset_password"}},
		{name: "dry run json", args: []string{"assign", "create", "--role", "helpdesk", "--user", "helen", "--filter", `department eq "Sales"`,
			"--justification", "x", "--dry-run", "-o", "json"},
			json: fields(map[string]string{"dry_run": "true", "allowed": "true", "unlocks.users.count": "2"})},
		{name: "nothing granted by the dry runs", args: []string{"assign", "list", "--holder", "group:it-helpdesk", "-o", "json"},
			json: items("id")},
		{name: "create", args: []string{"assign", "create", "--role", "helpdesk", "--group", "it-helpdesk", "--ou", "corp/sales",
			"--exclude-ou", "corp/sales/vip", "--until", until, "--can-redelegate", "--justification", "Sales helpdesk", "-o", "json"},
			json: func(t *testing.T, s *server, v map[string]any) {
				saveID(ids, "team")(t, s, v)
				fields(map[string]string{"role": "helpdesk", "holder.name": "it-helpdesk", "holder.type": "group", "scope.ou": "corp/sales",
					"can_redelegate": "true", "justification": "Sales helpdesk", "until": until})(t, s, v)
			}},
		{name: "create table", args: []string{"assign", "create", "--role", "manager", "--user", "sam", "--relation", "direct_reports",
			"--justification", "manages"}, out: []string{"holder:", "sam", "description:", "direct reports", "granted_by:", "root-admin"}},
		{name: "create OU only, eligible", args: []string{"assign", "create", "--role", "hr", "--user", "helen", "--ou", "corp/sales",
			"--no-subtree", "--eligible", "--max-activation", "1h", "--justification", "jit", "-o", "json"},
			json: func(t *testing.T, s *server, v map[string]any) {
				saveID(ids, "jit")(t, s, v)
				fields(map[string]string{"scope.subtree": "false", "eligible": "true", "active": "false", "max_activation": "1h0m0s"})(t, s, v)
			}},
		{name: "create by groups, excluding a group", args: []string{"assign", "create", "--role", "group-owner", "--user", "sam",
			"--groups", "it-helpdesk", "--exclude-group", "it-helpdesk", "--from", "2026-01-01T00:00:00Z", "--justification", "x", "-o", "json"},
			json: fields(map[string]string{"description": "members of it-helpdesk, except members of it-helpdesk", "from": "2026-01-01T00:00:00Z"})},
		{name: "create without a justification", args: []string{"assign", "create", "--role", "helpdesk", "--user", "helen", "--ou", "corp"},
			code: 1, errOut: "justification: is required"},
		{name: "create with two holders", args: []string{"assign", "create", "--role", "helpdesk", "--user", "helen", "--group", "it-helpdesk",
			"--ou", "corp", "--justification", "x"}, code: 1, errOut: "holder: give exactly one of user, group or system (invalid)"},
		{name: "create with two scopes", args: []string{"assign", "create", "--role", "helpdesk", "--user", "helen", "--ou", "corp",
			"--relation", "self", "--justification", "x"}, code: 1, errOut: "scope: give exactly one"},
		{name: "create with a bad time", args: []string{"assign", "create", "--role", "helpdesk", "--user", "helen", "--ou", "corp",
			"--until", "tomorrow", "--justification", "x"}, code: 1, errOut: `--until "tomorrow": want an RFC 3339 time`},
		{name: "create --max-activation without --eligible", args: []string{"assign", "create", "--role", "helpdesk", "--user", "helen",
			"--ou", "corp", "--max-activation", "2h", "--justification", "x"}, code: 1, errOut: "max_activation: applies only to eligible"},
		{name: "create denied", as: "sam", args: []string{"assign", "create", "--role", "helpdesk", "--user", "helen", "--ou", "corp",
			"--justification", "x"}, code: 3, errOut: "(not_authorized)"},
		{name: "dry run denied exits 3", as: "helen", args: []string{"assign", "create", "--role", "hr", "--user", "sam", "--ou", "corp/sales",
			"--justification", "x", "--dry-run"}, code: 3, answer: true, out: []string{"dry run: you may not grant this", "(exceeds_grant)", "users: 1 (sam)"}},
		{name: "redelegate", as: "helen", args: []string{"assign", "create", "--role", "helpdesk", "--user", "sam", "--ou", "corp/sales",
			"--exclude-ou", "corp/sales/vip", "--until", until, "--justification", "backup", "-o", "json"},
			json: func(t *testing.T, s *server, v map[string]any) {
				saveID(ids, "sub")(t, s, v)
				fields(map[string]string{"granted_by.name": "helen"})(t, s, v)
			}},
		{name: "list", args: []string{"assign", "list"},
			out: []string{"ID", "ROLE", "HOLDER", "SCOPE", "group:it-helpdesk", "OU corp/sales and below, except OU corp/sales/vip", "root-admin"}},
		{name: "list by role", args: []string{"assign", "list", "--role", "helpdesk", "-o", "json"}, json: items("holder.name", "it-helpdesk", "sam")},
		{name: "list by holder", args: []string{"assign", "list", "--holder", "helen", "-o", "json"}, json: items("role", "hr")},
		{name: "list one page", args: []string{"assign", "list", "--limit", "2"}, errOut: "(more: --cursor "},
		{name: "list all pages", args: []string{"assign", "list", "--limit", "2", "--all", "-o", "json"},
			json: items("role", "tier0-admin", "helpdesk", "manager", "hr", "group-owner", "helpdesk")},
		{name: "list as a holder: one's own", as: "sam", args: []string{"assign", "list", "-o", "json"},
			json: items("role", "manager", "group-owner", "helpdesk")},
		{name: "list others' denied", as: "sam", args: []string{"assign", "list", "--holder", "helen"}, code: 3, errOut: "not_authorized"},
	})
	// Steps that name the saved IDs.
	s.run(t, []cliCase{
		{name: "get by id", args: []string{"assign", "get", ids["team"]}, out: []string{"holder:", "group:it-helpdesk", "can_redelegate:", "true"}},
		{name: "get json", args: []string{"assign", "get", ids["team"], "-o", "json"}, json: fields(map[string]string{"holder.type": "group"})},
		{name: "the granter reads it", as: "helen", args: []string{"assign", "get", ids["sub"]}, out: []string{"granted_by:", "helen"}},
		{name: "revoke by the holder", as: "sam", args: []string{"assign", "revoke", ids["sub"]}, code: 3, errOut: "(self_escalation)"},
		{name: "revoke stale", as: "helen", args: []string{"assign", "revoke", ids["sub"], "--if-match", "5"}, code: 1, errOut: "stale_version"},
		{name: "revoke by the granter", as: "helen", args: []string{"assign", "revoke", ids["sub"]}, out: []string{"revoked assignment " + ids["sub"]}},
		{name: "revoke again", args: []string{"assign", "revoke", ids["sub"]}, code: 1, errOut: "not_found"},
		{name: "activate by someone else", args: []string{"assign", "activate", ids["jit"], "--justification", "x"}, code: 3,
			errOut: "only the holder"},
		{name: "activate too long", as: "helen", args: []string{"assign", "activate", ids["jit"], "--duration", "3h", "--justification", "x"},
			code: 1, errOut: "duration: is longer than this assignment's maximum activation"},
		{name: "activate without a justification", as: "helen", args: []string{"assign", "activate", ids["jit"]}, code: 1,
			errOut: "justification: is required"},
		{name: "activate", as: "helen", args: []string{"assign", "activate", ids["jit"], "--duration", "30m", "--justification", "INC-7", "-o", "json"},
			json: fields(map[string]string{"active": "true", "version": "2"})},
		{name: "activate a non-eligible one", as: "helen", args: []string{"assign", "activate", ids["team"], "--justification", "x"},
			code: 1, errOut: "not eligible"},
		{name: "revoke by tier-0", args: []string{"assign", "revoke", ids["jit"]}, out: []string{"revoked assignment"}},
	})
}

func TestAuthzCommands(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.run(t, []cliCase{
		{name: "setup ou", args: []string{"ou", "create", "corp"}},
		{name: "setup sales", args: []string{"ou", "create", "sales", "--parent", "corp"}},
		{name: "setup finance", args: []string{"ou", "create", "finance", "--parent", "corp"}},
		{name: "setup helen", args: []string{"user", "create", "helen", "--ou", "corp"}},
		{name: "setup mona", args: []string{"user", "create", "mona", "--ou", "corp/sales"}},
		{name: "setup sam", args: []string{"user", "create", "sam", "--ou", "corp/sales", "--manager", "mona"}},
		{name: "setup fred", args: []string{"user", "create", "fred", "--ou", "corp/finance"}},
		{name: "setup audrey", args: []string{"user", "create", "audrey", "--ou", "corp"}},
		{name: "setup crm", args: []string{"group", "create", "crm-users", "--ou", "corp/sales"}},
		{name: "setup helpdesk", args: []string{"assign", "create", "--role", "helpdesk", "--user", "helen", "--ou", "corp/sales",
			"--justification", "x"}},
		{name: "setup auditor", args: []string{"assign", "create", "--role", "auditor", "--user", "audrey", "--ou", "/", "--justification", "x"}},
		{name: "setup tokens helen", args: []string{"user", "token", "helen", "--name", "t", "-o", "json"}, json: saveToken("helen")},
		{name: "setup tokens audrey", args: []string{"user", "token", "audrey", "--name", "t", "-o", "json"}, json: saveToken("audrey")},

		// check
		{name: "check allowed", as: "helen", args: []string{"authz", "check", "--action", "user.update", "--attribute", "phone", "--target", "sam"},
			out: []string{"allowed: helen user.update of phone on user sam (assignment "}},
		{name: "check denied exits 3", as: "helen", args: []string{"authz", "check", "--action", "user.update", "--attribute", "email",
			"--target", "sam"}, code: 3, answer: true,
			out: []string{"denied: helen user.update of email on user sam: helen holds no assignment that allows user.update of email", "(not_authorized)"}},
		{name: "check a create", as: "helen", args: []string{"authz", "check", "--action", "user.create", "--target", "corp/sales"},
			code: 3, answer: true, out: []string{"denied: helen user.create in OU corp/sales"}},
		{name: "check json", as: "helen", args: []string{"authz", "check", "--action", "directory.read", "--target", "crm-users",
			"--type", "group", "-o", "json"}, json: fields(map[string]string{"allow": "true", "target.name": "crm-users"})},
		{name: "check json denied", as: "helen", args: []string{"authz", "check", "--action", "user.update", "--target", "fred", "-o", "json"},
			code: 3, answer: true, json: fields(map[string]string{"allow": "false", "reason": "not_authorized"})},
		{name: "check a member", as: "helen", args: []string{"authz", "check", "--action", "group.add_member", "--target", "crm-users",
			"--member", "helen"}, code: 3, answer: true, out: []string{"(self_escalation)"}},
		{name: "check for another, as an auditor", as: "audrey", args: []string{"authz", "check", "--actor", "helen", "--action", "user.update",
			"--target", "sam"}, out: []string{"allowed: helen user.update on user sam"}},
		{name: "check for another, denied", as: "helen", args: []string{"authz", "check", "--actor", "audrey", "--action", "user.update",
			"--target", "sam"}, code: 3, errOut: "(not_authorized)"},
		{name: "check without --action", args: []string{"authz", "check", "--target", "sam"}, code: 1, errOut: `"action" not set`},
		{name: "check unknown target", args: []string{"authz", "check", "--action", "user.update", "--target", "ghost"}, code: 1,
			errOut: "target:"},

		// who-can
		{name: "who-can", as: "audrey", args: []string{"authz", "who-can", "--action", "user.update", "--attribute", "phone", "--target", "sam"},
			out: []string{"USER", "AUTHORITY", "root-admin", "rule tier0-admin", "helen", "assignment "}},
		{name: "who-can json", args: []string{"authz", "who-can", "--action", "directory.read", "--target", "sam", "-o", "json"},
			json: items("actor.name", "root-admin", "audrey", "helen", "sam")},
		{name: "who-can paged", args: []string{"authz", "who-can", "--action", "directory.read", "--target", "sam", "--limit", "1", "--all", "-o", "json"},
			json: items("actor.name", "root-admin", "audrey", "helen", "sam")},
		{name: "who-can denied", as: "helen", args: []string{"authz", "who-can", "--action", "user.update", "--target", "sam"}, code: 3,
			errOut: "(not_authorized)"},

		// can-what
		{name: "can-what", as: "helen", args: []string{"authz", "can-what"},
			out: []string{"TYPE", "NAME", "ACTIONS", "user  sam", "directory.read,user.reset_password,user.unlock,user.update", "helen"}},
		{name: "can-what json", as: "helen", args: []string{"authz", "can-what", "--type", "ou", "-o", "json"}, json: items("object.name", "corp/sales")},
		{name: "can-what for another", as: "audrey", args: []string{"authz", "can-what", "--actor", "helen", "--type", "group", "-o", "json"},
			json: items("object.name", "crm-users")},
		{name: "can-what paged", as: "helen", args: []string{"authz", "can-what", "--limit", "1", "--all", "-o", "json"},
			json: items("object.name", "helen", "mona", "sam")},
		{name: "can-what stream", as: "helen", args: []string{"authz", "can-what", "--stream"},
			out: []string{"TYPE", "user  helen", "directory.read,user.change_password,user.enrol_mfa,user.issue_token,user.revoke_tokens", "user  sam"}},
		{name: "can-what stream and all", args: []string{"authz", "can-what", "--stream", "--all"}, code: 1, errOut: "not both"},
		{name: "can-what stream and cursor", args: []string{"authz", "can-what", "--stream", "--cursor", "abc"}, code: 1, errOut: "--cursor is for pages"},
		{name: "can-what stream denied", as: "helen", args: []string{"authz", "can-what", "--actor", "audrey", "--stream"}, code: 3,
			errOut: "(not_authorized)"},
		{name: "can-what bad type", args: []string{"authz", "can-what", "--type", "robot"}, code: 1, errOut: "type:"},

		// escalations
		{name: "no escalations", args: []string{"authz", "escalations"}, out: []string{"no escalation paths"}},
		{name: "setup a manager relation", args: []string{"assign", "create", "--role", "manager", "--user", "mona",
			"--relation", "direct_reports", "--justification", "x"}},
		{name: "setup HR", args: []string{"assign", "create", "--role", "hr", "--user", "fred", "--ou", "corp", "--justification", "x"}},
		{name: "escalations", as: "audrey", args: []string{"authz", "escalations"},
			out: []string{"VIA", "SETS", "GAINS", "fred: hr over OU corp and below", "manager", "mona: manager over direct reports"}},
		{name: "escalations json", args: []string{"authz", "escalations", "-o", "json"}, json: items("attribute", "manager")},
		{name: "escalations denied", as: "helen", args: []string{"authz", "escalations"}, code: 3, errOut: "(not_authorized)"},
	})

	// --stream -o json prints one object per line, as the server streams them.
	env := map[string]string{"DEPUTY_SERVER": s.url, "DEPUTY_TOKEN": s.tokens["helen"]}
	code, out, errOut := deputy(t, env, "", "authz", "can-what", "--stream", "-o", "json")
	if code != 0 {
		t.Fatalf("can-what --stream -o json: exit %d: %s", code, errOut)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var it struct {
			Object  struct{ Name string }
			Actions []string
		}
		if err := json.Unmarshal([]byte(line), &it); err != nil || len(it.Actions) == 0 {
			t.Fatalf("line %q: %v", line, err)
		}
		names = append(names, it.Object.Name)
	}
	slices.Sort(names) // a stream comes in no particular order
	if strings.Join(names, ",") != "helen,mona,sam" {
		t.Errorf("streamed %v", names)
	}
}
