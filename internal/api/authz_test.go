package api_test

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unauthenticated checks a 401's WWW-Authenticate challenge.
func unauthenticated(t *testing.T, e *env, r *response) {
	t.Helper()
	if got := r.Header.Get("WWW-Authenticate"); got != `Bearer realm="deputy"` {
		t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.tokens["admin"]
	wrongSecret := admin[:len(admin)-1] + "a"
	if strings.HasSuffix(admin, "a") {
		wrongSecret = admin[:len(admin)-1] + "b"
	}
	var sc []scenario
	for _, c := range []struct{ name, header string }{
		{"no token", ""},
		{"basic scheme", "Basic YWRtaW46YWRtaW4="},
		{"empty bearer", "Bearer "},
		{"garbage", "Bearer nope"},
		{"wrong secret", "Bearer " + wrongSecret},
		{"unknown key id", "Bearer dpy_aaaaaaaaaaaaaaaa_" + strings.Repeat("b", 26)},
		{"token without its prefix", "Bearer " + strings.TrimPrefix(admin, "dpy_")},
		{"token with trailing data", "Bearer " + admin + "x"},
	} {
		for _, target := range []struct{ method, path string }{{"GET", "/api/v1/me"}, {"GET", "/api/v1/users"},
			{"POST", "/api/v1/users"}, {"GET", "/api/v1/audit/events"}} {
			req := request{Method: target.method, Path: target.path, As: "-"}
			if c.header != "" {
				req.Header = map[string]string{"Authorization": c.header}
			}
			if target.method == "POST" {
				req.Body = map[string]any{"username": "intruder", "ou": "/"}
			}
			sc = append(sc, scenario{name: c.name + " " + target.method + " " + target.path, req: req, status: 401,
				code: "unauthenticated", check: unauthenticated})
		}
	}
	e.runUnchanged(t, sc)
	e.run(t, []scenario{
		{name: "scheme is case-insensitive", req: request{Method: "GET", Path: "/api/v1/me", As: "-",
			Header: map[string]string{"Authorization": "bearer " + admin}}, status: 200},
		{name: "probes need no token", req: request{Method: "GET", Path: "/readyz", As: "-"}, status: 200},
	})
	if n := len(e.events(url.Values{"target": {"intruder"}})); n != 0 {
		t.Errorf("%d audit events about an unauthenticated attempt; it never reached the pipeline", n)
	}
}

// deniedWrite is a 403 not_authorized whose problem points at the audit event recording it.
func deniedWrite(action, target string) func(t *testing.T, e *env, r *response) {
	return func(t *testing.T, e *env, r *response) {
		t.Helper()
		p := r.Problem(t)
		if p.Event == nil {
			t.Fatalf("denial names no audit event: %s", r.Body)
		}
		if h := r.Header.Get("Deputy-Audit-Event"); h != strconv.FormatInt(*p.Event, 10) {
			t.Errorf("Deputy-Audit-Event = %q, want %d", h, *p.Event)
		}
		ev := e.get("/api/v1/audit/events/" + strconv.FormatInt(*p.Event, 10))
		for path, want := range map[string]string{
			"outcome": "denied", "reason": "not_authorized", "actor.name": "bob", "actor.id": e.ids["bob"], "actor.type": "user",
			"action": action, "target.name": target, "transport": "api", "client_addr": "127.0.0.1",
		} {
			if got := str(ev, path); got != want {
				t.Errorf("denial event %s = %q, want %q: %v", path, got, want, ev)
			}
		}
		if ev["after"] != nil || ev["before"] != nil {
			t.Errorf("a denial records no change: %v", ev)
		}
	}
}

func TestAuthorization(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "POST", "/api/v1/ous", map[string]any{"name": "corp"})
	e.ids["bob"] = str(e.newUser("bob", nil), "id")
	e.newUser("carol", nil)
	e.must(201, "POST", "/api/v1/groups", map[string]any{"name": "staff", "ou": "corp"})
	e.must(201, "POST", "/api/v1/groups/staff/members", map[string]any{"member": "carol"})
	e.must(201, "POST", "/api/v1/service-accounts", map[string]any{"name": "bot", "ou": "corp", "owners": []string{"carol"}})
	e.tokenFor("bob")

	writes := []struct {
		method, path string
		body         any
		action       string
		target       string
	}{
		{"POST", "/api/v1/ous", map[string]any{"name": "mine"}, "ou.create", "mine"},
		{"PATCH", "/api/v1/ous/corp", map[string]any{"name": "x"}, "ou.update", "corp"},
		{"POST", "/api/v1/ous/corp/move", map[string]any{"to": "/"}, "ou.move", "corp"},
		{"DELETE", "/api/v1/ous/corp", nil, "ou.delete", "corp"},
		{"POST", "/api/v1/users", map[string]any{"username": "sneaky", "ou": "corp"}, "user.create", "sneaky"},
		{"PATCH", "/api/v1/users/carol", map[string]any{"title": "x"}, "user.update", "carol"},
		{"PATCH", "/api/v1/users/bob", map[string]any{"title": "Boss"}, "user.update", "bob"},
		{"POST", "/api/v1/users/carol/disable", nil, "user.disable", "carol"},
		{"POST", "/api/v1/users/carol/enable", nil, "user.enable", "carol"},
		{"POST", "/api/v1/users/carol/move", map[string]any{"to": "/"}, "user.move", "carol"},
		{"DELETE", "/api/v1/users/admin", nil, "user.delete", "admin"},
		{"PATCH", "/api/v1/users/ghost", map[string]any{"title": "x"}, "user.update", "ghost"},
		{"POST", "/api/v1/users/carol/tokens", map[string]any{"name": "x"}, "user.issue_token", "carol"},
		{"POST", "/api/v1/groups", map[string]any{"name": "mine", "ou": "corp"}, "group.create", "mine"},
		{"PATCH", "/api/v1/groups/staff", map[string]any{"description": "x"}, "group.update", "staff"},
		{"POST", "/api/v1/groups/staff/move", map[string]any{"to": "/"}, "group.move", "staff"},
		{"DELETE", "/api/v1/groups/staff", nil, "group.delete", "staff"},
		{"POST", "/api/v1/groups/staff/members", map[string]any{"member": "carol"}, "group.add_member", "staff"},
		{"DELETE", "/api/v1/groups/staff/members/carol", nil, "group.remove_member", "staff"},
		{"POST", "/api/v1/service-accounts", map[string]any{"name": "mine", "ou": "corp", "owners": []string{"bob"}}, "sa.create", "mine"},
		{"PATCH", "/api/v1/service-accounts/bot", map[string]any{"description": "mine now"}, "sa.update", "bot"},
		{"POST", "/api/v1/service-accounts/bot/move", map[string]any{"to": "/"}, "sa.move", "bot"},
		{"DELETE", "/api/v1/service-accounts/bot", nil, "sa.delete", "bot"},
	}
	var sc []scenario
	for _, w := range writes {
		sc = append(sc, scenario{name: w.action + " " + w.path, req: request{Method: w.method, Path: w.path, As: "bob", Body: w.body},
			status: 403, code: "not_authorized", check: deniedWrite(w.action, w.target)})
	}
	reads := []string{"/api/v1/users", "/api/v1/users/carol", "/api/v1/users/admin", "/api/v1/users/ghost",
		"/api/v1/ous", "/api/v1/ous/corp", "/api/v1/groups", "/api/v1/groups/staff", "/api/v1/groups/staff/members",
		"/api/v1/service-accounts", "/api/v1/service-accounts/bot", "/api/v1/audit/events/0", "/api/v1/audit/export",
		q("/api/v1/users", "filter", `username eq "carol"`)}
	for _, path := range reads {
		sc = append(sc, scenario{name: "read " + path, req: request{Method: "GET", Path: path, As: "bob"}, status: 403, code: "not_authorized"})
	}
	e.runUnchanged(t, sc)

	e.run(t, []scenario{
		{name: "me", req: request{Method: "GET", Path: "/api/v1/me", As: "bob"}, status: 200, check: wantJSON(map[string]string{"username": "bob"})},
		{name: "self by name", req: request{Method: "GET", Path: "/api/v1/users/BOB", As: "bob"}, status: 200,
			check: wantJSON(map[string]string{"id": "{bob}"})},
		{name: "self by id", req: request{Method: "GET", Path: "/api/v1/users/{bob}", As: "bob"}, status: 200},
	})

	// Every denial, of a write or a read, is in the trail, found by the denied filter, with the
	// actor's address.
	evs := e.events(url.Values{"outcome": {"denied"}, "actor": {"bob"}, "limit": {"1000"}})
	var actions []string
	for _, ev := range evs {
		if str(ev, "transport") != "api" || str(ev, "client_addr") != "127.0.0.1" || str(ev, "outcome") != "denied" {
			t.Errorf("denied event lacks transport or client address: %v", ev)
		}
		actions = append(actions, str(ev, "action"))
	}
	var want []string
	for _, w := range writes {
		want = append(want, w.action)
	}
	for _, path := range reads {
		if strings.HasPrefix(path, "/api/v1/audit/") {
			want = append(want, "audit.read")
		} else {
			want = append(want, "directory.read")
		}
	}
	slices.Sort(actions)
	slices.Sort(want)
	if !slices.Equal(actions, want) {
		t.Errorf("denied events = %v, want one per denied write and read %v", actions, want)
	}
}

func TestDisabledUsersTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.newUser("bob", nil)
	e.tokenFor("bob")
	me := request{Method: "GET", Path: "/api/v1/me", As: "bob"}
	e.run(t, []scenario{
		{name: "works while active", req: me, status: 200},
		{name: "disable", req: request{Method: "POST", Path: "/api/v1/users/bob/disable"}, status: 200},
		{name: "rejected on the very next request", req: me, status: 401, code: "unauthenticated", check: unauthenticated},
		{name: "rejected for self-service too", req: request{Method: "POST", Path: "/api/v1/users/bob/tokens", As: "bob",
			Body: map[string]any{"name": "again"}}, status: 401, code: "unauthenticated"},
		{name: "no token for a disabled user", req: request{Method: "POST", Path: "/api/v1/users/bob/tokens",
			Body: map[string]any{"name": "x"}}, status: 409, code: "conflict", field: "status"},
		{name: "enable", req: request{Method: "POST", Path: "/api/v1/users/bob/enable"}, status: 200},
		{name: "works again once enabled", req: me, status: 200},
		{name: "delete", req: request{Method: "DELETE", Path: "/api/v1/users/bob"}, status: 204},
		{name: "rejected once deleted", req: me, status: 401, code: "unauthenticated", check: unauthenticated},
	})
}

