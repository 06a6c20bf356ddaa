package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
)

// quote writes s as a SCIM filter string literal.
func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(err) // a string always encodes
	}
	return strings.TrimSpace(b.String())
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// filterUsers creates the users the operator table runs over. The bootstrapped admin is there
// too: a protected user in the root OU whose display name is "Tier-0 administrator".
func filterUsers(f *fixture) map[string]directory.User {
	f.mkOU("corp", "")
	f.mkOU("sales", "corp")
	f.mkOU("corporate", "")
	users := []directory.UserInput{
		{Username: "ada", GivenName: "Ada", FamilyName: "Lovelace", Email: "Ada@Example.com", EmployeeID: "E_1",
			Department: "Engineering", Title: "100% remote", Location: "London", OU: "corp",
			Attributes: map[string]string{"cost_center": "CC-1"}},
		{Username: "elodie", GivenName: "élodie", FamilyName: "Durand", Department: "Sales", Title: `say "hi"`,
			Manager: "ada", OU: "corp/sales", Attributes: map[string]string{"cost_center": "CC-2", "Desk": "x"}},
		{Username: "Elodie2", GivenName: "ÉLODIE", FamilyName: "Straße", Department: "sales", Title: "a_b",
			Manager: "elodie", OU: "corp/sales", Email: "e2@example.org"},
		{Username: "bob", GivenName: "Bob", Title: "axb", Location: `back\slash`, OU: "corporate", EmployeeID: "E1"},
		{Username: "zoe", GivenName: "Zoë", Title: "a%b", Phone: "+1 555", OU: "/", Status: directory.StatusDisabled},
	}
	out := map[string]directory.User{}
	for _, in := range users {
		u := f.mkUser(in)
		out[u.Username] = u
	}
	out[AdminName] = f.getUser(AdminName)
	return out
}

