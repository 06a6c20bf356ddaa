package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// queryEnv is orgEnv with helen helpdesk over corp/sales, audrey auditor over everything, hank
// HR over corp/hr and mona manager of her direct reports (sam).
func queryEnv(t *testing.T) *env {
	e := orgEnv(t)
	e.ids["hd"] = e.grant(map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "helen"}, "scope": map[string]any{"ou": "corp/sales"}})
	e.ids["aud"] = e.grant(map[string]any{"role": "auditor", "holder": map[string]any{"user": "audrey"}, "scope": map[string]any{"ou": "/"}})
	e.ids["hr"] = e.grant(map[string]any{"role": "hr", "holder": map[string]any{"user": "hank"}, "scope": map[string]any{"ou": "corp/hr"}})
	e.ids["mgr"] = e.grant(map[string]any{"role": "manager", "holder": map[string]any{"user": "mona"},
		"scope": map[string]any{"relation": "direct_reports"}})
	return e
}

// wantAuthority checks the assignments an allow rests on.
func wantAuthority(path string, ids ...string) func(t *testing.T, e *env, r *response) {
	return func(t *testing.T, e *env, r *response) {
		t.Helper()
		var cur any = r.JSON(t)
		for _, k := range strings.Split(path, ".") {
			cur = cur.(map[string]any)[k]
		}
		var got []string
		for _, v := range cur.([]any) {
			got = append(got, v.(string))
		}
		want := make([]string, len(ids))
		for i, id := range ids {
			want[i] = e.expand(id)
		}
		if !sameSet(got, want) {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
}

func TestAuthzCheck(t *testing.T) {
	t.Parallel()
	e := queryEnv(t)
	check := func(as string, kv ...string) request {
		return request{Method: "GET", Path: q("/api/v1/authz/check", kv...), As: as}
	}
	e.run(t, []scenario{
		{name: "allowed, with its authority", req: check("helen", "action", "user.update", "attribute", "phone", "target", "sam"),
			status: 200, check: all(wantJSON(map[string]string{"allow": "true", "actor.name": "helen", "actor.id": "{helen}",
				"action": "user.update", "target.type": "user", "target.name": "sam", "target.id": "{sam}", "reason": ""}),
				wantAuthority("authority.assignments", "{hd}"))},
		{name: "an attribute the role does not name", req: check("helen", "action", "user.update", "attribute", "email", "target", "sam"),
			status: 200, check: func(t *testing.T, e *env, r *response) {
				wantJSON(map[string]string{"allow": "false", "reason": "not_authorized"})(t, e, r)
				if !strings.Contains(str(r.JSON(t), "message"), "email") {
					t.Errorf("the message does not say what is missing: %s", r.Body)
				}
			}},
		{name: "out of scope", req: check("helen", "action", "user.update", "target", "fred"), status: 200,
			check: wantJSON(map[string]string{"allow": "false", "reason": "not_authorized", "target.name": "fred"})},
		{name: "a protected user", req: check("helen", "action", "user.update", "attribute", "title", "target", "pat"), status: 200,
			check: wantJSON(map[string]string{"allow": "false", "reason": "protected"})},
		{name: "by type", req: check("helen", "action", "directory.read", "target", "crm-users", "type", "group"), status: 200,
			check: wantJSON(map[string]string{"allow": "true", "target.type": "group"})},
		{name: "a member to add", req: check("admin", "action", "group.add_member", "target", "crm-users", "member", "sue"), status: 200,
			check: wantJSON(map[string]string{"allow": "true", "authority.rule": "tier0-admin"})},
		{name: "adding oneself", req: check("helen", "action", "group.add_member", "target", "crm-users", "member", "helen"), status: 200,
			check: wantJSON(map[string]string{"allow": "false", "reason": "self_escalation"})},
		{name: "a create names the OU", req: check("hank", "action", "user.create", "target", "corp/hr"), status: 200,
			check: all(wantJSON(map[string]string{"allow": "true", "ou.type": "ou", "ou.name": "corp/hr", "target.name": ""}),
				wantAuthority("authority.assignments", "{hr}"))},
		{name: "a create elsewhere", req: check("hank", "action", "user.create", "target", "corp/sales"), status: 200,
			check: wantJSON(map[string]string{"allow": "false", "ou.name": "corp/sales"})},
		{name: "audit.read needs no target", req: check("audrey", "action", "audit.read"), status: 200,
			check: all(wantJSON(map[string]string{"allow": "true", "target.name": ""}), wantAuthority("authority.assignments", "{aud}"))},
		{name: "audit.read denied", req: check("helen", "action", "audit.read"), status: 200,
			check: wantJSON(map[string]string{"allow": "false", "reason": "not_authorized"})},
		{name: "role.create", req: check("helen", "action", "role.create"), status: 200,
			check: wantJSON(map[string]string{"allow": "false", "reason": "not_authorized"})},
		{name: "revoking an assignment", req: check("admin", "action", "role.revoke", "target", e.ids["hd"]), status: 200,
			check: wantJSON(map[string]string{"allow": "true", "target.type": "assignment", "target.id": "{hd}"})},
		{name: "revoking one's own", req: check("helen", "action", "role.revoke", "target", e.ids["hd"]), status: 200,
			check: wantJSON(map[string]string{"allow": "false", "reason": "self_escalation"})},
		{name: "granting is asked with a dry run", req: check("helen", "action", "role.assign", "target", "sam"), status: 422,
			field: "action", check: detailNames("dry_run")},

		// whom a question may be about
		{name: "about oneself by name", req: check("helen", "actor", "HELEN", "action", "user.update", "target", "sam"), status: 200,
			check: wantJSON(map[string]string{"allow": "true", "actor.name": "helen"})},
		{name: "about oneself by ID", req: check("helen", "actor", e.ids["helen"], "action", "user.update", "target", "sam"), status: 200},
		{name: "not about others", req: check("helen", "actor", "sam", "action", "user.update", "target", "sam"), status: 403,
			check: deniedRecorded("not_authorized", "helen", "audit.read")},
		{name: "an auditor asks about others", req: check("audrey", "actor", "helen", "action", "user.update", "target", "sam"),
			status: 200, check: all(wantJSON(map[string]string{"allow": "true", "actor.name": "helen"}), wantAuthority("authority.assignments", "{hd}"))},
		{name: "about nobody", req: check("audrey", "actor", "ghost", "action", "user.update", "target", "sam"), status: 422, field: "actor"},

		// bad questions
		{name: "no action", req: check("helen", "target", "sam"), status: 422, field: "action"},
		{name: "unknown action", req: check("helen", "action", "user.fly", "target", "sam"), status: 422, field: "action"},
		{name: "no target", req: check("helen", "action", "user.update"), status: 422, field: "target"},
		{name: "unknown target", req: check("helen", "action", "user.update", "target", "ghost"), status: 422, field: "target"},
		{name: "unknown OU", req: check("helen", "action", "user.create", "target", "corp/nowhere"), status: 422, field: "target"},
		{name: "bad type", req: check("helen", "action", "directory.read", "target", "sam", "type", "robot"), status: 422, field: "type"},
		{name: "unknown member", req: check("helen", "action", "group.add_member", "target", "crm-users", "member", "ghost"),
			status: 422, field: "member"},
		{name: "unknown assignment", req: check("admin", "action", "role.revoke", "target", "01a22260-5259-713a-8598-40b240fa5e27"),
			status: 422, field: "target"},
	})
	// Questions are not recorded; only the refused question about someone else is.
	evs := e.events(url.Values{"actor": {"helen"}})
	if len(evs) != 1 || str(evs[0], "action") != "audit.read" {
		t.Errorf("events by helen: %v", evs)
	}
}

func TestAuthzWhoCan(t *testing.T) {
	t.Parallel()
	e := queryEnv(t)
	whoCan := func(as string, kv ...string) request {
		return request{Method: "GET", Path: q("/api/v1/authz/who-can", kv...), As: as}
	}
	e.run(t, []scenario{
		{name: "needs audit.read", req: whoCan("helen", "action", "user.update", "target", "sam"), status: 403,
			check: deniedRecorded("not_authorized", "helen", "audit.read")},
		{name: "phone of sam", req: whoCan("audrey", "action", "user.update", "attribute", "phone", "target", "sam"), status: 200,
			check: func(t *testing.T, e *env, r *response) {
				wantItems("actor.name", "admin", "helen", "mona")(t, e, r)
				for _, it := range r.Items(t) {
					if str(it, "allow") != "true" || str(it, "target.name") != "sam" || str(it, "action") != "user.update" {
						t.Errorf("item %v", it)
					}
					if str(it, "actor.name") == "helen" && !slices.Contains(it["authority"].(map[string]any)["assignments"].([]any), any(e.ids["hd"])) {
						t.Errorf("helen's authority is not her assignment: %v", it)
					}
				}
			}},
		{name: "department of sam", req: whoCan("", "action", "user.update", "attribute", "department", "target", "sam"), status: 200,
			check: wantItems("actor.name", "admin")},
		{name: "reading sam, himself included", req: whoCan("audrey", "action", "directory.read", "target", "sam"), status: 200,
			check: wantItems("actor.name", "admin", "audrey", "helen", "mona", "sam")},
		{name: "creating in corp/hr", req: whoCan("audrey", "action", "user.create", "target", "corp/hr"), status: 200,
			check: wantItems("actor.name", "admin", "hank")},
		{name: "one page", req: whoCan("audrey", "action", "directory.read", "target", "sam", "limit", "2"), status: 200,
			check: func(t *testing.T, e *env, r *response) {
				page1 := r.Items(t)
				next := str(r.JSON(t), "next_cursor")
				if len(page1) != 2 || next == "" {
					t.Fatalf("want 2 items and a cursor: %s", r.Body)
				}
				var names []string
				for next != "" {
					p := e.do(whoCan("audrey", "action", "directory.read", "target", "sam", "limit", "2", "cursor", next))
					for _, it := range p.Items(t) {
						names = append(names, str(it, "actor.name"))
					}
					next = str(p.JSON(t), "next_cursor")
				}
				for _, it := range page1 {
					names = append(names, str(it, "actor.name"))
				}
				if !sameSet(names, []string{"admin", "audrey", "helen", "mona", "sam"}) {
					t.Errorf("paged who-can: %v", names)
				}
			}},
		{name: "not for grants", req: whoCan("audrey", "action", "role.revoke", "target", "{hd}"), status: 422, field: "action"},
		{name: "unknown target", req: whoCan("audrey", "action", "user.update", "target", "ghost"), status: 422, field: "target"},
		{name: "bad limit", req: whoCan("audrey", "action", "user.update", "target", "sam", "limit", "1001"), status: 422, field: "limit"},
	})
}

// canWhat reads every page of can-what as who with query, and returns name -> actions.
func (e *env) canWhat(who string, kv ...string) map[string][]string {
	e.t.Helper()
	out := map[string][]string{}
	cursor := ""
	for {
		args := append(slices.Clone(kv), "limit", "2")
		if cursor != "" {
			args = append(args, "cursor", cursor)
		}
		r := e.do(request{Method: "GET", Path: q("/api/v1/authz/can-what", args...), As: who})
		if r.Status != http.StatusOK {
			e.t.Fatalf("can-what as %s: %d %s", who, r.Status, r.Body)
		}
		for _, it := range r.Items(e.t) {
			out[str(it, "object.name")] = strs(it["actions"])
		}
		if cursor = str(r.JSON(e.t), "next_cursor"); cursor == "" {
			return out
		}
	}
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestAuthzCanWhat(t *testing.T) {
	t.Parallel()
	e := queryEnv(t)
	helpdesk := []string{"directory.read", "user.reset_password", "user.unlock", "user.update"}
	self := []string{"directory.read", "user.change_password", "user.enrol_mfa", "user.issue_token", "user.revoke_tokens"}
	// mona manages sam, a right helen lacks: resetting mona's password would take it over.
	wantHelen := map[string][]string{"mona": {"directory.read", "user.unlock", "user.update"}, "sam": helpdesk, "sue": helpdesk, "vic": helpdesk,
		"pat": {"directory.read"}, "helen": self}
	for _, c := range []struct {
		name string
		as   string
		kv   []string
		want map[string][]string
	}{
		{"helen's users", "helen", nil, wantHelen},
		{"helen's users, asked by an auditor", "audrey", []string{"actor", "helen"}, wantHelen},
		{"helen's OUs", "helen", []string{"type", "ou"}, map[string][]string{"corp/sales": {"directory.read"}, "corp/sales/vip": {"directory.read"}}},
		{"helen's groups", "helen", []string{"type", "group"},
			map[string][]string{"crm-users": {"directory.read"}, "sales-team": {"directory.read"}, "vips": {"directory.read"}}},
		{"helen's service accounts", "helen", []string{"type", "sa"}, map[string][]string{"crm-sync": {"directory.read"}}},
		{"a manager's report", "mona", []string{"type", "user"},
			map[string][]string{"sam": {"directory.read", "user.update"}, "mona": self}},
		{"hank's OU", "hank", []string{"type", "ou"}, map[string][]string{"corp/hr": {"directory.read", "user.create"}}},
		{"no rights: only oneself", "fred", nil, map[string][]string{"fred": self}},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer e.with(t)()
			got := e.canWhat(c.as, c.kv...)
			if len(got) != len(c.want) {
				t.Errorf("can-what = %v, want %v", got, c.want)
			}
			for name, actions := range c.want {
				if !slices.Equal(got[name], actions) {
					t.Errorf("%s: %v, want %v", name, got[name], actions)
				}
			}
		})
	}

	// Every pair can-what reports, check agrees with.
	for name, actions := range e.canWhat("helen") {
		for _, action := range actions {
			if d := e.checkAs("helen", "action", action, "target", name); str(d, "allow") != "true" {
				t.Errorf("can-what says helen may %s on %s; check says %v", action, name, d)
			}
		}
	}

	e.run(t, []scenario{
		{name: "not about others without audit.read", req: request{Method: "GET", Path: "/api/v1/authz/can-what?actor=audrey", As: "helen"},
			status: 403, check: deniedRecorded("not_authorized", "helen", "audit.read")},
		{name: "bad type", req: request{Method: "GET", Path: "/api/v1/authz/can-what?type=robot", As: "helen"}, status: 422, field: "type"},
		{name: "bad limit", req: request{Method: "GET", Path: "/api/v1/authz/can-what?limit=x", As: "helen"}, status: 422, field: "limit"},
		{name: "stream", req: request{Method: "GET", Path: "/api/v1/authz/can-what?stream=true&limit=1", As: "helen"}, status: 200,
			check: func(t *testing.T, e *env, r *response) {
				if ct := r.Header.Get("Content-Type"); ct != "application/x-ndjson" {
					t.Errorf("Content-Type = %q", ct)
				}
				got := map[string][]string{}
				sc := bufio.NewScanner(bytes.NewReader(r.Body))
				for sc.Scan() {
					var it map[string]any
					if err := json.Unmarshal(sc.Bytes(), &it); err != nil {
						t.Fatalf("line %q: %v", sc.Text(), err)
					}
					if len(it) != 2 || it["object"] == nil || it["actions"] == nil {
						t.Errorf("line %q is not {object, actions}", sc.Text())
					}
					got[str(it, "object.name")] = strs(it["actions"])
				}
				if len(got) != len(wantHelen) {
					t.Errorf("streamed %v, want %v", got, wantHelen)
				}
				for name, actions := range wantHelen {
					if !slices.Equal(got[name], actions) {
						t.Errorf("streamed %s: %v, want %v", name, got[name], actions)
					}
				}
			}},
		{name: "stream refuses a cursor", req: request{Method: "GET", Path: "/api/v1/authz/can-what?stream=true&cursor=abc", As: "helen"},
			status: 422, field: "cursor"},
		{name: "stream refused as a problem", req: request{Method: "GET", Path: "/api/v1/authz/can-what?stream=true&actor=sam", As: "helen"},
			status: 403, code: "not_authorized"},
	})
}

func TestAuthzEscalations(t *testing.T) {
	t.Parallel()
	e := orgEnv(t)
	e.grant(map[string]any{"role": "auditor", "holder": map[string]any{"user": "audrey"}, "scope": map[string]any{"ou": "/"}})
	e.grant(map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "helen"}, "scope": map[string]any{"ou": "corp/sales"}})
	esc := func(as string) request { return request{Method: "GET", Path: "/api/v1/authz/escalations", As: as} }
	e.run(t, []scenario{
		{name: "needs audit.read", req: esc("helen"), status: 403, check: deniedRecorded("not_authorized", "helen", "audit.read")},
		{name: "none under the guardrails", req: esc("audrey"), status: 200, check: wantItems("attribute")},
		{name: "a relation scope alone is none", req: request{Method: "POST", Path: "/api/v1/assignments", Body: map[string]any{
			"role": "manager", "holder": map[string]any{"user": "mona"}, "scope": map[string]any{"relation": "direct_reports"},
			"justification": "managers"}}, status: 201, save: "mgr",
			check: func(t *testing.T, e *env, r *response) { wantItems("attribute")(t, e, e.do(esc(""))) }},
		{name: "HR may set managers", req: request{Method: "POST", Path: "/api/v1/assignments", Body: map[string]any{
			"role": "hr", "holder": map[string]any{"user": "hank"}, "scope": map[string]any{"ou": "corp"}, "justification": "HR"}},
			status: 201, save: "hr"},
		{name: "so the manager relation is a path", req: esc("audrey"), status: 200,
			check: func(t *testing.T, e *env, r *response) {
				wantItems("attribute", "manager")(t, e, r)
				it := r.Items(t)[0]
				for path, want := range map[string]string{"via.id": e.ids["hr"], "via.holder.name": "hank", "via.role": "hr",
					"gains.id": e.ids["mgr"], "gains.role": "manager", "gains.scope.relation": "direct_reports"} {
					if got := str(it, path); got != want {
						t.Errorf("%s = %q, want %q", path, got, want)
					}
				}
				if !strings.Contains(str(it, "explanation"), "manager") {
					t.Errorf("explanation: %q", str(it, "explanation"))
				}
			}},
		{name: "a custom role that sets owners", req: request{Method: "POST", Path: "/api/v1/roles", Body: map[string]any{
			"name": "owner-admin", "actions": []string{"directory.read", "group.set_owner"}}}, status: 201},
		{name: "granted", req: request{Method: "POST", Path: "/api/v1/assignments", Body: map[string]any{
			"role": "owner-admin", "holder": map[string]any{"user": "dora"}, "scope": map[string]any{"ou": "corp/sales"}, "justification": "x"}},
			status: 201},
		{name: "with owned groups", req: request{Method: "POST", Path: "/api/v1/assignments", Body: map[string]any{
			"role": "group-owner", "holder": map[string]any{"group": "it-helpdesk"}, "scope": map[string]any{"relation": "owned_groups"},
			"justification": "owners"}}, status: 201},
		{name: "two paths", req: esc(""), status: 200, check: wantItems("attribute", "manager", "owners")},
		{name: "revoked, gone", req: request{Method: "DELETE", Path: "/api/v1/assignments/{hr}"}, status: 204,
			check: func(t *testing.T, e *env, r *response) { wantItems("attribute", "owners")(t, e, e.do(esc(""))) }},
	})
}

