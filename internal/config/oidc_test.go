package config

import (
	"strings"
	"testing"
)

func TestOIDCSettings(t *testing.T) {
	cfg, err := resolve(t, []string{"--oidc-issuer", "https://idp.example.com/realms/corp", "--oidc-client-id", "deputy",
		"--base-url", "https://deputy.example.com/"}, map[string]string{"DEPUTY_OIDC_CLIENT_SECRET": "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OIDCRedirectURL != "https://deputy.example.com/api/v1/auth/oidc/callback" || cfg.OIDCClientSecret != "s3cret" ||
		cfg.OIDCUsernameClaim != "preferred_username" {
		t.Errorf("redirect %q, secret %q, claim %q", cfg.OIDCRedirectURL, cfg.OIDCClientSecret, cfg.OIDCUsernameClaim)
	}
	cfg, err = resolve(t, []string{"--oidc-issuer", "http://127.0.0.1:5556/dex", "--oidc-client-id", "deputy",
		"--oidc-redirect-url", "http://localhost:8080/api/v1/auth/oidc/callback", "--oidc-username-claim", "email"}, nil)
	if err != nil || cfg.OIDCUsernameClaim != "email" {
		t.Errorf("a local provider: %v, claim %q", err, cfg.OIDCUsernameClaim)
	}
	// Without an issuer, nothing else is needed and base-url makes no redirect URL.
	if cfg, err := resolve(t, []string{"--base-url", "http://deputy.internal"}, nil); err != nil || cfg.OIDCRedirectURL != "" {
		t.Errorf("no issuer: %v, redirect %q", err, cfg.OIDCRedirectURL)
	}

	for want, args := range map[string][]string{
		"oidc-client-id":    {"--oidc-issuer", "https://idp.example.com", "--oidc-redirect-url", "https://d.example.com/cb"},
		"oidc-redirect-url": {"--oidc-issuer", "https://idp.example.com", "--oidc-client-id", "deputy"},
		"oidc-issuer":       {"--oidc-issuer", "http://idp.example.com", "--oidc-client-id", "d", "--oidc-redirect-url", "https://d.example.com/cb"},
		`oidc-redirect-url "http://deputy.example.com`: {"--oidc-issuer", "https://idp.example.com", "--oidc-client-id", "d",
			"--base-url", "http://deputy.example.com"},
		`oidc-issuer "idp.example.com"`: {"--oidc-issuer", "idp.example.com", "--oidc-client-id", "d", "--oidc-redirect-url", "https://d.example.com/cb"},
	} {
		if _, err := resolve(t, args, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: error %v does not name %s", args, err, want)
		}
	}
}
