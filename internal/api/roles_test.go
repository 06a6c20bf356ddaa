package api_test

import (
	"slices"
	"strings"
	"testing"
)

// builtinRoles are the roles Deputy defines in code.
var builtinRoles = []string{"auditor", "group-owner", "helpdesk", "hr", "manager", "reader", "sa-owner", "tier0-admin"}

// wantStrings checks a string list at a top-level key of an object answer.
func wantStrings(key string, want ...string) func(t *testing.T, e *env, r *response) {
	return func(t *testing.T, e *env, r *response) {
		t.Helper()
		raw, ok := r.JSON(t)[key].([]any)
		if !ok {
			t.Fatalf("%s is not a list: %s", key, r.Body)
		}
		got := make([]string, len(raw))
		for i, v := range raw {
			got[i], _ = v.(string)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.newUser("bob", nil)
	e.tokenFor("bob")
	e.newUser("carol", nil)
	roles := "/api/v1/roles"
	e.run(t, []scenario{
		{name: "built-ins listed, sorted", req: request{Method: "GET", Path: roles}, status: 200,
			check: func(t *testing.T, e *env, r *response) {
				items := r.Items(t)
				var names []string
				for _, it := range items {
					names = append(names, str(it, "name"))
					if str(it, "builtin") != "true" {
						t.Errorf("role %s is not marked builtin", str(it, "name"))
					}
				}
				if !slices.Equal(names, builtinRoles) {
					t.Errorf("roles = %v, want %v", names, builtinRoles)
				}
			}},
		{name: "anyone may read roles", req: request{Method: "GET", Path: roles + "/helpdesk", As: "bob"}, status: 200,
			check: all(wantJSON(map[string]string{"name": "helpdesk", "builtin": "true"}),
				wantStrings("actions", "directory.read", "user.reset_password", "user.unlock", "user.update"),
				wantStrings("user_attributes", "phone", "title"))},
		{name: "built-in names ignore case", req: request{Method: "GET", Path: roles + "/HR"}, status: 200,
			check: wantJSON(map[string]string{"name": "hr"})},
		{name: "unknown role", req: request{Method: "GET", Path: roles + "/nope"}, status: 404, code: "not_found"},

		// built-ins are read-only
		{name: "update a built-in", req: request{Method: "PATCH", Path: roles + "/helpdesk", Body: map[string]any{"description": "x"}},
			status: 409, code: "conflict", check: detailNames("copy_of")},
		{name: "delete a built-in", req: request{Method: "DELETE", Path: roles + "/tier0-admin"}, status: 409, code: "conflict"},
		{name: "create under a built-in name", req: request{Method: "POST", Path: roles,
			Body: map[string]any{"name": "Helpdesk", "actions": []string{"user.unlock"}}}, status: 422, code: "invalid", field: "name"},

		// create
		{name: "create", req: request{Method: "POST", Path: roles, Body: map[string]any{"name": "badge-admin",
			"description": "Badges", "actions": []string{"user.update", "directory.read", "user.update"},
			"user_attributes": []string{"attributes.badge"}}},
			status: 201, check: all(wantHeader("Location", "/api/v1/roles/badge-admin"), wantHeader("ETag", `"1"`),
				wantJSON(map[string]string{"name": "badge-admin", "builtin": "false", "version": "1", "description": "Badges"}),
				wantStrings("actions", "directory.read", "user.update"), wantStrings("user_attributes", "attributes.badge"))},
		{name: "create twice", req: request{Method: "POST", Path: roles, Body: map[string]any{"name": "badge-admin",
			"actions": []string{"user.unlock"}}}, status: 409, code: "conflict"},
		{name: "copy of a built-in", req: request{Method: "POST", Path: roles, Body: map[string]any{"name": "sales-helpdesk",
			"copy_of": "helpdesk"}},
			status: 201, check: all(wantJSON(map[string]string{"description": "Copy of helpdesk", "builtin": "false"}),
				wantStrings("actions", "directory.read", "user.reset_password", "user.unlock", "user.update"),
				wantStrings("user_attributes", "phone", "title"))},
		{name: "copy with narrower attributes", req: request{Method: "POST", Path: roles, Body: map[string]any{"name": "phone-desk",
			"copy_of": "helpdesk", "user_attributes": []string{"phone"}}},
			status: 201, check: all(wantStrings("user_attributes", "phone"),
				wantStrings("actions", "directory.read", "user.reset_password", "user.unlock", "user.update"))},
		{name: "copy of a custom role", req: request{Method: "POST", Path: roles, Body: map[string]any{"name": "badge-copy",
			"copy_of": "badge-admin", "description": "Mine"}},
			status: 201, check: all(wantJSON(map[string]string{"description": "Mine"}), wantStrings("user_attributes", "attributes.badge"))},
		{name: "copy of nothing", req: request{Method: "POST", Path: roles, Body: map[string]any{"name": "x", "copy_of": "ghost"}},
			status: 422, code: "invalid", field: "copy_of"},
		{name: "unknown action", req: request{Method: "POST", Path: roles, Body: map[string]any{"name": "x",
			"actions": []string{"user.fly"}}}, status: 422, code: "invalid", field: "actions", check: messageNames("actions", "user.fly")},
		{name: "no action", req: request{Method: "POST", Path: roles, Body: map[string]any{"name": "x"}},
			status: 422, code: "invalid", field: "actions"},
		{name: "unknown attribute", req: request{Method: "POST", Path: roles, Body: map[string]any{"name": "x",
			"actions": []string{"user.update"}, "user_attributes": []string{"shoe_size"}}},
			status: 422, code: "invalid", field: "user_attributes", check: messageNames("user_attributes", "shoe_size")},
		{name: "attributes without user.update", req: request{Method: "POST", Path: roles, Body: map[string]any{"name": "x",
			"actions": []string{"user.unlock"}, "user_attributes": []string{"phone"}}}, status: 422, code: "invalid", field: "user_attributes"},
		{name: "bad name", req: request{Method: "POST", Path: roles, Body: map[string]any{"name": "Not OK",
			"actions": []string{"user.unlock"}}}, status: 422, code: "invalid", field: "name"},
		{name: "unknown field", req: request{Method: "POST", Path: roles, Body: map[string]any{"name": "x",
			"actions": []string{"user.unlock"}, "colour": "red"}}, status: 422, code: "invalid", field: "colour"},
		{name: "only tier-0 creates roles", req: request{Method: "POST", Path: roles, As: "bob",
			Body: map[string]any{"name": "mine", "actions": []string{"user.unlock"}}},
			status: 403, code: "not_authorized", check: deniedRecorded("not_authorized", "bob", "role.create")},
		{name: "listed with the built-ins", req: request{Method: "GET", Path: roles}, status: 200,
			check: func(t *testing.T, e *env, r *response) {
				want := append(slices.Clone(builtinRoles), "badge-admin", "badge-copy", "phone-desk", "sales-helpdesk")
				slices.Sort(want)
				if got := namesOf(r.Items(t)); !slices.Equal(got, want) {
					t.Errorf("roles = %v, want %v", got, want)
				}
			}},

		// update
		{name: "update", req: request{Method: "PATCH", Path: roles + "/badge-admin",
			Body: map[string]any{"user_attributes": []string{"attributes.badge", "phone"}}},
			status: 200, check: all(wantHeader("ETag", `"2"`), wantJSON(map[string]string{"version": "2", "description": "Badges"}),
				wantStrings("user_attributes", "attributes.badge", "phone"))},
		{name: "update stale", req: request{Method: "PATCH", Path: roles + "/badge-admin", Header: map[string]string{"If-Match": `"1"`},
			Body: map[string]any{"description": "old"}}, status: 409, code: "stale_version"},
		{name: "update current", req: request{Method: "PATCH", Path: roles + "/badge-admin", Header: map[string]string{"If-Match": `"2"`},
			Body: map[string]any{"description": "Badges and phones"}}, status: 200, check: wantJSON(map[string]string{"version": "3"})},
		{name: "an empty patch", req: request{Method: "PATCH", Path: roles + "/badge-admin", Body: map[string]any{}},
			status: 422, code: "invalid", field: "body"},
		{name: "rename refused", req: request{Method: "PATCH", Path: roles + "/badge-admin", Body: map[string]any{"name": "other"}},
			status: 422, code: "invalid", field: "name"},
		{name: "update to an unknown action", req: request{Method: "PATCH", Path: roles + "/badge-admin",
			Body: map[string]any{"actions": []string{"user.update", "user.fly"}}}, status: 422, code: "invalid", field: "actions"},
		{name: "update of nothing", req: request{Method: "PATCH", Path: roles + "/ghost", Body: map[string]any{"description": "x"}},
			status: 404, code: "not_found"},
		{name: "only tier-0 updates roles", req: request{Method: "PATCH", Path: roles + "/badge-admin", As: "bob",
			Body: map[string]any{"description": "x"}}, status: 403, code: "not_authorized"},

		// delete
		{name: "grant a custom role", req: request{Method: "POST", Path: "/api/v1/assignments", Body: map[string]any{
			"role": "badge-admin", "holder": map[string]any{"user": "carol"}, "scope": map[string]any{"ou": "/"},
			"justification": "badges"}}, status: 201, save: "grant"},
		{name: "delete a role in use", req: request{Method: "DELETE", Path: roles + "/badge-admin"}, status: 409, code: "conflict",
			check: detailNames("revoke")},
		{name: "only tier-0 deletes roles", req: request{Method: "DELETE", Path: roles + "/badge-copy", As: "bob"},
			status: 403, code: "not_authorized"},
		{name: "revoke its assignment", req: request{Method: "DELETE", Path: "/api/v1/assignments/{grant}"}, status: 204},
		{name: "delete once unused", req: request{Method: "DELETE", Path: roles + "/badge-admin"}, status: 204,
			check: gone(roles + "/badge-admin")},
		{name: "delete again", req: request{Method: "DELETE", Path: roles + "/badge-admin"}, status: 404, code: "not_found"},
	})

	// Every change to a role is in the audit trail with the role as it was and became.
	evs := e.allEvents(map[string][]string{"target": {"badge-admin"}, "outcome": {"applied"}})
	var actions []string
	for _, ev := range evs {
		actions = append(actions, str(ev, "action"))
	}
	if got := strings.Join(actions, " "); got != "role.delete role.update role.update role.create" {
		t.Errorf("applied events about badge-admin: %s", got)
	}
}
