package audit

import (
	"bytes"
	"crypto/rand"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

var updateFixture = flag.Bool("update-fixture", false, "rewrite testdata/log (only when the encoding is meant to change, which it must not)")

// fixtureEvents are events with every field of the encoding set somewhere.
func fixtureEvents() []*Event {
	t0 := time.Date(2026, 11, 28, 9, 0, 0, 123456000, time.UTC)
	reverted := int64(3)
	return []*Event{
		{Index: 0, Time: t0, Actor: Principal{Type: "system", ID: "system:bootstrap", Name: "system:bootstrap"}, Action: "ou.create",
			Target: Target{Type: "ou", ID: "01a2230e-40c6-7258-98c8-0b82f83d28cd", Name: "/", Version: 1}, Authority: Authority{Rule: "bootstrap"},
			Outcome: Applied, After: map[string]any{"name": "root", "path": "/", "protected": true}, Transport: TransportCLI},
		{Index: 1, Time: t0.Add(time.Second), Actor: Principal{Type: "user", ID: "u-admin", Name: "admin"}, Action: "user.update",
			Target: Target{Type: "user", ID: "u-sam", Name: "sam", Version: 2}, Authority: Authority{Assignments: []string{"a-1", "a-2"}, Rule: "tier0-admin"},
			Outcome: Applied, Before: map[string]any{"title": "Rep", "attributes.badge": nil, "manager": map[string]any{"id": "u-m", "name": "mia"}},
			After: map[string]any{"title": "Lead ✓ «ünïcode»", "attributes.badge": "B-1", "manager": nil}, Justification: "HR-1301",
			RequestID: "req-9", Transport: TransportAPI, ClientAddr: "10.0.0.7", UserAgent: "deputy-cli/1.0"},
		{Index: 2, Time: t0.Add(2 * time.Second), Actor: Principal{Type: "user", ID: "u-helen", Name: "helen"}, Action: "user.reset_password",
			Target: Target{Type: "user", ID: "u-admin", Name: "admin"}, Outcome: Denied, Reason: "escalation",
			Message: "admin holds rights helen does not: \"tier0-admin\" <all>", Transport: TransportPortal},
		{Index: 3, Time: t0.Add(3 * time.Second), Actor: Principal{Type: "system", ID: "system:lifecycle", Name: "system:lifecycle"},
			OnBehalfOf: &Principal{Type: "user", ID: "u-hr", Name: "hannah"}, Action: "group.add_member",
			Target:    Target{Type: "group", ID: "g-1", Name: "sales-all", Version: 7},
			Authority: Authority{LifecycleRule: "sales", ReviewDecision: "rd-1"}, Outcome: Applied,
			After: map[string]any{"member": map[string]any{"type": "user", "id": "u-sam", "name": "sam"}, "provenance": "rule"}, Transport: TransportLifecycle},
		{Index: 4, Time: t0.Add(4 * time.Second), Actor: Principal{Type: "user", ID: "u-admin", Name: "admin"}, Action: "group.remove_member",
			Target: Target{Type: "group", ID: "g-1", Name: "sales-all", Version: 8}, Authority: Authority{Assignments: []string{"a-1"}},
			Outcome: Applied, Before: map[string]any{"member": map[string]any{"type": "user", "id": "u-sam", "name": "sam"}}, Transport: TransportUndo,
			Reverts: &reverted},
		{Index: 5, Time: t0.Add(5 * time.Second), Actor: Principal{Type: "user", ID: "u-admin", Name: "admin"}, Action: "user.create",
			Target: Target{Type: "user", Name: "sam"}, Outcome: Failed, Reason: "conflict", Message: "username sam is taken", Transport: TransportSCIM},
		{Index: 6, Time: t0.Add(6 * time.Second), Actor: Principal{Type: "user", ID: "u-rev", Name: "rita"}, Action: "role.revoke",
			Target: Target{Type: "assignment", ID: "a-2", Name: "helpdesk for helen", Version: 2}, Authority: Authority{ReviewDecision: "rd-2"},
			Outcome: Pending, Transport: TransportReview},
	}
}

// TestLogFixture checks the checked-in log: each line decodes and re-encodes to the same bytes,
// the current encoder writes the same lines for the same events, and the log verifies against
// its signed checkpoint with its public key. A change that breaks this breaks every log already
// written; the encoding may only grow by fields with omitempty.
func TestLogFixture(t *testing.T) {
	dir := filepath.Join("testdata", "log")
	if *updateFixture {
		writeFixture(t, dir)
	}
	export, err := os.ReadFile(filepath.Join(dir, "export.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(export, []byte("\n")), []byte("\n"))
	events := fixtureEvents()
	if len(lines) != len(events) {
		t.Fatalf("%d lines, %d events", len(lines), len(events))
	}
	for i, line := range lines {
		ev, err := Decode(line)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := Encode(&ev)
		if !bytes.Equal(again, line) {
			t.Errorf("line %d re-encodes differently:\n%s\n%s", i, line, again)
		}
		fresh, _ := Encode(events[i])
		if !bytes.Equal(fresh, line) {
			t.Errorf("event %d encodes differently from the fixture:\n%s\n%s", i, line, fresh)
		}
	}
	pub, _ := os.ReadFile(filepath.Join(dir, "key.pub"))
	v, err := note.NewVerifier(strings.TrimSpace(string(pub)))
	if err != nil {
		t.Fatal(err)
	}
	cpFile, _ := os.ReadFile(filepath.Join(dir, "checkpoints"))
	cps, err := OpenCheckpoints(SplitCheckpoints(cpFile), note.VerifierList(v), "testdata/log/checkpoints")
	if err != nil || len(cps) != 2 {
		t.Fatalf("%d checkpoints: %v", len(cps), err)
	}
	got, err := VerifyExport(bytes.NewReader(export), cps)
	if err != nil || got.Size != uint64(len(events)) || got.Checkpoints != 2 {
		t.Fatalf("the fixture does not verify: %+v %v", got, err)
	}
}

// writeFixture writes the fixture with a new key (go test ./internal/audit -run LogFixture -update-fixture).
func writeFixture(t *testing.T, dir string) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "deputy-audit")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	var export, cps bytes.Buffer
	app := NewAppender(nil)
	for i, e := range fixtureEvents() {
		b, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		export.Write(b)
		export.WriteByte('\n')
		app.Append(LeafHash(b))
		if i == 3 || i == len(fixtureEvents())-1 {
			root, _ := app.Root()
			s, _ := Checkpoint{Origin: "deputy-audit", Size: app.Size(), Root: root}.Sign(signer)
			cps.Write(s)
			cps.WriteByte('\n')
		}
	}
	os.MkdirAll(dir, 0o755)
	for name, data := range map[string][]byte{"export.jsonl": export.Bytes(), "checkpoints": cps.Bytes(), "key.pub": []byte(vkey + "\n")} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
