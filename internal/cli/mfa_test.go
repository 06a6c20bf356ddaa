package cli_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// TestMFACommands: where second factors are required (the default), an admin working from the
// CLI enrols an authenticator with deputy mfa, and a takeover action then takes --totp.
func TestMFACommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	code, out, errOut := deputy(t, nil, "", "init", "--data", dir, "--admin", "root-admin", "-o", "json", "--log-level", "error")
	if code != 0 {
		t.Fatalf("init: exit %d: %s", code, errOut)
	}
	var b struct{ Token string }
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DEPUTY_SERVER": openServerMFA(t, dir, ""), "DEPUTY_TOKEN": b.Token}
	run := func(want int, args ...string) (string, string) {
		t.Helper()
		code, out, errOut := deputy(t, env, "", args...)
		if code != want {
			t.Fatalf("deputy %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errOut)
		}
		return out, errOut
	}
	run(0, "user", "create", "sally", "--ou", "/")
	if _, e := run(3, "user", "reset-password", "sally"); !strings.Contains(e, "mfa_enrolment_required") {
		t.Fatalf("a reset by an admin without an authenticator: %q", e)
	}
	// Two codes follow (the enrolment's, then the reset's, a step later): start early in a
	// step so that both stay inside the ±1-step window.
	if left := 30 - time.Now().Unix()%30; left < 5 {
		time.Sleep(time.Duration(left) * time.Second)
	}
	t0 := time.Now()
	out, _ = run(0, "mfa", "enrol")
	line := out[strings.Index(out, "otpauth://"):]
	u, err := url.Parse(strings.TrimSpace(strings.SplitN(line, "\n", 2)[0]))
	if err != nil {
		t.Fatalf("enrol printed %q: %v", out, err)
	}
	secret := u.Query().Get("secret")
	if _, e := run(1, "mfa", "confirm", "000000"); !strings.Contains(e, "code") {
		t.Fatalf("confirm with a wrong code: %q", e)
	}
	first, _ := totp.GenerateCode(secret, t0)
	run(0, "mfa", "confirm", first)
	if _, e := run(3, "user", "reset-password", "sally"); !strings.Contains(e, "step_up_required") {
		t.Fatalf("a reset without --totp: %q", e)
	}
	if _, e := run(3, "user", "reset-password", "sally", "--totp", first); !strings.Contains(e, "step_up_required") {
		t.Fatalf("a reset with a code already used: %q", e)
	}
	next, _ := totp.GenerateCode(secret, t0.Add(30*time.Second))
	if out, _ := run(0, "user", "reset-password", "sally", "--totp", next); !strings.Contains(out, "Temporary password for sally") {
		t.Fatalf("a reset with --totp printed %q", out)
	}
}
