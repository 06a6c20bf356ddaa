package authn

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/store"
)

// benchWorld is a real SQLite store with 10,000 users, a service account with a key, and an
// authenticator with sessions.
func benchWorld(b *testing.B) (*store.Store, *change.Pipeline, *Authenticator, delegation.Actor, string) {
	b.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st, err := store.Open(ctx, filepath.Join(b.TempDir(), "deputy.db"), log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	engine := delegation.NewEngine(log)
	p := change.New(st, engine, log)
	boot, err := p.Bootstrap(ctx, change.Meta{Transport: audit.TransportCLI}, "admin")
	if err != nil {
		b.Fatal(err)
	}
	admin := delegation.Actor{Kind: delegation.ActorUser, ID: boot.Admin.ID, Name: boot.Admin.Username}
	meta := change.Meta{Transport: audit.TransportCLI}
	var ops []change.Op
	for i := range 10000 {
		ops = append(ops, change.Op{Action: delegation.UserCreate, User: &directory.UserInput{
			Username: fmt.Sprintf("user%05d", i), OU: "/"}})
	}
	for len(ops) > 0 {
		n := min(1000, len(ops))
		if _, err := p.SubmitBatch(ctx, admin, meta, ops[:n]); err != nil {
			b.Fatal(err)
		}
		ops = ops[n:]
	}
	if _, err := p.Submit(ctx, admin, meta, change.Op{Action: delegation.SACreate, Service: &directory.ServiceAccountInput{
		Name: "bench-bot", OU: "/", Owners: []string{"admin"}}}); err != nil {
		b.Fatal(err)
	}
	res, err := p.Submit(ctx, admin, meta, change.Op{Action: delegation.SAIssueKey, Target: directory.ParseRef(directory.KindServiceAccount, "bench-bot"),
		Key: &change.KeyInput{Name: "bench"}})
	if err != nil {
		b.Fatal(err)
	}
	a := New(st, st, log).WithSessions(st, p, engine, credential.PasswordPolicy{}, Config{MFAOptional: true, PerIPBurst: 1 << 30, PerIPRate: 1e9})
	return st, p, a, admin, res.Credential.Secret
}

// BenchmarkAuthenticateKey authenticates a service account's API key: parse, look the key up,
// compare its hash, check the account is active. Target: under 50 µs.
func BenchmarkAuthenticateKey(b *testing.B) {
	_, _, a, _, key := benchWorld(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.Authenticate(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/auth")
}

// BenchmarkSignIn signs a user in through the HTTP handler (password check, counters, session,
// audit event), one at a time, and reports the median of the whole and of the password hash
// alone, measured in the same run.
func BenchmarkSignIn(b *testing.B) {
	st, p, a, admin, _ := benchWorld(b)
	ctx := context.Background()
	res, err := p.Submit(ctx, admin, change.Meta{Transport: audit.TransportCLI}, change.Op{Action: delegation.UserResetPassword,
		Target: directory.ParseRef(directory.KindUser, "user00042")})
	if err != nil {
		b.Fatal(err)
	}
	pw := res.Credential.Secret
	uc, err := st.UserCredential(ctx, res.Target.ID)
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	a.Register(mux, p)
	body := `{"username": "user00042", "password": "` + pw + `"}`
	var whole, hash []time.Duration
	b.ResetTimer()
	for i := 0; i < max(b.N, 30); i++ {
		start := time.Now()
		if ok, _, _ := credential.VerifyPassword(pw, uc.PasswordHash); !ok {
			b.Fatal("the password does not verify")
		}
		hash = append(hash, time.Since(start))
		req := httptest.NewRequest("POST", "/api/v1/auth/sign-in", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		start = time.Now()
		mux.ServeHTTP(w, req)
		whole = append(whole, time.Since(start))
		if w.Code != 200 {
			b.Fatalf("sign-in: %d %s", w.Code, w.Body)
		}
	}
	slices.Sort(whole)
	slices.Sort(hash)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(whole[len(whole)/2]), "signin_p50_ms")
	b.ReportMetric(ms(hash[len(hash)/2]), "hash_p50_ms")
	b.ReportMetric(ms(whole[len(whole)/2]-hash[len(hash)/2]), "rest_p50_ms")
}
