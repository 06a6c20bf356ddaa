package directory

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUserInputValidation(t *testing.T) {
	valid := func() UserInput { return UserInput{Username: "ada.lovelace", OU: "corp", Email: "ada@example.com"} }
	cases := []struct {
		name  string
		edit  func(*UserInput)
		field string // "" = valid
	}{
		{"valid", func(*UserInput) {}, ""},
		{"username required", func(u *UserInput) { u.Username = "" }, "username"},
		{"username with comma", func(u *UserInput) { u.Username = "ada,ou=admins" }, "username"},
		{"username with each DN special", func(u *UserInput) { u.Username = "a+b" }, "username"},
		{"username with equals", func(u *UserInput) { u.Username = "a=b" }, "username"},
		{"username with hash", func(u *UserInput) { u.Username = "a#b" }, "username"},
		{"username with space", func(u *UserInput) { u.Username = "ada lovelace" }, "username"},
		{"username SQL", func(u *UserInput) { u.Username = "x');DROP TABLE users;--" }, "username"},
		{"username starting with dot", func(u *UserInput) { u.Username = ".ada" }, "username"},
		{"username shaped like an ID", func(u *UserInput) { u.Username = "01a2225e-d4b3-7c09-8128-4b459f153c17" }, "username"},
		{"username too long", func(u *UserInput) { u.Username = strings.Repeat("a", 65) }, "username"},
		{"bell in given name", func(u *UserInput) { u.GivenName = "Ada\a" }, "given_name"},
		{"RTL override in family name", func(u *UserInput) { u.FamilyName = "Love\u202elace" }, "family_name"},
		{"newline in title", func(u *UserInput) { u.Title = "Head\nof" }, "title"},
		{"invalid UTF-8", func(u *UserInput) { u.Department = "Sa\xffles" }, "department"},
		{"comma in display name is fine", func(u *UserInput) { u.DisplayName = "Lovelace, Ada" }, ""},
		{"SQL in display name is stored", func(u *UserInput) { u.DisplayName = "Robert'); DROP TABLE users;--" }, ""},
		{"Unicode names", func(u *UserInput) { u.GivenName, u.FamilyName = "Olúwadámilọ́lá", "García Márquez" }, ""},
		{"bad email", func(u *UserInput) { u.Email = "ada at example.com" }, "email"},
		{"email with display name", func(u *UserInput) { u.Email = "Ada <ada@example.com>" }, "email"},
		{"bad phone", func(u *UserInput) { u.Phone = "call me" }, "phone"},
		{"ou required", func(u *UserInput) { u.OU = "" }, "ou"},
		{"locked cannot be set", func(u *UserInput) { u.Status = StatusLocked }, "status"},
		{"bad attribute key", func(u *UserInput) { u.Attributes = map[string]string{"1x": "v"} }, "attributes.1x"},
		{"control char in attribute", func(u *UserInput) { u.Attributes = map[string]string{"x": "a\x00b"} }, "attributes.x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := valid()
			c.edit(&in)
			err := in.Normalize()
			if c.field == "" {
				if err != nil {
					t.Fatalf("Normalize: %v", err)
				}
				return
			}
			var fe FieldErrors
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Normalize = %v; want field errors", err)
			}
			for _, f := range fe {
				if f.Field == c.field {
					return
				}
			}
			t.Errorf("errors %v do not name %q", fe, c.field)
		})
	}
}

func TestUserInputNormalizes(t *testing.T) {
	in := UserInput{Username: " ada ", GivenName: "  Ada", FamilyName: "Lovelace ", OU: "corp",
		Attributes: map[string]string{"k": " v "}}
	if err := in.Normalize(); err != nil {
		t.Fatal(err)
	}
	want := UserInput{Username: "ada", GivenName: "Ada", FamilyName: "Lovelace", DisplayName: "Ada Lovelace",
		OU: "corp", Status: StatusActive, Attributes: map[string]string{"k": "v"}}
	if d := cmp.Diff(want, in); d != "" {
		t.Errorf("normalized (-want +got):\n%s", d)
	}
}

