package api_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// wantHeader checks a response header.
func wantHeader(name, want string) func(t *testing.T, e *env, r *response) {
	return func(t *testing.T, e *env, r *response) {
		t.Helper()
		if got := r.Header.Get(name); got != e.expand(want) {
			t.Errorf("%s = %q, want %q", name, got, e.expand(want))
		}
	}
}

// all runs several checks.
func all(checks ...func(t *testing.T, e *env, r *response)) func(t *testing.T, e *env, r *response) {
	return func(t *testing.T, e *env, r *response) {
		t.Helper()
		for _, c := range checks {
			c(t, e, r)
		}
	}
}

// gone checks that path answers 404 not_found.
func gone(path string) func(t *testing.T, e *env, r *response) {
	return func(t *testing.T, e *env, r *response) {
		t.Helper()
		g := e.do(request{Method: "GET", Path: e.expand(path)})
		if g.Status != http.StatusNotFound || g.Problem(t).Code != "not_found" {
			t.Errorf("GET %s after delete: %d %s, want 404 not_found", path, g.Status, g.Body)
		}
	}
}

// q builds a path with a query.
func q(path string, kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return path + "?" + v.Encode()
}

func TestOUs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.run(t, []scenario{
		{name: "create top-level", req: request{Method: "POST", Path: "/api/v1/ous", Body: map[string]any{"name": "corp"}},
			status: 201, save: "corp", check: all(wantHeader("Location", "/api/v1/ous/{corp}"), wantHeader("ETag", `"1"`),
				wantJSON(map[string]string{"path": "corp", "parent": "/", "version": "1"}))},
		{name: "create child by parent path", req: request{Method: "POST", Path: "/api/v1/ous",
			Body: map[string]any{"name": "sales", "parent": "corp"}},
			status: 201, save: "sales", check: wantJSON(map[string]string{"path": "corp/sales", "parent": "corp", "parent_id": "{corp}"})},
		{name: "create child by parent id", req: request{Method: "POST", Path: "/api/v1/ous",
			Body: map[string]any{"name": "eng", "parent": "{corp}"}},
			status: 201, save: "eng", check: wantJSON(map[string]string{"path": "corp/eng"})},
		{name: "sibling name differing in case", req: request{Method: "POST", Path: "/api/v1/ous",
			Body: map[string]any{"name": "SALES", "parent": "corp"}}, status: 409, code: "conflict"},
		{name: "unknown parent", req: request{Method: "POST", Path: "/api/v1/ous",
			Body: map[string]any{"name": "x", "parent": "nowhere"}}, status: 422, code: "invalid", field: "parent"},
		{name: "get by escaped path", req: request{Method: "GET", Path: "/api/v1/ous/corp%2Fsales"},
			status: 200, check: all(wantJSON(map[string]string{"id": "{sales}", "name": "sales"}), wantHeader("ETag", `"1"`))},
		{name: "get by path in other case", req: request{Method: "GET", Path: "/api/v1/ous/CORP%2FSales"},
			status: 200, check: wantJSON(map[string]string{"id": "{sales}"})},
		{name: "get by id", req: request{Method: "GET", Path: "/api/v1/ous/{sales}"},
			status: 200, check: wantJSON(map[string]string{"path": "corp/sales"})},
		// The root's path "/" cannot be one escaped segment: ServeMux reads a lone "%2F" as a
		// trailing slash. The root is addressed by its ID.
		{name: "get root", req: request{Method: "GET", Path: "/api/v1/ous/{root}"},
			status: 200, check: wantJSON(map[string]string{"path": "/", "name": "root"})},
		{name: "get unknown", req: request{Method: "GET", Path: "/api/v1/ous/corp%2Fnowhere"}, status: 404, code: "not_found"},
		{name: "list", req: request{Method: "GET", Path: "/api/v1/ous"}, status: 200, check: wantNames("root", "corp", "sales", "eng")},
		{name: "list filtered", req: request{Method: "GET", Path: q("/api/v1/ous", "filter", `parent eq "corp" and name ne "eng"`)},
			status: 200, check: wantNames("sales")},
		{name: "delete eng", req: request{Method: "DELETE", Path: "/api/v1/ous/{eng}"}, status: 204, check: gone("/api/v1/ous/corp%2Feng")},
		{name: "rename", req: request{Method: "PATCH", Path: "/api/v1/ous/corp%2Fsales", Body: map[string]any{"name": "emea-sales"}},
			status: 200, check: all(wantJSON(map[string]string{"path": "corp/emea-sales", "version": "2"}), wantHeader("ETag", `"2"`))},
		{name: "old path is gone", req: request{Method: "GET", Path: "/api/v1/ous/corp%2Fsales"}, status: 404, code: "not_found"},
		{name: "rename with a slash", req: request{Method: "PATCH", Path: "/api/v1/ous/{sales}", Body: map[string]any{"name": "a/b"}},
			status: 422, code: "invalid", field: "name"},
		{name: "parent in a patch", req: request{Method: "PATCH", Path: "/api/v1/ous/{sales}", Body: map[string]any{"parent": "/"}},
			status: 422, code: "invalid", field: "parent"},
		{name: "user in the OU", req: request{Method: "POST", Path: "/api/v1/users",
			Body: map[string]any{"username": "olivia", "ou": "corp/emea-sales"}}, status: 201,
			check: wantJSON(map[string]string{"ou": "corp/emea-sales", "ou_id": "{sales}"})},
		{name: "delete non-empty", req: request{Method: "DELETE", Path: "/api/v1/ous/{sales}"}, status: 409, code: "conflict"},
		{name: "move into own subtree", req: request{Method: "POST", Path: "/api/v1/ous/corp/move", Body: map[string]any{"to": "corp/emea-sales"}},
			status: 409, code: "conflict", field: "to"},
		{name: "move to where it is", req: request{Method: "POST", Path: "/api/v1/ous/{sales}/move", Body: map[string]any{"to": "corp"}},
			status: 409, code: "conflict"},
		{name: "move to unknown OU", req: request{Method: "POST", Path: "/api/v1/ous/{sales}/move", Body: map[string]any{"to": "nowhere"}},
			status: 422, code: "invalid", field: "to"},
		{name: "move to root", req: request{Method: "POST", Path: "/api/v1/ous/corp%2Femea-sales/move", Body: map[string]any{"to": "/"}},
			status: 200, check: wantJSON(map[string]string{"path": "emea-sales", "parent": "/", "version": "3"})},
		{name: "users follow the move", req: request{Method: "GET", Path: "/api/v1/users/olivia"},
			status: 200, check: wantJSON(map[string]string{"ou": "emea-sales"})},
		{name: "root cannot be renamed", req: request{Method: "PATCH", Path: "/api/v1/ous/{root}", Body: map[string]any{"name": "top"}},
			status: 409, code: "conflict"},
		{name: "root cannot be deleted", req: request{Method: "DELETE", Path: "/api/v1/ous/{root}"}, status: 409, code: "conflict"},
		{name: "delete empty", req: request{Method: "DELETE", Path: "/api/v1/ous/corp"}, status: 204, check: gone("/api/v1/ous/{corp}")},
		{name: "delete again", req: request{Method: "DELETE", Path: "/api/v1/ous/corp"}, status: 404, code: "not_found"},
	})
}

