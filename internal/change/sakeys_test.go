package change_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/store/storetest"
)

// keyWorld is a world on a fake clock whose pipeline allows keys of at most 180 days.
type keyWorld struct {
	*world
	clock *fakeClock
}

func newKeyWorld(t *testing.T, e engine) *keyWorld {
	t.Helper()
	clock := &fakeClock{}
	clock.now.Store(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC).UnixNano())
	dsn := e.dsn(t)
	st := storetest.Open(t, dsn)
	env := storetest.Bootstrap(t, st, change.WithClock(clock.Now), change.WithMaxKeyDays(180))
	return &keyWorld{world: &world{t: t, ctx: context.Background(), dsn: dsn, st: st, p: env.Pipeline, admin: env.Admin,
		meta: change.Meta{Transport: audit.TransportAPI}}, clock: clock}
}

func saRef(name string) directory.Ref { return directory.ParseRef(directory.KindServiceAccount, name) }

func (w *keyWorld) mkUser(name, manager string) delegation.Actor {
	w.t.Helper()
	w.do(change.Op{Action: delegation.UserCreate, User: &directory.UserInput{Username: name, OU: directory.RootPath, Manager: manager}})
	u, err := w.st.User(w.ctx, directory.ParseRef(directory.KindUser, name))
	if err != nil {
		w.t.Fatal(err)
	}
	return storetest.ActorOf(u)
}

func (w *keyWorld) mkSA(name string, owners ...string) {
	w.t.Helper()
	w.do(change.Op{Action: delegation.SACreate, Service: &directory.ServiceAccountInput{Name: name, OU: directory.RootPath, Owners: owners}})
}

func (w *keyWorld) sa(name string) directory.ServiceAccount {
	w.t.Helper()
	s, err := w.st.ServiceAccount(w.ctx, saRef(name))
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

func (w *keyWorld) token(id string) credential.Token {
	w.t.Helper()
	tok, err := w.st.Token(w.ctx, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return tok
}

// issue issues a key as the admin and checks what is stored of it.
func (w *keyWorld) issue(sa string, in change.KeyInput) change.Result {
	w.t.Helper()
	res := w.do(change.Op{Action: delegation.SAIssueKey, Target: saRef(sa), Key: &in})
	c := res.Credential
	if c == nil {
		w.t.Fatalf("issue %s: no credential in %+v", in.Name, res)
	}
	id, secret, err := credential.ParseToken(c.Secret)
	if err != nil || id != c.ID {
		w.t.Fatalf("issued key %q does not parse to its id %s: %v", c.Secret, c.ID, err)
	}
	tok := w.token(c.ID)
	if tok.OwnerKind != "service_account" || tok.OwnerID != w.sa(sa).ID || tok.Name != in.Name || !tok.Matches(secret) ||
		strings.Contains(tok.Hash, secret) || !tok.Expires.Equal(c.Expires) || !tok.Active(w.clock.Now()) {
		w.t.Fatalf("stored key %+v for %+v", tok, c)
	}
	return res
}

func names(refs []directory.Ref) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Name
	}
	return out
}

