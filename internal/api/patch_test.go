package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestOptimisticConcurrency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "POST", "/api/v1/ous", map[string]any{"name": "corp"})
	e.newUser("ada", map[string]any{"title": "Analyst"})
	e.must(201, "POST", "/api/v1/groups", map[string]any{"name": "staff", "ou": "corp"})
	e.must(201, "POST", "/api/v1/service-accounts", map[string]any{"name": "bot", "ou": "corp", "owners": []string{"ada"}})
	ifMatch := func(v string) map[string]string { return map[string]string{"If-Match": v} }
	e.run(t, []scenario{
		{name: "GET has an ETag", req: request{Method: "GET", Path: "/api/v1/users/ada"}, status: 200, check: wantHeader("ETag", `"1"`)},
		{name: "matching If-Match applies", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Header: ifMatch(`"1"`),
			Body: map[string]any{"title": "Lead"}}, status: 200,
			check: all(wantHeader("ETag", `"2"`), wantJSON(map[string]string{"title": "Lead", "version": "2"}))},
		{name: "new ETag on read", req: request{Method: "GET", Path: "/api/v1/users/ada"}, status: 200, check: wantHeader("ETag", `"2"`)},
		{name: "weak ETag applies", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Header: ifMatch(`W/"2"`),
			Body: map[string]any{"title": "Manager"}}, status: 200, check: wantHeader("ETag", `"3"`)},
		{name: "star applies", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Header: ifMatch(`*`),
			Body: map[string]any{"location": "Paris"}}, status: 200, check: wantHeader("ETag", `"4"`)},
		{name: "malformed If-Match", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Header: ifMatch(`"abc"`),
			Body: map[string]any{"title": "Nope"}}, status: 400, code: "bad_if_match"},
		{name: "zero If-Match", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Header: ifMatch(`"0"`),
			Body: map[string]any{"title": "Nope"}}, status: 400, code: "bad_if_match"},
		{name: "list of ETags", req: request{Method: "DELETE", Path: "/api/v1/users/ada", Header: ifMatch(`"3", "4"`)},
			status: 400, code: "bad_if_match"},
		{name: "still unchanged", req: request{Method: "GET", Path: "/api/v1/users/ada"}, status: 200,
			check: wantJSON(map[string]string{"title": "Manager", "version": "4"})},
	})
	// Stale versions, on every kind and every write that takes If-Match: 409, and nothing changes.
	e.runUnchanged(t, []scenario{
		{name: "stale user patch", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Header: ifMatch(`"1"`),
			Body: map[string]any{"title": "Overwrite"}}, status: 409, code: "stale_version", field: "version",
			check: detailNames("version 1")},
		{name: "future user version", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Header: ifMatch(`"99"`),
			Body: map[string]any{"title": "Overwrite"}}, status: 409, code: "stale_version", field: "version"},
		{name: "stale user move", req: request{Method: "POST", Path: "/api/v1/users/ada/move", Header: ifMatch(`"3"`),
			Body: map[string]any{"to": "corp"}}, status: 409, code: "stale_version"},
		{name: "stale user disable", req: request{Method: "POST", Path: "/api/v1/users/ada/disable", Header: ifMatch(`"3"`)},
			status: 409, code: "stale_version"},
		{name: "stale user delete", req: request{Method: "DELETE", Path: "/api/v1/users/ada", Header: ifMatch(`"3"`)},
			status: 409, code: "stale_version"},
		{name: "stale OU patch", req: request{Method: "PATCH", Path: "/api/v1/ous/corp", Header: ifMatch(`"2"`),
			Body: map[string]any{"name": "x"}}, status: 409, code: "stale_version"},
		{name: "stale group patch", req: request{Method: "PATCH", Path: "/api/v1/groups/staff", Header: ifMatch(`"2"`),
			Body: map[string]any{"description": "x"}}, status: 409, code: "stale_version"},
		{name: "stale member add", req: request{Method: "POST", Path: "/api/v1/groups/staff/members", Header: ifMatch(`"2"`),
			Body: map[string]any{"member": "ada"}}, status: 409, code: "stale_version"},
		{name: "stale group delete", req: request{Method: "DELETE", Path: "/api/v1/groups/staff", Header: ifMatch(`"2"`)},
			status: 409, code: "stale_version"},
		{name: "stale service account patch", req: request{Method: "PATCH", Path: "/api/v1/service-accounts/bot", Header: ifMatch(`"2"`),
			Body: map[string]any{"description": "x"}}, status: 409, code: "stale_version"},
	})
	e.run(t, []scenario{
		{name: "current member add", req: request{Method: "POST", Path: "/api/v1/groups/staff/members", Header: ifMatch(`"1"`),
			Body: map[string]any{"member": "ada"}}, status: 201, check: wantHeader("ETag", `"2"`)},
		{name: "current member remove", req: request{Method: "DELETE", Path: "/api/v1/groups/staff/members/ada", Header: ifMatch(`"2"`)},
			status: 204, check: wantHeader("ETag", `"3"`)},
		{name: "current delete", req: request{Method: "DELETE", Path: "/api/v1/service-accounts/bot", Header: ifMatch(`"1"`)}, status: 204},
	})
	// A stale attempt is recorded as failed, with its reason.
	evs := e.events(url.Values{"outcome": {"failed"}, "target": {"ada"}, "action": {"user.update"}})
	if len(evs) != 2 || str(evs[0], "reason") != "stale_version" {
		t.Errorf("stale updates of ada in the trail: %v", evs)
	}
}

