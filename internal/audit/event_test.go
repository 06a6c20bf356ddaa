package audit

import (
	"bytes"
	"testing"
	"time"
)

func TestEncodeIsCanonical(t *testing.T) {
	ev := &Event{
		Index: 7, Time: time.Date(2026, 11, 28, 9, 30, 0, 123456789, time.FixedZone("CET", 3600)),
		Actor: Principal{Type: "user", ID: "u1", Name: "admin"}, Action: "user.update",
		Target:    Target{Type: "user", ID: "u2", Name: "ada", Version: 3},
		Authority: Authority{Assignments: []string{"a1"}, Rule: "tier0-admin"}, Outcome: Applied,
		Before:    map[string]any{"title": "Engineer", "manager": map[string]string{"id": "m1", "name": "bob"}, "z": nil},
		After:     map[string]any{"title": "Director <Lead> & co", "manager": nil, "z": true},
		Transport: TransportAPI, ClientAddr: "127.0.0.1", UserAgent: "curl/8",
	}
	a, err := Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Encode(ev)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("two encodings differ:\n%s\n%s", a, b)
	}
	// Times are UTC with microseconds; map keys are sorted.
	if !bytes.Contains(a, []byte(`"time":"2026-11-28T08:30:00.123456Z"`)) {
		t.Errorf("time not canonical: %s", a)
	}
	if !bytes.Contains(a, []byte(`"before":{"manager":{"id":"m1","name":"bob"},"title":"Engineer","z":null}`)) {
		t.Errorf("before not canonical: %s", a)
	}
	// Decoding and encoding again gives the same bytes.
	d, err := Decode(a)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Encode(&d)
	if err != nil || !bytes.Equal(a, c) {
		t.Fatalf("round trip changed the encoding:\n%s\n%s", a, c)
	}
}

func TestEncodeOmitsEmpty(t *testing.T) {
	a, err := Encode(&Event{Index: 0, Time: time.Unix(0, 0), Action: "ou.create", Outcome: Denied, Transport: TransportCLI})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"index":0,"time":"1970-01-01T00:00:00Z","actor":{"type":"","id":"","name":""},"action":"ou.create",` +
		`"target":{"type":"","name":""},"authority":{},"outcome":"denied","transport":"cli"}`
	if string(a) != want {
		t.Errorf("encoding\n got %s\nwant %s", a, want)
	}
}