// TestServiceAccountKeyInput: what sa.issue_key refuses before anything is written, with the
// field it names.
func TestServiceAccountKeyInput(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		w := newKeyWorld(t, e)
		w.mkUser("owner", "")
		w.mkSA("ci-bot", "owner")
		w.mkSA("other-bot", "owner")
		other := w.issue("other-bot", change.KeyInput{Name: "theirs"})
		cases := []struct {
			name  string
			in    change.KeyInput
			field string
			want  error
		}{
			{"no name", change.KeyInput{}, "name", directory.ErrInvalid},
			{"long name", change.KeyInput{Name: strings.Repeat("n", 65)}, "name", directory.ErrInvalid},
			{"above the maximum", change.KeyInput{Name: "k", ExpiresInDays: 181}, "expires_in_days", directory.ErrInvalid},
			{"negative lifetime", change.KeyInput{Name: "k", ExpiresInDays: -1}, "expires_in_days", directory.ErrInvalid},
			{"overlap without rotation", change.KeyInput{Name: "k", OverlapHours: 2}, "overlap_hours", directory.ErrInvalid},
			{"overlap above 7 days", change.KeyInput{Name: "k", RotateFrom: other.Credential.ID, OverlapHours: 169}, "overlap_hours", directory.ErrInvalid},
			{"rotating an unknown key", change.KeyInput{Name: "k", RotateFrom: "nosuchkey0000000"}, "rotate_from", directory.ErrInvalid},
			{"rotating another account's key", change.KeyInput{Name: "k", RotateFrom: other.Credential.ID}, "rotate_from", directory.ErrInvalid},
		}
		for _, c := range cases {
			n := len(w.events())
			res, err := w.p.Submit(w.ctx, w.admin, w.meta, change.Op{Action: delegation.SAIssueKey, Target: saRef("ci-bot"), Key: &c.in})
			var fe directory.FieldErrors
			if !errors.Is(err, c.want) || res.Credential != nil || !errors.As(err, &fe) || fe[0].Field != c.field {
				t.Errorf("%s: %+v, %v; want %v on %s", c.name, res, err, c.want, c.field)
			}
			if evs := w.events(); len(evs) != n+1 || evs[n].Outcome != audit.Failed {
				t.Errorf("%s: the attempt is not recorded as failed", c.name)
			}
		}
		if _, err := w.p.Submit(w.ctx, w.admin, w.meta, change.Op{Action: delegation.SAIssueKey, Target: saRef("ci-bot")}); !errors.Is(err, directory.ErrInvalid) {
			t.Errorf("sa.issue_key without a key: %v", err)
		}
		if _, err := w.p.Submit(w.ctx, w.admin, w.meta, change.Op{Action: delegation.SARevokeKey, Target: saRef("ci-bot")}); !errors.Is(err, directory.ErrInvalid) {
			t.Errorf("sa.revoke_key without a key id: %v", err)
		}
		// The default lifetime; a disabled account gets no key.
		res := w.issue("ci-bot", change.KeyInput{Name: "default"})
		if want := w.clock.Now().Add(change.DefaultKeyDays * 24 * time.Hour); !res.Credential.Expires.Equal(want) {
			t.Errorf("default expiry %v, want %v", res.Credential.Expires, want)
		}
		w.do(change.Op{Action: delegation.SAUpdate, Target: saRef("ci-bot"), Patch: directory.Patch{"status": []byte(`"disabled"`)}})
		if _, err := w.p.Submit(w.ctx, w.admin, w.meta, change.Op{Action: delegation.SAIssueKey, Target: saRef("ci-bot"),
			Key: &change.KeyInput{Name: "k"}}); !errors.Is(err, directory.ErrConflict) {
			t.Errorf("a key for a disabled account: %v", err)
		}
	})
}