func TestUsers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "POST", "/api/v1/ous", map[string]any{"name": "corp"})
	e.must(201, "POST", "/api/v1/ous", map[string]any{"name": "sales", "parent": "corp"})
	full := map[string]any{"username": "ada.lovelace", "given_name": "Ada", "family_name": "Lovelace",
		"email": "ada@example.com", "employee_id": "E1", "department": "Sales", "title": "Senior Analyst",
		"location": "London", "employment_type": "employee", "ou": "corp/sales", "attributes": map[string]any{"cost_center": "42"}}
	e.run(t, []scenario{
		{name: "create", req: request{Method: "POST", Path: "/api/v1/users", Body: full}, status: 201, save: "ada",
			check: all(wantHeader("Location", "/api/v1/users/{ada}"), wantHeader("ETag", `"1"`),
				wantJSON(map[string]string{"username": "ada.lovelace", "display_name": "Ada Lovelace", "status": "active",
					"ou": "corp/sales", "attributes.cost_center": "42", "version": "1", "department": "Sales"}))},
		{name: "manager by username", req: request{Method: "POST", Path: "/api/v1/users",
			Body: map[string]any{"username": "bob", "ou": "corp", "manager": "ADA.LOVELACE"}}, status: 201, save: "bob",
			check: wantJSON(map[string]string{"manager": "ada.lovelace", "manager_id": "{ada}"})},
		{name: "unknown manager", req: request{Method: "POST", Path: "/api/v1/users",
			Body: map[string]any{"username": "carol", "ou": "corp", "manager": "nobody"}}, status: 422, code: "invalid", field: "manager"},
		{name: "missing ou", req: request{Method: "POST", Path: "/api/v1/users", Body: map[string]any{"username": "carol"}},
			status: 422, code: "invalid", field: "ou"},
		{name: "missing username", req: request{Method: "POST", Path: "/api/v1/users", Body: map[string]any{"ou": "corp"}},
			status: 422, code: "invalid", field: "username"},
		{name: "bad email", req: request{Method: "POST", Path: "/api/v1/users",
			Body: map[string]any{"username": "carol", "ou": "corp", "email": "Carol <carol@example.com>"}},
			status: 422, code: "invalid", field: "email"},
		{name: "duplicate email", req: request{Method: "POST", Path: "/api/v1/users",
			Body: map[string]any{"username": "carol", "ou": "corp", "email": "ada@example.com"}},
			status: 409, code: "conflict", field: "email"},
		{name: "username shaped like an id", req: request{Method: "POST", Path: "/api/v1/users",
			Body: map[string]any{"username": "01a22260-b7e4-7533-8cb5-8e744c107e40", "ou": "corp"}},
			status: 422, code: "invalid", field: "username"},
		{name: "get by id", req: request{Method: "GET", Path: "/api/v1/users/{ada}"}, status: 200,
			check: all(wantJSON(map[string]string{"username": "ada.lovelace"}), wantHeader("ETag", `"1"`))},
		{name: "get by id in upper case", req: request{Method: "GET", Path: "/api/v1/users/{ada}"}, status: 200,
			check: func(t *testing.T, e *env, r *response) {
				up := e.do(request{Method: "GET", Path: "/api/v1/users/" + strings.ToUpper(e.ids["ada"])})
				if up.Status != 200 || str(up.JSON(t), "id") != e.ids["ada"] {
					t.Errorf("GET by upper-case id: %d %s", up.Status, up.Body)
				}
			}},
		{name: "get by username", req: request{Method: "GET", Path: "/api/v1/users/ada.lovelace"}, status: 200,
			check: wantJSON(map[string]string{"id": "{ada}"})},
		{name: "get by username in other case", req: request{Method: "GET", Path: "/api/v1/users/Ada.LoveLace"}, status: 200,
			check: wantJSON(map[string]string{"id": "{ada}"})},
		{name: "get unknown", req: request{Method: "GET", Path: "/api/v1/users/nobody"}, status: 404, code: "not_found"},
		{name: "update", req: request{Method: "PATCH", Path: "/api/v1/users/ADA.LOVELACE",
			Body: map[string]any{"title": "Account Director"}}, status: 200,
			check: all(wantJSON(map[string]string{"title": "Account Director", "version": "2", "department": "Sales"}),
				wantHeader("ETag", `"2"`))},
		{name: "rename", req: request{Method: "PATCH", Path: "/api/v1/users/{bob}", Body: map[string]any{"username": "robert"}},
			status: 200, check: wantJSON(map[string]string{"username": "robert"})},
		{name: "old username is gone", req: request{Method: "GET", Path: "/api/v1/users/bob"}, status: 404, code: "not_found"},
		{name: "manager cycle", req: request{Method: "PATCH", Path: "/api/v1/users/ada.lovelace",
			Body: map[string]any{"manager": "robert"}}, status: 409, code: "conflict", field: "manager"},
		{name: "self as manager", req: request{Method: "PATCH", Path: "/api/v1/users/ada.lovelace",
			Body: map[string]any{"manager": "ada.lovelace"}}, status: 422, code: "invalid", field: "manager"},
		{name: "move", req: request{Method: "POST", Path: "/api/v1/users/robert/move", Body: map[string]any{"to": "corp/sales"}},
			status: 200, check: all(wantJSON(map[string]string{"ou": "corp/sales", "version": "3"}), wantHeader("ETag", `"3"`))},
		{name: "move where it is", req: request{Method: "POST", Path: "/api/v1/users/robert/move", Body: map[string]any{"to": "CORP/SALES"}},
			status: 409, code: "conflict"},
		{name: "move without to", req: request{Method: "POST", Path: "/api/v1/users/robert/move", Body: map[string]any{}},
			status: 422, code: "invalid", field: "to"},
		{name: "disable", req: request{Method: "POST", Path: "/api/v1/users/robert/disable"}, status: 200,
			check: wantJSON(map[string]string{"status": "disabled", "version": "4"})},
		{name: "disable again", req: request{Method: "POST", Path: "/api/v1/users/robert/disable"}, status: 409, code: "conflict"},
		{name: "list disabled", req: request{Method: "GET", Path: q("/api/v1/users", "filter", `status eq "disabled"`)},
			status: 200, check: wantNames("robert")},
		{name: "enable", req: request{Method: "POST", Path: "/api/v1/users/{bob}/enable"}, status: 200,
			check: wantJSON(map[string]string{"status": "active", "version": "5"})},
		{name: "enable again", req: request{Method: "POST", Path: "/api/v1/users/{bob}/enable"}, status: 409, code: "conflict"},
		{name: "admin cannot disable themselves", req: request{Method: "POST", Path: "/api/v1/users/admin/disable"},
			status: 409, code: "conflict"},
		{name: "delete a manager", req: request{Method: "DELETE", Path: "/api/v1/users/ada.lovelace"}, status: 409, code: "conflict"},
		{name: "delete", req: request{Method: "DELETE", Path: "/api/v1/users/robert"}, status: 204, check: gone("/api/v1/users/{bob}")},
		{name: "manager can go now", req: request{Method: "DELETE", Path: "/api/v1/users/{ada}"}, status: 204,
			check: gone("/api/v1/users/ada.lovelace")},
		{name: "delete again", req: request{Method: "DELETE", Path: "/api/v1/users/{ada}"}, status: 404, code: "not_found"},
		{name: "username is free again", req: request{Method: "POST", Path: "/api/v1/users", Body: full}, status: 201},
	})
}

