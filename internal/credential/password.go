package credential

// Passwords are stored as argon2id hashes in the PHC string format that the reference
// implementation (and libsodium, passlib, Keycloak's argon2 provider, ...) reads and writes:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// salt and hash in standard base64 without padding. The parameters travel with each hash, so
// the defaults can be raised later: VerifyPassword reports needsRehash for a hash made with
// weaker parameters and the sign-in path stores a fresh hash while it still holds the password.

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// Argon2Params are the argon2id cost parameters of a password hash.
type Argon2Params struct {
	Memory  uint32 // memory in KiB
	Time    uint32 // passes over the memory
	Threads uint8  // lanes (parallelism)
	KeyLen  uint32 // hash length in bytes
	SaltLen uint32 // salt length in bytes
}

// DefaultArgon2 are the parameters of new password hashes: OWASP's minimum for argon2id
// (19 MiB, 2 passes, 1 lane), a 32-byte hash and a 16-byte salt. A stored hash weaker than these
// needs a rehash. It is a constant in all but name: code MUST NOT assign to it.
var DefaultArgon2 = Argon2Params{Memory: 19 * 1024, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16}

// ErrMalformedHash means a stored password hash is not an argon2id PHC string this package
// accepts (another algorithm or version, a syntax error, or parameters out of bounds). It points
// at a corrupt or hostile stored value, not at a wrong password: callers must log it and must
// answer the client exactly as for a wrong password.
var ErrMalformedHash = errors.New("malformed password hash")

// Bounds on the parameters of a hash, both made and verified. The upper bounds keep a hostile
// stored value (say m=4 GiB, t=1000) from turning one sign-in attempt into a denial of service.
const (
	maxArgon2Memory  = 1024 * 1024 // KiB: 1 GiB
	maxArgon2Time    = 10
	maxArgon2Threads = 16
	minArgon2KeyLen  = 16
	maxArgon2KeyLen  = 128
	minArgon2SaltLen = 8
	maxArgon2SaltLen = 64
	// maxEncodedHash bounds the whole PHC string: every field at its maximum fits in it.
	maxEncodedHash = 512
)

// phcPrefix starts every hash this package makes and accepts.
const phcPrefix = "$argon2id$v=19$"

