package api_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/deputy-iam/deputy/internal/audit"
)

// TestEvidence signs checkpoints over the API, proves events against them and checks every
// proof offline with the public key alone, the way a witness or an auditor would.
func TestEvidence(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"ann", "bob", "cy"} {
		e.newUser(name, nil)
	}
	pub, err := os.ReadFile(filepath.Join(e.app.Config.DataDir, "audit-signing.pub"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(pub)))
	if err != nil {
		t.Fatal(err)
	}
	known := note.VerifierList(v)

	r := e.do(request{Method: "GET", Path: "/api/v1/audit/checkpoint"})
	if r.Status != http.StatusNotFound {
		t.Fatalf("checkpoint before any was signed: %d %s", r.Status, r.Body)
	}
	first := e.must(http.StatusOK, "POST", "/api/v1/audit/checkpoint", nil)
	cp1, err := audit.OpenCheckpoint([]byte(first["signed"].(string)), known)
	if err != nil {
		t.Fatalf("the signed checkpoint does not verify: %v", err)
	}
	if cp1.Size < 4 || first["size"].(float64) != float64(cp1.Size) || cp1.Origin != "deputy-audit" {
		t.Fatalf("checkpoint %+v, answer %v", cp1, first)
	}
	if got := e.get("/api/v1/audit/checkpoint"); got["signed"] != first["signed"] {
		t.Fatalf("GET returns another checkpoint than the one signed: %v", got)
	}
	if r := e.do(request{Method: "GET", Path: "/api/v1/audit/checkpoint?format=note"}); string(r.Body) != first["signed"] ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("?format=note: %s %q", r.Header.Get("Content-Type"), r.Body)
	}
	// The checkpoint file outside the database holds it too.
	file, err := os.ReadFile(e.app.Config.CheckpointFile)
	if err != nil {
		t.Fatal(err)
	}
	if notes := audit.SplitCheckpoints(file); len(notes) != 1 || string(notes[0]) != first["signed"] {
		t.Fatalf("checkpoint file holds %q", file)
	}

	// An inclusion proof for every event, checked offline.
	for idx := range cp1.Size {
		r := e.do(request{Method: "GET", Path: "/api/v1/audit/proof/inclusion?index=" + itoa(idx)})
		if r.Status != http.StatusOK {
			t.Fatalf("inclusion %d: %d %s", idx, r.Status, r.Body)
		}
		var p audit.InclusionProof
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatal(err)
		}
		if err := p.Verify(known); err != nil {
			t.Fatalf("inclusion proof of %d: %v", idx, err)
		}
		// A proof whose event was altered does not verify.
		p.Event = strings.Replace(p.Event, `"outcome":"applied"`, `"outcome":"denied"`, 1)
		if err := p.Verify(known); err == nil {
			t.Fatalf("an altered event %d verified", idx)
		}
	}
	// More events, a second checkpoint, and the consistency proof between them.
	e.newUser("dee", nil)
	second := e.must(http.StatusOK, "POST", "/api/v1/audit/checkpoint", nil)
	cp2, err := audit.OpenCheckpoint([]byte(second["signed"].(string)), known)
	if err != nil || cp2.Size <= cp1.Size {
		t.Fatalf("second checkpoint %+v: %v", cp2, err)
	}
	var c audit.ConsistencyProof
	e.tokens["ann"] = e.tokenFor("ann")
	r = e.do(request{Method: "GET", Path: "/api/v1/audit/proof/consistency?from=" + itoa(cp1.Size) + "&to=" + itoa(cp2.Size), As: "ann"})
	if r.Status != http.StatusOK {
		t.Fatalf("consistency for a user without audit.read: %d %s", r.Status, r.Body)
	}
	if err := json.Unmarshal(r.Body, &c); err != nil {
		t.Fatal(err)
	}
	if string(c.FromRoot) != string(cp1.Root) || string(c.ToRoot) != string(cp2.Root) {
		t.Fatal("the consistency proof's roots are not the checkpoints'")
	}
	if err := audit.VerifyConsistency(cp1.Size, cp2.Size, c.Proof, cp1.Root, cp2.Root); err != nil {
		t.Fatalf("consistency proof: %v", err)
	}
	if file, _ = os.ReadFile(e.app.Config.CheckpointFile); len(audit.SplitCheckpoints(file)) != 2 {
		t.Fatalf("checkpoint file after the second: %q", file)
	}

	for _, tc := range []struct {
		as, path, method string
		status           int
		code             string
	}{
		{"ann", "/api/v1/audit/proof/inclusion?index=0", "GET", 403, "not_authorized"},
		{"ann", "/api/v1/audit/checkpoint", "POST", 403, "not_authorized"},
		{"ann", "/api/v1/audit/checkpoint", "GET", 200, ""},
		{"", "/api/v1/audit/proof/inclusion", "GET", 422, "invalid"},
		{"", "/api/v1/audit/proof/inclusion?index=x", "GET", 422, "invalid"},
		{"", "/api/v1/audit/proof/inclusion?index=5&size=5", "GET", 422, "invalid"},
		{"", "/api/v1/audit/proof/inclusion?index=0&size=100000", "GET", 422, "invalid"},
		{"", "/api/v1/audit/proof/consistency?from=9&to=3", "GET", 422, "invalid"},
		{"-", "/api/v1/audit/checkpoint", "GET", 401, "unauthenticated"},
	} {
		r := e.do(request{Method: tc.method, Path: tc.path, As: tc.as})
		if r.Status != tc.status {
			t.Errorf("%s %s as %q: %d, want %d: %s", tc.method, tc.path, tc.as, r.Status, tc.status, r.Body)
			continue
		}
		if tc.code != "" {
			if p := r.Problem(t); p.Code != tc.code {
				t.Errorf("%s %s: code %q, want %q", tc.method, tc.path, p.Code, tc.code)
			}
		}
	}
}

func itoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// TestScopedAuditReading checks who sees which events: a delegate sees their own actions and
// events about objects they may read, nothing else; the auditor sees everything; a refused
// single event is recorded.
func TestScopedAuditReading(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/api/v1/ous", map[string]any{"name": "sales"})
	e.must(201, "POST", "/api/v1/ous", map[string]any{"name": "finance"})
	e.newUser("helen", nil)
	e.newUser("sam", map[string]any{"ou": "sales"})
	e.newUser("fin", map[string]any{"ou": "finance"})
	e.newUser("audrey", nil)
	e.must(201, "POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "helen"},
		"scope": map[string]any{"ou": "sales"}, "justification": "sales desk"})
	e.must(201, "POST", "/api/v1/assignments", map[string]any{"role": "auditor", "holder": map[string]any{"user": "audrey"},
		"scope": map[string]any{"ou": "/"}, "justification": "audit"})
	e.must(200, "PATCH", "/api/v1/users/sam", map[string]any{"title": "Rep"})
	e.must(200, "PATCH", "/api/v1/users/fin", map[string]any{"title": "Controller"})
	e.tokenFor("helen")
	e.tokenFor("audrey")
	if r := e.do(request{Method: "PATCH", Path: "/api/v1/users/sam", As: "helen", Body: map[string]any{"phone": "+1 555 0100"}}); r.Status != 200 {
		t.Fatalf("helen updates sam's phone: %d %s", r.Status, r.Body)
	}
	if r := e.do(request{Method: "PATCH", Path: "/api/v1/users/fin", As: "helen", Body: map[string]any{"phone": "+1 555 0199"}}); r.Status != 403 {
		t.Fatalf("helen updates fin's phone: %d %s", r.Status, r.Body)
	}

	list := func(as, query string) []map[string]any {
		t.Helper()
		r := e.do(request{Method: "GET", Path: "/api/v1/audit/events?limit=1000" + query, As: as})
		if r.Status != 200 {
			t.Fatalf("events as %s: %d %s", as, r.Status, r.Body)
		}
		return r.Items(t)
	}
	about := func(items []map[string]any) map[string]int {
		n := map[string]int{}
		for _, it := range items {
			n[it["target"].(map[string]any)["name"].(string)+" "+it["action"].(string)+" by "+it["actor"].(map[string]any)["name"].(string)]++
		}
		return n
	}
	all := about(list("", ""))
	seen := about(list("helen", ""))
	for _, want := range []string{"sam user.create by admin", "sam user.update by admin", "sam user.update by helen",
		"fin user.update by helen", "helen user.create by admin"} {
		if seen[want] == 0 || all[want] == 0 {
			t.Errorf("helen does not see %q (auditor view has %d)", want, all[want])
		}
	}
	for k := range seen {
		if strings.HasPrefix(k, "fin ") && !strings.HasSuffix(k, " by helen") || strings.HasPrefix(k, "audrey ") ||
			strings.Contains(k, "role.assign") || strings.HasPrefix(k, "finance ") {
			t.Errorf("helen sees %q", k)
		}
	}
	if got := about(list("audrey", "")); len(got) != len(all) {
		t.Errorf("the auditor sees %d kinds of events, the admin %d", len(got), len(all))
	}
	if got := about(list("helen", "&target=fin")); len(got) != 1 || got["fin user.update by helen"] != 1 {
		t.Errorf("helen's events about fin: %v", got)
	}
	// Paging through a scoped view returns each visible event once.
	var paged int
	for cursor := ""; ; {
		r := e.do(request{Method: "GET", Path: "/api/v1/audit/events?limit=2" + cursor, As: "helen"})
		var p struct {
			Items      []map[string]any `json:"items"`
			NextCursor string           `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatal(err)
		}
		paged += len(p.Items)
		if p.NextCursor == "" {
			break
		}
		cursor = "&cursor=" + p.NextCursor
	}
	if total := len(list("helen", "")); paged != total {
		t.Errorf("paging by 2 gave %d events, one page of 1000 gave %d", paged, total)
	}
	// One event about fin, asked for by index: refused and recorded.
	var finUpdate string
	for _, it := range list("", "&target=fin&action=user.update&actor=admin") {
		finUpdate = itoa(uint64(it["index"].(float64)))
	}
	r := e.do(request{Method: "GET", Path: "/api/v1/audit/events/" + finUpdate, As: "helen"})
	if r.Status != 403 || r.Problem(t).Event == nil {
		t.Fatalf("helen reads the event of fin's update: %d %s", r.Status, r.Body)
	}
	if r := e.do(request{Method: "GET", Path: "/api/v1/audit/events/" + finUpdate, As: "audrey"}); r.Status != 200 {
		t.Fatalf("the auditor reads it: %d", r.Status)
	}
}
