package cli_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestRequestCommands: with the default policies from `deputy init`, a delegate's add-member to
// a group that holds an assignment exits 4 naming the request; the group's owner sees it in
// `request list` and approves it; the sole admin's own gated grants applied as break-glass and
// are listed for review.
func TestRequestCommands(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.run(t, []cliCase{
		{name: "olga", args: []string{"user", "create", "olga", "--ou", "/"}},
		{name: "olga token", args: []string{"user", "token", "olga", "--name", "t", "-o", "json"}, json: saveToken("olga")},
		{name: "helen", args: []string{"user", "create", "helen", "--ou", "/"}},
		{name: "helen token", args: []string{"user", "token", "helen", "--name", "t", "-o", "json"}, json: saveToken("helen")},
		{name: "carl", args: []string{"user", "create", "carl", "--ou", "/"}},
		{name: "group", args: []string{"group", "create", "payroll", "--ou", "/", "--owner", "olga"}},
		{name: "privileged", args: []string{"assign", "create", "--role", "reader", "--group", "payroll", "--ou", "/", "--justification", "payroll reads"}},
		{name: "delegate", args: []string{"assign", "create", "--role", "group-owner", "--user", "helen", "--ou", "/", "--justification", "desk"}},
		{name: "policies", args: []string{"policy", "list"}, out: []string{"privileged-group-membership", "delegation-configuration", "user-deletion"}},
	})
	env := func(who string) map[string]string {
		return map[string]string{"DEPUTY_SERVER": s.url, "DEPUTY_TOKEN": s.tokens[who]}
	}
	code, out, errOut := deputy(t, env("helen"), "", "group", "add-member", "payroll", "carl", "--justification", "carl joins payroll")
	if code != 4 || out != "" || !strings.Contains(errOut, "sent for approval: request ") {
		t.Fatalf("gated add-member: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	id := regexp.MustCompile(`request ([0-9a-f-]{36})`).FindStringSubmatch(errOut)[1]
	s.run(t, []cliCase{
		{name: "inbox", as: "olga", args: []string{"request", "list"}, out: []string{id, "open", "group.add_member", "payroll", "helen", "1/1"}},
		{name: "show", as: "olga", args: []string{"request", "show", id, "-o", "json"}, json: fields(map[string]string{"state": "open",
			"can_decide": "true", "justification": "carl joins payroll"})},
		{name: "self-approval", as: "helen", args: []string{"request", "approve", id}, code: 3, errOut: "separation_of_duties"},
		{name: "reject needs a comment", as: "olga", args: []string{"request", "reject", id}, code: 1, errOut: "comment"},
		{name: "approve", as: "olga", args: []string{"request", "approve", id, "--comment", "ok"}, out: []string{"is applied"}},
		{name: "again", as: "olga", args: []string{"request", "approve", id}, code: 1, errOut: "request_closed"},
		{name: "member", args: []string{"group", "members", "payroll"}, out: []string{"carl"}},
		{name: "break-glass to review", args: []string{"request", "list", "--view", "all", "--state", "unreviewed", "-o", "json"},
			json: func(t *testing.T, s *server, v map[string]any) {
				if list, _ := v["items"].([]any); len(list) < 2 {
					t.Errorf("unreviewed break-glass changes: %v", v)
				}
			}},
		{name: "disable a policy", args: []string{"policy", "update", "privileged-group-membership", "--disable"}, out: []string{"version 2"}},
		{name: "not a delegate's", as: "helen", args: []string{"policy", "delete", "user-deletion"}, code: 3, errOut: "tier-0"},
	})
}

// TestInitPolicies: init with a policy file that does not parse creates nothing; one that
// parses but names what does not exist keeps the admin's token on stdout.
func TestInitPolicies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := dir + "/bad.yaml"
	unknown := dir + "/unknown.yaml"
	if err := os.WriteFile(bad, []byte("policies:\n  - name: x\n    actons: [user.move]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(unknown, []byte("policies:\n  - name: x\n    actions: [user.move]\n    when: {ou: nowhere}\n"+
		"    stages: [{approvers: [{kind: authorized}]}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := dir + "/data"
	code, out, errOut := deputy(t, nil, "", "init", "--data", data, "--policies", bad, "--log-level", "error")
	if code != 1 || out != "" || !strings.Contains(errOut, "unknown field") {
		t.Fatalf("init with a broken file: exit %d, %q, %q", code, out, errOut)
	}
	if _, err := os.Stat(data + "/deputy.db"); err == nil {
		t.Fatal("a broken policy file left a database behind")
	}
	code, out, errOut = deputy(t, nil, "", "init", "--data", data, "--policies", unknown, "--log-level", "error")
	if code != 1 || !strings.Contains(out, "API token (shown once): dpy_") || !strings.Contains(errOut, "there is no OU") {
		t.Fatalf("init with an unknown OU: exit %d, %q, %q", code, out, errOut)
	}
}
