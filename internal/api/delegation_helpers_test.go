package api_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
)

// orgEnv is a small organisation for delegation tests, built as the admin:
//
//	corp/sales:      sam (Sales, reports to mona), sue (Sales), mona (Sales), pat (Sales, protected)
//	corp/sales/vip:  vic (Sales)
//	corp/finance:    fred (Finance), ivan (Finance, reports to dora)
//	corp/it:         helen (IT), dora (IT)
//	corp/hr:         hank (HR)
//	corp:            audrey
//
// Groups: crm-users {sam} and sales-team {sue, vic} in corp/sales, vips {vic} in corp/sales/vip,
// it-helpdesk {helen} in corp/it. Service account crm-sync in corp/sales, owned by mona. Every
// user but pat has an API token under their name; ids holds every object's ID by name.
func orgEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	for _, ou := range []map[string]any{{"name": "corp"}, {"name": "sales", "parent": "corp"},
		{"name": "vip", "parent": "corp/sales"}, {"name": "finance", "parent": "corp"}, {"name": "it", "parent": "corp"},
		{"name": "hr", "parent": "corp"}} {
		e.must(http.StatusCreated, "POST", "/api/v1/ous", ou)
	}
	for _, u := range []map[string]any{
		{"username": "mona", "ou": "corp/sales", "department": "Sales"},
		{"username": "sam", "ou": "corp/sales", "department": "Sales", "manager": "mona"},
		{"username": "sue", "ou": "corp/sales", "department": "Sales"},
		{"username": "pat", "ou": "corp/sales", "department": "Sales", "protected": true},
		{"username": "vic", "ou": "corp/sales/vip", "department": "Sales"},
		{"username": "fred", "ou": "corp/finance", "department": "Finance"},
		{"username": "dora", "ou": "corp/it", "department": "IT"},
		{"username": "ivan", "ou": "corp/finance", "department": "Finance", "manager": "dora"},
		{"username": "helen", "ou": "corp/it", "department": "IT"},
		{"username": "hank", "ou": "corp/hr", "department": "HR"},
		{"username": "audrey", "ou": "corp"},
	} {
		name := u["username"].(string)
		e.ids[name] = str(e.must(http.StatusCreated, "POST", "/api/v1/users", u), "id")
		if name != "pat" {
			e.tokenFor(name)
		}
	}
	for _, g := range []struct {
		name, ou string
		members  []string
	}{
		{"crm-users", "corp/sales", []string{"sam"}}, {"sales-team", "corp/sales", []string{"sue", "vic"}},
		{"vips", "corp/sales/vip", []string{"vic"}}, {"it-helpdesk", "corp/it", []string{"helen"}},
	} {
		e.ids[g.name] = str(e.must(http.StatusCreated, "POST", "/api/v1/groups", map[string]any{"name": g.name, "ou": g.ou}), "id")
		for _, m := range g.members {
			e.must(http.StatusCreated, "POST", "/api/v1/groups/"+g.name+"/members", map[string]any{"member": m})
		}
	}
	e.ids["crm-sync"] = str(e.must(http.StatusCreated, "POST", "/api/v1/service-accounts",
		map[string]any{"name": "crm-sync", "ou": "corp/sales", "owners": []string{"mona"}}), "id")
	return e
}

// salesUsers are the users in corp/sales and below.
var salesUsers = []string{"mona", "pat", "sam", "sue", "vic"}

// grant creates an assignment as the admin and returns its ID.
func (e *env) grant(body map[string]any) string {
	e.t.Helper()
	if _, ok := body["justification"]; !ok {
		body["justification"] = "test"
	}
	id := str(e.must(http.StatusCreated, "POST", "/api/v1/assignments", body), "id")
	if id == "" {
		e.t.Fatalf("assignment created without an id")
	}
	return id
}

// revoke revokes an assignment as the admin.
func (e *env) revoke(id string) {
	e.t.Helper()
	e.must(http.StatusNoContent, "DELETE", "/api/v1/assignments/"+id, nil)
}

// visibleUsers lists, sorted, the usernames as lists them to who.
func (e *env) visibleUsers(who string) []string {
	e.t.Helper()
	r := e.do(request{Method: "GET", Path: "/api/v1/users?limit=1000", As: who})
	if r.Status != http.StatusOK {
		e.t.Fatalf("GET /api/v1/users as %s: %d %s", who, r.Status, r.Body)
	}
	return namesOf(r.Items(e.t))
}

// checkAs asks GET /api/v1/authz/check as who and returns the decision.
func (e *env) checkAs(who string, kv ...string) map[string]any {
	e.t.Helper()
	r := e.do(request{Method: "GET", Path: q("/api/v1/authz/check", kv...), As: who})
	if r.Status != http.StatusOK {
		e.t.Fatalf("authz check %v as %s: %d %s", kv, who, r.Status, r.Body)
	}
	return r.JSON(e.t)
}

// wantItems checks that a list answer's items have exactly want at path (sorted).
func wantItems(path string, want ...string) func(t *testing.T, e *env, r *response) {
	return func(t *testing.T, e *env, r *response) {
		t.Helper()
		var got []string
		for _, it := range r.Items(t) {
			got = append(got, str(it, path))
		}
		slices.Sort(got)
		w := slices.Clone(want)
		for i := range w {
			w[i] = e.expand(w[i])
		}
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Errorf("items' %s = %v, want %v (body %s)", path, got, w, r.Body)
		}
	}
}

// deniedRecorded checks a 403 whose problem carries reason and points at the audit event that
// records the denial, by actor on action.
func deniedRecorded(reason, actor, action string) func(t *testing.T, e *env, r *response) {
	return func(t *testing.T, e *env, r *response) {
		t.Helper()
		p := r.Problem(t)
		if p.Code != reason {
			t.Errorf("code = %q, want %q", p.Code, reason)
		}
		if p.Event == nil {
			t.Fatalf("the denial names no audit event: %s", r.Body)
		}
		ev := e.get("/api/v1/audit/events/" + url.PathEscape(str(r.JSON(t), "event")))
		for path, want := range map[string]string{"outcome": "denied", "reason": reason, "actor.name": actor, "action": action} {
			if got := str(ev, path); got != want {
				t.Errorf("denial event %s = %q, want %q: %v", path, got, want, ev)
			}
		}
	}
}
