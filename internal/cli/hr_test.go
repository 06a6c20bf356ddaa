package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	hrRulesYAML = "default_ou: corp\nrules:\n  - name: sales\n    when: department eq \"Sales\"\n    ou: corp/sales\n    groups: [sales-all]\n"
	hrHeader    = "employee_id,given_name,family_name,email,department,title,manager_id,location,employment_type,start_date,end_date,status,cost_center\n"
	hrFeedCSV   = hrHeader +
		"E1,Ada,Lovelace,ada@example.com,Sales,Account Executive,,Berlin,employee,2020-01-06,,active,CC-1\n" +
		"E2,Bob,Smith,bob@example.com,Engineering,Engineer,E1,Remote,employee,2020-02-03,,active,CC-2\n"
	hrFeedJSON = `{"people": [
		{"employee_id": "E1", "given_name": "Ada", "family_name": "Lovelace", "email": "ada@example.com", "department": "Sales",
		 "title": "Account Executive", "location": "Berlin", "employment_type": "employee", "start_date": "2020-01-06",
		 "status": "active", "cost_center": "CC-1"},
		{"employee_id": "E2", "given_name": "Bob", "family_name": "Smith", "email": "bob@example.com", "department": "Engineering",
		 "title": "Engineer", "manager_id": "E1", "location": "Remote", "employment_type": "employee", "start_date": "2020-02-03",
		 "status": "active", "cost_center": "CC-2"}]}`
)

// writeFiles writes name -> content into a temporary directory and returns its path.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestHRCommands: rules set from YAML (a typo fails before anything is sent), setup, a dry run
// printed as a plan that changes nothing, the import, the same feed as JSON on stdin changing
// nothing, a leaver that needs --allow-mass-change, runs, and the residual-access report (with
// --fail-if-any once someone disabled by hand keeps a group).
func TestHRCommands(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	dir := writeFiles(t, map[string]string{
		"rules.yaml": hrRulesYAML,
		"typo.yaml":  "rules:\n  - name: sales\n    grups: [sales-all]\n",
		"day1.csv":   hrFeedCSV,
		"day2.csv":   strings.Replace(hrFeedCSV, "2020-01-06,,active", "2020-01-06,2021-01-01,terminated", 1),
	})
	file := func(name string) string { return filepath.Join(dir, name) }
	s.run(t, []cliCase{
		{name: "stan", args: []string{"user", "create", "stan", "--ou", "/"}},
		{name: "stan token", args: []string{"user", "token", "stan", "--name", "t", "-o", "json"}, json: saveToken("stan")},
		{name: "rules typo", args: []string{"hr", "rules", "set", file("typo.yaml")}, code: 1, errOut: `unknown field "grups"`},
		{name: "rules by a delegate", as: "stan", args: []string{"hr", "rules", "set", file("rules.yaml")}, code: 3, errOut: "not_authorized"},
		{name: "rules set", args: []string{"hr", "rules", "set", file("rules.yaml")}, out: []string{"rules set: 1 rules (sales)"}},
		{name: "rules get", as: "stan", args: []string{"hr", "rules", "get"}, out: []string{`"default_ou": "corp"`, `"retention_days": 30`}},
		{name: "setup by a delegate", as: "stan", args: []string{"hr", "setup"}, code: 3, errOut: "only a tier-0 admin"},
		{name: "setup", args: []string{"hr", "setup"}, out: []string{"ou.create", "group.create", "sales-all", "role.create", "role.assign"}},
		{name: "setup again", args: []string{"hr", "setup"}, out: []string{"nothing to set up"}},
		{name: "dry run", args: []string{"hr", "import", file("day1.csv"), "--dry-run"}, out: []string{
			"+ E1 ada.lovelace (joiner)\n", "  + user.create ada.lovelace  # joiner: starts 2020-01-06; placed by rule sales\n",
			"  + group.add_member sales-all  # birthright group sales-all (rule sales)\n", "+ E2 bob.smith (joiner)\n",
			"Plan: 2 joiner; 3 ops\n", "Dry run: run "}},
		{name: "nothing created", args: []string{"user", "get", "ada.lovelace"}, code: 1, errOut: "not_found"},
		{name: "import by a delegate", as: "stan", args: []string{"hr", "import", file("day1.csv"), "--dry-run"}, code: 3, errOut: "not_authorized"},
		{name: "import", args: []string{"hr", "import", file("day1.csv")}, out: []string{"Plan: 2 joiner; 3 ops", "2 people applied, 0 failed"}},
		{name: "created", args: []string{"user", "get", "ada.lovelace", "-o", "json"}, json: fields(map[string]string{"ou": "corp/sales", "employee_id": "E1"})},
		{name: "same feed as JSON on stdin", args: []string{"hr", "import", "-", "--dry-run"}, stdin: hrFeedJSON, out: []string{"Plan: 2 unchanged; 0 ops"}},
		{name: "json output", args: []string{"hr", "import", file("day1.csv"), "-o", "json"},
			json: fields(map[string]string{"run.state": "done", "run.source": "day1.csv", "plan.ops": "0", "plan.totals.unchanged": "2"})},
		{name: "mass change", args: []string{"hr", "import", file("day2.csv")}, code: 1, errOut: "(mass_change)"},
		{name: "leaver", args: []string{"hr", "import", file("day2.csv"), "--allow-mass-change"}, out: []string{
			"- E1 ada.lovelace (leaver:manager)\n", "  - user.disable ada.lovelace  # leaver: terminated, last day 2021-01-01\n",
			"  - group.remove_member sales-all", "~ E2 bob.smith (manager-change)\n", `    manager: "ada.lovelace" -> ""`,
			"Plan: 1 manager-change, 1 leaver:manager; 4 ops", "2 people applied"}},
		{name: "recompute", args: []string{"hr", "recompute", "--dry-run"}, out: []string{"; 0 ops", "Dry run: run "}},
		{name: "runs", args: []string{"hr", "runs"}, out: []string{"recompute", "day2.csv", "day1.csv", "STOPPED", "mass"}},
		{name: "runs by a delegate", as: "stan", args: []string{"hr", "runs"}, code: 3},
		{name: "no residual access", args: []string{"report", "residual-access", "--fail-if-any"}, out: []string{"no residual access"}},
		{name: "residual by a delegate", as: "stan", args: []string{"report", "residual-access"}, code: 3},
		{name: "carl", args: []string{"user", "create", "carl", "--ou", "/"}},
		{name: "carl in sales-all", args: []string{"group", "add-member", "sales-all", "carl"}},
		{name: "carl disabled", args: []string{"user", "disable", "carl"}},
		{name: "residual", args: []string{"report", "residual-access"}, out: []string{"USERNAME", "carl", "member of group sales-all"}},
		{name: "residual fails", args: []string{"report", "residual-access", "--fail-if-any"}, code: 1, answer: true, out: []string{"carl"}},
		{name: "residual json", args: []string{"report", "residual-access", "-o", "json"}, json: items("username", "carl")},
	})
}

