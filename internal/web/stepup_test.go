package web_test

import (
	"context"
	"log/slog"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/deputy-iam/deputy/internal/app"
	"github.com/deputy-iam/deputy/internal/config"
)

var totpKey = regexp.MustCompile(`Key: <code>([A-Z2-7=]+)</code>`)

// TestPortalStepUp: a password reset from the portal asks for the delegate's own fresh second
// factor, as the API does (here with --step-up-window 0s: every time), and a code works once.
func TestPortalStepUp(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Config{DataDir: dir, SigningKey: filepath.Join(dir, "audit-signing.key"), Addr: "127.0.0.1:0",
		LogLevel: "error", LogFormat: "text", ShutdownTimeout: 5 * time.Second, MFA: "optional", StepUpWindow: "0s"}
	a, err := app.Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err := a.Init(context.Background(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	p := &portal{t: t, srv: srv, token: b.Token}
	p.api("POST", "/api/v1/ous", map[string]any{"name": "sales"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "hank", "ou": "/"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "sally", "ou": "sales"})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "hank"},
		"scope": map[string]any{"ou": "sales"}, "justification": "desk"})
	hank := p.signedIn("hank")

	// Three of hank's codes follow (steps t0-30s, t0, t0+30s: the window is ±1 step and each
	// step's code works once): start early in a step.
	if left := 30 - time.Now().Unix()%30; left < 5 {
		time.Sleep(time.Duration(left) * time.Second)
	}
	t0 := time.Now()
	m := totpKey.FindStringSubmatch(hank.post("/mfa", url.Values{}, true))
	if m == nil {
		t.Fatal("the authenticator page shows no key")
	}
	code, _ := totp.GenerateCode(m[1], t0.Add(-30*time.Second))
	if body := hank.post("/mfa/confirm", url.Values{"code": {code}}, true); !strings.Contains(body, "Authenticator on") {
		t.Fatalf("turning the authenticator on:\n%s", body)
	}
	jar, _ := cookiejar.New(nil)
	hank.c.Jar = jar
	code, _ = totp.GenerateCode(m[1], t0)
	if body := hank.post("/sign-in", url.Values{"username": {"hank"}, "password": {"a new and quite long passphrase"},
		"totp": {code}}, false); !strings.Contains(body, "Hello, hank") {
		t.Fatalf("sign-in with the code:\n%s", body)
	}
	_, page := hank.get("/users/sally")
	if !strings.Contains(page, `name="totp"`) {
		t.Fatalf("the reset form does not ask for a code:\n%s", page)
	}
	if body := hank.post("/users/sally/reset-password", url.Values{}, true); !strings.Contains(body, "Enter a current code from your authenticator first") {
		t.Fatalf("a reset without a code:\n%s", body)
	}
	if body := hank.post("/users/sally/reset-password", url.Values{"totp": {code}}, true); !strings.Contains(body, "That code from your authenticator is not right") {
		t.Fatalf("a reset with the code already used at sign-in:\n%s", body)
	}
	code, _ = totp.GenerateCode(m[1], t0.Add(30*time.Second))
	if body := hank.post("/users/sally/reset-password", url.Values{"totp": {code}}, true); !strings.Contains(body, "Temporary password") {
		t.Fatalf("a reset with a fresh code:\n%s", body)
	}
}
