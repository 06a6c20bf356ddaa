package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAssignmentScopes grants each kind of scope in turn and checks the assignment as the API
// renders it and what it lets its holder see.
func TestAssignmentScopes(t *testing.T) {
	t.Parallel()
	e := orgEnv(t)
	for _, c := range []struct {
		name    string
		as      string // whose view of /users is checked
		holder  map[string]any
		scope   map[string]any
		exclude map[string]any
		want    map[string]string // fields of the assignment as answered
		sees    []string
	}{
		{name: "OU subtree", as: "dora", holder: map[string]any{"user": "dora"}, scope: map[string]any{"ou": "corp/sales"},
			want: map[string]string{"scope.ou": "corp/sales", "scope.subtree": "true", "description": "OU corp/sales and below"},
			sees: append(slices.Clone(salesUsers), "dora")},
		{name: "OU only", as: "dora", holder: map[string]any{"user": "dora"}, scope: map[string]any{"ou": "corp/sales", "subtree": false},
			want: map[string]string{"scope.subtree": "false", "description": "OU corp/sales"},
			sees: []string{"dora", "mona", "pat", "sam", "sue"}},
		{name: "OU by ID", as: "dora", holder: map[string]any{"user": "{dora}"}, scope: map[string]any{"ou": "{root}"},
			want: map[string]string{"scope.ou": "/", "holder.name": "dora"},
			sees: []string{"admin", "audrey", "dora", "fred", "hank", "helen", "ivan", "mona", "pat", "sam", "sue", "vic"}},
		{name: "OU with an OU excluded", as: "dora", holder: map[string]any{"user": "dora"}, scope: map[string]any{"ou": "corp/sales"},
			exclude: map[string]any{"ou": "corp/sales/vip"},
			want:    map[string]string{"description": "OU corp/sales and below, except OU corp/sales/vip"},
			sees:    []string{"dora", "mona", "pat", "sam", "sue"}},
		{name: "OU with a group excluded", as: "dora", holder: map[string]any{"user": "dora"}, scope: map[string]any{"ou": "corp/sales"},
			exclude: map[string]any{"groups": []string{"crm-users", "vips"}},
			want:    map[string]string{"description": "OU corp/sales and below, except members of crm-users, except members of vips"},
			sees:    []string{"dora", "mona", "pat", "sue"}},
		{name: "groups", as: "dora", holder: map[string]any{"user": "dora"}, scope: map[string]any{"groups": []string{"sales-team", "crm-users"}},
			want: map[string]string{"description": "members of crm-users, sales-team"},
			sees: []string{"dora", "sam", "sue", "vic"}},
		{name: "groups with a group excluded", as: "dora", holder: map[string]any{"user": "dora"},
			scope: map[string]any{"groups": []string{"sales-team"}}, exclude: map[string]any{"group": "vips"},
			sees: []string{"dora", "sue"}},
		{name: "filter", as: "dora", holder: map[string]any{"user": "dora"}, scope: map[string]any{"filter": `department eq "finance"`},
			want: map[string]string{"scope.filter": `department eq "finance"`, "description": `objects matching department eq "finance"`},
			sees: []string{"dora", "fred", "ivan"}},
		{name: "filter with an OU excluded", as: "dora", holder: map[string]any{"user": "dora"},
			scope: map[string]any{"filter": `department eq "Sales"`}, exclude: map[string]any{"ous": []string{"corp/sales/vip"}},
			sees: []string{"dora", "mona", "pat", "sam", "sue"}},
		{name: "direct reports", as: "dora", holder: map[string]any{"user": "dora"}, scope: map[string]any{"relation": "direct_reports"},
			want: map[string]string{"scope.relation": "direct_reports", "description": "direct reports"},
			sees: []string{"dora", "ivan"}},
		{name: "self", as: "dora", holder: map[string]any{"user": "dora"}, scope: map[string]any{"relation": "self"},
			sees: []string{"dora"}},
		{name: "held by a group", as: "helen", holder: map[string]any{"group": "it-helpdesk"}, scope: map[string]any{"ou": "corp/finance"},
			want: map[string]string{"holder.type": "group", "holder.name": "it-helpdesk", "holder.id": "{it-helpdesk}"},
			sees: []string{"fred", "helen", "ivan"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer e.with(t)()
			body := map[string]any{"role": "helpdesk", "holder": e.expandValue(c.holder), "scope": e.expandValue(c.scope),
				"justification": "scope test"}
			if c.exclude != nil {
				body["exclude"] = c.exclude
			}
			r := e.do(request{Method: "POST", Path: "/api/v1/assignments", Body: body})
			if r.Status != http.StatusCreated {
				t.Fatalf("create: %d %s", r.Status, r.Body)
			}
			a := r.JSON(t)
			id := str(a, "id")
			wantHeader("Location", "/api/v1/assignments/"+id)(t, e, r)
			want := map[string]string{"role": "helpdesk", "granted_by.name": "admin", "justification": "scope test",
				"active": "true", "eligible": "false", "can_redelegate": "false", "version": "1"}
			for k, v := range c.want {
				want[k] = v
			}
			wantJSON(want)(t, e, r)
			if c.exclude != nil && a["exclude"] == nil {
				t.Errorf("the answer lost the exclusion: %s", r.Body)
			}
			if got := e.visibleUsers(c.as); !sameSet(got, c.sees) {
				t.Errorf("%s sees %v, want %v", c.as, got, c.sees)
			}
			// The assignment reads back as it was answered.
			if got := e.get("/api/v1/assignments/" + id); str(got, "description") != str(a, "description") {
				t.Errorf("read back %v, created %v", got, a)
			}
			e.revoke(id)
			if r := e.do(request{Method: "GET", Path: "/api/v1/users", As: c.as}); r.Status != http.StatusForbidden {
				t.Errorf("after the revocation %s lists users: %d %s", c.as, r.Status, r.Body)
			}
		})
	}
}

