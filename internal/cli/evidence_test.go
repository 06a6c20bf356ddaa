package cli_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/deputy-iam/deputy/internal/app"
	"github.com/deputy-iam/deputy/internal/config"
	"github.com/deputy-iam/deputy/internal/store/storetest"
)

// TestAuditEvidence runs the evidence verbs end to end: a witness keeps a checkpoint, an
// export and the live database verify against it, a proof verifies offline, and each way of
// tampering with the database directly that the evidence issue lists is caught by verify,
// naming the event.
func TestAuditEvidence(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := deputy(t, nil, "", "init", "--data", dir, "--admin", "root-admin", "-o", "json", "--log-level", "error")
	var b struct{ Token string }
	if err := json.Unmarshal([]byte(out), &b); code != 0 || err != nil {
		t.Fatalf("init: %d %s %s", code, out, errOut)
	}
	env := map[string]string{"DEPUTY_SERVER": openServer(t, dir), "DEPUTY_TOKEN": b.Token}
	for i := range 30 {
		if code, _, errOut := deputy(t, env, "", "user", "create", fmt.Sprintf("user%02d", i), "--ou", "/"); code != 0 {
			t.Fatalf("user create: %s", errOut)
		}
	}
	witness := filepath.Join(t.TempDir(), "checkpoints")
	code, note, errOut := deputy(t, env, "", "audit", "checkpoint")
	if code != 0 || !strings.HasPrefix(note, "deputy-audit\n") {
		t.Fatalf("audit checkpoint: %d %q %s", code, note, errOut)
	}
	if err := os.WriteFile(witness, []byte(note), 0o644); err != nil {
		t.Fatal(err)
	}
	size := 0
	fmt.Sscanf(strings.Split(note, "\n")[1], "%d", &size)
	if size < 32 {
		t.Fatalf("checkpoint of %d events", size)
	}
	pub := filepath.Join(dir, "audit-signing.pub")

	code, export, errOut := deputy(t, env, "", "audit", "export")
	if code != 0 || strings.Count(export, "\n") != size {
		t.Fatalf("export: %d lines, want %d: %s", strings.Count(export, "\n"), size, errOut)
	}
	exportFile := filepath.Join(t.TempDir(), "audit.jsonl")
	os.WriteFile(exportFile, []byte(export), 0o644)
	for _, args := range [][]string{
		{"audit", "verify", "--export", exportFile, "--key", pub, "--checkpoint", witness},
		{"audit", "verify", "--data", dir, "--checkpoint", witness},
		{"audit", "verify", "--data", dir},
	} {
		code, out, errOut := deputy(t, nil, "", args...)
		if code != 0 || !strings.Contains(out, fmt.Sprintf("verified %d events", size)) || !strings.Contains(out, "checkpoints matched: ") {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	code, proof, errOut := deputy(t, env, "", "audit", "prove", "--index", "5")
	if code != 0 {
		t.Fatalf("prove: %s", errOut)
	}
	if code, out, errOut := deputy(t, nil, proof, "audit", "verify-proof", "-", "--key", pub); code != 0 || !strings.Contains(out, "event 5 is in") {
		t.Fatalf("verify-proof: %d %s %s", code, out, errOut)
	}
	tampered := strings.Replace(proof, `user`, `uzer`, 1)
	if code, _, _ := deputy(t, nil, tampered, "audit", "verify-proof", "-", "--key", pub); code != 1 {
		t.Fatal("a tampered proof verified")
	}
	if code, out, errOut := deputy(t, env, "", "audit", "tail", "-n", "3"); code != 0 || strings.Count(out, "\n") != 3 ||
		!strings.HasPrefix(out, fmt.Sprintf("%d ", size-3)) || !strings.Contains(out, "user.create user29 applied") {
		t.Fatalf("audit tail -n 3: %d %q %s", code, out, errOut)
	}
	for _, format := range []string{"cef", "rfc5424"} {
		code, out, errOut := deputy(t, env, "", "audit", "export", "--format", format, "--from", "3")
		if code != 0 || strings.Count(out, "\n") != size-3 {
			t.Fatalf("export --format %s: %d lines: %s", format, strings.Count(out, "\n"), errOut)
		}
	}

	// Tampering, each on a copy of the database, verified against the witness's checkpoint.
	k := int64(size / 2)
	tests := []struct {
		name  string
		sql   []string
		reset bool // then let the migration re-hash every event and sign with another key
		want  string
	}{
		{name: "one byte of an event changed", want: fmt.Sprintf("event %d does not match", k),
			sql: []string{fmt.Sprintf("UPDATE audit_events SET body = CAST(replace(CAST(body AS TEXT), 'user', 'usex') AS BLOB) WHERE idx = %d", k)}},
		{name: "an event deleted", want: fmt.Sprintf("event %d does not match", k),
			sql: []string{fmt.Sprintf("DELETE FROM audit_events WHERE idx = %d", k)}},
		{name: "two events swapped", want: fmt.Sprintf("event %d does not match", k),
			sql: []string{
				fmt.Sprintf("UPDATE audit_events SET idx = -1 WHERE idx = %d", k),
				fmt.Sprintf("UPDATE audit_events SET idx = %d WHERE idx = %d", k, k+1),
				fmt.Sprintf("UPDATE audit_events SET idx = %d WHERE idx = -1", k+1)}},
		{name: "a forged event appended", want: fmt.Sprintf("event %d does not match", size),
			sql: []string{fmt.Sprintf(`INSERT INTO audit_events (idx, at, actor_id, actor_name, action, target_type, target_id, target_name, outcome, transport, body)
				SELECT %d, at, actor_id, actor_name, action, target_type, target_id, target_name, outcome, transport,
				CAST(replace(CAST(body AS TEXT), '{"index":%d,', '{"index":%d,') AS BLOB) FROM audit_events WHERE idx = %d`, size, size-1, size, size-1)}},
		{name: "the tail truncated", want: fmt.Sprintf("event %d does not match", size-3),
			sql: []string{fmt.Sprintf("DELETE FROM audit_events WHERE idx >= %d", size-3)}},
		{name: "the whole log rewritten consistently and re-signed with a new key", reset: true,
			want: "does not match: the root over the first",
			sql: append([]string{
				fmt.Sprintf("UPDATE audit_events SET body = CAST(replace(CAST(body AS TEXT), 'user', 'usex') AS BLOB) WHERE idx = %d", k),
			}, storetest.BackToSchema2()...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			copyDir := t.TempDir()
			snapshot(t, filepath.Join(dir, "deputy.db"), filepath.Join(copyDir, "deputy.db"))
			db, err := sql.Open("sqlite", filepath.Join(copyDir, "deputy.db"))
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range tc.sql {
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			db.Close()
			if tc.reset {
				resign(t, copyDir)
			}
			args := []string{"audit", "verify", "--data", copyDir, "--key", pub, "--checkpoint", witness}
			code, out, errOut := deputy(t, nil, "", args...)
			t.Logf("verify said: %s", errOut)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("verify: exit %d, want 1 and %q\n%s%s", code, tc.want, out, errOut)
			}
			if tc.reset && (!strings.Contains(errOut, fmt.Sprintf("in 0..%d", size-1)) || !strings.Contains(errOut, "checkpoint 1 of the database")) {
				t.Fatalf("a rewrite should be bounded by the witness's checkpoint and the new key refused:\n%s", errOut)
			}
		})
	}

	// An undo, with a justification, and one refused because the object changed since.
	code, out, errOut = deputy(t, env, "", "user", "update", "user00", "--set", "title=Intern")
	if code != 0 {
		t.Fatalf("user update: %s", errOut)
	}
	code, evs, _ := deputy(t, env, "", "audit", "events", "--target", "user00", "--action", "user.update", "-o", "json")
	var page struct{ Items []struct{ Index int64 } }
	if err := json.Unmarshal([]byte(evs), &page); code != 0 || err != nil || len(page.Items) != 1 {
		t.Fatalf("the update's event: %s", evs)
	}
	upd := fmt.Sprint(page.Items[0].Index)
	code, out, errOut = deputy(t, env, "", "audit", "revert", upd, "--justification", "wrong title, INC-1")
	if code != 0 || !strings.Contains(out, "reverted event "+upd+": user.update on user00") {
		t.Fatalf("audit revert: %d %s %s", code, out, errOut)
	}
	code, out, errOut = deputy(t, env, "", "audit", "events", "--transport", "undo", "-o", "json")
	if code != 0 || !strings.Contains(out, `"justification": "wrong title, INC-1"`) || !strings.Contains(out, `"reverts": `+upd) {
		t.Fatalf("the undo's event: %s %s", out, errOut)
	}
	if code, _, errOut := deputy(t, env, "", "audit", "revert", upd); code != 1 || !strings.Contains(errOut, "changed_since") {
		t.Fatalf("a second undo of the same event: %d %s", code, errOut)
	}
}

// snapshot copies a live SQLite database consistently (VACUUM INTO).
func snapshot(t *testing.T, from, to string) {
	t.Helper()
	db, err := sql.Open("sqlite", from)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("VACUUM INTO ?", to); err != nil {
		t.Fatal(err)
	}
}

// resign reopens a database with a new signing key, as an attacker who rewrote the log would:
// the migration re-hashes every event, and a checkpoint is signed with the new key.
func resign(t *testing.T, dir string) {
	t.Helper()
	key := filepath.Join(dir, "attacker.key")
	if _, err := app.EnsureSigningKey(key); err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{DataDir: dir, SigningKey: key, CheckpointFile: filepath.Join(dir, "attacker-checkpoints"),
		Addr: "127.0.0.1:0", LogLevel: "error", LogFormat: "text", ShutdownTimeout: time.Second}
	a, err := app.Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, _, err := a.Evidence.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyFixture verifies the checked-in log fixture with the CLI, as an auditor would.
func TestVerifyFixture(t *testing.T) {
	dir := filepath.Join("..", "audit", "testdata", "log")
	code, out, errOut := deputy(t, nil, "", "audit", "verify", "--export", filepath.Join(dir, "export.jsonl"),
		"--key", filepath.Join(dir, "key.pub"), "--checkpoint", filepath.Join(dir, "checkpoints"))
	if code != 0 || !strings.Contains(out, "verified 7 events") || !strings.Contains(out, "checkpoints matched: 2; the latest covers every event") {
		t.Fatalf("verify the fixture: %d\n%s%s", code, out, errOut)
	}
}