// allEvents reads every event matching query, newest first.
func (e *env) allEvents(query url.Values) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	cursor := ""
	for {
		qv := url.Values{"limit": {"1000"}}
		for k, v := range query {
			qv[k] = v
		}
		if cursor != "" {
			qv.Set("cursor", cursor)
		}
		r := e.do(request{Method: "GET", Path: "/api/v1/audit/events?" + qv.Encode()})
		if r.Status != http.StatusOK {
			e.t.Fatalf("audit events: %d %s", r.Status, r.Body)
		}
		out = append(out, r.Items(e.t)...)
		if cursor = str(r.JSON(e.t), "next_cursor"); cursor == "" {
			return out
		}
	}
}

// eventTime is the event's time, zero when it does not parse (eventsWhere checks that every
// time parses). Times are compared as times: RFC 3339 strings with trimmed fractions do not
// sort as text.
func eventTime(ev map[string]any) time.Time {
	at, _ := time.Parse(time.RFC3339Nano, str(ev, "time"))
	return at
}

// indexes lists the events' indexes.
func indexes(evs []map[string]any) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = str(ev, "index")
	}
	return out
}

// eventsWhere checks that a filtered search returns exactly the events of the full trail that
// keep says should be there, newest first.
func eventsWhere(keep func(ev map[string]any) bool) func(t *testing.T, e *env, r *response) {
	return func(t *testing.T, e *env, r *response) {
		t.Helper()
		var want []map[string]any
		for _, ev := range e.allEvents(nil) {
			if _, err := time.Parse(time.RFC3339Nano, str(ev, "time")); err != nil {
				t.Fatalf("event %s: time: %v", str(ev, "index"), err)
			}
			if keep(ev) {
				want = append(want, ev)
			}
		}
		got := r.Items(t)
		if len(want) == 0 {
			t.Fatalf("the filter's expected result is empty; the test proves nothing")
		}
		if !slices.Equal(indexes(got), indexes(want)) {
			t.Errorf("events %v, want %v", indexes(got), indexes(want))
		}
	}
}

func TestAuditEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ids["bob"] = str(e.newUser("bob", nil), "id")
	e.tokenFor("bob")
	e.newUser("carol", nil)
	created := e.do(request{Method: "POST", Path: "/api/v1/users", Body: map[string]any{"username": "dave", "ou": "/"},
		Header: map[string]string{"User-Agent": "deputy-cli/test", "Deputy-Justification": "ticket 42"}})
	if created.Status != 201 {
		t.Fatalf("create dave: %d %s", created.Status, created.Body)
	}
	e.ids["dave-event"] = created.Header.Get("Deputy-Audit-Event")
	e.do(request{Method: "PATCH", Path: "/api/v1/users/carol", As: "bob", Body: map[string]any{"title": "x"}})
	e.do(request{Method: "POST", Path: "/api/v1/users", Body: map[string]any{"username": "CAROL", "ou": "/"}})
	e.must(200, "PATCH", "/api/v1/users/carol", map[string]any{"title": "Engineer"})

	all := e.allEvents(nil)
	if len(all) < 10 {
		t.Fatalf("only %d events", len(all))
	}
	mid := str(all[len(all)/2], "time")
	midTime := eventTime(all[len(all)/2])

	e.run(t, []scenario{
		{name: "event of a create", req: request{Method: "GET", Path: "/api/v1/audit/events/{dave-event}"}, status: 200,
			check: wantJSON(map[string]string{"action": "user.create", "target.name": "dave", "transport": "cli",
				"justification": "ticket 42", "user_agent": "deputy-cli/test", "outcome": "applied", "authority.rule": "tier0-admin"})},
		{name: "actor by name", req: request{Method: "GET", Path: q("/api/v1/audit/events", "actor", "bob")}, status: 200,
			check: eventsWhere(func(ev map[string]any) bool { return str(ev, "actor.name") == "bob" })},
		{name: "actor by id", req: request{Method: "GET", Path: "/api/v1/audit/events?actor={bob}"}, status: 200,
			check: eventsWhere(func(ev map[string]any) bool { return str(ev, "actor.name") == "bob" })},
		{name: "system actor", req: request{Method: "GET", Path: q("/api/v1/audit/events", "actor", "system:bootstrap")}, status: 200,
			check: eventsWhere(func(ev map[string]any) bool { return str(ev, "actor.type") == "system" })},
		{name: "target", req: request{Method: "GET", Path: q("/api/v1/audit/events", "target", "carol")}, status: 200,
			check: eventsWhere(func(ev map[string]any) bool { return str(ev, "target.name") == "carol" })},
		{name: "action", req: request{Method: "GET", Path: q("/api/v1/audit/events", "action", "user.update")}, status: 200,
			check: eventsWhere(func(ev map[string]any) bool { return str(ev, "action") == "user.update" })},
		{name: "outcome applied", req: request{Method: "GET", Path: q("/api/v1/audit/events", "outcome", "applied", "limit", "1000")},
			status: 200, check: eventsWhere(func(ev map[string]any) bool { return str(ev, "outcome") == "applied" })},
		{name: "outcome denied", req: request{Method: "GET", Path: q("/api/v1/audit/events", "outcome", "denied")}, status: 200,
			check: eventsWhere(func(ev map[string]any) bool { return str(ev, "outcome") == "denied" })},
		{name: "outcome failed", req: request{Method: "GET", Path: q("/api/v1/audit/events", "outcome", "failed")}, status: 200,
			check: eventsWhere(func(ev map[string]any) bool {
				return str(ev, "outcome") == "failed" && str(ev, "reason") == "conflict" && str(ev, "target.name") == "CAROL"
			})},
		{name: "transport cli", req: request{Method: "GET", Path: q("/api/v1/audit/events", "transport", "cli")}, status: 200,
			check: eventsWhere(func(ev map[string]any) bool { return str(ev, "transport") == "cli" })},
		{name: "transport api", req: request{Method: "GET", Path: q("/api/v1/audit/events", "transport", "api")}, status: 200,
			check: eventsWhere(func(ev map[string]any) bool { return str(ev, "transport") == "api" })},
		{name: "since", req: request{Method: "GET", Path: q("/api/v1/audit/events", "since", mid)}, status: 200,
			check: eventsWhere(func(ev map[string]any) bool { return !eventTime(ev).Before(midTime) })},
		{name: "until", req: request{Method: "GET", Path: q("/api/v1/audit/events", "until", mid)}, status: 200,
			check: eventsWhere(func(ev map[string]any) bool { return eventTime(ev).Before(midTime) })},
		{name: "combined", req: request{Method: "GET", Path: q("/api/v1/audit/events", "actor", "admin", "action", "user.create",
			"outcome", "applied", "transport", "api", "since", mid)}, status: 200,
			check: eventsWhere(func(ev map[string]any) bool {
				return str(ev, "actor.name") == "admin" && str(ev, "action") == "user.create" && str(ev, "outcome") == "applied" &&
					str(ev, "transport") == "api" && !eventTime(ev).Before(midTime)
			})},
		{name: "no match", req: request{Method: "GET", Path: q("/api/v1/audit/events", "actor", "nobody")}, status: 200,
			check: func(t *testing.T, e *env, r *response) {
				if len(r.Items(t)) != 0 {
					t.Errorf("events for an unknown actor: %s", r.Body)
				}
			}},
		{name: "bad outcome", req: request{Method: "GET", Path: q("/api/v1/audit/events", "outcome", "won")}, status: 422, code: "invalid", field: "outcome"},
		{name: "bad since", req: request{Method: "GET", Path: q("/api/v1/audit/events", "since", "yesterday")}, status: 422, code: "invalid", field: "since"},
		{name: "bad until", req: request{Method: "GET", Path: q("/api/v1/audit/events", "until", "2026-13-01")}, status: 422, code: "invalid", field: "until"},
		{name: "bad cursor", req: request{Method: "GET", Path: q("/api/v1/audit/events", "cursor", "abc")}, status: 422, code: "invalid", field: "cursor"},
		{name: "zero cursor", req: request{Method: "GET", Path: q("/api/v1/audit/events", "cursor", "0")}, status: 422, code: "invalid", field: "cursor"},
		{name: "bad limit", req: request{Method: "GET", Path: q("/api/v1/audit/events", "limit", "0")}, status: 422, code: "invalid", field: "limit"},
		{name: "unknown event", req: request{Method: "GET", Path: "/api/v1/audit/events/99999"}, status: 404, code: "not_found"},
		{name: "bad index", req: request{Method: "GET", Path: "/api/v1/audit/events/first"}, status: 422, code: "invalid", field: "index"},
	})

	// Paging: small pages visit every event once, newest first, with or without a filter.
	for _, filter := range []url.Values{nil, {"outcome": {"applied"}}, {"actor": {"admin"}, "action": {"user.create"}}} {
		t.Run("pages "+filter.Encode(), func(t *testing.T) {
			defer e.with(t)()
			want := indexes(e.allEvents(filter))
			var got []string
			cursor := ""
			for range len(want) + 1 {
				qv := url.Values{"limit": {"2"}}
				for k, v := range filter {
					qv[k] = v
				}
				if cursor != "" {
					qv.Set("cursor", cursor)
				}
				r := e.do(request{Method: "GET", Path: "/api/v1/audit/events?" + qv.Encode()})
				if r.Status != 200 {
					t.Fatalf("%d %s", r.Status, r.Body)
				}
				items := r.Items(t)
				if len(items) > 2 || len(items) == 0 {
					t.Fatalf("%d items with limit 2: a page is never empty or over its limit", len(items))
				}
				got = append(got, indexes(items)...)
				if cursor = str(r.JSON(t), "next_cursor"); cursor == "" {
					break
				}
			}
			if cursor != "" || !slices.Equal(got, want) {
				t.Errorf("pages gave %v, want %v", got, want)
			}
			for i := 1; i < len(got); i++ {
				a, _ := strconv.Atoi(got[i-1])
				b, _ := strconv.Atoi(got[i])
				if a <= b {
					t.Errorf("events not newest first: %v", got)
					break
				}
			}
		})
	}
}