// TestAssignmentValidation checks that every invalid assignment is refused naming the field,
// as a grant and as a dry run, and that nothing is granted.
func TestAssignmentValidation(t *testing.T) {
	t.Parallel()
	e := orgEnv(t)
	valid := func(change map[string]any) map[string]any {
		b := map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "helen"},
			"scope": map[string]any{"ou": "corp/sales"}, "justification": "tickets"}
		for k, v := range change {
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
		}
		return b
	}
	past, future := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	cases := []struct {
		name   string
		body   any
		fields []string
	}{
		{"empty", map[string]any{}, []string{"role", "holder", "justification"}},
		{"unknown role", valid(map[string]any{"role": "wizard"}), []string{"role"}},
		{"no holder", valid(map[string]any{"holder": map[string]any{}}), []string{"holder"}},
		{"two holders", valid(map[string]any{"holder": map[string]any{"user": "helen", "group": "it-helpdesk"}}), []string{"holder"}},
		{"unknown user", valid(map[string]any{"holder": map[string]any{"user": "ghost"}}), []string{"holder"}},
		{"unknown group", valid(map[string]any{"holder": map[string]any{"group": "ghosts"}}), []string{"holder"}},
		{"no justification", valid(map[string]any{"justification": "  "}), []string{"justification"}},
		{"long justification", valid(map[string]any{"justification": strings.Repeat("x", 2001)}), []string{"justification"}},
		{"no scope", valid(map[string]any{"scope": map[string]any{}}), []string{"scope"}},
		{"two scopes", valid(map[string]any{"scope": map[string]any{"ou": "corp", "relation": "self"}}), []string{"scope"}},
		{"unknown OU", valid(map[string]any{"scope": map[string]any{"ou": "corp/nowhere"}}), []string{"scope.ou"}},
		{"subtree without OU", valid(map[string]any{"scope": map[string]any{"relation": "self", "subtree": true}}), []string{"scope.subtree"}},
		{"unknown scope group", valid(map[string]any{"scope": map[string]any{"groups": []string{"crm-users", "ghosts"}}}), []string{"scope.groups"}},
		{"bad filter", valid(map[string]any{"scope": map[string]any{"filter": `shoe_size gt 40`}}), []string{"scope.filter"}},
		{"unknown relation", valid(map[string]any{"scope": map[string]any{"relation": "friends"}}), []string{"scope.relation"}},
		{"unknown excluded OU", valid(map[string]any{"exclude": map[string]any{"ou": "corp/nowhere"}}), []string{"exclude.ou"}},
		{"unknown excluded group", valid(map[string]any{"exclude": map[string]any{"groups": []string{"ghosts"}}}), []string{"exclude.group"}},
		{"until before from", valid(map[string]any{"from": future, "until": past}), []string{"until"}},
		{"until in the past", valid(map[string]any{"until": past}), []string{"until"}},
		{"max_activation without eligible", valid(map[string]any{"max_activation": "2h"}), []string{"max_activation"}},
		{"max_activation not a duration", valid(map[string]any{"eligible": true, "max_activation": "2 days"}), []string{"max_activation"}},
		{"max_activation too long", valid(map[string]any{"eligible": true, "max_activation": "169h"}), []string{"max_activation"}},
		{"max_activation too short", valid(map[string]any{"eligible": true, "max_activation": "30s"}), []string{"max_activation"}},
		{"unknown field", valid(map[string]any{"colour": "red"}), []string{"colour"}},
	}
	var sc []scenario
	for _, c := range cases {
		for _, path := range []string{"/api/v1/assignments", "/api/v1/assignments?dry_run=true"} {
			fields := c.fields
			sc = append(sc, scenario{name: c.name + " " + path, req: request{Method: "POST", Path: path, Body: c.body},
				status: 422, code: "invalid", field: fields[0], check: func(t *testing.T, e *env, r *response) {
					p := r.Problem(t)
					for _, f := range fields {
						if _, ok := p.fieldNamed(f); !ok {
							t.Errorf("errors[] names %v, want %q", p.fields(), f)
						}
					}
				}})
		}
	}
	e.runUnchanged(t, sc)
	if items := e.do(request{Method: "GET", Path: "/api/v1/assignments?holder=helen"}).Items(t); len(items) != 0 {
		t.Errorf("refused assignments were granted: %v", items)
	}
	// A failed grant is recorded as failed, naming why.
	evs := e.events(url.Values{"action": {"role.assign"}, "outcome": {"failed"}})
	if len(evs) == 0 || str(evs[0], "reason") != "invalid" {
		t.Errorf("failed grants are not recorded as failed/invalid: %v", evs)
	}
}

