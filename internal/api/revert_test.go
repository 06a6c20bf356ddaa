package api_test

import (
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestRevert undoes each kind of event that can be undone and checks the object is back as it
// was, the undo is an event of its own linked to the one it reverts, a later change makes it a
// conflict unless a tier-0 admin forces it, and a membership comes back with its provenance.
func TestRevert(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/api/v1/ous", map[string]any{"name": "sales"})
	e.must(201, "POST", "/api/v1/ous", map[string]any{"name": "finance"})
	e.newUser("sam", map[string]any{"ou": "sales", "title": "Rep", "attributes": map[string]any{"badge": "B-1"}})
	e.newUser("fin", map[string]any{"ou": "finance"})
	e.newUser("helen", nil)
	e.must(201, "POST", "/api/v1/groups", map[string]any{"name": "crm", "ou": "sales"})
	e.must(201, "POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "helen"},
		"scope": map[string]any{"ou": "sales"}, "justification": "desk"})
	e.tokenFor("helen")

	revert := func(idx int64, query, as string) *response {
		t.Helper()
		return e.do(request{Method: "POST", Path: "/api/v1/audit/events/" + strconv.FormatInt(idx, 10) + "/revert" + query, As: as})
	}
	ok := func(idx int64) map[string]any {
		t.Helper()
		r := revert(idx, "", "")
		if r.Status != 200 {
			t.Fatalf("revert %d: %d %s", idx, r.Status, r.Body)
		}
		out := r.JSON(t)
		ev := e.get("/api/v1/audit/events/" + strconv.FormatInt(int64(out["event"].(float64)), 10))
		if ev["transport"] != "undo" || ev["reverts"] != float64(idx) || ev["outcome"] != "applied" {
			t.Fatalf("the undo of %d is recorded as %v", idx, ev)
		}
		return out
	}

	// An attribute update, with a custom attribute set and one removed.
	e.must(200, "PATCH", "/api/v1/users/sam", map[string]any{"title": "Lead", "attributes": map[string]any{"badge": nil, "desk": "D-7"}})
	upd := e.lastApplied()
	ok(upd)
	sam := e.get("/api/v1/users/sam")
	if sam["title"] != "Rep" || !reflect.DeepEqual(sam["attributes"], map[string]any{"badge": "B-1"}) {
		t.Fatalf("after the undo sam is %v", sam)
	}
	// Undoing the undo redoes the change.
	ok(e.lastApplied())
	if sam = e.get("/api/v1/users/sam"); sam["title"] != "Lead" {
		t.Fatalf("undoing the undo: %v", sam["title"])
	}

	// A later change makes the undo a conflict naming it; a tier-0 admin may force it.
	e.must(200, "PATCH", "/api/v1/users/sam", map[string]any{"title": "Manager"})
	first := e.lastApplied()
	e.must(200, "PATCH", "/api/v1/users/sam", map[string]any{"phone": "+1 555 0100"})
	later := e.lastApplied()
	r := revert(first, "", "")
	if r.Status != http.StatusConflict || r.Problem(t).Code != "changed_since" || !strings.Contains(r.Problem(t).Detail, strconv.FormatInt(later, 10)) {
		t.Fatalf("undo over a later change: %d %s", r.Status, r.Body)
	}
	if r := revert(first, "?force=true", "helen"); r.Status != 403 || r.Problem(t).Event == nil {
		t.Fatalf("helen forces an undo: %d %s", r.Status, r.Body)
	}
	if r := revert(first, "?force=true", ""); r.Status != 200 {
		t.Fatalf("the admin forces it: %d %s", r.Status, r.Body)
	}
	if sam = e.get("/api/v1/users/sam"); sam["title"] != "Lead" || sam["phone"] != "+1 555 0100" {
		t.Fatalf("after the forced undo: %v %v", sam["title"], sam["phone"])
	}

	// A move, a disable.
	e.must(200, "POST", "/api/v1/users/sam/move", map[string]any{"to": "finance"})
	ok(e.lastApplied())
	if ou := e.get("/api/v1/users/sam")["ou"]; ou != "sales" {
		t.Fatalf("after undoing the move sam is in %v", ou)
	}
	e.must(200, "POST", "/api/v1/users/sam/disable", nil)
	ok(e.lastApplied())
	if st := e.get("/api/v1/users/sam")["status"]; st != "active" {
		t.Fatalf("after undoing the disable: %v", st)
	}

	// A membership removed comes back with its provenance; an added one goes.
	e.must(201, "POST", "/api/v1/groups/crm/members", map[string]any{"member": "sam"})
	members := e.get("/api/v1/groups/crm/members")["items"].([]any)
	e.must(204, "DELETE", "/api/v1/groups/crm/members/sam", nil)
	ok(e.lastApplied())
	if again := e.get("/api/v1/groups/crm/members")["items"].([]any); !reflect.DeepEqual(again, members) {
		t.Fatalf("membership after undoing its removal:\n%v\nwant\n%v", again, members)
	}
	e.must(201, "POST", "/api/v1/groups/crm/members", map[string]any{"member": "fin"})
	ok(e.lastApplied())
	if n := len(e.get("/api/v1/groups/crm/members")["items"].([]any)); n != 1 {
		t.Fatalf("%d members after undoing an add", n)
	}

	// A create is undone by deleting; a grant by revoking.
	e.newUser("tmp", map[string]any{"ou": "sales"})
	ok(e.lastApplied())
	if r := e.do(request{Method: "GET", Path: "/api/v1/users/tmp"}); r.Status != 404 {
		t.Fatalf("tmp after undoing its creation: %d", r.Status)
	}
	a := e.must(201, "POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "fin"},
		"scope": map[string]any{"ou": "sales"}, "justification": "cover"})
	ok(e.lastApplied())
	if r := e.do(request{Method: "GET", Path: "/api/v1/assignments/" + a["id"].(string)}); r.Status != 404 {
		t.Fatalf("assignment after undoing the grant: %d", r.Status)
	}

	// An OU (deleted only when empty) comes back with its ID, name, parent and protection.
	ou := e.must(201, "POST", "/api/v1/ous", map[string]any{"name": "emea", "parent": "sales", "protected": true})
	e.must(204, "DELETE", "/api/v1/ous/"+ou["id"].(string), nil)
	ok(e.lastApplied())
	if back := e.get("/api/v1/ous/" + ou["id"].(string)); back["path"] != "sales/emea" || back["protected"] != true {
		t.Fatalf("the OU after undoing its deletion: %v", back)
	}

	// What cannot be undone, and who may not.
	e.must(204, "DELETE", "/api/v1/users/fin", nil)
	deleted := e.lastApplied()
	denied := e.do(request{Method: "PATCH", Path: "/api/v1/users/sam", As: "helen", Body: map[string]any{"email": "x@example.com"}})
	deniedIdx, _ := strconv.ParseInt(denied.Header.Get("Deputy-Audit-Event"), 10, 64)
	for _, c := range []struct {
		idx    int64
		query  string
		as     string
		status int
		code   string
	}{
		{deleted, "", "", 422, "invalid"},
		{deniedIdx, "", "", 422, "invalid"},
		{999999, "", "", 404, "not_found"},
		{upd, "?force=maybe", "", 422, "invalid"},
		{deleted, "", "helen", 403, "not_authorized"}, // fin was not hers to see
	} {
		r := revert(c.idx, c.query, c.as)
		if r.Status != c.status || r.Problem(t).Code != c.code {
			t.Errorf("revert %d%s as %q: %d %s, want %d %s", c.idx, c.query, c.as, r.Status, r.Body, c.status, c.code)
		}
	}
	// helen may undo what she may do: her own phone change on sam.
	if r := e.do(request{Method: "PATCH", Path: "/api/v1/users/sam", As: "helen", Body: map[string]any{"phone": "+1 555 0111"}}); r.Status != 200 {
		t.Fatalf("helen updates sam: %d %s", r.Status, r.Body)
	}
	if r := revert(e.lastApplied(), "", "helen"); r.Status != 200 {
		t.Fatalf("helen undoes her change: %d %s", r.Status, r.Body)
	}
}