func testFilterOperators(t *testing.T, f *fixture) {
	us := filterUsers(f)
	ada, bob := us["ada"], us["bob"]
	all := []string{"ada", AdminName, "bob", "elodie", "Elodie2", "zoe"}
	except := func(names ...string) []string {
		return slices.DeleteFunc(slices.Clone(all), func(n string) bool { return slices.Contains(names, n) })
	}
	tests := []struct {
		filter string
		want   []string
	}{
		{``, all},
		// eq and ne, case-insensitive, non-ASCII included.
		{`given_name eq "ÉLODIE"`, []string{"elodie", "Elodie2"}},
		{`given_name eq "élodie"`, []string{"elodie", "Elodie2"}},
		{`given_name ne "élodie"`, except("elodie", "Elodie2")},
		{`GIVEN_NAME Eq "zoË"`, []string{"zoe"}},
		{`family_name eq "STRASSE"`, nil}, // folding is lower-casing, not full case folding
		{`family_name eq "STRAßE"`, []string{"Elodie2"}},
		{`username eq "ELODIE2"`, []string{"Elodie2"}},
		{`email eq "ada@example.COM"`, []string{"ada"}},
		{`employee_id eq "e_1"`, []string{"ada"}},
		{`status eq "DISABLED"`, []string{"zoe"}},
		{`department ne "sales"`, except("elodie", "Elodie2")},
		// Escaped quotes and backslashes.
		{`title eq "say \"hi\""`, []string{"elodie"}},
		{`title co "\""`, []string{"elodie"}},
		{`location eq "back\\slash"`, []string{"bob"}},
		{`location co "\\"`, []string{"bob"}},
		// LIKE wildcards are literal.
		{`title co "%"`, []string{"ada", "zoe"}},
		{`title sw "100%"`, []string{"ada"}},
		{`title co "_"`, []string{"Elodie2"}},
		{`title eq "a_b"`, []string{"Elodie2"}},
		{`title sw "a_"`, []string{"Elodie2"}},
		{`title ew "_b"`, []string{"Elodie2"}},
		{`title ew "%b"`, []string{"zoe"}},
		{`employee_id sw "E_"`, []string{"ada"}},
		// co, sw, ew.
		{`family_name co "OVE"`, []string{"ada"}},
		{`given_name sw "éL"`, []string{"elodie", "Elodie2"}},
		{`family_name ew "SSE"`, nil},
		{`family_name ew "ßE"`, []string{"Elodie2"}},
		{`display_name co "administrator"`, []string{AdminName}},
		// Ordering compares folded strings by code point; absent values are not ordered.
		{`given_name gt "b"`, []string{"bob", "elodie", "Elodie2", "zoe"}},
		{`given_name ge "bob"`, []string{"bob", "elodie", "Elodie2", "zoe"}},
		{`given_name lt "bob"`, []string{"ada"}},
		{`given_name le "BOB"`, []string{"ada", "bob"}},
		{`department lt "zzz"`, []string{"ada", "elodie", "Elodie2"}},
		// pr and absence: an absent value equals nothing, so only ne holds for it.
		{`email pr`, []string{"ada", "Elodie2"}},
		{`not (email pr)`, except("ada", "Elodie2")},
		{`phone pr`, []string{"zoe"}},
		{`manager pr`, []string{"elodie", "Elodie2"}},
		{`email ne "x@example.com"`, all},
		{`last_sign_in pr`, nil},
		{`last_sign_in ne "2026-01-01T00:00:00Z"`, all},
		// Logic and grouping.
		{`department eq "sales" and title co "_"`, []string{"Elodie2"}},
		{`department eq "engineering" or status eq "disabled"`, []string{"ada", "zoe"}},
		{`not (department eq "sales") and not (department eq "engineering")`, []string{AdminName, "bob", "zoe"}},
		{`(department eq "sales" or location eq "london") and not (manager eq "ELODIE")`, []string{"ada", "elodie"}},
		{`department eq "sales" or location eq "london" and manager eq "ELODIE"`, []string{"elodie", "Elodie2"}},
		{`not (not (title pr))`, except(AdminName)},
		// Custom attributes: the key is case-sensitive, the value is not.
		{`attributes.cost_center eq "cc-1"`, []string{"ada"}},
		{`attributes.cost_center pr`, []string{"ada", "elodie"}},
		{`attributes.cost_center ne "CC-1"`, except("ada")},
		{`attributes.Desk eq "X"`, []string{"elodie"}},
		{`attributes.desk pr`, nil},
		{`attributes.nope sw "c"`, nil},
		// Manager (by username) and OU (by path, "/" for the root).
		{`manager eq "Ada"`, []string{"elodie"}},
		{`manager sw "e"`, []string{"Elodie2"}},
		{`ou eq "corp"`, []string{"ada"}},
		{`ou eq "CORP/Sales"`, []string{"elodie", "Elodie2"}},
		{`ou sw "corp/"`, []string{"elodie", "Elodie2"}},
		{`ou sw "corp"`, []string{"ada", "bob", "elodie", "Elodie2"}},
		{`ou eq "/"`, []string{AdminName, "zoe"}},
		{`ou ne "/"`, []string{"ada", "bob", "elodie", "Elodie2"}},
		{`ou pr`, all},
		// Booleans and IDs.
		{`protected eq true`, []string{AdminName}},
		{`protected ne true`, except(AdminName)},
		{`protected pr`, all},
		{`id eq "` + strings.ToUpper(bob.ID) + `"`, []string{"bob"}},
		// Times: created is the clock's reading for each create.
		{`created eq "` + rfc3339(ada.Created) + `"`, []string{"ada"}},
		{`created gt "` + rfc3339(ada.Created) + `"`, []string{"bob", "elodie", "Elodie2", "zoe"}},
		{`created ge "` + rfc3339(ada.Created) + `"`, []string{"ada", "bob", "elodie", "Elodie2", "zoe"}},
		{`created lt "` + rfc3339(ada.Created) + `"`, []string{AdminName}},
		{`created le "` + rfc3339(ada.Created) + `"`, []string{"ada", AdminName}},
		{`created ne "` + rfc3339(ada.Created) + `"`, except("ada")},
		{`created lt "` + rfc3339(bob.Created) + `" and created gt "` + rfc3339(ada.Created) + `"`, []string{"elodie", "Elodie2"}},
		{`updated ge "` + ada.Created.In(time.FixedZone("x", 3600)).Format(time.RFC3339) + `"`, []string{"ada", "bob", "elodie", "Elodie2", "zoe"}},
		{`created pr`, all},
		// A time finer than the stored microseconds equals nothing and orders exactly.
		{`created eq "` + rfc3339(ada.Created.Add(500)) + `"`, nil},
		{`created ne "` + rfc3339(ada.Created.Add(500)) + `"`, all},
		{`created ge "` + rfc3339(ada.Created.Add(500)) + `"`, []string{"bob", "elodie", "Elodie2", "zoe"}},
		{`created gt "` + rfc3339(ada.Created.Add(500)) + `"`, []string{"bob", "elodie", "Elodie2", "zoe"}},
		{`created lt "` + rfc3339(ada.Created.Add(500)) + `"`, []string{"ada", AdminName}},
		{`created le "` + rfc3339(ada.Created.Add(500)) + `"`, []string{"ada", AdminName}},
		{`created lt "` + rfc3339(ada.Created.Add(-500)) + `"`, []string{AdminName}},
		// The Unix epoch is stored as 0, like an absent time, but is no absent time.
		{`last_sign_in ne "1970-01-01T00:00:00Z"`, all},
		{`last_sign_in eq "1970-01-01T00:00:00Z"`, nil},
		{`created gt "1970-01-01T00:00:00Z"`, all},
	}
	for _, tc := range tests {
		got := usernames(f.allUsers(tc.filter))
		if tc.want == nil {
			tc.want = []string{}
		}
		if got == nil {
			got = []string{}
		}
		slices.SortFunc(got, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("users with %s = %v, want %v", tc.filter, got, tc.want)
		}
		// filter.Match must agree with the store on the same objects.
		e := f.parse(tc.filter, directory.UserSchema)
		var matched []string
		for _, name := range all {
			if u := us[name]; filter.Match(e, u.Get) {
				matched = append(matched, name)
			}
		}
		if matched == nil {
			matched = []string{}
		}
		if !reflect.DeepEqual(matched, tc.want) {
			t.Errorf("filter.Match with %s = %v, want %v", tc.filter, matched, tc.want)
		}
	}
}

