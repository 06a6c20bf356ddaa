package web_test

import (
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/deputy-iam/deputy/internal/config"
)

var totpKey = regexp.MustCompile(`Key: <code>([A-Z2-7=]+)</code>`)

// TestPortalStepUp: a password reset from the portal asks for the delegate's own fresh second
// factor, as the API does (here with --step-up-window 0s: every time), and a code works once.
func TestPortalStepUp(t *testing.T) {
	p := newPortalWith(t, func(c *config.Config) { c.StepUpWindow = "0s" }, nil)
	p.api("POST", "/api/v1/ous", map[string]any{"name": "sales"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "hank", "ou": "/"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "sally", "ou": "sales"})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "hank"},
		"scope": map[string]any{"ou": "sales"}, "justification": "desk"})
	hank := p.signedIn("hank")

	secret, t0 := hank.enrolTOTP("hank")
	_, page := hank.get("/users/sally")
	if !strings.Contains(page, `name="totp"`) {
		t.Fatalf("the reset form does not ask for a code:\n%s", page)
	}
	if body := hank.post("/users/sally/reset-password", url.Values{}, true); !strings.Contains(body, "Enter a current code from your authenticator first") {
		t.Fatalf("a reset without a code:\n%s", body)
	}
	used, _ := totp.GenerateCode(secret, t0)
	if body := hank.post("/users/sally/reset-password", url.Values{"totp": {used}}, true); !strings.Contains(body, "That code from your authenticator is not right") {
		t.Fatalf("a reset with the code already used at sign-in:\n%s", body)
	}
	code, _ := totp.GenerateCode(secret, t0.Add(30*time.Second))
	if body := hank.post("/users/sally/reset-password", url.Values{"totp": {code}}, true); !strings.Contains(body, "Temporary password") {
		t.Fatalf("a reset with a fresh code:\n%s", body)
	}
}

// enrolTOTP turns on an authenticator for the signed-in person through the portal and signs
// them in again with it, and returns its secret and t0: the codes of t0-30s (the enrolment)
// and t0 (the sign-in) are used, so the next code to use is t0+30s's. It starts early in a
// 30-second step, so that t0+30s's code is still inside the ±1-step window when it is used.
func (w *person) enrolTOTP(username string) (secret string, t0 time.Time) {
	w.p.t.Helper()
	if left := 30 - time.Now().Unix()%30; left < 5 {
		time.Sleep(time.Duration(left) * time.Second)
	}
	t0 = time.Now()
	m := totpKey.FindStringSubmatch(w.post("/mfa", url.Values{}, true))
	if m == nil {
		w.p.t.Fatal("the authenticator page shows no key")
	}
	code, _ := totp.GenerateCode(m[1], t0.Add(-30*time.Second))
	if body := w.post("/mfa/confirm", url.Values{"code": {code}}, true); !strings.Contains(body, "Authenticator on") {
		w.p.t.Fatalf("turning the authenticator on:\n%s", body)
	}
	jar, _ := cookiejar.New(nil)
	w.c.Jar = jar
	code, _ = totp.GenerateCode(m[1], t0)
	if body := w.post("/sign-in", url.Values{"username": {username}, "password": {"a new and quite long passphrase"},
		"totp": {code}}, false); !strings.Contains(body, "Hello, "+username) {
		w.p.t.Fatalf("sign-in with the code:\n%s", body)
	}
	return m[1], t0
}