// TestAssignmentDryRun checks that a dry run answers whether the caller may grant and what the
// grant would unlock, and grants nothing.
func TestAssignmentDryRun(t *testing.T) {
	t.Parallel()
	e := orgEnv(t)
	body := map[string]any{"role": "helpdesk", "holder": map[string]any{"group": "it-helpdesk"},
		"scope": map[string]any{"ou": "corp/sales"}, "exclude": map[string]any{"ou": "corp/sales/vip"}, "justification": "preview"}
	before := e.do(request{Method: "GET", Path: "/api/v1/audit/events?limit=1"}).Items(t)

	r := e.do(request{Method: "POST", Path: "/api/v1/assignments?dry_run=true", Body: body})
	if r.Status != http.StatusOK {
		t.Fatalf("dry run: %d %s", r.Status, r.Body)
	}
	p := r.JSON(t)
	wantJSON(map[string]string{"dry_run": "true", "allowed": "true", "decision.allow": "true", "decision.action": "role.assign",
		"decision.authority.rule": "tier0-admin", "assignment.role": "helpdesk", "assignment.holder.name": "it-helpdesk",
		"assignment.description": "OU corp/sales and below, except OU corp/sales/vip", "unlocks.users.count": "4",
		"unlocks.groups.count": "2", "unlocks.service_accounts.count": "1", "unlocks.ous.count": "1"})(t, e, r)
	wantStrings("actions", "directory.read", "user.reset_password", "user.unlock", "user.update")(t, e, r)
	unlocks := p["unlocks"].(map[string]any)
	for kind, want := range map[string][]string{"users": {"mona", "pat", "sam", "sue"}, "groups": {"crm-users", "sales-team"},
		"service_accounts": {"crm-sync"}, "ous": {"corp/sales"}} {
		var got []string
		for _, s := range unlocks[kind].(map[string]any)["sample"].([]any) {
			got = append(got, s.(string))
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("unlocks.%s.sample = %v, want %v", kind, got, want)
		}
	}

	// Nothing was granted, and nothing recorded.
	if got := e.get("/api/v1/assignments?holder=it-helpdesk"); len(got["items"].([]any)) != 0 {
		t.Errorf("a dry run granted: %v", got)
	}
	gone("/api/v1/assignments/"+str(p, "assignment.id"))(t, e, r)
	if after := e.do(request{Method: "GET", Path: "/api/v1/audit/events?limit=1"}).Items(t); str(after[0], "index") != str(before[0], "index") {
		t.Errorf("a dry run wrote audit event %v", after[0])
	}
	if r := e.do(request{Method: "GET", Path: "/api/v1/users", As: "helen"}); r.Status != http.StatusForbidden {
		t.Errorf("after a dry run helen lists users: %d %s", r.Status, r.Body)
	}

	// A large scope is sampled: count all, show ten.
	r = e.do(request{Method: "POST", Path: "/api/v1/assignments?dry_run=1", Body: map[string]any{"role": "auditor",
		"holder": map[string]any{"user": "audrey"}, "scope": map[string]any{"ou": "/"}, "justification": "x"}})
	wantJSON(map[string]string{"unlocks.users.count": "12", "unlocks.ous.count": "7", "allowed": "true"})(t, e, r)
	if n := len(r.JSON(t)["unlocks"].(map[string]any)["users"].(map[string]any)["sample"].([]any)); n != 10 {
		t.Errorf("a sample of %d users, want 10", n)
	}

	// Someone who may not grant it learns why; what it would unlock is counted among what they
	// may read, here nothing.
	r = e.do(request{Method: "POST", Path: "/api/v1/assignments?dry_run=true", As: "helen", Body: map[string]any{
		"role": "auditor", "holder": map[string]any{"user": "dora"}, "scope": map[string]any{"ou": "/"}, "justification": "x"}})
	if r.Status != http.StatusOK {
		t.Fatalf("dry run by helen: %d %s", r.Status, r.Body)
	}
	wantJSON(map[string]string{"allowed": "false", "decision.allow": "false", "decision.reason": "not_authorized",
		"decision.actor.name": "helen", "unlocks.users.count": "0", "unlocks.ous.count": "0", "unlocks.groups.count": "0"})(t, e, r)

	// A delegate's preview counts what they may read: helen, helpdesk over corp/sales, sees Sales
	// and herself of the whole directory.
	e.grant(map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "helen"}, "scope": map[string]any{"ou": "corp/sales"}})
	r = e.do(request{Method: "POST", Path: "/api/v1/assignments?dry_run=true", As: "helen", Body: map[string]any{
		"role": "auditor", "holder": map[string]any{"user": "sam"}, "scope": map[string]any{"ou": "/"}, "justification": "x"}})
	wantJSON(map[string]string{"allowed": "false", "decision.reason": "exceeds_grant", "unlocks.users.count": "6",
		"unlocks.ous.count": "2", "unlocks.groups.count": "3", "unlocks.service_accounts.count": "1"})(t, e, r)
	if evs := e.events(url.Values{"actor": {"helen"}, "action": {"role.assign"}}); len(evs) != 0 {
		t.Errorf("a dry run recorded %v", evs)
	}
}

