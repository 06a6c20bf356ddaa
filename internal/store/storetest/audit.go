package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// attempt is one op of an audit scenario and what it must record.
type attempt struct {
	actor   string // "admin" or a username
	op      change.Op
	outcome audit.Outcome
	reason  string
}

// runAttempts submits each attempt and checks that it wrote exactly one event that records it.
func (f *fixture) runAttempts(attempts []attempt) []audit.Event {
	f.t.Helper()
	var out []audit.Event
	for i, a := range attempts {
		actor := f.admin
		if a.actor != AdminName {
			actor = ActorOf(f.getUser(a.actor))
		}
		n := len(f.events())
		res, err := f.p.Submit(f.ctx, actor, f.meta, a.op)
		if (err == nil) != (a.outcome == audit.Applied) {
			f.t.Fatalf("attempt %d (%s): %v, want outcome %s", i, a.op.Action, err, a.outcome)
		}
		evs := f.events()
		if len(evs) != n+1 {
			f.t.Fatalf("attempt %d (%s) wrote %d events, want 1", i, a.op.Action, len(evs)-n)
		}
		e := evs[n]
		if e.Index != res.Event || res.Outcome != a.outcome {
			f.t.Errorf("attempt %d: result %+v, event %d", i, res, e.Index)
		}
		if e.Outcome != a.outcome || e.Reason != a.reason || e.Action != string(a.op.Action) || e.Actor.ID != actor.ID ||
			e.Actor.Name != actor.Name || e.Actor.Type != actor.Kind {
			f.t.Errorf("attempt %d recorded as %+v, want %s by %s, reason %q", i, e, a.outcome, actor.Name, a.reason)
		}
		if e.Transport != f.meta.Transport || e.ClientAddr != f.meta.ClientAddr || e.UserAgent != f.meta.UserAgent {
			f.t.Errorf("attempt %d: transport %q client %q agent %q", i, e.Transport, e.ClientAddr, e.UserAgent)
		}
		var denied *change.DeniedError
		if errors.As(err, &denied) && denied.Event != e.Index {
			f.t.Errorf("attempt %d: denial names event %d, the event is %d", i, denied.Event, e.Index)
		}
		out = append(out, e)
	}
	return out
}