func TestUserLists(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "POST", "/api/v1/ous", map[string]any{"name": "corp"})
	for _, u := range []map[string]any{
		{"username": "u1", "department": "Sales", "title": "Senior Analyst"},
		{"username": "u2", "department": "Sales", "title": "Junior Analyst"},
		{"username": "u3", "department": "sales", "title": "senior manager", "attributes": map[string]any{"site": "B2"}},
		{"username": "u4", "department": "Engineering", "title": `The "Quoted" One`},
		{"username": "u5", "department": "Engineering", "title": "Senior Engineer", "attributes": map[string]any{"site": "A1"}},
	} {
		u["ou"] = "corp"
		e.must(201, "POST", "/api/v1/users", u)
	}
	e.run(t, []scenario{
		{name: "all", req: request{Method: "GET", Path: "/api/v1/users"}, status: 200,
			check: wantNames("admin", "u1", "u2", "u3", "u4", "u5")},
		{name: "and", req: request{Method: "GET", Path: q("/api/v1/users", "filter", `department eq "Sales" and title sw "Senior"`)},
			status: 200, check: wantNames("u1", "u3")},
		{name: "attribute names case-insensitive", req: request{Method: "GET",
			Path: q("/api/v1/users", "filter", `DEPARTMENT eq "Engineering" and Title co "engineer"`)},
			status: 200, check: wantNames("u5")},
		{name: "or and not", req: request{Method: "GET",
			Path: q("/api/v1/users", "filter", `username eq "u1" or (department eq "Engineering" and not (title sw "Senior"))`)},
			status: 200, check: wantNames("u1", "u4")},
		{name: "string escapes decoded", req: request{Method: "GET", Path: q("/api/v1/users", "filter", `title eq "The \"Quoted\" One"`)},
			status: 200, check: wantNames("u4")},
		{name: "custom attribute", req: request{Method: "GET", Path: q("/api/v1/users", "filter", `attributes.site eq "A1"`)},
			status: 200, check: wantNames("u5")},
		{name: "present", req: request{Method: "GET", Path: q("/api/v1/users", "filter", `attributes.site pr`)},
			status: 200, check: wantNames("u3", "u5")},
		{name: "ou", req: request{Method: "GET", Path: q("/api/v1/users", "filter", `ou eq "corp" and username ew "5"`)},
			status: 200, check: wantNames("u5")},
		{name: "no match is an empty list", req: request{Method: "GET", Path: q("/api/v1/users", "filter", `username eq "zz"`)},
			status: 200, check: func(t *testing.T, e *env, r *response) {
				if !strings.Contains(string(r.Body), `"items":[]`) {
					t.Errorf("an empty list must be written as []: %s", r.Body)
				}
			}},
		{name: "limit 0", req: request{Method: "GET", Path: q("/api/v1/users", "limit", "0")}, status: 422, code: "invalid", field: "limit"},
		{name: "limit too big", req: request{Method: "GET", Path: q("/api/v1/users", "limit", "1001")},
			status: 422, code: "invalid", field: "limit"},
		{name: "limit not a number", req: request{Method: "GET", Path: q("/api/v1/users", "limit", "ten")},
			status: 422, code: "invalid", field: "limit"},
		{name: "forged cursor", req: request{Method: "GET", Path: q("/api/v1/users", "cursor", "not-a-cursor")},
			status: 422, code: "invalid", field: "cursor"},
	})

	// Paging with a filter visits every match once, in order, and ends without a cursor.
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"", []string{"admin", "u1", "u2", "u3", "u4", "u5"}},
		{`username sw "u"`, []string{"u1", "u2", "u3", "u4", "u5"}},
		{`department eq "sales"`, []string{"u1", "u2", "u3"}},
	} {
		t.Run("pages "+tc.filter, func(t *testing.T) {
			defer e.with(t)()
			var got []string
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > len(tc.want) {
					t.Fatalf("more pages than items: %v", got)
				}
				args := []string{"limit", "2"}
				if tc.filter != "" {
					args = append(args, "filter", tc.filter)
				}
				if cursor != "" {
					args = append(args, "cursor", cursor)
				}
				r := e.do(request{Method: "GET", Path: q("/api/v1/users", args...)})
				if r.Status != 200 {
					t.Fatalf("status %d: %s", r.Status, r.Body)
				}
				items := r.Items(t)
				if len(items) > 2 || len(items) == 0 {
					t.Fatalf("page of %d items with limit 2: a page is never empty or over its limit", len(items))
				}
				for _, it := range items {
					got = append(got, str(it, "username"))
				}
				cursor = str(r.JSON(t), "next_cursor")
				if cursor == "" {
					break
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("pages gave %v, want %v", got, tc.want)
			}
		})
	}
}

