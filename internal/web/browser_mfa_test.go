package web_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

var browserTOTPKey = regexp.MustCompile(`Key: ([A-Z2-7=]+)`)

// TestBrowserAuthenticator: with second factors required (the default), a helpdesk agent's
// first sign-in leads only to turning an authenticator on; with it on, sign-in asks for its
// code, and then the portal opens.
func TestBrowserAuthenticator(t *testing.T) {
	p := startJourney(t, "required", false)
	p.newUser("hank", "/", nil)
	p.assign("helpdesk", "hank", "/")
	p.setPassword("hank", "violet orchard granite tide")

	c := p.browser(1280, 900, false)
	hank := c.tab("hank")
	if got := hank.signIn("hank", "violet orchard granite tide"); got != "/mfa" {
		t.Fatalf("a holder without an authenticator lands on %s: %s", got, hank.text("main"))
	}
	hank.expect("turn on an authenticator")
	hank.open("/users") // anything else leads back to the authenticator
	if got := hank.path(); got != "/mfa" {
		t.Fatalf("before enrolling, /users leads to %s", got)
	}
	// Two codes follow (t0-30s to confirm, t0 to sign in): start early in a 30-second step.
	if left := 30 - time.Now().Unix()%30; left < 5 {
		time.Sleep(time.Duration(left) * time.Second)
	}
	t0 := time.Now()
	hank.click(`form[action="/mfa"] button[type=submit]`)
	m := browserTOTPKey.FindStringSubmatch(hank.text("main"))
	if m == nil {
		t.Fatalf("the authenticator page shows no key: %s", hank.text("main"))
	}
	// The QR code is drawn (a data: image the page's policy allows).
	if w := evalJS[float64](hank, `(document.querySelector('main img') || {}).naturalWidth || 0`); w < 100 {
		t.Fatalf("the QR code is not shown (width %v)", w)
	}
	hank.checkLabels()
	hank.screenshot("mfa.png")
	code, _ := totp.GenerateCode(m[1], t0.Add(-30*time.Second))
	hank.fill("code", code)
	hank.click(`form[action="/mfa/confirm"] button[type=submit]`)
	hank.expect("Authenticator on")
	// Without the code, sign-in asks for it; with it, the portal opens.
	hank.trySignIn("hank", "violet orchard granite tide")
	hank.expect("Enter the code from your authenticator app too")
	code, _ = totp.GenerateCode(m[1], t0)
	hank.open("/sign-in")
	hank.fill("username", "hank")
	hank.fill("password", "violet orchard granite tide")
	hank.fill("totp", code)
	hank.click(`form[action="/sign-in"] button[type=submit]`)
	if got := hank.path(); got != "/" {
		t.Fatalf("with the code hank lands on %s: %s", got, hank.text("main"))
	}
	hank.expect("Hello, hank")
	if !strings.Contains(hank.text("nav"), "People") {
		t.Fatalf("the navigation: %q", hank.text("nav"))
	}
}