func testAuditTrail(t *testing.T, f *fixture) {
	f.mkUser(directory.UserInput{Username: "plain"})
	held, err := f.st.Assignments(f.ctx, delegation.RoleTier0, f.admin.ID, "", 1)
	if err != nil || len(held) != 1 {
		t.Fatalf("the admin's tier-0 assignment: %v, %v", held, err)
	}
	tier0 := held[0].ID
	evs := f.runAttempts([]attempt{
		{AdminName, change.Op{Action: delegation.UserCreate, User: &directory.UserInput{Username: "ada", Title: "Analyst", OU: "/"},
			Justification: "new hire"}, audit.Applied, ""},
		{"plain", change.Op{Action: delegation.UserCreate, User: &directory.UserInput{Username: "eve", OU: "/"}}, audit.Denied, delegation.ReasonNotAuthorized},
		{"plain", change.Op{Action: delegation.UserDelete, Target: userRef("nobody")}, audit.Denied, delegation.ReasonNotAuthorized},
		{AdminName, change.Op{Action: delegation.UserCreate, User: &directory.UserInput{Username: "ADA", OU: "/"}}, audit.Failed, "conflict"},
		{AdminName, change.Op{Action: delegation.UserUpdate, Target: userRef("ada"), Patch: patch(t, map[string]any{"title": "Lead", "location": "Paris"})}, audit.Applied, ""},
		{AdminName, change.Op{Action: delegation.UserUpdate, Target: userRef("ada"), IfVersion: 1, Patch: patch(t, map[string]any{"title": "x"})}, audit.Failed, "stale_version"},
		{AdminName, change.Op{Action: delegation.UserMove, Target: userRef("ada"), To: "nowhere"}, audit.Failed, "invalid"},
		{AdminName, change.Op{Action: delegation.GroupDelete, Target: groupRef("nogroup")}, audit.Failed, "not_found"},
		{"plain", change.Op{Action: delegation.UserIssueToken, Target: userRef("plain"), Token: &change.TokenInput{Name: "mine"}}, audit.Applied, ""},
		{AdminName, change.Op{Action: delegation.UserDelete, Target: userRef("ada")}, audit.Applied, ""},
	})
	ada := evs[0].Target
	if evs[0].Target.Type != "user" || ada.Name != "ada" || ada.ID == "" || ada.Version != 1 || evs[0].Justification != "new hire" ||
		!reflect.DeepEqual(evs[0].Authority, audit.Authority{Assignments: []string{tier0}, Rule: delegation.RoleTier0}) {
		t.Errorf("create event %+v", evs[0])
	}
	if evs[0].Before != nil || evs[0].After["username"] != "ada" || evs[0].After["title"] != "Analyst" {
		t.Errorf("create event records before %v after %v", evs[0].Before, evs[0].After)
	}
	if _, ok := evs[0].After["email"]; ok {
		t.Errorf("create event records the unset email: %v", evs[0].After)
	}
	if evs[1].Authority.Rule != "" || len(evs[1].Authority.Assignments) != 0 || evs[1].Message == "" || evs[1].After != nil {
		t.Errorf("denied event %+v", evs[1])
	}
	if evs[3].Message == "" || !strings.Contains(evs[3].Message, "username") {
		t.Errorf("failed event message %q", evs[3].Message)
	}
	wantBefore, wantAfter := map[string]any{"title": "Analyst", "location": nil}, map[string]any{"title": "Lead", "location": "Paris"}
	if !reflect.DeepEqual(evs[4].Before, wantBefore) || !reflect.DeepEqual(evs[4].After, wantAfter) || evs[4].Target.Version != 2 {
		t.Errorf("update event records before %v after %v version %d", evs[4].Before, evs[4].After, evs[4].Target.Version)
	}
	if evs[8].Authority.Rule != "self" || evs[8].After["token"] == nil {
		t.Errorf("self-service token event %+v", evs[8])
	}
	if evs[9].After != nil || evs[9].Before["username"] != "ada" || evs[9].Target.ID != ada.ID {
		t.Errorf("delete event %+v", evs[9])
	}

	// The trail: dense indexes from 0 in order, non-decreasing times, canonical encodings that
	// survive a round trip, and Event(i) agrees with the search.
	all := f.events()
	for i, e := range all {
		if e.Index != int64(i) {
			t.Fatalf("event %d has index %d", i, e.Index)
		}
		if i > 0 && e.Time.Before(all[i-1].Time) {
			t.Errorf("event %d at %v is before event %d at %v", i, e.Time, i-1, all[i-1].Time)
		}
		if !e.Time.Equal(audit.Timestamp(e.Time)) || e.Time.Location() != time.UTC {
			t.Errorf("event %d time %v is not UTC microseconds", i, e.Time)
		}
		b1 := mustEncode(t, &e)
		d, err := audit.Decode(b1)
		if err != nil {
			t.Fatal(err)
		}
		if b2 := mustEncode(t, &d); !bytes.Equal(b1, b2) {
			t.Errorf("event %d does not round-trip:\n%s\n%s", i, b1, b2)
		}
		byIndex, err := f.st.Event(f.ctx, int64(i))
		if err != nil {
			t.Fatal(err)
		}
		if b3 := mustEncode(t, &byIndex); !bytes.Equal(b1, b3) {
			t.Errorf("Event(%d) differs from the search:\n%s\n%s", i, b3, b1)
		}
	}
	if _, err := f.st.Event(f.ctx, int64(len(all))); !errorsIsNotFound(err) {
		t.Errorf("event past the end: %v", err)
	}
	if _, err := f.st.Event(f.ctx, -1); !errorsIsNotFound(err) {
		t.Errorf("event -1: %v", err)
	}
}

