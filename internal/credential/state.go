package credential

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// UserCredential is a user's password and second factor, and the counters of failed sign-ins.
// None of it ever enters an audit event.
type UserCredential struct {
	UserID          string
	PasswordHash    string // PHC argon2id string; empty: no password (sign-in by OIDC only)
	MustChange      bool   // a temporary password: it must be changed at the next sign-in
	PasswordChanged time.Time
	TOTPSecret      string // base32; enrolled when TOTPEnabled
	TOTPEnabled     bool
	TOTPLastStep    int64 // the last time step a code was accepted in (no replay)
	FailedCount     int
	FailedSince     time.Time
	LockedUntil     time.Time
}

// Locked reports whether sign-in is refused at now because of failed attempts.
func (c *UserCredential) Locked(now time.Time) bool { return now.Before(c.LockedUntil) }

// Session is a signed-in browser or client. Only a hash of its ID is stored, so a copy of the
// database does not hold usable sessions.
type Session struct {
	IDHash     string
	UserID     string
	Created    time.Time
	LastSeen   time.Time
	Expires    time.Time // absolute end
	MFAAt      time.Time // the last time a second factor was given (sign-in or step-up)
	Restricted string    // "", or what the session may only do: change_password, enrol_mfa
	CSRF       string    // the token state-changing requests must echo
	ClientAddr string
	UserAgent  string
}

// Session restrictions.
const (
	RestrictChangePassword = "change_password"
	RestrictEnrolMFA       = "enrol_mfa"
)

// NewSessionID returns a random session ID (256 bits) and its stored hash.
func NewSessionID() (id, hash string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	id = hex.EncodeToString(b)
	return id, HashSessionID(id)
}

// HashSessionID is how a session ID is stored and looked up.
func HashSessionID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// NewCSRFToken returns a random token for a session's state-changing requests.
func NewCSRFToken() string { return strings.ToLower(rand.Text()) }

// Verification is a one-time code a delegate asked to be sent to a user, to check that the
// person on the phone is who they say before a reset. Only a hash of the code is stored.
type Verification struct {
	UserID   string
	ActorID  string
	CodeHash string
	Channel  string // email or totp
	Expires  time.Time
	Attempts int
}

// NewCode returns a six-digit code and its hash.
func NewCode() (code, hash string) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	code = fmt.Sprintf("%06d", binary.BigEndian.Uint32(b)%1000000)
	return code, HashSessionID(code)
}
