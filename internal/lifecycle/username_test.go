package lifecycle

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"

	"github.com/deputy-iam/deputy/internal/directory"
)

// checkDirectoryUsername fails the test when the directory would refuse name as a username.
func checkDirectoryUsername(t *testing.T, name string) {
	t.Helper()
	in := directory.UserInput{Username: name, OU: "People"}
	if err := in.Normalize(); err != nil {
		t.Errorf("username %q is refused by the directory: %v", name, err)
	}
	if in.Username != name {
		t.Errorf("username %q normalizes to %q", name, in.Username)
	}
}

func TestUsername(t *testing.T) {
	tests := []struct{ given, family, want string }{
		{"Ada", "Lovelace", "ada.lovelace"},
		{"Tim", "García Márquez", "tim.garciamarquez"},
		{"Ada", "O'Brien", "ada.obrien"},
		{"Olúwadámilọ́lá", "Berners-Lee", "oluwadamilola.bernerslee"},
		{"Frances", "Ó Súilleabháin", "frances.osuilleabhain"},
		{"Dennis", "van der Berg", "dennis.vanderberg"},
		{"Søren", "Ødegård", "soren.odegard"},
		{"Łukasz", "Wałęsa", "lukasz.walesa"},
		{"Æsa", "Þórsdóttir", "aesa.thorsdottir"},
		{"Jürgen", "Straße", "jurgen.strasse"},
		{"Đorđe", "Ðoković", "dorde.dokovic"},
		{"Zoë", "Œuvray", "zoe.oeuvray"},
		{"Yūki", "Yamada", "yuki.yamada"},
		{"İlkay", "Gündoğan", "ilkay.gundogan"},
		{"Iıa", "Ŋgema", "iia.ngema"},
		{"Ａｄａ", "Ｌｏｖｅｌａｃｅ", "ada.lovelace"}, // full-width forms decompose under NFKD
		{"Mary-Jane", "Smith Jones 3rd", "maryjane.smithjones3rd"},
		{"  ", "Madonna", "madonna"},
		{"Cher", "", "cher"},
		{"李", "Wang", "wang"},
		{"Анна", "Smith", "smith"},
		{"李", "王", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		got := Username(tt.given, tt.family)
		if got != tt.want {
			t.Errorf("Username(%q, %q) = %q; want %q", tt.given, tt.family, got, tt.want)
		}
		if got != "" {
			checkDirectoryUsername(t, got)
		}
	}
}

func TestUsernameLength(t *testing.T) {
	long := strings.Repeat("a", 100)
	tests := []struct{ given, family, want string }{
		{long, "Lee", strings.Repeat("a", 60) + ".lee"},
		{"Ada", long, "ada." + strings.Repeat("a", 60)},
		{long, strings.Repeat("b", 100), strings.Repeat("a", 31) + "." + strings.Repeat("b", 32)},
		{"", long, strings.Repeat("a", 64)},
		{strings.Repeat("g", 31), strings.Repeat("f", 32), strings.Repeat("g", 31) + "." + strings.Repeat("f", 32)},
	}
	for _, tt := range tests {
		got := Username(tt.given, tt.family)
		if got != tt.want {
			t.Errorf("Username(%d chars, %d chars) = %q (%d); want %q", len(tt.given), len(tt.family), got, len(got), tt.want)
		}
		checkDirectoryUsername(t, got)
	}
}

func TestUsernames(t *testing.T) {
	people := []Person{
		{EmployeeID: "E1", GivenName: "Ada", FamilyName: "Lovelace"},
		{EmployeeID: "E2", GivenName: "Ada", FamilyName: "Lovelace"},
		{EmployeeID: "E3", GivenName: "Ádá", FamilyName: "Lovelace"},
		{EmployeeID: "E4", GivenName: "Alan", FamilyName: "Turing"},
		{EmployeeID: "E5", GivenName: "李", FamilyName: "王"},
		{EmployeeID: "E1", GivenName: "Grace", FamilyName: "Hopper"}, // repeated id keeps the first name
		{EmployeeID: "E6", GivenName: strings.Repeat("x", 40), FamilyName: strings.Repeat("y", 40)},
		{EmployeeID: "E7", GivenName: strings.Repeat("x", 40), FamilyName: strings.Repeat("y", 40)},
		{EmployeeID: "李", GivenName: "李", FamilyName: "王"},
	}
	taken := map[string]bool{"alan.turing": true, "alan.turing2": true}
	got := Usernames(people, func(s string) bool { return taken[s] })
	long := strings.Repeat("x", 31) + "." + strings.Repeat("y", 32)
	want := map[string]string{
		"E1": "ada.lovelace", "E2": "ada.lovelace2", "E3": "ada.lovelace3", "E4": "alan.turing3",
		"E5": "e5", "E6": long, "E7": long[:63] + "2", "李": "user",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Usernames (-want +got):\n%s", diff)
	}
	for _, name := range got {
		checkDirectoryUsername(t, name)
	}
	if got := Usernames(people[:2], nil); got["E2"] != "ada.lovelace2" {
		t.Errorf("with taken nil: %v", got)
	}
}

// TestUsernameMatchesSharedEmails checks the transliteration against the generator's email
// addresses, which are given.family folded to ASCII, numbered from 2 on a collision.
func TestUsernameMatchesSharedEmails(t *testing.T) {
	feed := parseFile(t, filepath.Join(sharedData(t), "hr-day1.csv"))
	names := Usernames(feed.People, nil)
	checked := 0
	for _, p := range feed.People {
		local, _, _ := strings.Cut(p.Email, "@")
		if got := names[p.EmployeeID]; got != local {
			t.Errorf("line %d: Usernames gave %q; the email local part is %q", p.Line, got, local)
		}
		if strings.IndexFunc(local, unicode.IsDigit) >= 0 {
			continue
		}
		checked++
		if got := Username(p.GivenName, p.FamilyName); got != local {
			t.Errorf("line %d: Username(%q, %q) = %q; want %q", p.Line, p.GivenName, p.FamilyName, got, local)
		}
	}
	if checked < 500 {
		t.Errorf("only %d rows without a numbered email; the data is not what this test expects", checked)
	}
	t.Logf("%d rows match Username, %d match Usernames", checked, len(feed.People))
}