// TestAssignmentRevoke checks who may revoke: a tier-0 admin and whoever granted it, nobody
// else, and never the holder.
func TestAssignmentRevoke(t *testing.T) {
	t.Parallel()
	e := orgEnv(t)
	e.ids["lead"] = e.grant(map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "helen"},
		"scope": map[string]any{"ou": "corp/sales"}, "can_redelegate": true})
	e.run(t, []scenario{
		{name: "redelegate", req: request{Method: "POST", Path: "/api/v1/assignments", As: "helen", Body: map[string]any{
			"role": "helpdesk", "holder": map[string]any{"user": "sam"}, "scope": map[string]any{"ou": "corp/sales/vip"},
			"justification": "backup"}},
			status: 201, save: "sub", check: wantJSON(map[string]string{"granted_by.name": "helen", "holder.name": "sam"})},
		{name: "the holder reads it", req: request{Method: "GET", Path: "/api/v1/assignments/{sub}", As: "sam"}, status: 200,
			check: wantHeader("ETag", `"1"`)},
		{name: "the granter reads it", req: request{Method: "GET", Path: "/api/v1/assignments/{sub}", As: "helen"}, status: 200},
		{name: "others do not", req: request{Method: "GET", Path: "/api/v1/assignments/{sub}", As: "fred"}, status: 403,
			check: deniedRecorded("not_authorized", "fred", "audit.read")},
		{name: "unknown to others is a 403 too", req: request{Method: "GET", Path: "/api/v1/assignments/01a22260-5259-713a-8598-40b240fa5e27",
			As: "fred"}, status: 403, code: "not_authorized"},
		{name: "unknown", req: request{Method: "GET", Path: "/api/v1/assignments/01a22260-5259-713a-8598-40b240fa5e27"},
			status: 404, code: "not_found"},
		{name: "the holder lists their own", req: request{Method: "GET", Path: "/api/v1/assignments", As: "sam"}, status: 200,
			check: wantItems("id", "{sub}")},
		{name: "the holder may not list others'", req: request{Method: "GET", Path: "/api/v1/assignments?holder=helen", As: "sam"},
			status: 403, code: "not_authorized"},
		{name: "nor learn who exists", req: request{Method: "GET", Path: "/api/v1/assignments?holder=ghost", As: "sam"},
			status: 403, code: "not_authorized"},
		{name: "the admin lists by holder", req: request{Method: "GET", Path: "/api/v1/assignments?holder=user:helen"}, status: 200,
			check: wantItems("id", "{lead}")},
		{name: "the admin lists by role", req: request{Method: "GET", Path: "/api/v1/assignments?role=HELPDESK"}, status: 200,
			check: wantItems("id", "{lead}", "{sub}")},
		{name: "an unknown holder", req: request{Method: "GET", Path: "/api/v1/assignments?holder=ghost"}, status: 422, field: "holder"},
		{name: "a bad limit", req: request{Method: "GET", Path: "/api/v1/assignments?limit=0"}, status: 422, field: "limit"},
		{name: "someone else may not revoke", req: request{Method: "DELETE", Path: "/api/v1/assignments/{sub}", As: "fred"},
			status: 403, check: deniedRecorded("not_authorized", "fred", "role.revoke")},
		{name: "nor the holder", req: request{Method: "DELETE", Path: "/api/v1/assignments/{sub}", As: "sam"},
			status: 403, check: deniedRecorded("self_escalation", "sam", "role.revoke")},
		{name: "the granter revokes a stale version", req: request{Method: "DELETE", Path: "/api/v1/assignments/{sub}", As: "helen",
			Header: map[string]string{"If-Match": `"7"`}}, status: 409, code: "stale_version"},
		{name: "the granter revokes", req: request{Method: "DELETE", Path: "/api/v1/assignments/{sub}", As: "helen",
			Header: map[string]string{"If-Match": `"1"`}}, status: 204,
			check: gone("/api/v1/assignments/{sub}")},
		{name: "revoke stale", req: request{Method: "DELETE", Path: "/api/v1/assignments/{lead}",
			Header: map[string]string{"If-Match": `"2"`}}, status: 409, code: "stale_version"},
		{name: "tier-0 revokes", req: request{Method: "DELETE", Path: "/api/v1/assignments/{lead}"}, status: 204},
		{name: "revoke again", req: request{Method: "DELETE", Path: "/api/v1/assignments/{lead}"}, status: 404, code: "not_found"},
		{name: "find the admin's tier-0", req: request{Method: "GET", Path: "/api/v1/assignments?role=tier0-admin"}, status: 200,
			check: func(t *testing.T, e *env, r *response) { e.ids["t0"] = str(r.Items(t)[0], "id") }},
		{name: "nobody revokes their own", req: request{Method: "DELETE", Path: "/api/v1/assignments/{t0}"}, status: 403,
			check: deniedRecorded("self_escalation", "admin", "role.revoke")},
		{name: "a second tier-0 admin", req: request{Method: "POST", Path: "/api/v1/assignments", Body: map[string]any{
			"role": "tier0-admin", "holder": map[string]any{"user": "audrey"}, "scope": map[string]any{"ou": "/"},
			"justification": "second admin"}}, status: 201},
		{name: "another tier-0 admin may", req: request{Method: "DELETE", Path: "/api/v1/assignments/{t0}", As: "audrey"}, status: 204},
	})
	// The trail tells who revoked what (read by audrey: the admin is no longer one).
	r := e.do(request{Method: "GET", Path: q("/api/v1/audit/events", "action", "role.revoke", "outcome", "applied"), As: "audrey"})
	evs := r.Items(t)
	if len(evs) != 3 || str(evs[2], "actor.name") != "helen" || str(evs[2], "authority.rule") != "granter" ||
		str(evs[1], "actor.name") != "admin" || str(evs[0], "actor.name") != "audrey" {
		t.Errorf("applied revocations: %v", evs)
	}
}

