package api_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// snapshot is the whole directory as the API lists it: every OU, user, group, service account
// and membership with its version. Comparing two snapshots shows whether anything changed.
func (e *env) snapshot() string {
	e.t.Helper()
	var b strings.Builder
	for _, path := range []string{"/api/v1/ous", "/api/v1/users", "/api/v1/groups", "/api/v1/service-accounts"} {
		r := e.do(request{Method: "GET", Path: path + "?limit=1000"})
		if r.Status != http.StatusOK {
			e.t.Fatalf("snapshot %s: %d %s", path, r.Status, r.Body)
		}
		b.Write(r.Body)
		if path == "/api/v1/groups" {
			for _, g := range r.Items(e.t) {
				m := e.do(request{Method: "GET", Path: "/api/v1/groups/" + str(g, "id") + "/members?limit=1000"})
				b.Write(m.Body)
			}
		}
	}
	return b.String()
}

// runUnchanged runs scenarios that must all be refused, and checks after each that the
// directory is exactly as before and no applied audit event was written.
func (e *env) runUnchanged(t *testing.T, scenarios []scenario) {
	t.Helper()
	for _, sc := range scenarios {
		if sc.status < 400 {
			t.Fatalf("%s: runUnchanged is for refusals, not status %d", sc.name, sc.status)
		}
		inner := sc.check
		before, applied := e.snapshot(), e.lastApplied()
		sc.check = func(t *testing.T, e *env, r *response) {
			if inner != nil {
				inner(t, e, r)
			}
			if got := e.lastApplied(); got != applied {
				t.Errorf("an applied audit event was written: newest applied index %d, was %d", got, applied)
			}
			if after := e.snapshot(); after != before {
				t.Errorf("the directory changed:\nbefore %s\nafter  %s", before, after)
			}
		}
		e.run(t, []scenario{sc})
	}
}

// messageNames checks that the problem's message about field mentions want.
func messageNames(field, want string) func(t *testing.T, e *env, r *response) {
	return func(t *testing.T, e *env, r *response) {
		t.Helper()
		msg, _ := r.Problem(t).fieldNamed(field)
		if !strings.Contains(msg, want) {
			t.Errorf("message about %s = %q, want it to mention %q", field, msg, want)
		}
	}
}

// detailNames checks that the problem's detail mentions want.
func detailNames(want string) func(t *testing.T, e *env, r *response) {
	return func(t *testing.T, e *env, r *response) {
		t.Helper()
		if p := r.Problem(t); !strings.Contains(p.Detail, want) {
			t.Errorf("detail = %q, want it to mention %q", p.Detail, want)
		}
	}
}

