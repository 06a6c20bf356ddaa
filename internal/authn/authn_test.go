package authn

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/store"
)

// fixture is a real SQLite store with a bootstrapped admin and an authenticator over it.
type fixture struct {
	store    *store.Store
	pipeline *change.Pipeline
	admin    delegation.Actor
	token    string
	auth     *Authenticator
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "deputy.db"), log)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	p := change.New(st, delegation.NewEngine(log), log)
	b, err := p.Bootstrap(ctx, change.Meta{Transport: audit.TransportCLI}, "admin")
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	return &fixture{store: st, pipeline: p, token: b.Token, auth: New(st, st, log),
		admin: delegation.Actor{Kind: delegation.ActorUser, ID: b.Admin.ID, Name: b.Admin.Username}}
}

// submit applies an op as the admin.
func (f *fixture) submit(t *testing.T, op change.Op) change.Result {
	t.Helper()
	res, err := f.pipeline.Submit(context.Background(), f.admin, change.Meta{Transport: audit.TransportAPI}, op)
	if err != nil {
		t.Fatalf("%s: %v", op.Action, err)
	}
	return res
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.submit(t, change.Op{Action: delegation.UserCreate, User: &directory.UserInput{Username: "bob", OU: "/"}})
	res := f.submit(t, change.Op{Action: delegation.UserIssueToken, Target: directory.Ref{Kind: directory.KindUser, Name: "bob"},
		Token: &change.TokenInput{Name: "short", ExpiresInDays: 1}})
	bob := res.Credential.Secret

	wrong := []byte(f.token)
	wrong[len(wrong)-1] ^= 1
	for _, tc := range []struct {
		name  string
		token string
		at    time.Time
		want  string // the actor's name, "" for ErrBadToken
	}{
		{"admin", f.token, time.Now(), "admin"},
		{"bob", bob, time.Now(), "bob"},
		{"wrong secret", string(wrong), time.Now(), ""},
		{"not a token", "hello", time.Now(), ""},
		{"empty", "", time.Now(), ""},
		{"bob's token just before expiry", bob, res.Credential.Expires.Add(-time.Second), "bob"},
		{"bob's token at expiry", bob, res.Credential.Expires, ""},
		{"admin's token after 91 days", f.token, time.Now().Add(91 * 24 * time.Hour), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.auth.now = func() time.Time { return tc.at }
			a, err := f.auth.Authenticate(ctx, tc.token)
			if tc.want == "" {
				if !errors.Is(err, credential.ErrBadToken) || a != (delegation.Actor{}) {
					t.Errorf("Authenticate = %+v, %v; want ErrBadToken and no actor", a, err)
				}
				return
			}
			if err != nil || a.Name != tc.want || a.Kind != delegation.ActorUser || a.ID == "" {
				t.Errorf("Authenticate = %+v, %v; want %s", a, err, tc.want)
			}
		})
	}

	// A disabled user's token stops working at once, and works again once enabled.
	f.auth.now = time.Now
	bobRef := directory.Ref{Kind: directory.KindUser, Name: "bob"}
	f.submit(t, change.Op{Action: delegation.UserDisable, Target: bobRef})
	if _, err := f.auth.Authenticate(ctx, bob); !errors.Is(err, credential.ErrBadToken) {
		t.Errorf("disabled user's token: %v, want ErrBadToken", err)
	}
	f.submit(t, change.Op{Action: delegation.UserEnable, Target: bobRef})
	if _, err := f.auth.Authenticate(ctx, bob); err != nil {
		t.Errorf("re-enabled user's token: %v", err)
	}
	f.submit(t, change.Op{Action: delegation.UserDelete, Target: bobRef})
	if _, err := f.auth.Authenticate(ctx, bob); !errors.Is(err, credential.ErrBadToken) {
		t.Errorf("deleted user's token: %v, want ErrBadToken", err)
	}
}

func TestAuthenticateRecordsUseAtMostOncePerMinute(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, _, err := credential.ParseToken(f.token)
	if err != nil {
		t.Fatal(err)
	}
	lastUsed := func() time.Time {
		t.Helper()
		tok, err := f.store.Token(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return tok.LastUsed
	}
	if !lastUsed().IsZero() {
		t.Fatalf("a new token has a last use: %v", lastUsed())
	}
	start := time.Now().UTC().Truncate(time.Second)
	for _, tc := range []struct {
		after time.Duration
		want  time.Duration // the recorded last use, as an offset from start
	}{
		{0, 0},
		{30 * time.Second, 0},
		{touchEvery, 0},
		{touchEvery + time.Second, touchEvery + time.Second},
		{touchEvery + 2*time.Second, touchEvery + time.Second},
	} {
		f.auth.now = func() time.Time { return start.Add(tc.after) }
		if _, err := f.auth.Authenticate(ctx, f.token); err != nil {
			t.Fatalf("at +%v: %v", tc.after, err)
		}
		if got := lastUsed(); !got.Equal(start.Add(tc.want)) {
			t.Errorf("after a use at +%v, last use = +%v, want +%v", tc.after, got.Sub(start), tc.want)
		}
	}
}

func TestRequire(t *testing.T) {
	f := newFixture(t)
	h := f.auth.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := ActorFrom(r.Context())
		if !ok {
			t.Error("no actor in the context")
		}
		w.Write([]byte(a.Name))
	}))
	for _, tc := range []struct {
		name, header string
		status       int
	}{
		{"bearer", "Bearer " + f.token, 200},
		{"lower-case scheme", "bearer " + f.token, 200},
		{"extra spaces", "Bearer   " + f.token + " ", 200},
		{"no header", "", 401},
		{"no scheme", f.token, 401},
		{"basic", "Basic " + f.token, 401},
		{"bad token", "Bearer dpy_x_y", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/v1/me", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.status == 200 && w.Body.String() != "admin" {
				t.Errorf("actor %q, want admin", w.Body)
			}
			if tc.status == 401 {
				if w.Header().Get("WWW-Authenticate") != `Bearer realm="deputy"` || w.Header().Get("Content-Type") != "application/problem+json" {
					t.Errorf("401 headers: %v", w.Header())
				}
			}
		})
	}
}
