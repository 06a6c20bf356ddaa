package credential

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"
)

func TestPasswordPolicyCheck(t *testing.T) {
	personal := []string{"alovelace", "Ada", "Lovelace", "ada.king@example.org", "Al"}
	for _, tc := range []struct {
		name   string
		policy PasswordPolicy
		pw     string
		want   string // reason, "" for accepted
	}{
		{"empty", PasswordPolicy{}, "", ReasonTooShort},
		{"11 characters", PasswordPolicy{}, "tangerine-o", ReasonTooShort},
		{"12 characters", PasswordPolicy{}, "tangerine-ox", ""},
		{"12 code points, 19 bytes", PasswordPolicy{}, "żółćgęśląjaź", ""},
		{"12 code points typed decomposed", PasswordPolicy{}, norm.NFD.String("żółćgęśląjaź"), ""},
		{"11 code points typed decomposed", PasswordPolicy{}, norm.NFD.String("żółćgęśląja"), ReasonTooShort},
		{"emoji and spaces", PasswordPolicy{}, "🔑 under the mat 🔑", ""},
		{"only spaces inside", PasswordPolicy{}, "a   b   c   d", ""},
		{"no composition rules", PasswordPolicy{}, "purple monkey dishwasher", ""},
		{"256 characters", PasswordPolicy{}, strings.Repeat("abcdefgh", 32), ""},
		{"257 characters", PasswordPolicy{}, strings.Repeat("abcdefgh", 32) + "x", ReasonTooLong},
		{"megabyte", PasswordPolicy{}, strings.Repeat("x", 1<<20), ReasonTooLong},
		{"custom minimum", PasswordPolicy{MinLength: 16}, "tangerine-oxford", ""},
		{"below custom minimum", PasswordPolicy{MinLength: 16}, "tangerine-oxfor", ReasonTooShort},
		{"minimum floor of 8", PasswordPolicy{MinLength: 4}, "tangerx", ReasonTooShort},
		{"at the floor of 8", PasswordPolicy{MinLength: 4}, "tangerxq", ""},
		{"maximum floor of 128: 128 ok", PasswordPolicy{MaxLength: 64}, strings.Repeat("abcdefgh", 16), ""},
		{"maximum floor of 128: 129 refused", PasswordPolicy{MaxLength: 64}, strings.Repeat("abcdefgh", 16) + "x", ReasonTooLong},
		{"common", PasswordPolicy{}, "password1234", ReasonCommon},
		{"common, any case", PasswordPolicy{}, "PassWord1234", ReasonCommon},
		{"common with a suffix", PasswordPolicy{}, "Password123!", ReasonCommon},
		{"common, suffix of spaces", PasswordPolicy{}, "iloveyou    ", ReasonCommon},
		// "summer" is on the list; the digits and "!!" are the suffix everyone adds.
		{"Summer2024!!", PasswordPolicy{}, "Summer2024!!", ReasonCommon},
		{"common word inside a longer one", PasswordPolicy{}, "dragonfly-orchard", ""},
		{"common word with a prefix", PasswordPolicy{}, "1234password", ""},
		{"username", PasswordPolicy{}, "xx-alovelace-xx", ReasonPersonal},
		{"given name, other case", PasswordPolicy{}, "my name is ADA!", ReasonPersonal},
		{"family name", PasswordPolicy{}, "engine by lovelace", ReasonPersonal},
		{"email local part piece", PasswordPolicy{}, "king of the castle", ReasonPersonal},
		{"email domain is not personal", PasswordPolicy{}, "example of a castle", ""},
		{"personal shorter than 3 ignored", PasswordPolicy{}, "always smiling", ""},
		{"tab", PasswordPolicy{}, "tangerine\tox-1", ReasonInvalid},
		{"newline", PasswordPolicy{}, "tangerine\nox-1", ReasonInvalid},
		{"NUL", PasswordPolicy{}, "tangerine\x00ox-1", ReasonInvalid},
		{"DEL", PasswordPolicy{}, "tangerine\x7fox-1", ReasonInvalid},
		{"C1 control", PasswordPolicy{}, "tangerine\u0085ox-1", ReasonInvalid},
		{"invalid UTF-8", PasswordPolicy{}, "tangerine\xffox-1", ReasonInvalid},
		{"invalid before short", PasswordPolicy{}, "\x00", ReasonInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Check(tc.pw, personal...)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			var pe *PolicyError
			if !errors.As(err, &pe) || pe.Reason != tc.want {
				t.Fatalf("Check = %#v, want reason %q", err, tc.want)
			}
			if !errors.Is(err, ErrPasswordPolicy) {
				t.Error("a *PolicyError is not ErrPasswordPolicy")
			}
			if pe.Message == "" || pe.Error() != pe.Message {
				t.Errorf("message %q, Error() %q", pe.Message, pe.Error())
			}
			if len(tc.pw) >= 3 && strings.Contains(strings.ToLower(pe.Message), strings.ToLower(tc.pw)) {
				t.Errorf("the message %q contains the password", pe.Message)
			}
		})
	}
}

func TestPasswordPolicyNoPersonal(t *testing.T) {
	var p PasswordPolicy
	if err := p.Check("adalovelace-rocks"); err != nil {
		t.Errorf("Check without personal strings = %v", err)
	}
	if err := p.Check("adalovelace-rocks", "", "  ", "ad"); err != nil {
		t.Errorf("Check with empty and short personal strings = %v", err)
	}
}

func TestCommonPasswordList(t *testing.T) {
	set := commonPasswords()
	if len(set) < 25000 {
		t.Fatalf("common password list has %d entries, want zxcvbn's 30,000", len(set))
	}
	for _, w := range []string{"123456", "password", "qwerty", "iloveyou", "letmein", "password1234"} {
		if _, ok := set[w]; !ok {
			t.Errorf("%q is not on the list", w)
		}
	}
	// Loaded once: the same map comes back.
	if reflect.ValueOf(commonPasswords()).UnsafePointer() != reflect.ValueOf(set).UnsafePointer() {
		t.Error("commonPasswords built the set twice")
	}
}

func BenchmarkPolicyCheck(b *testing.B) {
	var p PasswordPolicy
	commonPasswords()
	for b.Loop() {
		_ = p.Check("correct horse battery staple", "alovelace", "Ada", "Lovelace", "ada@example.org")
	}
}