// HashPassword returns the argon2id hash of pw with parameters p, as a PHC string, under a fresh
// random salt. pw is NFC-normalized first, so the same password typed on systems that compose
// characters differently verifies. It fails only when p is out of bounds (see VerifyPassword).
func HashPassword(pw string, p Argon2Params) (string, error) {
	if err := p.check(); err != nil {
		return "", fmt.Errorf("credential: hash password: parameters: %w", err)
	}
	salt := make([]byte, p.SaltLen)
	rand.Read(salt) // never returns an error: crypto/rand crashes the program instead
	key := argon2.IDKey([]byte(norm.NFC.String(pw)), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return encodePHC(p, salt, key), nil
}

// VerifyPassword reports whether pw matches the stored hash encoded, comparing in constant time.
// needsRehash is true only when ok is, and then means encoded was made with parameters weaker
// than DefaultArgon2 in memory, time, lanes, hash length or salt length: the caller should store
// HashPassword(pw, DefaultArgon2) in its place. A malformed encoded value (see ErrMalformedHash)
// is an error, never ok=false, and is refused before any argon2 memory is allocated.
func VerifyPassword(pw, encoded string) (ok bool, needsRehash bool, err error) {
	p, salt, want, err := parsePHC(encoded)
	if err != nil {
		return false, false, fmt.Errorf("credential: verify password: %w", err)
	}
	got := argon2.IDKey([]byte(norm.NFC.String(pw)), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, p.weakerThan(DefaultArgon2), nil
}

// DummyVerify spends the time of a VerifyPassword against a DefaultArgon2 hash and throws the
// result away. Sign-in calls it when the account does not exist (or cannot sign in with a
// password), so the response time does not tell an attacker which accounts exist.
func DummyVerify(pw string) {
	// An all-zero hash: no password's argon2id output is all zeros but with probability 2^-256,
	// and the result is discarded anyway.
	p := DefaultArgon2
	encoded := encodePHC(p, make([]byte, p.SaltLen), make([]byte, p.KeyLen))
	_, _, _ = VerifyPassword(pw, encoded)
}

// tempAlphabet has 32 symbols that are hard to misread or mistype: no 0/o, no 1/l. Being a power
// of two, a random byte masked to 5 bits picks a symbol without bias.
const tempAlphabet = "23456789abcdefghijkmnpqrstuvwxyz"

// NewTemporaryPassword returns a random one-time password for a reset or a new account, meant
// to be read out or copied: 4 groups of 5 symbols from tempAlphabet joined by '-', 100 bits of
// entropy, e.g. "k7mza-3qf9x-hw2pe-u8cnt". It passes the default PasswordPolicy.
func NewTemporaryPassword() string {
	const groups, size = 4, 5
	raw := make([]byte, groups*size)
	rand.Read(raw) // never returns an error
	var b strings.Builder
	b.Grow(groups*size + groups - 1)
	for i, r := range raw {
		if i > 0 && i%size == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(tempAlphabet[r&31])
	}
	return b.String()
}

// check reports whether p is within the bounds this package makes and accepts; the error says
// which parameter is not.
func (p Argon2Params) check() error {
	switch {
	case p.Time < 1 || p.Time > maxArgon2Time:
		return fmt.Errorf("time %d not in [1, %d]", p.Time, maxArgon2Time)
	case p.Threads < 1 || p.Threads > maxArgon2Threads:
		return fmt.Errorf("lanes %d not in [1, %d]", p.Threads, maxArgon2Threads)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxArgon2Memory:
		// argon2 requires at least 8 KiB per lane.
		return fmt.Errorf("memory %d KiB not in [%d, %d]", p.Memory, 8*uint32(p.Threads), maxArgon2Memory)
	case p.KeyLen < minArgon2KeyLen || p.KeyLen > maxArgon2KeyLen:
		return fmt.Errorf("hash length %d not in [%d, %d]", p.KeyLen, minArgon2KeyLen, maxArgon2KeyLen)
	case p.SaltLen < minArgon2SaltLen || p.SaltLen > maxArgon2SaltLen:
		return fmt.Errorf("salt length %d not in [%d, %d]", p.SaltLen, minArgon2SaltLen, maxArgon2SaltLen)
	}
	return nil
}

// weakerThan reports whether any cost of p is below the same cost of d.
func (p Argon2Params) weakerThan(d Argon2Params) bool {
	return p.Memory < d.Memory || p.Time < d.Time || p.Threads < d.Threads ||
		p.KeyLen < d.KeyLen || p.SaltLen < d.SaltLen
}

func encodePHC(p Argon2Params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return phcPrefix + "m=" + strconv.FormatUint(uint64(p.Memory), 10) +
		",t=" + strconv.FormatUint(uint64(p.Time), 10) +
		",p=" + strconv.FormatUint(uint64(p.Threads), 10) +
		"$" + b64.EncodeToString(salt) + "$" + b64.EncodeToString(key)
}

// parsePHC parses an argon2id PHC string strictly: version 19 only, parameters m, t, p in that
// order and nothing else, canonical decimals, canonical unpadded base64, every value in bounds.
// It checks every bound before it decodes anything, so a hostile value costs a few hundred bytes.
func parsePHC(s string) (Argon2Params, []byte, []byte, error) {
	var p Argon2Params
	if len(s) > maxEncodedHash {
		return p, nil, nil, fmt.Errorf("%w: %d bytes long", ErrMalformedHash, len(s))
	}
	rest, found := strings.CutPrefix(s, phcPrefix)
	if !found {
		return p, nil, nil, fmt.Errorf("%w: not an argon2id v=19 hash", ErrMalformedHash)
	}
	params, rest, found := strings.Cut(rest, "$")
	if !found {
		return p, nil, nil, fmt.Errorf("%w: no salt", ErrMalformedHash)
	}
	salt64, key64, found := strings.Cut(rest, "$")
	if !found || strings.Contains(key64, "$") {
		return p, nil, nil, fmt.Errorf("%w: want 5 fields", ErrMalformedHash)
	}
	var m, t, threads uint64
	var err error
	if m, params, err = phcParam(params, "m=", ","); err == nil {
		if t, params, err = phcParam(params, "t=", ","); err == nil {
			threads, _, err = phcParam(params, "p=", "")
		}
	}
	if err != nil {
		return p, nil, nil, err
	}
	if m > maxArgon2Memory || t > maxArgon2Time || threads > maxArgon2Threads {
		return p, nil, nil, fmt.Errorf("%w: parameters m=%d,t=%d,p=%d out of bounds", ErrMalformedHash, m, t, threads)
	}
	b64 := base64.RawStdEncoding.Strict()
	p = Argon2Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(threads),
		KeyLen: uint32(b64.DecodedLen(len(key64))), SaltLen: uint32(b64.DecodedLen(len(salt64)))}
	if err := p.check(); err != nil {
		return p, nil, nil, fmt.Errorf("%w: %v", ErrMalformedHash, err)
	}
	salt, err := b64.DecodeString(salt64)
	if err != nil {
		return p, nil, nil, fmt.Errorf("%w: salt: %v", ErrMalformedHash, err)
	}
	key, err := b64.DecodeString(key64)
	if err != nil {
		return p, nil, nil, fmt.Errorf("%w: hash: %v", ErrMalformedHash, err)
	}
	return p, salt, key, nil
}

// phcParam reads "<name><decimal><sep>" from the front of s and returns the value and the rest.
// An empty sep means the value runs to the end of s. The decimal must be canonical (no sign, no
// leading zero) and fit in 32 bits.
func phcParam(s, name, sep string) (uint64, string, error) {
	s, found := strings.CutPrefix(s, name)
	if !found {
		return 0, "", fmt.Errorf("%w: want parameter %q", ErrMalformedHash, strings.TrimSuffix(name, "="))
	}
	num, rest := s, ""
	if sep != "" {
		if num, rest, found = strings.Cut(s, sep); !found {
			return 0, "", fmt.Errorf("%w: want %q after parameter %q", ErrMalformedHash, sep, strings.TrimSuffix(name, "="))
		}
	}
	if num == "" || (num[0] == '0' && len(num) > 1) || strings.ContainsFunc(num, notDigit) {
		return 0, "", fmt.Errorf("%w: parameter %q is not a canonical decimal", ErrMalformedHash, strings.TrimSuffix(name, "="))
	}
	v, err := strconv.ParseUint(num, 10, 32)
	if err != nil {
		return 0, "", fmt.Errorf("%w: parameter %q: out of range", ErrMalformedHash, strings.TrimSuffix(name, "="))
	}
	return v, rest, nil
}

func notDigit(r rune) bool { return r < '0' || r > '9' }
