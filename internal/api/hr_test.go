package api_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// hrRules is a small rule set: Sales people live in corp/sales and are in sales-all; everyone
// else lives in corp.
var hrRules = map[string]any{
	"default_ou": "corp",
	"rules": []any{map[string]any{"name": "sales", "when": `department eq "Sales"`, "ou": "corp/sales",
		"groups": []string{"sales-all"}}},
}

const hrHeader = "employee_id,given_name,family_name,email,department,title,manager_id,location,employment_type,start_date,end_date,status,cost_center\n"

// hrFeed is two people who started long ago: Ada in Sales, Bob in Engineering.
const hrFeed = hrHeader +
	"E1,Ada,Lovelace,ada@example.com,Sales,Account Executive,,Berlin,employee,2020-01-06,,active,CC-1\n" +
	"E2,Bob,Smith,bob@example.com,Engineering,Engineer,E1,Remote,employee,2020-02-03,,active,CC-2\n"

// postFeed sends a feed to the import endpoint as who ("" is the admin).
func (e *env) postFeed(who, query, contentType, body string) *response {
	e.t.Helper()
	hr, err := http.NewRequest("POST", e.srv.URL+"/api/v1/hr/imports"+query, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		hr.Header.Set("Content-Type", contentType)
	}
	if who == "" {
		who = "admin"
	}
	hr.Header.Set("Authorization", "Bearer "+e.tokens[who])
	resp, err := e.srv.Client().Do(hr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// planUsernames lists the usernames of a run answer's plan, in plan order.
func planUsernames(t *testing.T, m map[string]any) []string {
	t.Helper()
	plan, _ := m["plan"].(map[string]any)
	people, _ := plan["people"].([]any)
	var out []string
	for _, p := range people {
		out = append(out, str(p.(map[string]any), "username"))
	}
	return out
}

// TestHROverHTTP: a tier-0 admin sets the rules and sets up what they need, dry-runs a feed
// (nothing changes), imports it (the users exist, placed and grouped by the rules), is refused
// a feed with a bad row (422 naming the line) and a mass leaver feed (409) unless allowed;
// others may read the rules but not import, list runs or read the residual-access report.
func TestHROverHTTP(t *testing.T) {
	e := newEnv(t)
	e.newUser("stan", nil)
	e.tokenFor("stan")

	// Rules: anyone reads them, only a tier-0 admin changes them.
	if rs := e.do(request{Method: "GET", Path: "/api/v1/lifecycle/rules", As: "stan"}); rs.Status != 200 ||
		str(rs.JSON(t), "default_ou") != "/" {
		t.Fatalf("rules before any are set: %d %s", rs.Status, rs.Body)
	}
	if r := e.do(request{Method: "PUT", Path: "/api/v1/lifecycle/rules", As: "stan", Body: hrRules}); r.Status != http.StatusForbidden ||
		r.Problem(t).Code != "not_authorized" || r.Header.Get("Deputy-Audit-Event") == "" {
		t.Fatalf("a delegate sets the rules: %d %v %s", r.Status, r.Header, r.Body)
	}
	if r := e.do(request{Method: "PUT", Path: "/api/v1/lifecycle/rules", Body: map[string]any{"rulez": []any{}}}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("an unknown field: %d %s", r.Status, r.Body)
	}
	bad := map[string]any{"rules": []any{map[string]any{"name": "x", "when": `department eq`}}}
	if r := e.do(request{Method: "PUT", Path: "/api/v1/lifecycle/rules", Body: bad}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("a filter that does not parse: %d %s", r.Status, r.Body)
	}
	if r := e.postFeed("", "?dry_run=true", "text/csv", hrFeed); r.Status != http.StatusConflict || r.Problem(t).Code != "no_rules" {
		t.Fatalf("an import before any rules are set: %d %s", r.Status, r.Body)
	}
	rs := e.must(200, "PUT", "/api/v1/lifecycle/rules", hrRules)
	if str(rs, "default_ou") != "corp" || str(rs, "retention_days") != "30" || str(rs, "mover_manual_access") != "keep" {
		t.Fatalf("stored rules: %v", rs)
	}

	// Setup creates the OUs, the group, the lifecycle role and system:lifecycle's assignment.
	if r := e.do(request{Method: "POST", Path: "/api/v1/hr/setup", As: "stan"}); r.Status != http.StatusForbidden {
		t.Fatalf("a delegate runs setup: %d %s", r.Status, r.Body)
	}
	setup := e.do(request{Method: "POST", Path: "/api/v1/hr/setup"})
	if setup.Status != 200 {
		t.Fatalf("setup: %d %s", setup.Status, setup.Body)
	}
	var actions []string
	for _, it := range setup.Items(t) {
		if str(it, "event") == "" || str(it, "target.type") == "" {
			t.Errorf("setup item without an event or target: %v", it)
		}
		actions = append(actions, str(it, "action"))
	}
	for _, want := range []string{"ou.create", "group.create", "role.create", "role.assign"} {
		if !slices.Contains(actions, want) {
			t.Errorf("setup applied %v, want a %s", actions, want)
		}
	}
	if again := e.do(request{Method: "POST", Path: "/api/v1/hr/setup"}); again.Status != 200 || len(again.Items(t)) != 0 {
		t.Fatalf("setup again: %d %s", again.Status, again.Body)
	}
	e.get("/api/v1/ous/corp%2Fsales")
	e.get("/api/v1/groups/sales-all")

	// A dry run plans two joiners and changes nothing.
	dry := e.postFeed("", "?dry_run=true&filename=day1.csv", "text/csv", hrFeed)
	if dry.Status != 200 {
		t.Fatalf("dry run: %d %s", dry.Status, dry.Body)
	}
	m := dry.JSON(t)
	if str(m, "run.dry_run") != "true" || str(m, "run.state") != "planned" || str(m, "run.source") != "day1.csv" ||
		len(str(m, "run.sha256")) != 64 || str(m, "plan.totals.joiner") != "2" {
		t.Fatalf("dry run answer: %s", dry.Body)
	}
	users := planUsernames(t, m)
	if !slices.Equal(users, []string{"ada.lovelace", "bob.smith"}) {
		t.Fatalf("planned usernames %v", users)
	}
	if problems, ok := m["problems"].([]any); !ok || len(problems) != 0 {
		t.Fatalf("problems of a clean feed: %v", m["problems"])
	}
	if r := e.do(request{Method: "GET", Path: "/api/v1/users/ada.lovelace"}); r.Status != http.StatusNotFound {
		t.Fatalf("a dry run created a user: %d %s", r.Status, r.Body)
	}

	// The real import creates both, placed and grouped by the rules.
	real := e.postFeed("", "", "text/csv; charset=utf-8", hrFeed)
	if real.Status != 200 {
		t.Fatalf("import: %d %s", real.Status, real.Body)
	}
	if m := real.JSON(t); str(m, "run.state") != "done" || str(m, "run.applied") != "2" || str(m, "run.source") != "api" {
		t.Fatalf("import answer: %s", real.Body)
	}
	ada := e.get("/api/v1/users/ada.lovelace")
	if str(ada, "employee_id") != "E1" || !strings.HasSuffix(str(ada, "ou"), "corp/sales") {
		t.Errorf("ada: %v", ada)
	}
	bob := e.get("/api/v1/users/bob.smith")
	if str(bob, "manager") != "ada.lovelace" || !strings.HasSuffix(str(bob, "ou"), "corp") {
		t.Errorf("bob: %v", bob)
	}
	members := e.do(request{Method: "GET", Path: "/api/v1/groups/sales-all/members"}).Items(t)
	if len(members) != 1 {
		t.Errorf("sales-all members: %v", members)
	}

	// The same feed as JSON changes nothing.
	js := `{"people": [{"employee_id": "E1", "given_name": "Ada", "family_name": "Lovelace", "email": "ada@example.com",
		"department": "Sales", "title": "Account Executive", "location": "Berlin", "employment_type": "employee",
		"start_date": "2020-01-06", "status": "active", "cost_center": "CC-1"},
		{"employee_id": "E2", "given_name": "Bob", "family_name": "Smith", "email": "bob@example.com", "department": "Engineering",
		"title": "Engineer", "manager_id": "E1", "location": "Remote", "employment_type": "employee", "start_date": "2020-02-03",
		"status": "active", "cost_center": "CC-2"}]}`
	if r := e.postFeed("", "?dry_run=true", "application/json", js); r.Status != 200 || str(r.JSON(t), "plan.ops") != "0" ||
		str(r.JSON(t), "plan.totals.unchanged") != "2" {
		t.Fatalf("the same feed as JSON: %d %s", r.Status, r.Body)
	}

	// A bad row stops the feed, naming its line; skip_invalid applies the rest.
	badFeed := hrFeed + ",Carl,Jones,carl@example.com,Sales,Rep,,Berlin,employee,2020-03-02,,active,CC-1\n"
	r := e.postFeed("", "", "text/csv", badFeed)
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("bad row: %d %s", r.Status, r.Body)
	}
	p := r.Problem(t)
	if msg, ok := p.fieldNamed("line 4: employee_id"); p.Code != "invalid_feed" || !ok || msg != "is required" ||
		!strings.Contains(p.Detail, "1 invalid rows") {
		t.Fatalf("bad row problem: %s", r.Body)
	}
	if r := e.postFeed("", "?skip_invalid=true&dry_run=true", "text/csv", badFeed); r.Status != 200 ||
		len(r.JSON(t)["problems"].([]any)) != 1 {
		t.Fatalf("skip_invalid: %d %s", r.Status, r.Body)
	}

	// Malformed requests.
	for _, c := range []struct {
		query, ct, body string
		status          int
		field           string
	}{
		{"?mapping=nosuch=x", "text/csv", hrFeed, 422, "mapping"},
		{"?mapping=employee_id=id", "application/json", js, 422, "mapping"},
		{"?dry_run=yes", "text/csv", hrFeed, 422, "dry_run"},
		{"", "text/csv", "", 422, "body"},
		{"?mapping=employee_id=worker", "text/csv", hrFeed, 422, "body"},
		{"", "application/json", `{"people": [{"employe_id": "E1"}]}`, 422, "body"},
		{"", "text/plain", hrFeed, 415, ""},
	} {
		r := e.postFeed("", c.query, c.ct, c.body)
		if r.Status != c.status {
			t.Errorf("%s %s: %d, want %d: %s", c.query, c.ct, r.Status, c.status, r.Body)
			continue
		}
		if c.field != "" {
			if _, ok := r.Problem(t).fieldNamed(c.field); !ok {
				t.Errorf("%s %s: the problem does not name %s: %s", c.query, c.ct, c.field, r.Body)
			}
		}
	}

	// Only a tier-0 admin imports, even a dry run; the refusal is recorded.
	if r := e.postFeed("stan", "?dry_run=true", "text/csv", hrFeed); r.Status != http.StatusForbidden ||
		r.Problem(t).Code != "not_authorized" || r.Header.Get("Deputy-Audit-Event") == "" {
		t.Fatalf("a delegate imports: %d %s", r.Status, r.Body)
	}
	if evs := e.events(map[string][]string{"action": {"lifecycle.import"}, "outcome": {"denied"}}); len(evs) != 1 {
		t.Fatalf("the refused import is not recorded: %v", evs)
	}
	for _, path := range []string{"/api/v1/hr/runs", "/api/v1/reports/residual-access"} {
		if r := e.do(request{Method: "GET", Path: path, As: "stan"}); r.Status != http.StatusForbidden {
			t.Errorf("%s as a delegate: %d %s", path, r.Status, r.Body)
		}
	}
	if r := e.do(request{Method: "POST", Path: "/api/v1/hr/recompute", As: "stan"}); r.Status != http.StatusForbidden {
		t.Errorf("a delegate recomputes: %d %s", r.Status, r.Body)
	}

	// Ada (Bob's manager) leaves: one of four active users is more than 5%, so it needs allow_mass_change.
	leaver := strings.Replace(hrFeed, "2020-01-06,,active", "2020-01-06,2021-01-01,terminated", 1)
	if r := e.postFeed("", "", "text/csv", leaver); r.Status != http.StatusConflict || r.Problem(t).Code != "mass_change" {
		t.Fatalf("mass change: %d %s", r.Status, r.Body)
	}
	if r := e.postFeed("", "?allow_mass_change=true", "text/csv", leaver); r.Status != 200 || str(r.JSON(t), "plan.totals.leaver:manager") != "1" {
		t.Fatalf("allowed mass change: %d %s", r.Status, r.Body)
	}
	if ada := e.get("/api/v1/users/ada.lovelace"); str(ada, "status") == "active" {
		t.Errorf("the leaver is active: %v", ada)
	}
	if res := e.do(request{Method: "GET", Path: "/api/v1/reports/residual-access"}); res.Status != 200 || len(res.Items(t)) != 0 {
		t.Fatalf("residual access: %d %s", res.Status, res.Body)
	}

	// Recompute finds nothing to do; the runs are listed newest first.
	if r := e.do(request{Method: "POST", Path: "/api/v1/hr/recompute?dry_run=true"}); r.Status != 200 ||
		str(r.JSON(t), "plan.ops") != "0" || str(r.JSON(t), "run.source") != "recompute" {
		t.Fatalf("recompute: %d %s", r.Status, r.Body)
	}
	runs := e.do(request{Method: "GET", Path: "/api/v1/hr/runs?limit=50"})
	items := runs.Items(t)
	if runs.Status != 200 || len(items) < 6 || str(items[0], "source") != "recompute" || str(items[0], "dry_run") != "true" {
		t.Fatalf("runs: %d %s", runs.Status, runs.Body)
	}
	if r := e.do(request{Method: "GET", Path: "/api/v1/hr/runs?limit=0"}); r.Status != http.StatusUnprocessableEntity {
		t.Errorf("limit 0: %d %s", r.Status, r.Body)
	}
}