func TestGroupsAndMembers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "POST", "/api/v1/ous", map[string]any{"name": "corp"})
	e.ids["ada"] = str(e.newUser("ada", nil), "id")
	e.newUser("bob", nil)
	e.ids["bot"] = str(e.must(201, "POST", "/api/v1/service-accounts",
		map[string]any{"name": "ci-bot", "ou": "corp", "owners": []string{"ada"}}), "id")
	e.run(t, []scenario{
		{name: "create", req: request{Method: "POST", Path: "/api/v1/groups",
			Body: map[string]any{"name": "Sales All", "ou": "corp", "description": "everyone in sales", "owners": []string{"ada", "BOB", "ada"}}},
			status: 201, save: "sales", check: func(t *testing.T, e *env, r *response) {
				wantHeader("Location", "/api/v1/groups/{sales}")(t, e, r)
				m := r.JSON(t)
				if owners := namesList(m["owners"]); !slices.Equal(owners, []string{"ada", "bob"}) {
					t.Errorf("owners = %v, want [ada bob] (deduplicated, canonical names)", owners)
				}
			}},
		{name: "create nested", req: request{Method: "POST", Path: "/api/v1/groups", Body: map[string]any{"name": "emea", "ou": "corp"}},
			status: 201, save: "emea"},
		{name: "same name in other case", req: request{Method: "POST", Path: "/api/v1/groups",
			Body: map[string]any{"name": "SALES ALL", "ou": "corp"}}, status: 409, code: "conflict", field: "name"},
		{name: "unknown owner", req: request{Method: "POST", Path: "/api/v1/groups",
			Body: map[string]any{"name": "x", "ou": "corp", "owners": []string{"ada", "ghost"}}}, status: 422, code: "invalid", field: "owners",
			check: gone("/api/v1/groups/x")},
		{name: "get by name", req: request{Method: "GET", Path: "/api/v1/groups/sales%20all"}, status: 200,
			check: wantJSON(map[string]string{"id": "{sales}", "description": "everyone in sales"})},
		{name: "get by id", req: request{Method: "GET", Path: "/api/v1/groups/{sales}"}, status: 200},
		{name: "list filtered", req: request{Method: "GET", Path: q("/api/v1/groups", "filter", `name sw "sales"`)},
			status: 200, check: wantNames("Sales All")},
		{name: "add user by name", req: request{Method: "POST", Path: "/api/v1/groups/Sales%20All/members", Body: map[string]any{"member": "ADA"}},
			status: 201, check: all(wantJSON(map[string]string{"type": "user", "id": "{ada}", "name": "ada", "source": "manual", "added_by": "admin"}),
				wantHeader("Location", "/api/v1/groups/{sales}/members/{ada}"), wantHeader("ETag", `"2"`))},
		{name: "add user again by id", req: request{Method: "POST", Path: "/api/v1/groups/{sales}/members", Body: map[string]any{"member": "{ada}"}},
			status: 409, code: "conflict", field: "member"},
		{name: "add user by prefix", req: request{Method: "POST", Path: "/api/v1/groups/{sales}/members", Body: map[string]any{"member": "user:bob"}},
			status: 201, check: wantJSON(map[string]string{"type": "user", "name": "bob"})},
		{name: "duplicate member", req: request{Method: "POST", Path: "/api/v1/groups/{sales}/members", Body: map[string]any{"member": "bob"}},
			status: 409, code: "conflict", field: "member"},
		{name: "add service account by prefix", req: request{Method: "POST", Path: "/api/v1/groups/emea/members",
			Body: map[string]any{"member": "sa:ci-bot"}}, status: 201, check: wantJSON(map[string]string{"type": "service_account", "id": "{bot}"})},
		{name: "add group by prefix", req: request{Method: "POST", Path: "/api/v1/groups/{sales}/members",
			Body: map[string]any{"member": "group:emea"}}, status: 201, check: wantJSON(map[string]string{"type": "group", "id": "{emea}"})},
		{name: "unknown member", req: request{Method: "POST", Path: "/api/v1/groups/{sales}/members", Body: map[string]any{"member": "ghost"}},
			status: 422, code: "invalid", field: "member"},
		{name: "wrong prefix", req: request{Method: "POST", Path: "/api/v1/groups/{sales}/members", Body: map[string]any{"member": "group:ada"}},
			status: 422, code: "invalid", field: "member"},
		{name: "empty member", req: request{Method: "POST", Path: "/api/v1/groups/{sales}/members", Body: map[string]any{"member": " "}},
			status: 422, code: "invalid", field: "member"},
		{name: "group into itself", req: request{Method: "POST", Path: "/api/v1/groups/emea/members", Body: map[string]any{"member": "group:emea"}},
			status: 409, code: "conflict", field: "member"},
		{name: "members", req: request{Method: "GET", Path: "/api/v1/groups/{sales}/members"}, status: 200,
			check: wantNames("ada", "bob", "emea")},
		{name: "members filtered by type", req: request{Method: "GET", Path: q("/api/v1/groups/{sales}/members", "filter", `type eq "group"`)},
			status: 200, check: wantNames("emea")},
		{name: "members of unknown group", req: request{Method: "GET", Path: "/api/v1/groups/ghost/members"}, status: 404, code: "not_found"},
		{name: "user shows direct and nested groups", req: request{Method: "GET", Path: "/api/v1/users/ada"}, status: 200,
			check: func(t *testing.T, e *env, r *response) {
				groups := namesList(r.JSON(t)["groups"])
				if !slices.Equal(groups, []string{"Sales All"}) {
					t.Errorf("groups = %v, want [Sales All]", groups)
				}
			}},
		{name: "service account's nested group has via", req: request{Method: "GET", Path: "/api/v1/groups/emea"}, status: 200,
			check: func(t *testing.T, e *env, r *response) {
				if got := namesList(r.JSON(t)["member_of"]); !slices.Equal(got, []string{"Sales All"}) {
					t.Errorf("member_of = %v, want [Sales All]", got)
				}
			}},
		{name: "remove by name", req: request{Method: "DELETE", Path: "/api/v1/groups/{sales}/members/BOB"}, status: 204},
		{name: "remove again", req: request{Method: "DELETE", Path: "/api/v1/groups/{sales}/members/bob"}, status: 404, code: "not_found"},
		{name: "remove by id", req: request{Method: "DELETE", Path: "/api/v1/groups/{sales}/members/{ada}"}, status: 204},
		{name: "remove by prefix", req: request{Method: "DELETE", Path: "/api/v1/groups/{sales}/members/group:emea"}, status: 204},
		{name: "remove unknown member", req: request{Method: "DELETE", Path: "/api/v1/groups/{sales}/members/ghost"},
			status: 422, code: "invalid", field: "member"},
		{name: "empty now", req: request{Method: "GET", Path: "/api/v1/groups/{sales}/members"}, status: 200, check: wantNames()},
		{name: "update", req: request{Method: "PATCH", Path: "/api/v1/groups/{sales}",
			Body: map[string]any{"description": "renamed", "name": "sales", "owners": []string{"bob"}}}, status: 200,
			check: func(t *testing.T, e *env, r *response) {
				m := r.JSON(t)
				if str(m, "name") != "sales" || str(m, "description") != "renamed" || !slices.Equal(namesList(m["owners"]), []string{"bob"}) {
					t.Errorf("update not applied: %s", r.Body)
				}
				// version: create 1, three adds, three removes, this update
				if str(m, "version") != "8" {
					t.Errorf("version = %s, want 8", str(m, "version"))
				}
			}},
		{name: "members in a patch", req: request{Method: "PATCH", Path: "/api/v1/groups/{sales}", Body: map[string]any{"members": []string{"ada"}}},
			status: 422, code: "invalid", field: "members"},
		{name: "move", req: request{Method: "POST", Path: "/api/v1/groups/sales/move", Body: map[string]any{"to": "/"}}, status: 200,
			check: wantJSON(map[string]string{"ou": "/"})},
		{name: "delete", req: request{Method: "DELETE", Path: "/api/v1/groups/sales"}, status: 204, check: gone("/api/v1/groups/{sales}")},
	})
}

