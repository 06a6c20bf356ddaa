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
