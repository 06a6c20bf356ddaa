// Package credential holds Deputy's secrets-bearing credentials. Here: API tokens, which are
// shown once, stored only as a hash, and shaped so that secret scanners can find leaked ones.
package credential

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"strings"
	"time"
)

// TokenPrefix starts every Deputy token: "dpy_<key id>_<secret>".
const TokenPrefix = "dpy_"

// ErrBadToken means a presented token is malformed, unknown, revoked, expired or belongs to an
// identity that may not sign in. Callers must not tell these cases apart to the client.
var ErrBadToken = errors.New("invalid or expired token")

// Token is a stored API token: the hash of its secret, never the secret.
type Token struct {
	ID        string // the key id, public part of the token
	OwnerKind string // "user" or "service_account"
	OwnerID   string
	Name      string
	Hash      string // hex SHA-256 of the secret
	Created   time.Time
	Expires   time.Time // zero: no expiry
	LastUsed  time.Time
	Revoked   time.Time
}

// Active reports whether t may authenticate at now.
func (t *Token) Active(now time.Time) bool {
	return t.Revoked.IsZero() && (t.Expires.IsZero() || now.Before(t.Expires))
}

// NewToken makes a token for an owner. It returns the stored form and the plaintext, which the
// caller shows once and then forgets. The secret has 130 bits of entropy, so a fast hash is the
// right way to store it (a slow password hash would protect nothing more and cost every request).
func NewToken(ownerKind, ownerID, name string, now time.Time, ttl time.Duration) (Token, string) {
	id := strings.ToLower(rand.Text()[:16])
	secret := strings.ToLower(rand.Text())
	t := Token{ID: id, OwnerKind: ownerKind, OwnerID: ownerID, Name: name, Hash: hashSecret(secret), Created: now}
	if ttl > 0 {
		t.Expires = now.Add(ttl)
	}
	return t, TokenPrefix + id + "_" + secret
}

// ParseToken splits a presented token into its key id and secret.
func ParseToken(s string) (id, secret string, err error) {
	rest, ok := strings.CutPrefix(s, TokenPrefix)
	if !ok {
		return "", "", ErrBadToken
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || len(id) != 16 || len(secret) < 20 || len(secret) > 64 {
		return "", "", ErrBadToken
	}
	return id, secret, nil
}

// Matches reports, in constant time, whether secret is t's secret.
func (t *Token) Matches(secret string) bool {
	return subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(t.Hash)) == 1
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// TokenStore finds stored tokens and records their use.
type TokenStore interface {
	// Token returns the token with key id, or an error wrapping directory.ErrNotFound.
	Token(ctx context.Context, id string) (Token, error)
	// TouchToken records that the token was used at t.
	TouchToken(ctx context.Context, id string, t time.Time) error
}