// testFilterOtherKinds checks filters on the lists of OUs, groups and service accounts.
func testFilterOtherKinds(t *testing.T, f *fixture) {
	owner := f.mkUser(directory.UserInput{Username: "owner"})
	f.mkOU("corp", "")
	f.mkOU("Sales", "corp")
	f.mkOU("corporate", "")
	f.mkOU("a_b", "corporate")
	f.mkGroup("Ärzte", "corp", owner.ID)
	f.mkGroup("50 club", "corp/sales")
	f.do(change.Op{Action: delegation.GroupUpdate, Target: groupRef("50 club"), Patch: patch(t, map[string]any{"description": "100% in"})})
	f.mkGroup("admins", "")
	f.do(change.Op{Action: delegation.GroupUpdate, Target: groupRef("admins"), Patch: patch(t, map[string]any{"description": "All_admins", "protected": true})})
	f.mkSA("ci-bot", owner.ID)
	f.mkSA("old-bot", owner.ID)
	f.do(change.Op{Action: delegation.SAUpdate, Target: saRef("old-bot"), Patch: patch(t, map[string]any{"status": "disabled"})})
	f.do(change.Op{Action: delegation.SAMove, Target: saRef("ci-bot"), To: "corp/sales"})

	ous := []struct {
		filter string
		want   []string // display paths
	}{
		{`name eq "SALES"`, []string{"corp/Sales"}},
		{`path eq "/"`, []string{"/"}},
		{`path eq "corp/sales"`, []string{"corp/Sales"}},
		{`path sw "corp/"`, []string{"corp/Sales"}},
		{`path sw "corp"`, []string{"corp", "corp/Sales", "corporate", "corporate/a_b"}},
		{`parent eq "/"`, []string{"corp", "corporate"}},
		{`parent eq "corp"`, []string{"corp/Sales"}},
		{`parent pr`, []string{"corp", "corp/Sales", "corporate", "corporate/a_b"}},
		{`not (parent pr)`, []string{"/"}},
		{`name co "_"`, []string{"corporate/a_b"}},
		{`protected eq true`, []string{"/"}},
	}
	for _, tc := range ous {
		page, err := f.st.ListOUs(f.ctx, directory.ListQuery{Filter: f.parse(tc.filter, directory.OUSchema)})
		if err != nil {
			t.Fatalf("%s: %v", tc.filter, err)
		}
		got := []string{}
		for _, o := range page.Items {
			got = append(got, o.DisplayPath())
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("OUs with %s = %v, want %v", tc.filter, got, tc.want)
		}
	}

	groups := []struct {
		filter string
		want   []string
	}{
		{`name eq "ärzte"`, []string{"Ärzte"}},
		{`description co "%"`, []string{"50 club"}},
		{`ou eq "corp/SALES"`, []string{"50 club"}},
		{`ou eq "/"`, []string{"admins"}},
		{`ou sw "corp/"`, []string{"50 club"}},
		{`description co "_"`, []string{"admins"}},
		{`description sw "all" or protected eq true`, []string{"admins"}},
		{`not (description pr)`, []string{"Ärzte"}},
	}
	for _, tc := range groups {
		page, err := f.st.ListGroups(f.ctx, directory.ListQuery{Filter: f.parse(tc.filter, directory.GroupSchema)})
		if err != nil {
			t.Fatalf("%s: %v", tc.filter, err)
		}
		got := []string{}
		for _, g := range page.Items {
			got = append(got, g.Name)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("groups with %s = %v, want %v", tc.filter, got, tc.want)
		}
	}

	sas := []struct {
		filter string
		want   []string
	}{
		{`status eq "disabled"`, []string{"old-bot"}},
		{`status eq "active" and ou eq "corp/sales"`, []string{"ci-bot"}},
		{`name ew "-BOT"`, []string{"ci-bot", "old-bot"}},
		{`ou eq "/"`, []string{"old-bot"}},
	}
	for _, tc := range sas {
		page, err := f.st.ListServiceAccounts(f.ctx, directory.ListQuery{Filter: f.parse(tc.filter, directory.ServiceAccountSchema)})
		if err != nil {
			t.Fatalf("%s: %v", tc.filter, err)
		}
		got := []string{}
		for _, s := range page.Items {
			got = append(got, s.Name)
			if len(s.Owners) != 1 || s.Owners[0].ID != owner.ID {
				t.Errorf("listed service account %s has owners %v", s.Name, s.Owners)
			}
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("service accounts with %s = %v, want %v", tc.filter, got, tc.want)
		}
	}
}

