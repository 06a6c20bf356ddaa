package credential

// The password policy follows NIST SP 800-63B (section 3.1.1.2 in revision 4, 5.1.1.2 in
// revision 3): a length floor, a generous ceiling, every printable Unicode character allowed
// (spaces and emoji included), no composition rules ("one digit, one symbol"), and a check
// against passwords known to be common or breached and against the user's own names.
//
// The common-password list is the "passwords" frequency list that github.com/trustelem/zxcvbn
// (a Go port of Dropbox's zxcvbn) ships in its exported map frequency.FrequencyLists: the 30,000
// most frequent passwords of the xato 10-million-password corpus (the rockyou-era breaches),
// lowercased, in rank order. We use that raw list rather than zxcvbn.PasswordStrength's score
// because it is what NIST asks for (a blocklist, yes or no), because a score also judges
// composition and patterns (keyboard walks, dates, l33t) in ways a user cannot predict and NIST
// advises against, and because an exact lookup costs a map probe where the scorer costs a
// regexp-heavy search on every check. Two limits of that list: zxcvbn's build keeps each word in
// only the list where it ranks highest, so a few common passwords that are also very common
// English words live in its english_wikipedia list instead and are not refused here; and words
// shorter than their rank's digit count were dropped, which matters little under a 12-character
// floor. Importing only the frequency package keeps zxcvbn's matchers out of the binary.

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn/frequency"
	"golang.org/x/text/unicode/norm"
)

// Reasons a password is refused, the Reason of a PolicyError.
const (
	ReasonTooShort = "too_short" // fewer code points than MinLength
	ReasonTooLong  = "too_long"  // more code points than MaxLength
	ReasonCommon   = "common"    // on the common/breached password list
	ReasonPersonal = "personal"  // contains the user's username, name or email local part
	ReasonInvalid  = "invalid"   // not UTF-8, or contains a control character
)

// Policy defaults and floors.
const (
	DefaultMinPasswordLength = 12
	DefaultMaxPasswordLength = 256
	// minMinLength is NIST's absolute floor; a MinLength below it is raised to it.
	minMinLength = 8
	// minMaxLength is the smallest MaxLength allowed: NIST asks verifiers to accept at least 64
	// characters; we promise 128 so that passphrases and generated passwords always fit.
	minMaxLength = 128
	// minPersonalLength is the shortest personal string checked: shorter ones ("Al", "Li")
	// would refuse too many good passwords.
	minPersonalLength = 3
)

// ErrPasswordPolicy matches (errors.Is) every *PolicyError, for callers that only need to know
// that the password was refused by policy, say to map it to a 422 in one place.
var ErrPasswordPolicy = errors.New("password refused by policy")

// PolicyError says why PasswordPolicy.Check refused a password. Reason is one of the Reason*
// constants, for programs; Message is an English sentence for the user. Neither ever contains
// the password.
type PolicyError struct {
	Reason  string
	Message string
}

// Error returns the message.
func (e *PolicyError) Error() string { return e.Message }

// Is makes errors.Is(err, ErrPasswordPolicy) true for every *PolicyError.
func (e *PolicyError) Is(target error) bool { return target == ErrPasswordPolicy }

// PasswordPolicy is the password policy. The zero value is the default policy.
type PasswordPolicy struct {
	// MinLength is the fewest code points a password may have; 0 means 12, and a value below 8
	// counts as 8.
	MinLength int
	// MaxLength is the most code points a password may have; 0 means 256, and a value below 128
	// counts as 128.
	MaxLength int
}

// limits returns the effective minimum and maximum lengths of p.
func (p PasswordPolicy) limits() (minLen, maxLen int) {
	minLen, maxLen = p.MinLength, p.MaxLength
	if minLen == 0 {
		minLen = DefaultMinPasswordLength
	}
	minLen = max(minLen, minMinLength)
	if maxLen == 0 {
		maxLen = DefaultMaxPasswordLength
	}
	maxLen = max(maxLen, minMaxLength, minLen)
	return minLen, maxLen
}