func TestObjectNames(t *testing.T) {
	for _, name := range []string{"Sales EMEA", "R&D", "Équipe (Paris)", "sales_all", "O'Neill's team"} {
		g := GroupInput{Name: name, OU: "corp"}
		if err := g.Normalize(); err != nil {
			t.Errorf("group %q: %v", name, err)
		}
	}
	for _, name := range []string{"a,b", "a+b", `a"b`, `a\b`, "a<b", "a>b", "a;b", "a=b", "a#b", "a\tb", ""} {
		g := GroupInput{Name: name, OU: "corp"}
		if err := g.Normalize(); err == nil {
			t.Errorf("group %q was accepted", name)
		}
	}
	o := OUInput{Name: "a/b"}
	if err := o.Normalize(); err == nil {
		t.Error(`OU name "a/b" was accepted`)
	}
}

func TestServiceAccountNeedsOwner(t *testing.T) {
	s := ServiceAccountInput{Name: "ci-bot", OU: "corp"}
	err := s.Normalize()
	var fe FieldErrors
	if !errors.As(err, &fe) || fe[0].Field != "owners" {
		t.Fatalf("Normalize = %v; want an owners error", err)
	}
	s.Owners = []string{"ada", " ADA ", "bob"}
	if err := s.Normalize(); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"ada", "bob"}, s.Owners); d != "" {
		t.Errorf("owners de-duplicated case-insensitively (-want +got):\n%s", d)
	}
}

func TestPatchUserInput(t *testing.T) {
	cur := UserInput{Username: "ada", Title: "Engineer", Phone: "+44 1", OU: "ou-id",
		Attributes: map[string]string{"a": "1", "b": "2"}}
	patch := Patch{
		"title":      json.RawMessage(`"Director"`),
		"phone":      json.RawMessage(`null`),
		"attributes": json.RawMessage(`{"a": null, "c": "3"}`),
	}
	got, touched, err := PatchUserInput(cur, patch)
	if err != nil {
		t.Fatal(err)
	}
	want := UserInput{Username: "ada", Title: "Director", OU: "ou-id", Attributes: map[string]string{"b": "2", "c": "3"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("patched (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"attributes", "phone", "title"}, touched); d != "" {
		t.Errorf("touched (-want +got):\n%s", d)
	}
	if cur.Attributes["a"] != "1" {
		t.Error("the patch changed the input it was applied to")
	}
}

func TestPatchRefusals(t *testing.T) {
	cases := map[string]string{
		"status":  "disable and enable",
		"ou":      "move action",
		"id":      "read-only",
		"version": "read-only",
		"colour":  "not a field",
		"title":   "must be a string",
	}
	for field, want := range cases {
		t.Run(field, func(t *testing.T) {
			_, _, err := PatchUserInput(UserInput{Username: "ada"}, Patch{field: json.RawMessage(`5`)})
			var fe FieldErrors
			if !errors.As(err, &fe) || fe[0].Field != field || !strings.Contains(fe[0].Message, want) {
				t.Errorf("patch %s: %v; want a %q error on %s", field, err, want, field)
			}
		})
	}
}

func TestParseRefs(t *testing.T) {
	id := NewID()
	if r := ParseRef(KindUser, strings.ToUpper(id)); r.ID != id || r.Name != "" {
		t.Errorf("ParseRef(ID) = %+v", r)
	}
	if r := ParseRef(KindOU, "/corp/sales/"); r.Name != "corp/sales" {
		t.Errorf("ParseRef(OU path) = %+v", r)
	}
	for in, want := range map[string]Ref{
		"user:ada":          {Kind: KindUser, Name: "ada"},
		"GROUP:sales-all":   {Kind: KindGroup, Name: "sales-all"},
		"sa:ci-bot":         {Kind: KindServiceAccount, Name: "ci-bot"},
		"service_account:x": {Kind: KindServiceAccount, Name: "x"},
		"ada":               {Name: "ada"},
	} {
		got, err := ParseMemberRef(in)
		if err != nil || got != want {
			t.Errorf("ParseMemberRef(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	if _, err := ParseMemberRef("group:"); err == nil {
		t.Error(`ParseMemberRef("group:") succeeded`)
	}
}