func testAuditQueries(t *testing.T, f *fixture) {
	plain := f.mkUser(directory.UserInput{Username: "plain"})
	cli := *f
	cli.meta = change.Meta{Transport: audit.TransportCLI}
	for i, name := range []string{"u1", "u2", "u3"} {
		fx := f
		if i == 1 {
			fx = &cli
		}
		fx.mkUser(directory.UserInput{Username: name})
		fx.do(change.Op{Action: delegation.UserUpdate, Target: userRef(name), Patch: patch(t, map[string]any{"title": "t"})})
	}
	if _, err := f.p.Submit(f.ctx, ActorOf(plain), f.meta, change.Op{Action: delegation.UserDisable, Target: userRef("u1")}); !errors.Is(err, change.ErrDenied) {
		t.Fatalf("plain user disables u1: %v", err)
	}
	all := f.events()
	u1 := f.getUser("u1")
	// The admin's tier-0 assignment, the authority of their applied changes.
	var adminGrant string
	for _, e := range all {
		if e.Actor.ID == f.admin.ID && len(e.Authority.Assignments) > 0 {
			adminGrant = e.Authority.Assignments[0]
		}
	}
	mid := all[len(all)/2].Time

	tests := []struct {
		name string
		q    audit.Query
		keep func(e audit.Event) bool
	}{
		{"all", audit.Query{}, func(audit.Event) bool { return true }},
		{"actor by ID", audit.Query{Actor: f.admin.ID}, func(e audit.Event) bool { return e.Actor.ID == f.admin.ID }},
		{"actor by name", audit.Query{Actor: "plain"}, func(e audit.Event) bool { return e.Actor.Name == "plain" }},
		{"system actor", audit.Query{Actor: "system:bootstrap"}, func(e audit.Event) bool { return e.Actor.ID == "system:bootstrap" }},
		{"target by ID", audit.Query{Target: u1.ID}, func(e audit.Event) bool { return e.Target.ID == u1.ID }},
		{"target by name", audit.Query{Target: "u2"}, func(e audit.Event) bool { return e.Target.Name == "u2" }},
		{"action", audit.Query{Action: string(delegation.UserUpdate)}, func(e audit.Event) bool { return e.Action == "user.update" }},
		{"outcome", audit.Query{Outcome: audit.Denied}, func(e audit.Event) bool { return e.Outcome == audit.Denied }},
		{"transport", audit.Query{Transport: audit.TransportCLI}, func(e audit.Event) bool { return e.Transport == audit.TransportCLI }},
		{"since", audit.Query{Since: mid}, func(e audit.Event) bool { return !e.Time.Before(mid) }},
		{"until", audit.Query{Until: mid}, func(e audit.Event) bool { return e.Time.Before(mid) }},
		{"combined", audit.Query{Actor: AdminName, Action: string(delegation.UserCreate), Since: mid},
			func(e audit.Event) bool {
				return e.Actor.Name == AdminName && e.Action == "user.create" && !e.Time.Before(mid)
			}},
		{"nothing", audit.Query{Actor: "nobody"}, func(audit.Event) bool { return false }},
		{"authority", audit.Query{Authority: adminGrant}, func(e audit.Event) bool { return slices.Contains(e.Authority.Assignments, adminGrant) }},
		{"authority and action", audit.Query{Authority: adminGrant, Action: string(delegation.UserUpdate)},
			func(e audit.Event) bool {
				return slices.Contains(e.Authority.Assignments, adminGrant) && e.Action == "user.update"
			}},
		{"unknown authority", audit.Query{Authority: "no-such-assignment"}, func(audit.Event) bool { return false }},
	}
	for _, tc := range tests {
		var want []int64
		for i := len(all) - 1; i >= 0; i-- {
			if tc.keep(all[i]) {
				want = append(want, all[i].Index)
			}
		}
		for _, limit := range []int{0, 1, 2, 5} {
			q := tc.q
			q.Limit = limit
			var got []int64
			for pages := 0; ; pages++ {
				page, next, err := f.st.Events(f.ctx, q)
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				if limit > 0 && len(page) > limit {
					t.Fatalf("%s: page of %d for limit %d", tc.name, len(page), limit)
				}
				for _, e := range page {
					got = append(got, e.Index)
				}
				if next == 0 || pages > 100 {
					break
				}
				q.Before = next
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s, limit %d: events %v, want %v", tc.name, limit, got, want)
			}
		}
		if len(want) == 0 && tc.name != "nothing" && tc.name != "unknown authority" {
			t.Errorf("%s selects nothing; the test proves little", tc.name)
		}
	}
}