// TestServiceAccountKeyLifecycle: issue, rotation with an overlap (both keys valid until it
// ends, the old one not a moment longer), revocation, and no secret in any event.
func TestServiceAccountKeyLifecycle(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		w := newKeyWorld(t, e)
		w.mkUser("owner", "")
		w.mkSA("ci-bot", "owner")
		w.mkSA("other-bot", "owner")
		var secrets []string
		k1 := w.issue("ci-bot", change.KeyInput{Name: "deploy", ExpiresInDays: 30})
		secrets = append(secrets, k1.Credential.Secret)

		w.clock.Advance(10 * 24 * time.Hour)
		k2 := w.issue("ci-bot", change.KeyInput{Name: "deploy-2", RotateFrom: k1.Credential.ID, OverlapHours: 2})
		secrets = append(secrets, k2.Credential.Secret)
		now := w.clock.Now()
		if r := k2.Credential.Rotated; r == nil || r.ID != k1.Credential.ID || !r.Expires.Equal(now.Add(2*time.Hour)) || r.Secret != "" {
			t.Fatalf("rotation result %+v", k2.Credential.Rotated)
		}
		old, cur := w.token(k1.Credential.ID), w.token(k2.Credential.ID)
		for _, at := range []time.Duration{0, time.Hour, 2*time.Hour - time.Microsecond} {
			if !old.Active(now.Add(at)) || !cur.Active(now.Add(at)) {
				t.Errorf("%v into the overlap: old active %v, new active %v", at, old.Active(now.Add(at)), cur.Active(now.Add(at)))
			}
		}
		if old.Active(now.Add(2*time.Hour)) || !cur.Active(now.Add(2*time.Hour)) {
			t.Errorf("after the overlap: old %+v, new %+v", old, cur)
		}
		// A rotation never extends the old key: one that expires before the overlap ends keeps
		// its expiry.
		short := w.issue("ci-bot", change.KeyInput{Name: "short", ExpiresInDays: 1})
		w.clock.Advance(23 * time.Hour)
		k3 := w.issue("ci-bot", change.KeyInput{Name: "short-2", RotateFrom: short.Credential.ID, OverlapHours: 48})
		secrets = append(secrets, short.Credential.Secret, k3.Credential.Secret)
		if got := w.token(short.Credential.ID).Expires; !got.Equal(short.Credential.Expires) || !k3.Credential.Rotated.Expires.Equal(got) {
			t.Errorf("rotated short key expires %v (result %v), want %v", got, k3.Credential.Rotated.Expires, short.Credential.Expires)
		}
		// The overlap has ended: the old key cannot be rotated again.
		if _, err := w.p.Submit(w.ctx, w.admin, w.meta, change.Op{Action: delegation.SAIssueKey, Target: saRef("ci-bot"),
			Key: &change.KeyInput{Name: "again", RotateFrom: k1.Credential.ID}}); !errors.Is(err, directory.ErrConflict) {
			t.Errorf("rotating an expired key: %v", err)
		}

		// Revocation: for good, at once; not twice; not through another account.
		other := w.issue("other-bot", change.KeyInput{Name: "theirs"})
		secrets = append(secrets, other.Credential.Secret)
		for _, c := range []struct {
			name, sa, id string
			want         error
		}{
			{"unknown key", "ci-bot", "nosuchkey0000000", directory.ErrNotFound},
			{"another account's key", "ci-bot", other.Credential.ID, directory.ErrNotFound},
			{"revoke", "ci-bot", k2.Credential.ID, nil},
			{"revoke again", "ci-bot", k2.Credential.ID, directory.ErrConflict},
		} {
			res, err := w.p.Submit(w.ctx, w.admin, w.meta, change.Op{Action: delegation.SARevokeKey, Target: saRef(c.sa), KeyID: c.id})
			if c.want == nil && (err != nil || res.Outcome != audit.Applied) || c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("%s: %+v, %v; want %v", c.name, res, err, c.want)
			}
		}
		if tok := w.token(k2.Credential.ID); tok.Revoked.IsZero() || tok.Active(w.clock.Now()) || tok.Active(tok.Created) {
			t.Errorf("revoked key %+v still active", tok)
		}
		if tok := w.token(other.Credential.ID); !tok.Revoked.IsZero() {
			t.Errorf("another account's key was revoked: %+v", tok)
		}

		// The events record ids, names and expiries, never a secret or a hash.
		evs := w.events()
		var issued, rotated, revoked int
		for _, ev := range evs {
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range secrets {
				_, raw, _ := credential.ParseToken(s)
				if strings.Contains(string(b), raw) {
					t.Errorf("event %d (%s) holds a secret: %s", ev.Index, ev.Action, b)
				}
			}
			if strings.Contains(string(b), w.token(k1.Credential.ID).Hash) {
				t.Errorf("event %d (%s) holds a key hash", ev.Index, ev.Action)
			}
			if ev.Outcome != audit.Applied {
				continue
			}
			switch ev.Action {
			case string(delegation.SAIssueKey):
				issued++
				key, _ := ev.After["key"].(map[string]any)
				if key["id"] == nil || key["name"] == nil || key["expires"] == nil {
					t.Errorf("issue event %d records %v", ev.Index, ev.After)
				}
				if key["id"] == k2.Credential.ID {
					rk, _ := ev.After["rotated_key"].(map[string]any)
					was, _ := ev.Before["rotated_key"].(map[string]any)
					if rk["id"] != k1.Credential.ID || rk["expires"] != now.Add(2*time.Hour).Format(time.RFC3339) ||
						was["expires"] != k1.Credential.Expires.Format(time.RFC3339) {
						t.Errorf("rotation event records %v -> %v", ev.Before, ev.After)
					}
					rotated++
				}
			case string(delegation.SARevokeKey):
				revoked++
				if key, _ := ev.After["key"].(map[string]any); key["id"] != k2.Credential.ID || key["revoked"] == nil {
					t.Errorf("revoke event records %v", ev.After)
				}
			}
		}
		if issued != 5 || rotated != 1 || revoked != 1 {
			t.Errorf("%d issue, %d rotation and %d revoke events, want 5, 1, 1", issued, rotated, revoked)
		}
	})
}