// TestConcurrentUpdates races writers holding the same version: exactly one wins, the others
// get stale_version, and the winner's value is the one stored.
func TestConcurrentUpdates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.newUser("ada", nil)
	const writers = 8
	type result struct {
		status int
		title  string
		code   string
	}
	results := make(chan result, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			title := fmt.Sprintf("Writer %d", i)
			body := strings.NewReader(`{"title":"` + title + `"}`)
			req, err := http.NewRequest("PATCH", e.srv.URL+"/api/v1/users/ada", body)
			if err != nil {
				results <- result{status: -1}
				return
			}
			req.Header.Set("Authorization", "Bearer "+e.tokens["admin"])
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("If-Match", `"1"`)
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				results <- result{status: -1}
				return
			}
			defer resp.Body.Close()
			var p struct {
				Code string `json:"code"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&p)
			results <- result{status: resp.StatusCode, title: title, code: p.Code}
		}()
	}
	wg.Wait()
	close(results)
	var winners []string
	for r := range results {
		switch {
		case r.status == 200:
			winners = append(winners, r.title)
		case r.status == 409 && r.code == "stale_version":
		default:
			t.Errorf("writer got %d %q, want 200 or 409 stale_version", r.status, r.code)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d writers won with the same If-Match, want exactly 1: %v", len(winners), winners)
	}
	u := e.get("/api/v1/users/ada")
	if str(u, "title") != winners[0] || str(u, "version") != "2" {
		t.Errorf("stored title %q version %s, want the winner's %q at version 2", str(u, "title"), str(u, "version"), winners[0])
	}
	if n := len(e.events(url.Values{"target": {"ada"}, "action": {"user.update"}, "outcome": {"failed"}})); n != writers-1 {
		t.Errorf("%d failed update events, want %d", n, writers-1)
	}
}

func TestMergePatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "POST", "/api/v1/ous", map[string]any{"name": "corp"})
	e.newUser("boss", nil)
	e.newUser("ada", map[string]any{"given_name": "Ada", "family_name": "Lovelace", "title": "Analyst", "manager": "boss",
		"phone": "+44 20 7946 0000", "attributes": map[string]any{"site": "A1", "floor": "3", "desk": "12"}})
	e.must(201, "POST", "/api/v1/groups", map[string]any{"name": "staff", "ou": "corp", "description": "all", "owners": []string{"boss"}})
	attrs := func(want map[string]any) func(t *testing.T, e *env, r *response) {
		return func(t *testing.T, e *env, r *response) {
			t.Helper()
			if got := r.JSON(t)["attributes"]; !reflect.DeepEqual(got, want) {
				t.Errorf("attributes = %v, want %v", got, want)
			}
		}
	}
	isNull := func(field string) func(t *testing.T, e *env, r *response) {
		return func(t *testing.T, e *env, r *response) {
			t.Helper()
			if v, ok := r.JSON(t)[field]; !ok || v != nil {
				t.Errorf("%s = %v, want null", field, v)
			}
		}
	}
	e.run(t, []scenario{
		{name: "null clears a field", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Body: `{"title":null,"phone":null}`},
			status: 200, check: wantJSON(map[string]string{"title": "", "phone": "", "given_name": "Ada", "version": "2"})},
		{name: "null clears a reference", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Body: `{"manager":null}`},
			status: 200, check: all(isNull("manager"), isNull("manager_id"))},
		{name: "attributes merge key by key", req: request{Method: "PATCH", Path: "/api/v1/users/ada",
			Body: `{"attributes":{"floor":null,"site":"B2","badge":"77"}}`}, status: 200,
			check: attrs(map[string]any{"site": "B2", "desk": "12", "badge": "77"})},
		{name: "an empty attributes object changes nothing", req: request{Method: "PATCH", Path: "/api/v1/users/ada",
			Body: `{"attributes":{},"title":"Lead"}`}, status: 200,
			check: all(attrs(map[string]any{"site": "B2", "desk": "12", "badge": "77"}), wantJSON(map[string]string{"title": "Lead"}))},
		{name: "null attributes clears them all", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Body: `{"attributes":null}`},
			status: 200, check: attrs(map[string]any{})},
		{name: "username cannot be cleared", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Body: `{"username":null}`},
			status: 422, code: "invalid", field: "username"},
		{name: "status is refused", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Body: `{"status":"disabled"}`},
			status: 422, code: "invalid", field: "status", check: messageNames("status", "disable and enable")},
		{name: "ou is refused", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Body: `{"ou":"/"}`},
			status: 422, code: "invalid", field: "ou", check: messageNames("ou", "move")},
		{name: "id is refused", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Body: `{"id":"01a22260-b7e4-7533-8cb5-8e744c107e40"}`},
			status: 422, code: "invalid", field: "id", check: messageNames("id", "read-only")},
		{name: "version is refused", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Body: `{"version":7}`},
			status: 422, code: "invalid", field: "version", check: messageNames("version", "read-only")},
		{name: "groups are refused", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Body: `{"groups":[]}`},
			status: 422, code: "invalid", field: "groups", check: messageNames("groups", "membership")},
		{name: "every refused field is named", req: request{Method: "PATCH", Path: "/api/v1/users/ada",
			Body: `{"status":"disabled","ou":"/","title":"Director"}`}, status: 422, code: "invalid", field: "ou",
			check: func(t *testing.T, e *env, r *response) {
				if _, ok := r.Problem(t).fieldNamed("status"); !ok {
					t.Errorf("status not named: %s", r.Body)
				}
			}},
		{name: "nothing was applied", req: request{Method: "GET", Path: "/api/v1/users/ada"}, status: 200,
			check: wantJSON(map[string]string{"title": "Lead", "status": "active", "ou": "/", "username": "ada"})},
		{name: "empty patch", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Body: `{}`}, status: 422, code: "invalid", field: "body"},
		{name: "patch that is not an object", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Body: `"title"`},
			status: 400, code: "bad_body"},
		{name: "merge-patch media type", req: request{Method: "PATCH", Path: "/api/v1/users/ada", Body: `{"title":"Head"}`,
			Header: map[string]string{"Content-Type": "application/merge-patch+json"}}, status: 200,
			check: wantJSON(map[string]string{"title": "Head"})},
		{name: "group description cleared", req: request{Method: "PATCH", Path: "/api/v1/groups/staff", Body: `{"description":null}`},
			status: 200, check: wantJSON(map[string]string{"description": "", "name": "staff"})},
		{name: "group owners cleared", req: request{Method: "PATCH", Path: "/api/v1/groups/staff", Body: `{"owners":null}`},
			status: 200, check: func(t *testing.T, e *env, r *response) {
				if o := namesList(r.JSON(t)["owners"]); len(o) != 0 {
					t.Errorf("owners = %v, want none", o)
				}
			}},
		{name: "group ou refused", req: request{Method: "PATCH", Path: "/api/v1/groups/staff", Body: `{"ou":"/"}`},
			status: 422, code: "invalid", field: "ou", check: messageNames("ou", "move")},
		{name: "group id refused", req: request{Method: "PATCH", Path: "/api/v1/groups/staff", Body: `{"id":"x"}`},
			status: 422, code: "invalid", field: "id"},
		{name: "group name cannot be cleared", req: request{Method: "PATCH", Path: "/api/v1/groups/staff", Body: `{"name":null}`},
			status: 422, code: "invalid", field: "name"},
		{name: "OU path refused", req: request{Method: "PATCH", Path: "/api/v1/ous/corp", Body: `{"path":"x"}`},
			status: 422, code: "invalid", field: "path", check: messageNames("path", "read-only")},
	})

	// The update's audit event holds the before and after of exactly the fields it changed.
	evs := e.events(url.Values{"target": {"ada"}, "action": {"user.update"}, "outcome": {"applied"}})
	if len(evs) == 0 {
		t.Fatal("no update events for ada")
	}
	first := evs[len(evs)-1]
	before, _ := json.Marshal(first["before"])
	after, _ := json.Marshal(first["after"])
	if string(before) != `{"phone":"+44 20 7946 0000","title":"Analyst"}` || string(after) != `{"phone":null,"title":null}` {
		t.Errorf("first update event: before %s after %s", before, after)
	}
	if strings.Contains(string(after), "given_name") {
		t.Errorf("unchanged fields in the event: %s", after)
	}
}
