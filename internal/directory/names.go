package directory

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/deputy-iam/deputy/internal/filter"
)

// dnSpecials are the characters RFC 4514 gives meaning in an LDAP distinguished name. Object
// names become RDN values in the directories Deputy provisions, so they may not hold them.
const dnSpecials = `,+"\<>;=#`

// Limits on field sizes, in characters.
const (
	maxIdentifier = 64   // usernames, service-account names
	maxName       = 128  // group and OU names, person names
	maxText       = 1024 // descriptions, titles, attribute values
	maxAttributes = 64   // custom attributes per user
)

// CanonicalKey is the form in which names are compared and kept unique: NFC, lower case.
func CanonicalKey(s string) string { return filter.Fold(s) }

// cleanText checks a free-text field: valid UTF-8, no control characters and no invisible
// formatting characters (bar the zero-width joiners some scripts need), at most max characters. It returns the NFC form with surrounding spaces removed.
func cleanText(fe *FieldErrors, field, s string, max int) string {
	if !utf8.ValidString(s) {
		fe.Add(field, "is not valid UTF-8")
		return s
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Cf, r) && r != '\u200c' && r != '\u200d' {
			fe.Add(field, "contains a control or invisible formatting character (%U)", r)
			return s
		}
	}
	s = strings.TrimSpace(norm.NFC.String(s))
	if n := utf8.RuneCountInString(s); n > max {
		fe.Add(field, "is %d characters long; at most %d are allowed", n, max)
	}
	return s
}

// checkIdentifier validates a login-style name (username, service-account name): ASCII letters,
// digits and . _ - @, starting with a letter or digit. These names appear in URLs, LDAP DNs and
// audit records, so they are kept to characters that need no escaping anywhere.
func checkIdentifier(fe *FieldErrors, field, s string) string {
	s = cleanText(fe, field, s, maxIdentifier)
	if s == "" {
		fe.Add(field, "is required")
		return s
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case (r == '.' || r == '_' || r == '-' || r == '@') && i > 0:
		default:
			if strings.ContainsRune(dnSpecials, r) {
				fe.Add(field, "may not contain %q: it has a special meaning in LDAP distinguished names", r)
			} else {
				fe.Add(field, "may contain only letters a-z, digits and . _ - @, starting with a letter or digit; found %q", r)
			}
			return s
		}
	}
	if IsID(s) {
		fe.Add(field, "may not have the shape of an object ID")
	}
	return s
}

// checkObjectName validates a group or OU name: printable Unicode letters, digits, spaces and
// a few punctuation marks, but none of the LDAP DN specials and, when noSlash is set, no "/"
// (OU paths are slash-separated).
func checkObjectName(fe *FieldErrors, field, s string, noSlash bool) string {
	s = cleanText(fe, field, s, maxName)
	if s == "" {
		fe.Add(field, "is required")
		return s
	}
	for _, r := range s {
		switch {
		case strings.ContainsRune(dnSpecials, r):
			fe.Add(field, "may not contain %q: it has a special meaning in LDAP distinguished names", r)
			return s
		case r == '/' && noSlash:
			fe.Add(field, "may not contain \"/\": it separates the names in an OU path")
			return s
		case unicode.IsLetter(r), unicode.IsDigit(r), unicode.IsMark(r), r == ' ',
			strings.ContainsRune("._-'()&/", r):
		default:
			fe.Add(field, "may not contain %q", r)
			return s
		}
	}
	if IsID(s) {
		fe.Add(field, "may not have the shape of an object ID")
	}
	return s
}

// checkEmail validates an optional email address: a bare addr-spec, no display name.
func checkEmail(fe *FieldErrors, field, s string) string {
	s = cleanText(fe, field, s, 254)
	if s == "" {
		return s
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		fe.Add(field, "is not a valid email address")
	}
	return s
}

// checkPhone validates an optional phone number: digits, spaces and + ( ) - . /
func checkPhone(fe *FieldErrors, field, s string) string {
	s = cleanText(fe, field, s, 32)
	for _, r := range s {
		if !(r >= '0' && r <= '9' || strings.ContainsRune("+()-. /", r)) {
			fe.Add(field, "may contain only digits, spaces and + ( ) - . /")
			break
		}
	}
	return s
}

// checkAttrKey validates a custom attribute name: a letter, then letters, digits or underscores.
func checkAttrKey(fe *FieldErrors, field, k string) bool {
	if k == "" || len(k) > maxIdentifier {
		fe.Add(field, "attribute names are 1 to %d characters", maxIdentifier)
		return false
	}
	for i, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && (r >= '0' && r <= '9' || r == '_')) {
			fe.Add(field, "attribute names start with a letter and hold only letters, digits and _")
			return false
		}
	}
	return true
}