// Check returns nil if pw is acceptable under p, or a *PolicyError saying why not. Length is
// counted in Unicode code points after NFC normalization, so "é" is one character however it
// was typed. personal holds strings that the password must not contain, compared
// case-insensitively: the username, given and family names, the email address. An email address
// counts by its local part only (its domain is everyone's). Each is also split at spaces, dots,
// hyphens, underscores and '+', and every string or piece of at least 3 code points is checked.
// Checks run in this order: invalid, too long, too short, common, personal.
func (p PasswordPolicy) Check(pw string, personal ...string) error {
	minLen, maxLen := p.limits()
	if !utf8.ValidString(pw) {
		return &PolicyError{ReasonInvalid, "The password is not valid text."}
	}
	// NFC changes a string's length by a bounded factor (a Hangul syllable composes from 3 code
	// points), so a password this long is too long however it normalizes; refuse it before
	// normalizing megabytes of hostile input.
	if utf8.RuneCountInString(pw) > 3*maxLen {
		return tooLong(maxLen)
	}
	pw = norm.NFC.String(pw)
	if strings.ContainsFunc(pw, unicode.IsControl) {
		return &PolicyError{ReasonInvalid, "The password must not contain control characters such as tabs or line breaks."}
	}
	n := utf8.RuneCountInString(pw)
	if n > maxLen {
		return tooLong(maxLen)
	}
	if n < minLen {
		return &PolicyError{ReasonTooShort, fmt.Sprintf("The password must be at least %d characters long.", minLen)}
	}
	lower := strings.ToLower(pw)
	if isCommonPassword(lower) {
		return &PolicyError{ReasonCommon, "This password is too common: it appears in lists of breached passwords. Please choose another."}
	}
	for _, s := range personalPieces(personal) {
		if strings.Contains(lower, s) {
			return &PolicyError{ReasonPersonal, "The password must not contain your username, your name or your email address."}
		}
	}
	return nil
}

func tooLong(maxLen int) *PolicyError {
	return &PolicyError{ReasonTooLong, fmt.Sprintf("The password must be at most %d characters long.", maxLen)}
}

// commonPasswords is the set of zxcvbn's "passwords" list, built on first use.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	list := frequency.FrequencyLists["passwords"]
	set := make(map[string]struct{}, len(list))
	for _, w := range list {
		set[strings.ToLower(w)] = struct{}{}
	}
	return set
})

// isCommonPassword reports whether lower (a lowercased password) is on the list, as it is or
// once trailing digits, punctuation, symbols and spaces are stripped ("password123!" ->
// "password"): the suffix users add to satisfy composition rules adds next to nothing.
func isCommonPassword(lower string) bool {
	set := commonPasswords()
	if _, ok := set[lower]; ok {
		return true
	}
	stem := strings.TrimRightFunc(lower, func(r rune) bool {
		return unicode.IsDigit(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) || unicode.IsSpace(r)
	})
	if stem == "" || stem == lower {
		return false
	}
	_, ok := set[stem]
	return ok
}

// personalPieces returns the lowercased, NFC-normalized personal strings and their pieces that
// are long enough to check.
func personalPieces(personal []string) []string {
	var out []string
	add := func(s string) {
		if utf8.RuneCountInString(s) >= minPersonalLength {
			out = append(out, s)
		}
	}
	for _, s := range personal {
		s = strings.ToLower(norm.NFC.String(strings.TrimSpace(s)))
		if local, _, found := strings.Cut(s, "@"); found {
			s = local // the domain is shared by the whole organisation: not personal
		}
		add(s)
		pieces := strings.FieldsFunc(s, func(r rune) bool {
			return unicode.IsSpace(r) || strings.ContainsRune(".-_+", r)
		})
		if len(pieces) > 1 {
			for _, piece := range pieces {
				add(piece)
			}
		}
	}
	return out
}
