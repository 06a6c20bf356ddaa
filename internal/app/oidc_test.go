package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"
)

// TestServeWithOIDC serves with an OpenID provider configured (mockoidc on a loopback listener)
// and signs the first admin in through it: the wiring from configuration to session.
func TestServeWithOIDC(t *testing.T) {
	op, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Shutdown() })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	cfg := benchConfig(t.TempDir())
	oc := op.Config()
	cfg.OIDCIssuer, cfg.OIDCClientID, cfg.OIDCClientSecret = oc.Issuer, oc.ClientID, oc.ClientSecret
	cfg.OIDCRedirectURL, cfg.OIDCUsernameClaim = base+"/api/v1/auth/oidc/callback", "preferred_username"
	ctx, cancel := context.WithCancel(context.Background())
	a, err := Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if _, err := a.Init(ctx, "admin"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/api/v1/auth/methods"); code != 200 || strings.TrimSpace(body) != `{"oidc":true,"password":true}` {
		t.Fatalf("methods: %d %s", code, body)
	}
	if code, body := get("/sign-in?next=/audit"); code != 200 || !strings.Contains(body, `href="/api/v1/auth/oidc/start?return_to=%2faudit"`) {
		t.Fatalf("the portal's sign-in page offers no OIDC sign-in: %d %s", code, body)
	}
	op.QueueUser(&mockoidc.MockUser{Subject: "s-admin", PreferredUsername: "admin"})
	// The sign-in ends at the portal, which sends a session that must enrol a second factor to
	// that page.
	if code, body := get("/api/v1/auth/oidc/start"); code != 200 || !strings.Contains(body, "authenticator") {
		t.Fatalf("sign-in ended at %d %s, want the portal's authenticator page", code, body)
	}
	// The first admin holds tier-0 and has no second factor: the session may only enrol one.
	code, body := get("/api/v1/auth/session")
	var s struct {
		User       string `json:"user"`
		Restricted string `json:"restricted"`
	}
	if err := json.Unmarshal([]byte(body), &s); err != nil || code != 200 || s.User != "admin" || s.Restricted != "enrol_mfa" {
		t.Fatalf("session: %d %s", code, body)
	}
	if code, body := get("/api/v1/me"); code != 200 || !strings.Contains(body, `"admin"`) {
		t.Errorf("me: %d %s", code, body)
	}
}

// TestServeRefusesAnUnreachableProvider: a configured provider that cannot be discovered stops
// the start.
func TestServeRefusesAnUnreachableProvider(t *testing.T) {
	cfg := benchConfig(t.TempDir())
	cfg.OIDCIssuer, cfg.OIDCClientID, cfg.OIDCRedirectURL = "http://127.0.0.1:1/nowhere", "deputy", "http://127.0.0.1/cb"
	a, err := Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Serve(context.Background(), l); err == nil || !strings.Contains(err.Error(), "oidc") {
		t.Fatalf("Serve = %v, want an oidc error", err)
	}
}