// badInputEnv has an OU corp, users ada (manager of nobody) and bob, groups a ⊃ b ⊃ c.
func badInputEnv(t *testing.T) *env {
	e := newEnv(t)
	e.must(201, "POST", "/api/v1/ous", map[string]any{"name": "corp"})
	e.ids["ada"] = str(e.newUser("ada", map[string]any{"title": "Analyst", "attributes": map[string]any{"site": "A1"}}), "id")
	e.newUser("bob", nil)
	for _, g := range []string{"a", "b", "c"} {
		e.must(201, "POST", "/api/v1/groups", map[string]any{"name": g, "ou": "corp"})
	}
	e.must(201, "POST", "/api/v1/groups/a/members", map[string]any{"member": "group:b"})
	e.must(201, "POST", "/api/v1/groups/b/members", map[string]any{"member": "group:c"})
	return e
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	e := badInputEnv(t)
	user := func(fields map[string]any) map[string]any {
		body := map[string]any{"username": "newbie", "ou": "corp"}
		for k, v := range fields {
			body[k] = v
		}
		return body
	}
	const head = `{"username":"big","ou":"corp","display_name":"`
	big := head + strings.Repeat("x", 1<<20) + `"}`
	limit := head + strings.Repeat("x", 1<<20-len(head)-2) + `"}`
	if len(limit) != 1<<20 {
		t.Fatalf("limit body is %d bytes", len(limit))
	}
	e.runUnchanged(t, []scenario{
		{name: "body over 1 MiB", req: request{Method: "POST", Path: "/api/v1/users", Body: big}, status: 413, code: "too_large"},
		{name: "body of exactly 1 MiB is read", req: request{Method: "POST", Path: "/api/v1/users", Body: limit},
			status: 422, code: "invalid", field: "display_name", check: messageNames("display_name", "at most")},
		{name: "patch over 1 MiB", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Body: `{"title":"` + strings.Repeat("y", 1<<20) + `"}`},
			status: 413, code: "too_large"},
		{name: "unknown field", req: request{Method: "POST", Path: "/api/v1/users", Body: user(map[string]any{"nickname": "x"})},
			status: 422, code: "invalid", field: "nickname"},
		{name: "unknown field in a patch", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Body: map[string]any{"nickname": "x"}},
			status: 422, code: "invalid", field: "nickname"},
		{name: "unknown field in a member", req: request{Method: "POST", Path: "/api/v1/groups/a/members",
			Body: map[string]any{"member": "ada", "role": "owner"}}, status: 422, code: "invalid", field: "role"},
		{name: "invalid UTF-8", req: request{Method: "POST", Path: "/api/v1/users",
			Body: []byte("{\"username\":\"newbie\",\"ou\":\"corp\",\"title\":\"\xff\xfe\"}")}, status: 400, code: "bad_body"},
		{name: "invalid UTF-8 in a patch", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Body: []byte("{\"title\":\"caf\xe9\"}")},
			status: 400, code: "bad_body"},
		{name: "malformed JSON", req: request{Method: "POST", Path: "/api/v1/users", Body: `{"username":"newbie",`},
			status: 400, code: "bad_body"},
		{name: "two JSON values", req: request{Method: "POST", Path: "/api/v1/users", Body: `{"username":"newbie","ou":"corp"} {}`},
			status: 400, code: "bad_body"},
		{name: "empty body", req: request{Method: "POST", Path: "/api/v1/users", Body: ""}, status: 400, code: "bad_body"},
		{name: "wrong type", req: request{Method: "POST", Path: "/api/v1/users", Body: `{"username":5,"ou":"corp"}`},
			status: 422, code: "invalid", field: "username"},
		{name: "wrong type in an attribute", req: request{Method: "POST", Path: "/api/v1/users",
			Body: `{"username":"newbie","ou":"corp","attributes":{"site":7}}`}, status: 422, code: "invalid", field: "attributes",
			check: messageNames("attributes", "must be a string")},
		{name: "wrong type for owners", req: request{Method: "POST", Path: "/api/v1/groups", Body: `{"name":"d","ou":"corp","owners":"ada"}`},
			status: 422, code: "invalid", field: "owners"},
		{name: "wrong type in a patch", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Body: `{"title":["x"]}`},
			status: 422, code: "invalid", field: "title"},
		{name: "array body", req: request{Method: "POST", Path: "/api/v1/users", Body: `[{"username":"newbie"}]`},
			status: 400, code: "bad_body", field: "body"},
		{name: "wrong Content-Type", req: request{Method: "POST", Path: "/api/v1/users", Body: user(nil),
			Header: map[string]string{"Content-Type": "text/plain"}}, status: 415, code: "unsupported_media_type"},
		{name: "form Content-Type", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Body: `title=x`,
			Header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, status: 415, code: "unsupported_media_type"},
		{name: "control character in a username", req: request{Method: "POST", Path: "/api/v1/users", Body: user(map[string]any{"username": "ne\u0007wbie"})},
			status: 422, code: "invalid", field: "username"},
		{name: "bidi override in a display name", req: request{Method: "POST", Path: "/api/v1/users",
			Body: user(map[string]any{"display_name": "evil\u202egnp.exe"})}, status: 422, code: "invalid", field: "display_name",
			check: messageNames("display_name", "U+202E")},
		{name: "newline in a title", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Body: map[string]any{"title": "a\nb"}},
			status: 422, code: "invalid", field: "title"},
		{name: "NUL in a group name", req: request{Method: "POST", Path: "/api/v1/groups", Body: map[string]any{"name": "d\u0000", "ou": "corp"}},
			status: 422, code: "invalid", field: "name"},
		{name: "bidi override in an OU name", req: request{Method: "POST", Path: "/api/v1/ous", Body: map[string]any{"name": "\u202eevil"}},
			status: 422, code: "invalid", field: "name"},
		{name: "control character in an attribute", req: request{Method: "PATCH", Path: "/api/v1/users/ada",
			Body: map[string]any{"attributes": map[string]any{"site": "\u0007"}}}, status: 422, code: "invalid", field: "attributes.site"},
		{name: "bad attribute name", req: request{Method: "PATCH", Path: "/api/v1/users/ada",
			Body: map[string]any{"attributes": map[string]any{"a b": "x"}}}, status: 422, code: "invalid", field: "attributes.a b"},
		{name: "half valid patch", req: request{Method: "PATCH", Path: "/api/v1/users/ada",
			Body: map[string]any{"title": "Director", "display_name": "x\u0007"}}, status: 422, code: "invalid", field: "display_name"},
		{name: "half valid group", req: request{Method: "POST", Path: "/api/v1/groups",
			Body: map[string]any{"name": "d", "ou": "corp", "owners": []string{"ada", "ghost"}}}, status: 422, code: "invalid", field: "owners"},
		{name: "several invalid fields at once", req: request{Method: "POST", Path: "/api/v1/users",
			Body: map[string]any{"username": "a,b", "email": "nope", "ou": "corp"}}, status: 422, code: "invalid", field: "email",
			check: func(t *testing.T, e *env, r *response) {
				if _, ok := r.Problem(t).fieldNamed("username"); !ok {
					t.Errorf("every invalid field is named: %s", r.Body)
				}
			}},
		{name: "username differing only in case", req: request{Method: "POST", Path: "/api/v1/users", Body: user(map[string]any{"username": "ADA"})},
			status: 409, code: "conflict", field: "username"},
		{name: "rename to a username differing only in case", req: request{Method: "PATCH", Path: "/api/v1/users/bob",
			Body: map[string]any{"username": "Ada"}}, status: 409, code: "conflict", field: "username"},
		{name: "group nested into itself through a chain", req: request{Method: "POST", Path: "/api/v1/groups/c/members",
			Body: map[string]any{"member": "group:a"}}, status: 409, code: "conflict", field: "member", check: messageNames("member", "cycle")},
		{name: "group nested into its parent's parent", req: request{Method: "POST", Path: "/api/v1/groups/b/members",
			Body: map[string]any{"member": "a"}}, status: 409, code: "conflict", field: "member"},
		{name: "group nested into itself", req: request{Method: "POST", Path: "/api/v1/groups/c/members",
			Body: map[string]any{"member": "group:c"}}, status: 409, code: "conflict", field: "member"},
		{name: "invalid filter", req: request{Method: "GET", Path: q("/api/v1/users", "filter", `title eq`)},
			status: 400, code: "invalid_filter", field: "filter", check: detailNames("not a valid SCIM filter")},
		{name: "filter on an unknown attribute", req: request{Method: "GET", Path: q("/api/v1/users", "filter", `salary gt "1"`)},
			status: 400, code: "invalid_filter", field: "filter", check: detailNames(`unknown attribute "salary"`)},
		{name: "filter with a number for a string", req: request{Method: "GET", Path: q("/api/v1/users", "filter", `title eq 5`)},
			status: 400, code: "invalid_filter", field: "filter", check: detailNames("string")},
		{name: "filter with an unterminated string", req: request{Method: "GET", Path: q("/api/v1/groups", "filter", `name eq "a`)},
			status: 400, code: "invalid_filter", field: "filter"},
		{name: "filter with a bad time", req: request{Method: "GET", Path: q("/api/v1/users", "filter", `created gt "yesterday"`)},
			status: 400, code: "invalid_filter", field: "filter", check: detailNames("RFC 3339")},
		{name: "filter with an injected clause", req: request{Method: "GET",
			Path: q("/api/v1/users", "filter", `username eq "x" OR 1=1 --`)}, status: 400, code: "invalid_filter", field: "filter"},
		{name: "members filter on an unknown attribute", req: request{Method: "GET", Path: q("/api/v1/groups/a/members", "filter", `title eq "x"`)},
			status: 400, code: "invalid_filter", field: "filter"},
		{name: "unknown route", req: request{Method: "GET", Path: "/api/v1/people"}, status: 404, code: "no_route"},
		{name: "unknown route without a token", req: request{Method: "GET", Path: "/api/v2/users", As: "-"}, status: 404, code: "no_route"},
		{name: "unknown method on a collection", req: request{Method: "PUT", Path: "/api/v1/users", Body: user(nil)}, status: 405, code: "method_not_allowed"},
	})

	// LDAP DN specials, in every kind of name.
	var dn []scenario
	for _, c := range `,+"\<>;=#` {
		dn = append(dn,
			scenario{name: fmt.Sprintf("username with %c", c), req: request{Method: "POST", Path: "/api/v1/users",
				Body: user(map[string]any{"username": "new" + string(c) + "bie"})}, status: 422, code: "invalid", field: "username",
				check: messageNames("username", "LDAP")},
			scenario{name: fmt.Sprintf("group name with %c", c), req: request{Method: "POST", Path: "/api/v1/groups",
				Body: map[string]any{"name": "sales " + string(c) + " emea", "ou": "corp"}}, status: 422, code: "invalid", field: "name",
				check: messageNames("name", "LDAP")},
			scenario{name: fmt.Sprintf("OU name with %c", c), req: request{Method: "POST", Path: "/api/v1/ous",
				Body: map[string]any{"name": string(c) + "emea", "parent": "corp"}}, status: 422, code: "invalid", field: "name",
				check: messageNames("name", "LDAP")},
			scenario{name: fmt.Sprintf("service account name with %c", c), req: request{Method: "POST", Path: "/api/v1/service-accounts",
				Body: map[string]any{"name": "bot" + string(c), "ou": "corp", "owners": []string{"ada"}}}, status: 422, code: "invalid", field: "name"},
			scenario{name: fmt.Sprintf("rename with %c", c), req: request{Method: "PATCH", Path: "/api/v1/groups/a",
				Body: map[string]any{"name": "a" + string(c)}}, status: 422, code: "invalid", field: "name"},
		)
	}
	e.runUnchanged(t, dn)
}

