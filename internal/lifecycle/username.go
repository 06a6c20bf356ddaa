package lifecycle

import (
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// maxUsername is the longest username the directory accepts (directory's maxIdentifier).
const maxUsername = 64

// foldLetter spells, in ASCII, the Latin letters that Unicode does not decompose into a base
// letter and marks. Every other letter is folded by decomposition (é = e + U+0301).
func foldLetter(r rune) string {
	switch r {
	case 'ø', 'Ø':
		return "o"
	case 'æ', 'Æ':
		return "ae"
	case 'œ', 'Œ':
		return "oe"
	case 'ß', 'ẞ':
		return "ss"
	case 'ł', 'Ł':
		return "l"
	case 'đ', 'Đ', 'ð', 'Ð':
		return "d"
	case 'þ', 'Þ':
		return "th"
	case 'ı':
		return "i"
	case 'ŋ', 'Ŋ':
		return "n"
	case 'ħ', 'Ħ':
		return "h"
	case 'ŧ', 'Ŧ':
		return "t"
	}
	return ""
}

// Username derives a login name from a person's given and family names: "given.family" in
// lower-case ASCII. Each part is transliterated (compatibility decomposition, combining marks
// dropped, the few undecomposable Latin letters spelt out) and then keeps only a-z and 0-9, so
// "García Márquez" gives "garciamarquez" and "O'Brien" gives "obrien". When one part has nothing
// left the other stands alone (no dot); when both are empty, for instance for names in a script
// with no Latin transliteration, Username returns "" and the caller MUST choose another name.
// A non-empty result is at most 64 characters and is a valid directory username.
func Username(given, family string) string {
	g, f := usernamePart(given), usernamePart(family)
	switch {
	case g == "":
		return cut(f, maxUsername)
	case f == "":
		return cut(g, maxUsername)
	}
	const budget = maxUsername - 1 // one character for the dot
	if len(g)+len(f) > budget {
		switch {
		case len(g) <= budget/2:
			f = f[:budget-len(g)]
		case len(f) <= budget-budget/2:
			g = g[:budget-len(f)]
		default:
			g, f = g[:budget/2], f[:budget-budget/2]
		}
	}
	return g + "." + f
}

// usernamePart folds one name to a-z and 0-9.
func usernamePart(s string) string {
	// A transformer holds state, so each call builds its own chain.
	t := transform.Chain(norm.NFKD, runes.Remove(runes.In(unicode.Mn)))
	folded, _, err := transform.String(t, s)
	if err != nil {
		folded = s // cannot happen for these transformers; fall back to the raw text
	}
	var b strings.Builder
	b.Grow(len(folded))
	for _, r := range folded {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + ('a' - 'A'))
		default:
			b.WriteString(foldLetter(r))
		}
	}
	return b.String()
}

// cut returns the first n bytes of an ASCII string.
func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Usernames assigns a username to every person, in feed order, and returns them by employee_id.
// A person gets Username(given, family) when that name is free; otherwise the first free one of
// name2, name3, ... (shortened so that name and suffix fit in 64 characters). A name is not free
// when taken reports it (taken may be nil: nothing is taken yet) or when an earlier person in
// people already got it. taken is called with lower-case names. A person whose names
// transliterate to nothing gets a name derived from the employee_id ("e000123"), or "user". A
// person whose employee_id was already assigned keeps the first assignment.
func Usernames(people []Person, taken func(string) bool) map[string]string {
	out := make(map[string]string, len(people))
	used := make(map[string]bool, len(people))
	free := func(name string) bool {
		return !used[name] && (taken == nil || !taken(name))
	}
	for _, p := range people {
		if _, done := out[p.EmployeeID]; done {
			continue
		}
		base := Username(p.GivenName, p.FamilyName)
		if base == "" {
			base = usernamePart(p.EmployeeID)
		}
		if base == "" {
			base = "user"
		}
		name := base
		for n := 2; !free(name); n++ {
			suffix := strconv.Itoa(n)
			name = strings.TrimRight(cut(base, maxUsername-len(suffix)), ".") + suffix
		}
		used[name] = true
		out[p.EmployeeID] = name
	}
	return out
}
