package credential

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTokenRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	tok, plain := NewToken("user", "u1", "laptop", now, 24*time.Hour)
	if !strings.HasPrefix(plain, "dpy_"+tok.ID+"_") {
		t.Fatalf("token %q does not start with dpy_<id>_", plain)
	}
	if strings.Contains(tok.Hash, plain[len("dpy_")+17:]) {
		t.Fatal("the stored hash contains the secret")
	}
	id, secret, err := ParseToken(plain)
	if err != nil || id != tok.ID {
		t.Fatalf("ParseToken = %q, %v", id, err)
	}
	if !tok.Matches(secret) || tok.Matches(secret+"x") || tok.Matches("") {
		t.Error("Matches accepts the wrong secret or refuses the right one")
	}
	if !tok.Active(now.Add(time.Hour)) || tok.Active(now.Add(25*time.Hour)) {
		t.Error("expiry not honoured")
	}
	tok.Revoked = now
	if tok.Active(now) {
		t.Error("a revoked token is active")
	}
	_, other := NewToken("user", "u1", "laptop", now, 0)
	if other == plain {
		t.Error("two tokens are equal")
	}
}

func TestParseTokenRejects(t *testing.T) {
	for _, s := range []string{"", "dpy_", "Bearer dpy_x_y", "dpy_short_" + strings.Repeat("a", 30),
		"dpy_" + strings.Repeat("a", 16), "dpy_" + strings.Repeat("a", 16) + "_tooshort", "xyz_" + strings.Repeat("a", 16) + "_" + strings.Repeat("b", 26)} {
		if _, _, err := ParseToken(s); !errors.Is(err, ErrBadToken) {
			t.Errorf("ParseToken(%q) = %v, want ErrBadToken", s, err)
		}
	}
}