// TestAssignmentActivate checks eligible (just-in-time) assignments: they grant nothing until
// their holder activates them, for at most their max_activation, and only the holder may.
func TestAssignmentActivate(t *testing.T) {
	t.Parallel()
	e := orgEnv(t)
	e.ids["jit"] = e.grant(map[string]any{"role": "hr", "holder": map[string]any{"user": "hank"},
		"scope": map[string]any{"ou": "corp/hr"}, "eligible": true, "max_activation": "1h"})
	e.ids["team"] = e.grant(map[string]any{"role": "helpdesk", "holder": map[string]any{"group": "it-helpdesk"},
		"scope": map[string]any{"ou": "corp/sales"}})
	e.ids["always"] = e.grant(map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "dora"},
		"scope": map[string]any{"ou": "corp/sales"}})
	e.ids["default"] = e.grant(map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "helen"},
		"scope": map[string]any{"ou": "corp/hr"}, "eligible": true})
	mayCreate := func(want string) func(t *testing.T, e *env, r *response) {
		return func(t *testing.T, e *env, r *response) {
			t.Helper()
			if d := e.checkAs("hank", "action", "user.create", "target", "corp/hr"); str(d, "allow") != want {
				t.Errorf("hank may create users in corp/hr: %v, want %s", d, want)
			}
		}
	}
	activate := func(id, as string, body any) request {
		return request{Method: "POST", Path: "/api/v1/assignments/{" + id + "}/activate", As: as, Body: body}
	}
	var activatedAt time.Time
	e.run(t, []scenario{
		{name: "eligible, not active", req: request{Method: "GET", Path: "/api/v1/assignments/{jit}"}, status: 200,
			check: all(wantJSON(map[string]string{"eligible": "true", "active": "false", "max_activation": "1h0m0s", "active_until": ""}),
				mayCreate("false"))},
		{name: "default max activation", req: request{Method: "GET", Path: "/api/v1/assignments/{default}"}, status: 200,
			check: wantJSON(map[string]string{"max_activation": "8h0m0s"})},
		{name: "not by the admin", req: activate("jit", "", map[string]any{"justification": "x"}), status: 403,
			check: deniedRecorded("not_authorized", "admin", "role.activate")},
		{name: "not by someone else", req: activate("jit", "fred", map[string]any{"justification": "x"}), status: 403, code: "not_authorized"},
		{name: "unknown field", req: activate("jit", "hank", map[string]any{"justification": "x", "hours": 2}), status: 422, field: "hours"},
		{name: "longer than max_activation", req: activate("jit", "hank", map[string]any{"duration": "2h", "justification": "x"}),
			status: 422, field: "duration", check: all(messageNames("duration", "1h0m0s"), mayCreate("false"))},
		{name: "not a duration", req: activate("jit", "hank", map[string]any{"duration": "soon", "justification": "x"}),
			status: 422, field: "duration"},
		{name: "without a justification", req: activate("jit", "hank", map[string]any{"duration": "10m"}),
			status: 422, field: "justification"},
		{name: "an assignment that is always active", req: activate("always", "dora", map[string]any{"justification": "x"}),
			status: 409, code: "conflict", check: detailNames("not eligible")},
		{name: "by the holder", req: activate("jit", "hank", map[string]any{"duration": "30m", "justification": "incident HR-7"}),
			status: 200, check: func(t *testing.T, e *env, r *response) {
				activatedAt = time.Now()
				wantJSON(map[string]string{"active": "true", "version": "2"})(t, e, r)
				wantHeader("ETag", `"2"`)(t, e, r)
				until, err := time.Parse(time.RFC3339Nano, str(r.JSON(t), "active_until"))
				if err != nil || until.Before(activatedAt.Add(29*time.Minute)) || until.After(activatedAt.Add(31*time.Minute)) {
					t.Errorf("active_until = %q, want about 30 minutes from now", str(r.JSON(t), "active_until"))
				}
				mayCreate("true")(t, e, r)
				if d := e.checkAs("hank", "action", "user.create", "target", "corp/hr"); !strings.Contains(string(mustJSON(t, d["authority"])), e.ids["jit"]) {
					t.Errorf("the allow does not rest on the activated assignment: %v", d)
				}
			}},
		{name: "the activation is recorded with its reason", req: request{Method: "GET",
			Path: q("/api/v1/audit/events", "action", "role.activate", "outcome", "applied")}, status: 200,
			check: func(t *testing.T, e *env, r *response) {
				evs := r.Items(t)
				if len(evs) != 1 || str(evs[0], "actor.name") != "hank" || str(evs[0], "justification") != "incident HR-7" ||
					str(evs[0], "authority.rule") != "holder" {
					t.Errorf("activation events: %v", evs)
				}
			}},
		{name: "the holder activates for the maximum by default", req: activate("jit", "hank", map[string]any{"justification": "again"}),
			status: 200, check: func(t *testing.T, e *env, r *response) {
				until, _ := time.Parse(time.RFC3339Nano, str(r.JSON(t), "active_until"))
				if d := time.Until(until); d < 59*time.Minute || d > time.Hour {
					t.Errorf("active for %s, want the 1h maximum", d)
				}
			}},
		{name: "an eligible assignment is one user's, not a group's", req: request{Method: "POST", Path: "/api/v1/assignments",
			Body: map[string]any{"role": "helpdesk", "holder": map[string]any{"group": "it-helpdesk"}, "scope": map[string]any{"ou": "corp/sales"},
				"eligible": true, "justification": "x"}}, status: 422, code: "invalid", field: "eligible"},
		{name: "a member of the holding group holds it", req: request{Method: "GET", Path: "/api/v1/users", As: "helen"},
			status: 200, check: func(t *testing.T, e *env, r *response) {
				if got := e.visibleUsers("helen"); !sameSet(got, append(slices.Clone(salesUsers), "helen")) {
					t.Errorf("helen sees %v", got)
				}
			}},
		{name: "a member reads the group's assignment", req: request{Method: "GET", Path: "/api/v1/assignments/{team}", As: "helen"},
			status: 200},
		{name: "and lists it among hers", req: request{Method: "GET", Path: "/api/v1/assignments", As: "helen"}, status: 200,
			check: wantItems("id", "{team}", "{default}")},
		{name: "a holder lists their own, by role", req: request{Method: "GET", Path: "/api/v1/assignments?role=hr&holder=hank", As: "hank"},
			status: 200, check: wantItems("id", "{jit}")},
		{name: "not a non-member", req: activate("team", "dora", map[string]any{"justification": "x"}), status: 403, code: "not_authorized"},
		{name: "activate nothing", req: request{Method: "POST", Path: "/api/v1/assignments/01a22260-5259-713a-8598-40b240fa5e27/activate",
			As: "hank", Body: map[string]any{"justification": "x"}}, status: 403, code: "not_authorized"},
	})
}