// TestServiceAccountKeysByOwner: keys are judged like any op: an owner holding sa-owner over
// owned_service_accounts may issue and revoke the keys of what they own, and nothing else.
func TestServiceAccountKeysByOwner(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		w := newKeyWorld(t, e)
		owner := w.mkUser("owner", "")
		plain := w.mkUser("plain", "")
		w.mkSA("ci-bot", "owner")
		w.mkSA("other-bot", "plain")
		w.do(change.Op{Action: delegation.RoleAssign, Assignment: &delegation.AssignmentInput{Role: delegation.RoleSAOwner,
			Holder: delegation.HolderInput{User: "owner"}, Scope: delegation.ScopeInput{Relation: delegation.RelOwnedServiceAccounts},
			Justification: "owners rotate their keys"}})
		res, err := w.p.Submit(w.ctx, owner, w.meta, change.Op{Action: delegation.SAIssueKey, Target: saRef("ci-bot"), Key: &change.KeyInput{Name: "k"}})
		if err != nil || res.Credential == nil {
			t.Fatalf("owner issues a key: %+v, %v", res, err)
		}
		if _, err := w.p.Submit(w.ctx, owner, w.meta, change.Op{Action: delegation.SARevokeKey, Target: saRef("ci-bot"), KeyID: res.Credential.ID}); err != nil {
			t.Errorf("owner revokes the key: %v", err)
		}
		for _, c := range []struct {
			who delegation.Actor
			sa  string
		}{{owner, "other-bot"}, {plain, "ci-bot"}, {plain, "other-bot"}} {
			_, err := w.p.Submit(w.ctx, c.who, w.meta, change.Op{Action: delegation.SAIssueKey, Target: saRef(c.sa), Key: &change.KeyInput{Name: "k"}})
			if !errors.Is(err, change.ErrDenied) {
				t.Errorf("%s issues a key for %s: %v, want a denial", c.who.Name, c.sa, err)
			}
		}
	})
}