// namesList reads a JSON array of names, or of objects with a name.
func namesList(v any) []string {
	arr, _ := v.([]any)
	out := []string{}
	for _, x := range arr {
		switch y := x.(type) {
		case string:
			out = append(out, y)
		case map[string]any:
			out = append(out, str(y, "name"))
		}
	}
	return out
}

func TestServiceAccounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "POST", "/api/v1/ous", map[string]any{"name": "corp"})
	e.newUser("ada", nil)
	e.newUser("bob", nil)
	e.run(t, []scenario{
		{name: "create", req: request{Method: "POST", Path: "/api/v1/service-accounts",
			Body: map[string]any{"name": "ci-bot", "ou": "corp", "owners": []string{"ada"}, "description": "builds"}},
			status: 201, save: "bot", check: all(wantHeader("Location", "/api/v1/service-accounts/{bot}"),
				wantJSON(map[string]string{"status": "active", "ou": "corp", "description": "builds"}))},
		{name: "no owner", req: request{Method: "POST", Path: "/api/v1/service-accounts",
			Body: map[string]any{"name": "orphan", "ou": "corp", "owners": []string{}}}, status: 422, code: "invalid", field: "owners",
			check: gone("/api/v1/service-accounts/orphan")},
		{name: "duplicate name", req: request{Method: "POST", Path: "/api/v1/service-accounts",
			Body: map[string]any{"name": "CI-BOT", "ou": "corp", "owners": []string{"ada"}}}, status: 409, code: "conflict", field: "name"},
		{name: "get by name", req: request{Method: "GET", Path: "/api/v1/service-accounts/CI-Bot"}, status: 200,
			check: wantJSON(map[string]string{"id": "{bot}"})},
		{name: "list", req: request{Method: "GET", Path: q("/api/v1/service-accounts", "filter", `status eq "active"`)},
			status: 200, check: wantNames("ci-bot")},
		{name: "sole owner cannot be deleted", req: request{Method: "DELETE", Path: "/api/v1/users/ada"}, status: 409, code: "conflict"},
		{name: "update owners and status", req: request{Method: "PATCH", Path: "/api/v1/service-accounts/{bot}",
			Body: map[string]any{"owners": []string{"bob"}, "status": "disabled"}}, status: 200,
			check: func(t *testing.T, e *env, r *response) {
				wantJSON(map[string]string{"status": "disabled", "version": "2"})(t, e, r)
				if got := namesList(r.JSON(t)["owners"]); !slices.Equal(got, []string{"bob"}) {
					t.Errorf("owners = %v, want [bob]", got)
				}
			}},
		{name: "owners cannot be emptied", req: request{Method: "PATCH", Path: "/api/v1/service-accounts/{bot}",
			Body: map[string]any{"owners": nil}}, status: 422, code: "invalid", field: "owners"},
		{name: "ou in a patch", req: request{Method: "PATCH", Path: "/api/v1/service-accounts/{bot}",
			Body: map[string]any{"ou": "/"}}, status: 422, code: "invalid", field: "ou"},
		{name: "former owner can go", req: request{Method: "DELETE", Path: "/api/v1/users/ada"}, status: 204},
		{name: "move", req: request{Method: "POST", Path: "/api/v1/service-accounts/ci-bot/move", Body: map[string]any{"to": "/"}},
			status: 200, check: wantJSON(map[string]string{"ou": "/", "version": "3"})},
		{name: "delete", req: request{Method: "DELETE", Path: "/api/v1/service-accounts/ci-bot"}, status: 204,
			check: gone("/api/v1/service-accounts/{bot}")},
	})
}