// TestScopedReads checks that a delegate reads what their scope covers and nothing else, and
// that a refused read is recorded.
func TestScopedReads(t *testing.T) {
	t.Parallel()
	e := orgEnv(t)
	e.grant(map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "helen"}, "scope": map[string]any{"ou": "corp/sales"}})
	e.run(t, []scenario{
		{name: "users in scope, and oneself", req: request{Method: "GET", Path: "/api/v1/users", As: "helen"}, status: 200,
			check: wantNames(append(slices.Clone(salesUsers), "helen")...)},
		{name: "a filter narrows the scope, never widens it", req: request{Method: "GET",
			Path: q("/api/v1/users", "filter", `department eq "Finance" or department eq "Sales"`), As: "helen"}, status: 200,
			check: wantNames(salesUsers...)},
		{name: "OUs in scope", req: request{Method: "GET", Path: "/api/v1/ous", As: "helen"}, status: 200,
			check: wantItems("path", "corp/sales", "corp/sales/vip")},
		{name: "groups in scope", req: request{Method: "GET", Path: "/api/v1/groups", As: "helen"}, status: 200,
			check: wantNames("crm-users", "sales-team", "vips")},
		{name: "service accounts in scope", req: request{Method: "GET", Path: "/api/v1/service-accounts", As: "helen"}, status: 200,
			check: wantNames("crm-sync")},
		{name: "a user in scope", req: request{Method: "GET", Path: "/api/v1/users/sam", As: "helen"}, status: 200},
		{name: "a protected user in scope may be read", req: request{Method: "GET", Path: "/api/v1/users/pat", As: "helen"}, status: 200,
			check: wantJSON(map[string]string{"protected": "true"})},
		{name: "a Finance user is refused", req: request{Method: "GET", Path: "/api/v1/users/fred", As: "helen"}, status: 403,
			check: func(t *testing.T, e *env, r *response) {
				deniedRecorded("not_authorized", "helen", "directory.read")(t, e, r)
				ev := e.get("/api/v1/audit/events/" + r.Header.Get("Deputy-Audit-Event"))
				if str(ev, "target.name") != "fred" || str(ev, "target.id") != e.ids["fred"] {
					t.Errorf("the denial does not name fred: %v", ev)
				}
			}},
		{name: "a group out of scope", req: request{Method: "GET", Path: "/api/v1/groups/it-helpdesk", As: "helen"}, status: 403,
			code: "not_authorized"},
		{name: "an OU out of scope", req: request{Method: "GET", Path: "/api/v1/ous/corp%2Ffinance", As: "helen"}, status: 403,
			code: "not_authorized"},
		{name: "members of a group in scope", req: request{Method: "GET", Path: "/api/v1/groups/sales-team/members", As: "helen"},
			status: 200, check: wantNames("sue", "vic")},
		{name: "one's own record", req: request{Method: "GET", Path: "/api/v1/users/helen", As: "helen"}, status: 200},
		{name: "nothing to read: a list is refused", req: request{Method: "GET", Path: "/api/v1/users", As: "fred"}, status: 403,
			check: deniedRecorded("not_authorized", "fred", "directory.read")},
		{name: "nothing to read: a missing user is refused too", req: request{Method: "GET", Path: "/api/v1/users/ghost", As: "fred"},
			status: 403, code: "not_authorized"},
		{name: "with a read right a missing user is a 404", req: request{Method: "GET", Path: "/api/v1/users/ghost", As: "helen"},
			status: 404, code: "not_found"},
		{name: "a change in scope", req: request{Method: "PATCH", Path: "/api/v1/users/sam", As: "helen",
			Body: map[string]any{"phone": "+1 555 0100"}}, status: 200, check: wantJSON(map[string]string{"phone": "+1 555 0100"})},
		{name: "a change out of scope", req: request{Method: "PATCH", Path: "/api/v1/users/fred", As: "helen",
			Body: map[string]any{"phone": "+1 555 0100"}}, status: 403, check: deniedRecorded("not_authorized", "helen", "user.update")},
		{name: "invalid input in scope is named", req: request{Method: "PATCH", Path: "/api/v1/users/sam", As: "helen",
			Body: map[string]any{"phone": "+1\u0007"}}, status: 422, code: "invalid", field: "phone"},
		{name: "a stale version in scope", req: request{Method: "PATCH", Path: "/api/v1/users/sam", As: "helen",
			Header: map[string]string{"If-Match": `"1"`}, Body: map[string]any{"phone": "+1 555 0101"}}, status: 409, code: "stale_version"},
		{name: "an attribute the role does not name", req: request{Method: "PATCH", Path: "/api/v1/users/sam", As: "helen",
			Body: map[string]any{"department": "Finance"}}, status: 403, code: "not_authorized", check: detailNames("department")},
	})
}

// sameSet reports whether got and want hold the same strings, in any order.
func sameSet(got, want []string) bool {
	a, b := slices.Clone(got), slices.Clone(want)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
