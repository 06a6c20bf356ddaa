package api_test

import (
	"context"
	"net/http"
	"testing"
)

// TestApprovalsOverHTTP walks a request through the API with the shipped default policies: a
// delegate adds someone to a group that holds an assignment, the answer is 202 with the
// request, its owner sees it waiting and approves, a replay is a conflict, a stranger cannot
// see it, and policies are read by anyone but changed only by a tier-0 admin.
func TestApprovalsOverHTTP(t *testing.T) {
	e := newEnv(t)
	if err := e.app.PreparePolicies(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"olga", "helen", "carl", "stan"} {
		e.newUser(u, nil)
		e.tokenFor(u)
	}
	e.must(201, "POST", "/api/v1/groups", map[string]any{"name": "payroll", "ou": "/", "owners": []string{"olga"}})
	e.must(201, "POST", "/api/v1/assignments", map[string]any{"role": "reader", "holder": map[string]any{"group": "payroll"},
		"scope": map[string]any{"ou": "/"}, "justification": "payroll reads"})
	e.must(201, "POST", "/api/v1/assignments", map[string]any{"role": "group-owner", "holder": map[string]any{"user": "helen"},
		"scope": map[string]any{"ou": "/"}, "justification": "desk"})

	add := request{Method: "POST", Path: "/api/v1/groups/payroll/members", As: "helen", Body: map[string]any{"member": "user:carl"}}
	if r := e.do(add); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("no justification: %d %s", r.Status, r.Body)
	} else if _, ok := r.Problem(t).fieldNamed("justification"); !ok {
		t.Fatalf("the problem does not name the justification: %s", r.Body)
	}
	add.Header = map[string]string{"Deputy-Justification": "carl joins payroll"}
	r := e.do(add)
	if r.Status != http.StatusAccepted || r.Header.Get("Location") == "" || r.Header.Get("Deputy-Audit-Event") == "" {
		t.Fatalf("gated add: %d %v %s", r.Status, r.Header, r.Body)
	}
	req := r.JSON(t)
	id, _ := req["id"].(string)
	if req["state"] != "open" || id == "" || req["policies"].([]any)[0] != "privileged-group-membership" {
		t.Fatalf("request: %v", req)
	}
	if members := e.do(request{Method: "GET", Path: "/api/v1/groups/payroll/members"}).Items(t); len(members) != 0 {
		t.Fatalf("a parked op applied: %v", members)
	}
	waiting := e.do(request{Method: "GET", Path: "/api/v1/requests?view=waiting", As: "olga"}).Items(t)
	if len(waiting) != 1 || waiting[0]["id"] != id || waiting[0]["can_decide"] != true {
		t.Fatalf("olga's inbox: %v", waiting)
	}
	if mine := e.do(request{Method: "GET", Path: "/api/v1/requests?view=mine", As: "helen"}).Items(t); len(mine) != 1 {
		t.Fatalf("helen's requests: %v", mine)
	}
	if r := e.do(request{Method: "GET", Path: "/api/v1/requests/" + id, As: "stan"}); r.Status != http.StatusNotFound {
		t.Fatalf("a stranger reads the request: %d %s", r.Status, r.Body)
	}
	if all := e.do(request{Method: "GET", Path: "/api/v1/requests?view=all", As: "stan"}).Items(t); len(all) != 0 {
		t.Fatalf("a stranger lists requests: %v", all)
	}
	if r := e.do(request{Method: "POST", Path: "/api/v1/requests/" + id + "/approve", As: "helen"}); r.Status != http.StatusForbidden ||
		r.Problem(t).Code != "separation_of_duties" {
		t.Fatalf("self-approval: %d %s", r.Status, r.Body)
	}
	if r := e.do(request{Method: "POST", Path: "/api/v1/requests/" + id + "/reject", As: "olga", Body: map[string]any{}}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("reject without a comment: %d %s", r.Status, r.Body)
	}
	r = e.do(request{Method: "POST", Path: "/api/v1/requests/" + id + "/approve", As: "olga", Body: map[string]any{"comment": "ok"}})
	if r.Status != http.StatusOK || r.JSON(t)["state"] != "applied" {
		t.Fatalf("approve: %d %s", r.Status, r.Body)
	}
	if members := e.do(request{Method: "GET", Path: "/api/v1/groups/payroll/members"}).Items(t); len(members) != 1 {
		t.Fatalf("after the approval: %v", members)
	}
	if r := e.do(request{Method: "POST", Path: "/api/v1/requests/" + id + "/approve", As: "olga"}); r.Status != http.StatusConflict {
		t.Fatalf("replayed approval: %d %s", r.Status, r.Body)
	}
	// The audit trail links the chain by request ID.
	if evs := e.events(map[string][]string{"authority": {id}}); len(evs) < 2 {
		t.Fatalf("events with the request as authority: %v", evs)
	}

	// Policies: anyone reads them; only a tier-0 admin changes them.
	if ps := e.do(request{Method: "GET", Path: "/api/v1/approval-policies", As: "stan"}).Items(t); len(ps) != 6 {
		t.Fatalf("default policies: %d", len(ps))
	}
	bad := map[string]any{"name": "x", "actions": []string{"user.fly"}, "stages": []any{map[string]any{"approvers": []any{map[string]any{"kind": "authorized"}}}}}
	if r := e.do(request{Method: "POST", Path: "/api/v1/approval-policies", Body: bad}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("invalid policy: %d %s", r.Status, r.Body)
	}
	good := map[string]any{"name": "sales-moves", "actions": []string{"user.move"}, "when": map[string]any{"ou": "/"},
		"stages": []any{map[string]any{"approvers": []any{map[string]any{"kind": "user", "user": "olga"}}}}}
	if r := e.do(request{Method: "POST", Path: "/api/v1/approval-policies", As: "helen", Body: good}); r.Status != http.StatusForbidden {
		t.Fatalf("a delegate creates a policy: %d %s", r.Status, r.Body)
	}
	created := e.must(201, "POST", "/api/v1/approval-policies", good)
	pid := created["id"].(string)
	r = e.do(request{Method: "PATCH", Path: "/api/v1/approval-policies/" + pid, Header: map[string]string{"If-Match": `"1"`},
		Body: map[string]any{"disabled": true}})
	if r.Status != 200 || r.JSON(t)["disabled"] != true || r.Header.Get("ETag") != `"2"` {
		t.Fatalf("disable: %d %v %s", r.Status, r.Header, r.Body)
	}
	if r := e.do(request{Method: "PATCH", Path: "/api/v1/approval-policies/" + pid, Header: map[string]string{"If-Match": `"1"`},
		Body: map[string]any{"disabled": false}}); r.Status != http.StatusConflict {
		t.Fatalf("stale patch: %d %s", r.Status, r.Body)
	}
	if r := e.do(request{Method: "PATCH", Path: "/api/v1/approval-policies/" + pid, Body: map[string]any{"nonsense": 1}}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("unknown field: %d %s", r.Status, r.Body)
	}
	if r := e.do(request{Method: "PATCH", Path: "/api/v1/approval-policies/" + pid, Body: map[string]any{"name": "user-deletion"}}); r.Status != http.StatusConflict {
		t.Fatalf("a name in use: %d %s", r.Status, r.Body)
	}
	token := map[string]any{"name": "tokens", "actions": []string{"user.issue_token"}, "stages": good["stages"]}
	if r := e.do(request{Method: "POST", Path: "/api/v1/approval-policies", Body: token}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("gating token issues: %d %s", r.Status, r.Body)
	}
	e.must(204, "DELETE", "/api/v1/approval-policies/sales-moves", nil)
}
