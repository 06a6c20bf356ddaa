package credential

// TOTP (RFC 6238) second factors, with the parameters every authenticator app supports and most
// assume whatever the otpauth:// URL says: HMAC-SHA1, 6 digits, 30-second steps, a 160-bit
// secret (RFC 4226's recommended length). The secret is stored base32 like the URL carries it;
// it is a secret like a password and never enters an audit event.

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

const (
	totpPeriod     = 30 // seconds per step
	totpSecretSize = 20 // bytes
	totpSkew       = 1  // steps accepted either side of now, for clock drift and typing time
	// totpMinSecret is the shortest base32 secret accepted on validation: 80 bits, the length
	// older enrolments (Google Authenticator's default) used.
	totpMinSecret = 16
)

var totpOpts = hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// NewTOTP makes a TOTP secret for account at issuer. It returns the secret, base32 without
// padding, to store; and the otpauth:// key URL to show once as a QR code (or as text), which
// also carries the secret. Neither issuer nor account may be empty or contain ':', which the
// URL's label uses as its separator.
func NewTOTP(issuer, account string) (secret string, url string, err error) {
	if issuer == "" || account == "" || strings.Contains(issuer, ":") || strings.Contains(account, ":") {
		return "", "", errors.New("credential: new totp: issuer and account must be non-empty and contain no ':'")
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      totpPeriod,
		SecretSize:  totpSecretSize,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return "", "", fmt.Errorf("credential: new totp for %q: %w", account, err)
	}
	return key.Secret(), key.URL(), nil
}

// TOTPCounter returns the TOTP time step of now: the number of whole 30-second periods since the
// Unix epoch. Steps only grow, so a caller that stores the step of each accepted code can refuse
// a code whose step is not greater (see MatchTOTP).
func TOTPCounter(now time.Time) uint64 {
	return uint64(now.Unix()) / totpPeriod
}

// ValidateTOTP reports whether code is the TOTP of secret for the step of now or the step
// before or after it. Spaces in code are ignored ("123 456"). It does not stop a replay of the
// same code within its window: sign-in should use MatchTOTP.
func ValidateTOTP(code, secret string, now time.Time) bool {
	_, ok := MatchTOTP(code, secret, now, 0)
	return ok
}

// MatchTOTP is ValidateTOTP with replay protection: it accepts code only for a step greater than
// lastStep (the step of the last code this secret accepted, 0 for none) and returns the step it
// matched, which the caller MUST store as the new lastStep before it reports success, in the same
// transaction that checks it if sign-ins can race. A malformed code or secret never matches.
func MatchTOTP(code, secret string, now time.Time, lastStep uint64) (step uint64, ok bool) {
	code = strings.ReplaceAll(code, " ", "")
	if len(code) != totpOpts.Digits.Length() || strings.ContainsFunc(code, notDigit) {
		return 0, false
	}
	if len(strings.TrimRight(strings.TrimSpace(secret), "=")) < totpMinSecret {
		return 0, false
	}
	now0 := TOTPCounter(now)
	// Every candidate step is computed and compared, matched or not, so the time taken does not
	// say which step matched.
	for s := now0 - totpSkew; s <= now0+totpSkew; s++ {
		if s <= lastStep {
			continue
		}
		want, err := hotp.GenerateCodeCustom(secret, s, totpOpts)
		if err != nil {
			return 0, false // not base32
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !ok {
			step, ok = s, true
		}
	}
	return step, ok
}