// TestServiceAccountHandover: disabling or deleting the last active owner of a service account
// hands it to the owner's manager and flags it orphaned, in the same change; the manager may then
// act as its owner; setting owners (or orphaned=false) clears the flag.
func TestServiceAccountHandover(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		w := newKeyWorld(t, e)
		boss := w.mkUser("boss", "")
		w.mkUser("owner", "boss")
		w.mkUser("co", "")
		w.mkUser("loner", "")
		w.mkUser("leaver", "boss")
		w.mkSA("ci-bot", "owner", "co")
		w.mkSA("shared-bot", "owner", "boss")
		w.mkSA("lone-bot", "loner")
		w.mkSA("del-bot", "leaver")
		w.do(change.Op{Action: delegation.RoleAssign, Assignment: &delegation.AssignmentInput{Role: delegation.RoleSAOwner,
			Holder: delegation.HolderInput{User: "boss"}, Scope: delegation.ScopeInput{Relation: delegation.RelOwnedServiceAccounts},
			Justification: "owners rotate their keys"}})
		issueAsBoss := func() error {
			_, err := w.p.Submit(w.ctx, boss, w.meta, change.Op{Action: delegation.SAIssueKey, Target: saRef("ci-bot"), Key: &change.KeyInput{Name: "b"}})
			return err
		}
		if err := issueAsBoss(); !errors.Is(err, change.ErrDenied) {
			t.Fatalf("boss issues a key of ci-bot before owning it: %v", err)
		}

		// co is disabled first: owner is then ci-bot's last active owner (shared-bot keeps boss).
		w.do(change.Op{Action: delegation.UserDisable, Target: directory.ParseRef(directory.KindUser, "co")})
		if s := w.sa("ci-bot"); s.Orphaned || len(s.Owners) != 2 {
			t.Fatalf("ci-bot after a co-owner was disabled: %+v", s)
		}
		res := w.do(change.Op{Action: delegation.UserDisable, Target: directory.ParseRef(directory.KindUser, "owner")})
		if s := w.sa("ci-bot"); !s.Orphaned || strings.Join(names(s.Owners), ",") != "boss,co,owner" {
			t.Errorf("ci-bot after its last active owner was disabled: orphaned %v, owners %v", s.Orphaned, names(s.Owners))
		}
		if s := w.sa("shared-bot"); s.Orphaned || len(s.Owners) != 2 {
			t.Errorf("shared-bot, whose other owner is active: %+v", s)
		}
		ev := w.events()[res.Event]
		handed, _ := ev.After["orphaned_service_accounts"].([]any)
		if ev.After["status"] != "disabled" || len(handed) != 1 {
			t.Fatalf("disable event records %v", ev.After)
		}
		h, _ := handed[0].(map[string]any)
		to, _ := h["new_owner"].(map[string]any)
		if h["name"] != "ci-bot" || to["name"] != "boss" || to["id"] != boss.ID {
			t.Errorf("handover recorded as %v", h)
		}
		// The authorizer knows boss owns ci-bot now, as does one loaded afresh.
		if err := issueAsBoss(); err != nil {
			t.Errorf("boss issues a key of ci-bot after the handover: %v", err)
		}
		fresh := delegation.NewEngine(storetest.Logger(t))
		if err := fresh.Load(w.ctx, w.st); err != nil {
			t.Fatal(err)
		}
		sa := w.sa("ci-bot")
		if dec := fresh.Decide(w.ctx, &delegation.Question{Actor: boss, Action: delegation.SAIssueKey, Target: sa.Ref(),
			Before: sa.Fields(), After: sa.Fields()}); !dec.Allow {
			t.Errorf("a freshly loaded engine denies boss: %+v", dec)
		}

		// Without a manager the account is still flagged, and keeps its owners.
		w.do(change.Op{Action: delegation.UserDisable, Target: directory.ParseRef(directory.KindUser, "loner")})
		if s := w.sa("lone-bot"); !s.Orphaned || strings.Join(names(s.Owners), ",") != "loner" {
			t.Errorf("lone-bot after its owner without a manager was disabled: %+v", s)
		}
		// A delete hands over too; without an active manager, an only owner cannot be deleted.
		if _, err := w.p.Submit(w.ctx, w.admin, w.meta, change.Op{Action: delegation.UserDelete,
			Target: directory.ParseRef(directory.KindUser, "loner")}); !errors.Is(err, directory.ErrConflict) {
			t.Errorf("deleting an only owner without a manager: %v", err)
		}
		res = w.do(change.Op{Action: delegation.UserDelete, Target: directory.ParseRef(directory.KindUser, "leaver")})
		if s := w.sa("del-bot"); !s.Orphaned || strings.Join(names(s.Owners), ",") != "boss" {
			t.Errorf("del-bot after its only owner was deleted: %+v", s)
		}
		if ev := w.events()[res.Event]; ev.Before["username"] != "leaver" || ev.After["orphaned_service_accounts"] == nil {
			t.Errorf("delete event records %v -> %v", ev.Before, ev.After)
		}

		// Clearing: setting owners, or orphaned=false; undoing the latter flags it again.
		w.do(change.Op{Action: delegation.SAUpdate, Target: saRef("ci-bot"), Patch: directory.Patch{"owners": []byte(`["boss"]`)}})
		if s := w.sa("ci-bot"); s.Orphaned {
			t.Errorf("ci-bot still orphaned after its owners were set")
		}
		res = w.do(change.Op{Action: delegation.SAUpdate, Target: saRef("lone-bot"), Patch: directory.Patch{"orphaned": []byte(`false`)}})
		if s := w.sa("lone-bot"); s.Orphaned {
			t.Errorf("lone-bot still orphaned after orphaned=false")
		}
		undo, err := change.Inverse(w.events()[res.Event], false)
		if err != nil {
			t.Fatal(err)
		}
		w.do(undo)
		if s := w.sa("lone-bot"); !s.Orphaned {
			t.Errorf("undoing the review did not flag lone-bot again")
		}
		// An account already flagged, with nobody to hand it to, is left alone.
		w.do(change.Op{Action: delegation.UserEnable, Target: directory.ParseRef(directory.KindUser, "loner")})
		v := w.sa("lone-bot").Version
		res = w.do(change.Op{Action: delegation.UserDisable, Target: directory.ParseRef(directory.KindUser, "loner")})
		if s := w.sa("lone-bot"); s.Version != v || w.events()[res.Event].After["orphaned_service_accounts"] != nil {
			t.Errorf("disabling loner again changed lone-bot: version %d -> %d", v, s.Version)
		}
	})
}