// TestDenialReasons checks that every guardrail's denial reaches the client as a problem whose
// code is the engine's reason, recorded in the audit trail, with nothing changed.
func TestDenialReasons(t *testing.T) {
	t.Parallel()
	e := orgEnv(t)
	e.grant(map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "helen"}, "scope": map[string]any{"ou": "corp/sales"}})
	e.grant(map[string]any{"role": "hr", "holder": map[string]any{"user": "sue"}, "scope": map[string]any{"ou": "corp/hr"}})
	e.grant(map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "dora"}, "scope": map[string]any{"ou": "corp/sales"},
		"can_redelegate": true})
	grantBy := func(as string, body map[string]any) request {
		body["justification"] = "x"
		return request{Method: "POST", Path: "/api/v1/assignments", As: as, Body: body}
	}
	e.runUnchanged(t, []scenario{
		{name: "not_authorized", req: request{Method: "PATCH", Path: "/api/v1/users/fred", As: "helen", Body: map[string]any{"phone": "1"}},
			status: 403, check: deniedRecorded("not_authorized", "helen", "user.update")},
		{name: "escalation: a recovery channel of someone holding more", req: request{Method: "PATCH", Path: "/api/v1/users/sue",
			As: "helen", Body: map[string]any{"phone": "1"}}, status: 403, check: all(deniedRecorded("escalation", "helen", "user.update"),
			detailNames("hr"))},
		{name: "protected", req: request{Method: "PATCH", Path: "/api/v1/users/pat", As: "helen", Body: map[string]any{"title": "x"}},
			status: 403, check: deniedRecorded("protected", "helen", "user.update")},
		{name: "self_escalation: joining a group", req: request{Method: "POST", Path: "/api/v1/groups/crm-users/members", As: "helen",
			Body: map[string]any{"member": "helen"}}, status: 403, check: deniedRecorded("self_escalation", "helen", "group.add_member")},
		{name: "self_escalation: granting oneself", req: grantBy("dora", map[string]any{"role": "helpdesk",
			"holder": map[string]any{"user": "dora"}, "scope": map[string]any{"ou": "corp/sales/vip"}}),
			status: 403, check: deniedRecorded("self_escalation", "dora", "role.assign")},
		{name: "exceeds_grant: nothing to redelegate", req: grantBy("helen", map[string]any{"role": "helpdesk",
			"holder": map[string]any{"user": "sam"}, "scope": map[string]any{"ou": "corp/sales/vip"}}),
			status: 403, check: deniedRecorded("exceeds_grant", "helen", "role.assign")},
		{name: "exceeds_grant: a wider scope", req: grantBy("dora", map[string]any{"role": "helpdesk",
			"holder": map[string]any{"user": "sam"}, "scope": map[string]any{"ou": "corp"}}),
			status: 403, check: all(deniedRecorded("exceeds_grant", "dora", "role.assign"), detailNames("does not contain"))},
		{name: "exceeds_grant: a bigger role", req: grantBy("dora", map[string]any{"role": "hr",
			"holder": map[string]any{"user": "sam"}, "scope": map[string]any{"ou": "corp/sales"}}),
			status: 403, check: deniedRecorded("exceeds_grant", "dora", "role.assign")},
		{name: "protected: granting tier-0", req: grantBy("dora", map[string]any{"role": "tier0-admin",
			"holder": map[string]any{"user": "sam"}, "scope": map[string]any{"ou": "/"}}),
			status: 403, check: deniedRecorded("protected", "dora", "role.assign")},
		{name: "protected: granting to a protected user", req: grantBy("dora", map[string]any{"role": "helpdesk",
			"holder": map[string]any{"user": "pat"}, "scope": map[string]any{"ou": "corp/sales/vip"}}),
			status: 403, check: deniedRecorded("protected", "dora", "role.assign")},
		{name: "not_authorized: granting to someone out of sight", req: grantBy("dora", map[string]any{"role": "helpdesk",
			"holder": map[string]any{"user": "fred"}, "scope": map[string]any{"ou": "corp/sales/vip"}}),
			status: 403, check: deniedRecorded("not_authorized", "dora", "role.assign")},
	})
	// A redelegation within the granter's own assignment is allowed.
	e.run(t, []scenario{{name: "a subset is granted", req: grantBy("dora", map[string]any{"role": "helpdesk",
		"holder": map[string]any{"user": "sam"}, "scope": map[string]any{"ou": "corp/sales/vip"}}), status: 201,
		check: wantJSON(map[string]string{"granted_by.name": "dora", "scope.ou": "corp/sales/vip"})}})
}