// Value pools for generated users and filters. They mix case, non-ASCII letters, LIKE
// wildcards, quotes and backslashes, and prefixes of one another.
var (
	genText = []string{"Ada", "ADA", "ada", "Élodie", "élodie", "ÉLODIE", "Zoë", "ß", "Straße", "100%", "%", "_",
		"a_b", "axb", "a%b", `say "hi"`, `back\slash`, "Sales", "sales", "sales ops", "Ωmega", "ωmega", "z", "e"}
	genOUs    = []string{"/", "corp", "corp/sales", "corp/Sales Ü", "corporate", "corporate/a_b"}
	genAttrs  = []string{"username", "given_name", "family_name", "display_name", "email", "phone", "employee_id", "department", "title", "manager", "location", "employment_type", "status", "ou", "id", "attributes.cost_center", "attributes.Missing"}
	genValues = append(slices.Clone(genText), "/", "corp/", "/corp", "corp/sales", "CORP/SALES Ü", "corporate/",
		"u0", "U1", "u", "example", "@example.com", "active", "DISABLED", "+1", "E_", "e-")
	genOps = []filter.Op{filter.Eq, filter.Ne, filter.Co, filter.Sw, filter.Ew, filter.Gt, filter.Ge, filter.Lt, filter.Le, filter.Pr}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// maybe returns a value from xs half of the time, and "" otherwise.
func maybe(r *rand.Rand, xs []string) string {
	if r.IntN(2) == 0 {
		return ""
	}
	return pick(r, xs)
}

// testFilterAgreesWithMatch generates users and filters and checks that for every filter the
// store's list and filter.Match select the same users.
func testFilterAgreesWithMatch(t *testing.T, f *fixture) {
	r := rand.New(rand.NewPCG(7, 11))
	for _, p := range genOUs[1:] {
		parent, name := "", p
		if i := strings.LastIndexByte(p, '/'); i >= 0 {
			parent, name = p[:i], p[i+1:]
		}
		f.mkOU(name, parent)
	}
	const nUsers = 40
	var names []string
	for i := range nUsers {
		in := directory.UserInput{
			Username:  fmt.Sprintf("%s%02d", pick(r, []string{"u", "U", "user", "Ubar"}), i),
			GivenName: maybe(r, genText), FamilyName: maybe(r, genText), DisplayName: maybe(r, genText),
			Department: maybe(r, genText), Title: maybe(r, genText), Location: maybe(r, genText),
			EmploymentType: maybe(r, []string{"employee", "Contractor", "intern"}), Phone: maybe(r, []string{"+1 555", "+44 20", "123"}),
			OU: pick(r, genOUs),
		}
		if r.IntN(2) == 0 {
			in.Email = fmt.Sprintf("%s@%s", in.Username, pick(r, []string{"Example.com", "example.org"}))
		}
		if r.IntN(2) == 0 {
			in.EmployeeID = fmt.Sprintf("%s%d", pick(r, []string{"E_", "e-", "E%"}), i)
		}
		if v := maybe(r, genText); v != "" {
			in.Attributes = map[string]string{"cost_center": v}
		}
		if len(names) > 0 && r.IntN(2) == 0 {
			in.Manager = pick(r, names)
		}
		if r.IntN(5) == 0 {
			in.Status = directory.StatusDisabled
		}
		names = append(names, f.mkUser(in).Username)
	}
	users := f.allUsers("")
	if len(users) != nUsers+1 {
		t.Fatalf("%d users listed, want %d", len(users), nUsers+1)
	}
	var times []time.Time
	for _, u := range users {
		times = append(times, u.Created)
	}

	var atom func() string
	atom = func() string {
		attr := pick(r, genAttrs)
		switch r.IntN(12) {
		case 0:
			return pick(r, []string{"protected eq true", "protected ne true", "protected eq false", "protected pr"})
		case 1, 2:
			attr = pick(r, []string{"created", "updated", "last_sign_in"})
			op := pick(r, genOps)
			if op == filter.Co || op == filter.Sw || op == filter.Ew || op == filter.Pr {
				return attr + " pr"
			}
			ts := pick(r, times).Add(time.Duration(r.IntN(5)-2) * time.Second / 2)
			if r.IntN(4) == 0 {
				ts = ts.Add(500 * time.Nanosecond) // finer than the stored microseconds
			}
			return fmt.Sprintf("%s %s %s", attr, op, quote(rfc3339(ts)))
		}
		op := pick(r, genOps)
		if op == filter.Pr {
			return attr + " pr"
		}
		v := pick(r, genValues)
		if attr == "id" {
			v = strings.ToUpper(pick(r, users).ID)
		}
		return fmt.Sprintf("%s %s %s", attr, op, quote(v))
	}
	var expr func(depth int) string
	expr = func(depth int) string {
		if depth == 0 {
			return atom()
		}
		switch r.IntN(4) {
		case 0:
			return fmt.Sprintf("(%s) and (%s)", expr(depth-1), expr(depth-1))
		case 1:
			return fmt.Sprintf("(%s) or (%s)", expr(depth-1), expr(depth-1))
		case 2:
			return fmt.Sprintf("not (%s)", expr(depth-1))
		}
		return atom()
	}
	const nFilters = 600
	mismatches := 0
	for range nFilters {
		text := expr(r.IntN(4))
		e := f.parse(text, directory.UserSchema)
		got := map[string]bool{}
		for _, u := range f.allUsers(text) {
			got[u.ID] = true
		}
		for _, u := range users {
			if want := filter.Match(e, u.Get); got[u.ID] != want {
				mismatches++
				t.Errorf("filter %s: store selects %s: %v, filter.Match: %v (user %+v)", text, u.Username, got[u.ID], want, u)
				break
			}
		}
		if mismatches > 20 {
			t.Fatal("too many mismatches")
		}
	}
}