func TestTokensAndMe(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ids["bob"] = str(e.newUser("bob", nil), "id")
	e.ids["carol"] = str(e.newUser("carol", nil), "id")
	e.tokenFor("bob")
	e.run(t, []scenario{
		{name: "me as admin", req: request{Method: "GET", Path: "/api/v1/me"}, status: 200,
			check: wantJSON(map[string]string{"username": "admin", "id": "{admin}", "protected": "true"})},
		{name: "me as bob", req: request{Method: "GET", Path: "/api/v1/me", As: "bob"}, status: 200,
			check: wantJSON(map[string]string{"username": "bob", "id": "{bob}"})},
		{name: "own token by username", req: request{Method: "POST", Path: "/api/v1/users/bob/tokens", As: "bob",
			Body: map[string]any{"name": "laptop"}}, status: 201, check: func(t *testing.T, e *env, r *response) {
			m := r.JSON(t)
			if str(m, "user") != "bob" || str(m, "name") != "laptop" || str(m, "token") == "" || str(m, "id") == "" || str(m, "expires") == "" {
				t.Fatalf("token answer incomplete: %s", r.Body)
			}
			// The new token works on its own.
			e.tokens["bob2"] = str(m, "token")
			if me := e.do(request{Method: "GET", Path: "/api/v1/me", As: "bob2"}); me.Status != 200 || str(me.JSON(t), "username") != "bob" {
				t.Errorf("the new token does not authenticate bob: %d %s", me.Status, me.Body)
			}
		}},
		{name: "own token by username in other case", req: request{Method: "POST", Path: "/api/v1/users/BOB/tokens", As: "bob",
			Body: map[string]any{"name": "phone", "expires_in_days": 7}}, status: 201},
		{name: "own token by id", req: request{Method: "POST", Path: "/api/v1/users/{bob}/tokens", As: "bob",
			Body: map[string]any{"name": "ci"}}, status: 201},
		{name: "own token without a name", req: request{Method: "POST", Path: "/api/v1/users/bob/tokens", As: "bob",
			Body: map[string]any{}}, status: 422, code: "invalid", field: "name"},
		{name: "own token too long-lived", req: request{Method: "POST", Path: "/api/v1/users/bob/tokens", As: "bob",
			Body: map[string]any{"name": "x", "expires_in_days": 367}}, status: 422, code: "invalid", field: "expires_in_days"},
		{name: "token for someone else", req: request{Method: "POST", Path: "/api/v1/users/carol/tokens", As: "bob",
			Body: map[string]any{"name": "x"}}, status: 403, code: "not_authorized"},
		{name: "token for someone else by id", req: request{Method: "POST", Path: "/api/v1/users/{carol}/tokens", As: "bob",
			Body: map[string]any{"name": "x"}}, status: 403, code: "not_authorized"},
		{name: "token for nobody", req: request{Method: "POST", Path: "/api/v1/users/ghost/tokens", As: "bob",
			Body: map[string]any{"name": "x"}}, status: 403, code: "not_authorized"},
		{name: "admin issues for someone else", req: request{Method: "POST", Path: "/api/v1/users/carol/tokens",
			Body: map[string]any{"name": "handover"}}, status: 201, check: wantJSON(map[string]string{"user": "carol"})},
		{name: "no secret in the audit trail", req: request{Method: "GET", Path: q("/api/v1/audit/events", "action", "user.issue_token")},
			status: 200, check: func(t *testing.T, e *env, r *response) {
				if n := len(r.Items(t)); n < 5 {
					t.Errorf("%d token events, want at least 5", n)
				}
				for name, tok := range e.tokens {
					if strings.Contains(string(r.Body), tok) {
						t.Errorf("the audit trail holds %s's token", name)
					}
				}
			}},
	})
}

func TestProbesAndMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.newUser("ada", nil)
	e.run(t, []scenario{
		{name: "healthz", req: request{Method: "GET", Path: "/healthz", As: "-"}, status: 200, check: wantJSON(map[string]string{"status": "ok"})},
		{name: "readyz", req: request{Method: "GET", Path: "/readyz", As: "-"}, status: 200,
			check: wantJSON(map[string]string{"status": "ready", "database": "sqlite"})},
		{name: "metrics", req: request{Method: "GET", Path: "/metrics", As: "-"}, status: 200, check: func(t *testing.T, e *env, r *response) {
			body := string(r.Body)
			for _, want := range []string{
				`deputy_http_requests_total{code="201",route="POST /api/v1/users"} 1`,
				`deputy_ops_duration_seconds_count{action="user.create",outcome="applied"} 1`,
				"deputy_audit_log_events 5", // init's four events and the user created
				"go_goroutines",
			} {
				if !strings.Contains(body, want) {
					t.Errorf("metrics lack %q", want)
				}
			}
		}},
		{name: "security headers", req: request{Method: "GET", Path: "/healthz", As: "-"}, status: 200,
			check: all(wantHeader("X-Content-Type-Options", "nosniff"), wantHeader("X-Frame-Options", "DENY"))},
	})
}
