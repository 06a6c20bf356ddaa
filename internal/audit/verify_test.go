package audit

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// testLog is a log of n events with a checkpoint signed every `every` events by signer.
func testLog(t *testing.T, n, every int, signer note.Signer, change func(i int, e *Event)) (lines [][]byte, signed [][]byte) {
	t.Helper()
	app := NewAppender(nil)
	for i := range n {
		e := &Event{Index: int64(i), Time: time.Date(2026, 11, 1, 9, 0, i, 0, time.UTC), Actor: Principal{Type: "user", ID: "u1", Name: "admin"},
			Action: "user.create", Target: Target{Type: "user", ID: fmt.Sprintf("t%d", i), Name: fmt.Sprintf("user%d", i)},
			Outcome: Applied, Transport: TransportAPI}
		if change != nil {
			change(i, e)
		}
		b, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, b)
		if _, err := app.Append(LeafHash(b)); err != nil {
			t.Fatal(err)
		}
		if (i+1)%every == 0 {
			root, _ := app.Root()
			s, err := Checkpoint{Origin: signer.Name(), Size: app.Size(), Root: root}.Sign(signer)
			if err != nil {
				t.Fatal(err)
			}
			signed = append(signed, s)
		}
	}
	return lines, signed
}

func testKey(t *testing.T) (note.Signer, note.Verifiers) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "deputy-audit")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, note.VerifierList(v)
}

func export(lines [][]byte) *bytes.Reader {
	return bytes.NewReader(append(bytes.Join(lines, []byte("\n")), '\n'))
}

// TestVerifyExportTampering tampers with an export in each way the evidence issue lists and
// checks that verification against the earlier checkpoints names where.
func TestVerifyExportTampering(t *testing.T) {
	signer, known := testKey(t)
	lines, signed := testLog(t, 50, 10, signer, nil)
	cps, err := OpenCheckpoints(signed, known, "test")
	if err != nil || len(cps) != 5 {
		t.Fatalf("%d checkpoints: %v", len(cps), err)
	}
	got, err := VerifyExport(export(lines), cps)
	if err != nil || got.Size != 50 || got.Checkpoints != 5 || got.Covered != 50 {
		t.Fatalf("intact log: %+v, %v", got, err)
	}
	// Checkpoints after every event pin a changed event down exactly.
	_, everyOne := testLog(t, 50, 1, signer, nil)
	fine, _ := OpenCheckpoints(everyOne, known, "test")

	flip := func(ls [][]byte, i int) [][]byte {
		ls = slices.Clone(ls)
		ls[i] = bytes.Replace(ls[i], []byte(`"user17"`), []byte(`"user71"`), 1)
		return ls
	}
	attacker, _ := testKey(t)
	rewritten, resigned := testLog(t, 50, 10, attacker, func(i int, e *Event) {
		if i == 17 {
			e.Target.Name = "mallory"
		}
	})
	forged := append(slices.Clone(lines), bytes.Replace(lines[49], []byte(`{"index":49`), []byte(`{"index":50`), 1))
	tests := []struct {
		name        string
		lines       [][]byte
		cps         []Checkpoint
		index, upto uint64
		reason      string
	}{
		{"one byte changed", flip(lines, 17), cps, 10, 20, "history rewritten"},
		{"one byte changed, a checkpoint per event", flip(lines, 17), fine, 17, 0, "history rewritten"},
		{"an event deleted", slices.Delete(slices.Clone(lines), 17, 18), cps, 17, 0, "says it is event 18"},
		{"two events swapped", func() [][]byte { l := slices.Clone(lines); l[17], l[18] = l[18], l[17]; return l }(), cps, 17, 0, "says it is event 18"},
		{"the tail truncated", lines[:45], cps, 45, 0, "removed from the end"},
		{"rewritten consistently, re-signed with another key", rewritten, cps, 10, 20, "history rewritten"},
		{"not an event", append(slices.Clone(lines[:3]), []byte("hello")), cps, 3, 0, "not a canonical event"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyExport(export(tc.lines), tc.cps)
			var m *Mismatch
			if !errors.As(err, &m) {
				t.Fatalf("verification passed or failed otherwise: %v", err)
			}
			if m.Index != tc.index || m.Upto != tc.upto || !strings.Contains(m.Reason, tc.reason) {
				t.Fatalf("mismatch %+v (%v), want index %d upto %d reason %q", m, m, tc.index, tc.upto, tc.reason)
			}
		})
	}
	// The attacker's checkpoints do not open with the real key.
	if good, err := OpenCheckpoints(resigned, known, "attacker's file"); len(good) != 0 || err == nil ||
		!strings.Contains(err.Error(), "checkpoint 1 of attacker's file") {
		t.Fatalf("re-signed checkpoints: %d verified, %v", len(good), err)
	}
	// An event appended after the last checkpoint is not covered by one: verification says so
	// (Covered < Size) rather than vouching for it.
	got, err = VerifyExport(export(forged), cps)
	if err != nil || got.Size != 51 || got.Covered != 50 {
		t.Fatalf("forged tail: %+v, %v", got, err)
	}
}

// TestCheckpointFormat checks the note body, parsing and the split of a checkpoint file.
func TestCheckpointFormat(t *testing.T) {
	signer, known := testKey(t)
	root := LeafHash([]byte("x"))
	cp := Checkpoint{Origin: "deputy-audit", Size: 42, Root: root}
	if !strings.HasPrefix(cp.Text(), "deputy-audit\n42\n") {
		t.Fatalf("text %q", cp.Text())
	}
	a, _ := cp.Sign(signer)
	cp.Size = 43
	b, _ := cp.Sign(signer)
	file := append(append(append(a, '\n'), b...), '\n')
	notes := SplitCheckpoints(file)
	if len(notes) != 2 || !bytes.Equal(notes[0], a) || !bytes.Equal(notes[1], b) {
		t.Fatalf("split %q", notes)
	}
	got, err := OpenCheckpoint(notes[1], known)
	if err != nil || got.Size != 43 || !bytes.Equal(got.Root, root) {
		t.Fatalf("open: %+v %v", got, err)
	}
	for _, bad := range []string{"o\nx\nAAAA\n", "o\n1\n", "\n1\n" + cp.Text()[len("deputy-audit\n43\n"):], "o\n1\nnotbase64!\n"} {
		if _, err := ParseCheckpoint(bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
	// Signed by one key with another's origin: refused.
	other, _ := testKey(t)
	forged, _ := Checkpoint{Origin: "someone-else", Size: 1, Root: root}.Sign(other)
	if _, err := OpenCheckpoint(forged, known); err == nil {
		t.Fatal("a checkpoint by an unknown key opened")
	}
}