// TestServiceAccountKeyReports reads the store's key listings and reports (on both engines):
// only active keys of service accounts, each condition narrowing the list.
func TestServiceAccountKeyReports(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		w := newKeyWorld(t, e)
		w.mkUser("owner", "")
		w.mkSA("bot1", "owner")
		w.mkSA("bot2", "owner")
		old := w.issue("bot1", change.KeyInput{Name: "old", ExpiresInDays: 90}).Credential
		w.issue("bot1", change.KeyInput{Name: "lapsed", ExpiresInDays: 10})
		w.clock.Advance(40 * 24 * time.Hour)
		now := w.clock.Now()
		fresh := w.issue("bot1", change.KeyInput{Name: "fresh", ExpiresInDays: 20}).Credential
		other := w.issue("bot2", change.KeyInput{Name: "other", ExpiresInDays: 180}).Credential
		rev := w.issue("bot2", change.KeyInput{Name: "revoked"}).Credential
		w.do(change.Op{Action: delegation.SARevokeKey, Target: saRef("bot2"), KeyID: rev.ID})
		if err := w.st.TouchToken(w.ctx, old.ID, now.Add(-24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		day := 24 * time.Hour
		for _, c := range []struct {
			name string
			q    credential.KeyQuery
			want []string
		}{
			{"every active key", credential.KeyQuery{}, []string{"bot1/old", "bot1/fresh", "bot2/other"}},
			{"expiring within 30 days", credential.KeyQuery{ExpiringBefore: now.Add(30 * day)}, []string{"bot1/fresh"}},
			{"unused for 30 days", credential.KeyQuery{UnusedSince: now.Add(-30 * day)}, nil},
			{"unused for 12 hours", credential.KeyQuery{UnusedSince: now.Add(-12 * time.Hour)}, []string{"bot1/old"}},
			{"not rotated for 30 days", credential.KeyQuery{CreatedBefore: now.Add(-30 * day)}, []string{"bot1/old"}},
			{"both", credential.KeyQuery{ExpiringBefore: now.Add(60 * day), CreatedBefore: now.Add(-30 * day)}, []string{"bot1/old"}},
		} {
			c.q.Now = now
			keys, err := w.st.AccountKeys(w.ctx, c.q)
			if err != nil || keys == nil {
				t.Fatalf("%s: %v, %v", c.name, keys, err)
			}
			var got []string
			for _, k := range keys {
				got = append(got, k.Account.Name+"/"+k.Name)
				if k.Hash != "" || k.Account.ID != w.sa(k.Account.Name).ID || k.OwnerID != k.Account.ID {
					t.Errorf("%s: key %+v", c.name, k)
				}
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
			}
		}
		keys, err := w.st.ServiceAccountKeys(w.ctx, w.sa("bot1").ID)
		if err != nil || len(keys) != 3 || keys[0].ID != fresh.ID || !slices.ContainsFunc(keys, func(k credential.Token) bool {
			return k.ID == old.ID && k.LastUsed.Equal(now.Add(-24*time.Hour))
		}) {
			t.Errorf("keys of bot1 (newest first): %+v, %v", keys, err)
		}
		keys, err = w.st.ServiceAccountKeys(w.ctx, w.sa("bot2").ID)
		if err != nil || len(keys) != 2 {
			t.Fatalf("keys of bot2: %+v, %v", keys, err)
		}
		for _, k := range keys { // issued at the same time: in no particular order
			if (k.ID == rev.ID) == k.Revoked.IsZero() || k.ID != rev.ID && k.ID != other.ID {
				t.Errorf("key of bot2: %+v", k)
			}
		}
		if sas, err := w.st.OrphanedServiceAccounts(w.ctx); err != nil || sas == nil || len(sas) != 0 {
			t.Errorf("orphaned accounts before any leaver: %v, %v", sas, err)
		}
		w.do(change.Op{Action: delegation.UserDisable, Target: directory.ParseRef(directory.KindUser, "owner")})
		sas, err := w.st.OrphanedServiceAccounts(w.ctx)
		if err != nil || len(sas) != 2 || sas[0].Name != "bot1" || !sas[1].Orphaned || len(sas[1].Owners) != 1 {
			t.Errorf("orphaned accounts: %+v, %v", sas, err)
		}
	})
}