func TestSQLMetacharacters(t *testing.T) {
	t.Parallel()
	e := badInputEnv(t)
	const bobby = `Robert'); DROP TABLE users;--`
	e.run(t, []scenario{
		{name: "stored literally", req: request{Method: "POST", Path: "/api/v1/users",
			Body: map[string]any{"username": "bobby", "ou": "corp", "display_name": bobby, "title": `100% "_under_" \ back`}},
			status: 201, save: "bobby", check: wantJSON(map[string]string{"display_name": bobby})},
		{name: "read back literally", req: request{Method: "GET", Path: "/api/v1/users/bobby"}, status: 200,
			check: wantJSON(map[string]string{"display_name": bobby, "title": `100% "_under_" \ back`})},
		{name: "table intact", req: request{Method: "GET", Path: "/api/v1/users"}, status: 200,
			check: wantNames("admin", "ada", "bob", "bobby")},
		{name: "filter on the value", req: request{Method: "GET", Path: q("/api/v1/users", "filter", `display_name eq "`+bobby+`"`)},
			status: 200, check: wantNames("bobby")},
		{name: "quote in a filter value matches nothing", req: request{Method: "GET",
			Path: q("/api/v1/users", "filter", `username eq "x' OR '1'='1"`)}, status: 200, check: wantNames()},
		{name: "comment in a filter value matches nothing", req: request{Method: "GET",
			Path: q("/api/v1/users", "filter", `username eq "ada'--"`)}, status: 200, check: wantNames()},
		{name: "LIKE wildcards match literally", req: request{Method: "GET", Path: q("/api/v1/users", "filter", `title co "%"`)},
			status: 200, check: wantNames("bobby")},
		{name: "underscore matches literally", req: request{Method: "GET", Path: q("/api/v1/users", "filter", `title sw "1_0"`)},
			status: 200, check: wantNames()},
		{name: "backslash matches literally", req: request{Method: "GET", Path: q("/api/v1/users", "filter", `title ew "\\ back"`)},
			status: 200, check: wantNames("bobby")},
		{name: "quote in an attribute filter", req: request{Method: "GET",
			Path: q("/api/v1/users", "filter", `attributes.site eq "A1') OR 1=1 --"`)}, status: 200, check: wantNames()},
		{name: "quote in an attribute name", req: request{Method: "GET",
			Path: q("/api/v1/users", "filter", `attributes.x') eq "1"`)}, status: 400, code: "invalid_filter"},
		{name: "quote in a path value", req: request{Method: "GET", Path: "/api/v1/users/ada'%20OR%20'1'='1"}, status: 404, code: "not_found"},
		{name: "quote in an OU path", req: request{Method: "GET", Path: "/api/v1/ous/corp'--"}, status: 404, code: "not_found"},
		{name: "audit filter with a quote", req: request{Method: "GET", Path: q("/api/v1/audit/events", "actor", "admin' OR '1'='1")},
			status: 200, check: func(t *testing.T, e *env, r *response) {
				if n := len(r.Items(t)); n != 0 {
					t.Errorf("%d events for a quoted actor, want 0", n)
				}
			}},
		{name: "table still intact", req: request{Method: "GET", Path: "/api/v1/users/ada"}, status: 200},
	})
	// The literal value is in the audit trail too, unmangled.
	evs := e.events(map[string][]string{"target": {"bobby"}, "action": {"user.create"}})
	if len(evs) != 1 || !bytes.Contains([]byte(fmt.Sprint(evs[0]["after"])), []byte(bobby)) {
		t.Errorf("audit event of the create lacks the literal display name: %v", evs)
	}
}
