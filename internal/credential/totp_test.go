package credential

import (
	"encoding/base32"
	"net/url"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

func TestNewTOTP(t *testing.T) {
	secret, raw, err := NewTOTP("Deputy", "ada@example.org")
	if err != nil {
		t.Fatal(err)
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil || len(key) != 20 {
		t.Fatalf("secret %q: %d bytes, %v; want 20 bytes of base32", secret, len(key), err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Deputy:ada@example.org" ||
		q.Get("secret") != secret || q.Get("issuer") != "Deputy" || q.Get("algorithm") != "SHA1" ||
		q.Get("digits") != "6" || q.Get("period") != "30" {
		t.Errorf("key URL %q does not carry the expected parameters", raw)
	}
	other, _, _ := NewTOTP("Deputy", "ada@example.org")
	if other == secret {
		t.Error("two secrets are equal")
	}
	for _, in := range [][2]string{{"", "ada"}, {"Deputy", ""}, {"Dep:uty", "ada"}, {"Deputy", "a:da"}} {
		if _, _, err := NewTOTP(in[0], in[1]); err == nil {
			t.Errorf("NewTOTP(%q, %q) succeeded", in[0], in[1])
		}
	}
}

// RFC 6238 appendix B, SHA1 key "12345678901234567890", truncated to the 6 digits apps show.
func TestValidateTOTPRFC6238(t *testing.T) {
	const secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	for _, tc := range []struct {
		unix int64
		code string
	}{
		{59, "287082"},
		{1111111109, "081804"},
		{1111111111, "050471"},
		{1234567890, "005924"},
		{2000000000, "279037"},
		{20000000000, "353130"},
	} {
		if !ValidateTOTP(tc.code, secret, time.Unix(tc.unix, 0)) {
			t.Errorf("ValidateTOTP(%s) at %d = false", tc.code, tc.unix)
		}
	}
}

func TestValidateTOTPWindow(t *testing.T) {
	secret, _, err := NewTOTP("Deputy", "ada")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 28, 12, 0, 15, 0, time.UTC)
	code := func(offset time.Duration) string {
		c, err := totp.GenerateCode(secret, now.Add(offset))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name string
		code string
		want bool
	}{
		{"current step", code(0), true},
		{"previous step", code(-30 * time.Second), true},
		{"next step", code(30 * time.Second), true},
		{"with a space", code(0)[:3] + " " + code(0)[3:], true},
		{"two steps back", code(-60 * time.Second), false},
		{"two steps ahead", code(60 * time.Second), false},
		{"an hour ago", code(-time.Hour), false},
		{"too short", code(0)[:5], false},
		{"too long", code(0) + "0", false},
		{"letters", "abcdef", false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidateTOTP(tc.code, secret, now); got != tc.want {
				// The window codes could collide by chance (1 in a million); report, don't guess.
				t.Errorf("ValidateTOTP(%q) = %v, want %v", tc.code, got, tc.want)
			}
		})
	}
	if ValidateTOTP(code(0), "not base32!!!!!!!!!", now) {
		t.Error("a malformed secret validated")
	}
	if ValidateTOTP(code(0), "", now) || ValidateTOTP(code(0), "GEZDGNBV", now) {
		t.Error("an empty or short secret validated")
	}
}

func TestMatchTOTPReplay(t *testing.T) {
	secret, _, err := NewTOTP("Deputy", "ada")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 28, 12, 0, 15, 0, time.UTC)
	cur, _ := totp.GenerateCode(secret, now)
	prev, _ := totp.GenerateCode(secret, now.Add(-30*time.Second))
	next, _ := totp.GenerateCode(secret, now.Add(30*time.Second))

	step, ok := MatchTOTP(cur, secret, now, 0)
	if !ok || step != TOTPCounter(now) {
		t.Fatalf("MatchTOTP(current) = %d, %v; want %d, true", step, ok, TOTPCounter(now))
	}
	if _, ok := MatchTOTP(cur, secret, now.Add(10*time.Second), step); ok {
		t.Error("the same code was accepted twice in its window")
	}
	if _, ok := MatchTOTP(prev, secret, now, step); ok {
		t.Error("an older code was accepted after a newer one")
	}
	if s, ok := MatchTOTP(next, secret, now.Add(30*time.Second), step); !ok || s != step+1 {
		t.Errorf("MatchTOTP(next step) = %d, %v; want %d, true", s, ok, step+1)
	}
	if s, ok := MatchTOTP(prev, secret, now, 0); !ok || s != step-1 {
		t.Errorf("MatchTOTP(previous step) = %d, %v; want the step it matched, %d", s, ok, step-1)
	}
}

func TestTOTPCounter(t *testing.T) {
	for _, tc := range []struct {
		unix int64
		want uint64
	}{{0, 0}, {29, 0}, {30, 1}, {59, 1}, {60, 2}, {1111111109, 37037036}} {
		if got := TOTPCounter(time.Unix(tc.unix, 0)); got != tc.want {
			t.Errorf("TOTPCounter(%d) = %d, want %d", tc.unix, got, tc.want)
		}
	}
}