// outboxMessage is the payload the pipeline enqueues.
type outboxMessage struct {
	Index  int64        `json:"index"`
	Action string       `json:"action"`
	Target audit.Target `json:"target"`
}

func testOutbox(t *testing.T, f *fixture) {
	plain := f.mkUser(directory.UserInput{Username: "plain"})
	f.mkGroup("team", "")
	f.addMember("team", "plain")
	_, err := f.p.Submit(f.ctx, ActorOf(plain), f.meta, change.Op{Action: delegation.GroupDelete, Target: groupRef("team")})
	wantErr(t, err, change.ErrDenied, "")
	_, err = f.try(change.Op{Action: delegation.GroupCreate, Group: &directory.GroupInput{Name: "TEAM", OU: "/"}})
	wantErr(t, err, directory.ErrConflict, "name")
	// A batch whose last op fails leaves no message for the ops before it.
	_, err = f.p.SubmitBatch(f.ctx, f.admin, f.meta, []change.Op{
		{Action: delegation.GroupCreate, Group: &directory.GroupInput{Name: "batch", OU: "/"}},
		{Action: delegation.GroupCreate, Group: &directory.GroupInput{Name: "batch", OU: "/"}},
	})
	wantErr(t, err, directory.ErrConflict, "name")
	f.do(change.Op{Action: delegation.GroupDelete, Target: groupRef("team")})

	msgs, err := f.st.Outbox(f.ctx, "directory", 0, directory.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	byEvent := map[int64]outboxMessage{}
	for i, m := range msgs {
		if i > 0 && m.ID <= msgs[i-1].ID {
			t.Errorf("outbox IDs out of order: %d after %d", m.ID, msgs[i-1].ID)
		}
		if m.Topic != "directory" || m.Attempts != 0 || !m.Delivered.IsZero() || m.Created.IsZero() {
			t.Errorf("outbox message %+v", m)
		}
		var p outboxMessage
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatalf("outbox payload %s: %v", m.Payload, err)
		}
		if p.Index != m.EventIndex {
			t.Errorf("payload index %d for event %d", p.Index, m.EventIndex)
		}
		if _, dup := byEvent[m.EventIndex]; dup {
			t.Errorf("two messages for event %d", m.EventIndex)
		}
		byEvent[m.EventIndex] = p
	}
	for _, e := range f.events() {
		p, ok := byEvent[e.Index]
		if ok != (e.Outcome == audit.Applied) {
			t.Errorf("event %d (%s %s %s): outbox message %v", e.Index, e.Action, e.Target.Name, e.Outcome, ok)
			continue
		}
		if !ok {
			continue
		}
		if p.Action != e.Action || p.Target != e.Target {
			t.Errorf("message for event %d: %s %+v, want %s %+v", e.Index, p.Action, p.Target, e.Action, e.Target)
		}
	}
	after, err := f.st.Outbox(f.ctx, "directory", msgs[1].ID, 2)
	if err != nil || len(after) != 2 || after[0].ID != msgs[2].ID {
		t.Errorf("outbox after %d, limit 2: %+v, %v", msgs[1].ID, after, err)
	}
	if other, err := f.st.Outbox(f.ctx, "other", 0, 10); err != nil || len(other) != 0 {
		t.Errorf("outbox of another topic: %+v, %v", other, err)
	}
}