// TestHRImportInvalidFeed: a feed with bad rows prints each on stdout, one a line, and fails
// with a single line on stderr; nothing is applied.
func TestHRImportInvalidFeed(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	dir := writeFiles(t, map[string]string{"rules.yaml": hrRulesYAML, "bad.csv": hrFeedCSV +
		",Carl,Jones,carl@example.com,Sales,Rep,,Berlin,employee,2020-03-02,,active,CC-1\n" +
		"E4,Dan,Brown,dan@example.com,Sales,Rep,,Berlin,employee,2020-13-02,,active,CC-1\n"})
	env := map[string]string{"DEPUTY_SERVER": s.url, "DEPUTY_TOKEN": s.tokens["admin"]}
	code, out, errOut := deputy(t, env, "", "hr", "import", filepath.Join(dir, "bad.csv"))
	if code != 1 || out != "" || !strings.Contains(errOut, "no rules are set") || !strings.Contains(errOut, "(no_rules)") {
		t.Fatalf("an import before any rules are set: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _, errOut := deputy(t, env, "", "hr", "rules", "set", filepath.Join(dir, "rules.yaml")); code != 0 {
		t.Fatalf("rules set: exit %d: %s", code, errOut)
	}
	code, out, errOut = deputy(t, env, "", "hr", "import", filepath.Join(dir, "bad.csv"))
	if code != 1 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out != "line 4: employee_id: is required\nline 5: start_date: is not a date in the form YYYY-MM-DD: \"2020-13-02\"\n" {
		t.Errorf("stdout %q", out)
	}
	if lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n"); len(lines) != 1 ||
		!strings.HasPrefix(errOut, "deputy: 2 invalid rows: nothing applied") || !strings.Contains(errOut, "(invalid_feed)") {
		t.Errorf("stderr %q", errOut)
	}
	code, out, _ = deputy(t, env, "", "hr", "import", filepath.Join(dir, "bad.csv"), "--skip-invalid", "--dry-run")
	if code != 0 || !strings.Contains(out, "skipped: line 4: employee_id: is required\n") || !strings.Contains(out, "Plan: 2 joiner;") {
		t.Errorf("--skip-invalid: exit %d, stdout %q", code, out)
	}
	if code, _, errOut := deputy(t, env, "", "hr", "import", filepath.Join(dir, "bad.csv"), "--mapping", "employee_id=worker"); code != 1 ||
		!strings.Contains(errOut, `lacks column "worker"`) {
		t.Errorf("a mapping naming no column: exit %d, stderr %q", code, errOut)
	}
}