func testTokens(t *testing.T, f *fixture) {
	plain := f.mkUser(directory.UserInput{Username: "plain"})
	other := f.mkUser(directory.UserInput{Username: "other"})
	res, err := f.p.Submit(f.ctx, ActorOf(plain), f.meta, change.Op{Action: delegation.UserIssueToken, Target: userRef("plain"),
		Token: &change.TokenInput{Name: "laptop", ExpiresInDays: 7}})
	if err != nil || res.Credential == nil {
		t.Fatalf("issue a token to oneself: %+v, %v", res, err)
	}
	_, err = f.p.Submit(f.ctx, ActorOf(plain), f.meta, change.Op{Action: delegation.UserIssueToken, Target: userRef(other.ID),
		Token: &change.TokenInput{Name: "theirs"}})
	wantErr(t, err, change.ErrDenied, "")
	_, err = f.try(change.Op{Action: delegation.UserIssueToken, Target: userRef("plain"), Token: &change.TokenInput{Name: "x", ExpiresInDays: 1000}})
	wantErr(t, err, directory.ErrInvalid, "expires_in_days")

	bootstrapToken := f.token
	secrets := []string{res.Credential.Secret, bootstrapToken}
	for _, secret := range secrets {
		id, raw, err := credential.ParseToken(secret)
		if err != nil {
			t.Fatalf("parse %q: %v", secret, err)
		}
		tok, err := f.st.Token(f.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if tok.ID != id || tok.Hash == raw || strings.Contains(tok.Hash, raw) || !tok.Matches(raw) || tok.Matches(raw+"x") {
			t.Errorf("stored token %+v does not hold a hash of the secret", tok)
		}
		if !tok.Active(tok.Created) || tok.Active(tok.Expires) || !tok.Revoked.IsZero() || !tok.LastUsed.IsZero() {
			t.Errorf("token %s lifetime: %+v", id, tok)
		}
	}
	tok, err := f.st.Token(f.ctx, res.Credential.ID)
	if err != nil {
		t.Fatal(err)
	}
	if tok.OwnerKind != "user" || tok.OwnerID != plain.ID || tok.Name != "laptop" || !tok.Expires.Equal(tok.Created.Add(7*24*time.Hour)) ||
		!tok.Expires.Equal(res.Credential.Expires) {
		t.Errorf("stored token %+v", tok)
	}
	used := Epoch.Add(time.Hour)
	if err := f.st.TouchToken(f.ctx, tok.ID, used); err != nil {
		t.Fatal(err)
	}
	if got, err := f.st.Token(f.ctx, tok.ID); err != nil || !got.LastUsed.Equal(used) {
		t.Errorf("after TouchToken: %+v, %v", got, err)
	}
	if _, err := f.st.Token(f.ctx, "nosuchtoken00000"); !errorsIsNotFound(err) {
		t.Errorf("unknown token: %v", err)
	}
	// No secret is in any event or outbox message.
	for _, e := range f.events() {
		b := mustEncode(t, &e)
		for _, s := range secrets {
			_, raw, _ := credential.ParseToken(s)
			if bytes.Contains(b, []byte(raw)) {
				t.Errorf("event %d holds a token secret: %s", e.Index, b)
			}
		}
	}
	msgs, err := f.st.Outbox(f.ctx, "directory", 0, directory.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		for _, s := range secrets {
			_, raw, _ := credential.ParseToken(s)
			if bytes.Contains(m.Payload, []byte(raw)) {
				t.Errorf("outbox message %d holds a token secret", m.ID)
			}
		}
	}
	// Deleting the user deletes their tokens.
	f.do(change.Op{Action: delegation.UserDelete, Target: userRef("plain")})
	if _, err := f.st.Token(f.ctx, tok.ID); !errorsIsNotFound(err) {
		t.Errorf("token of a deleted user: %v", err)
	}
}
