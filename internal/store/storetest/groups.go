package storetest

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

func refNames(refs []directory.Ref) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Name
	}
	return out
}

func testGroupCrud(t *testing.T, f *fixture) {
	f.mkOU("corp", "")
	ann := f.mkUser(directory.UserInput{Username: "ann"})
	bob := f.mkUser(directory.UserInput{Username: "bob"})
	g := f.mkGroup("Sales Team", "corp", "BOB", ann.ID, "bob")
	if g.Name != "Sales Team" || g.OUPath != "corp" || g.Version != 1 ||
		!reflect.DeepEqual(g.Owners, []directory.Ref{ann.Ref(), bob.Ref()}) {
		t.Errorf("created group %+v", g)
	}
	for _, key := range []string{g.ID, "sales team", "SALES TEAM"} {
		if got := f.getGroup(key); got.ID != g.ID {
			t.Errorf("group by %q is %s", key, got.ID)
		}
	}
	_, err := f.try(change.Op{Action: delegation.GroupCreate, Group: &directory.GroupInput{Name: "x", OU: "/", Owners: []string{"nobody"}}})
	wantErr(t, err, directory.ErrInvalid, "owners")
	_, err = f.try(change.Op{Action: delegation.GroupCreate, Group: &directory.GroupInput{Name: "x"}})
	wantErr(t, err, directory.ErrInvalid, "ou")

	f.do(change.Op{Action: delegation.GroupUpdate, Target: groupRef(g.ID), IfVersion: 1,
		Patch: patch(t, map[string]any{"name": "Vertrieb Ü", "description": "all of sales", "owners": []string{"ann"}})})
	got := f.getGroup("vertrieb ü")
	if got.ID != g.ID || got.Description != "all of sales" || got.Version != 2 || !reflect.DeepEqual(got.Owners, []directory.Ref{ann.Ref()}) {
		t.Errorf("updated group %+v", got)
	}
	if _, err := f.st.Group(f.ctx, groupRef("sales team")); !errorsIsNotFound(err) {
		t.Errorf("old name still resolves: %v", err)
	}
	f.do(change.Op{Action: delegation.GroupMove, Target: groupRef(g.ID), To: "/"})
	if got := f.getGroup(g.ID); got.OUPath != "/" || got.Version != 3 {
		t.Errorf("moved group %+v", got)
	}
	f.addMember(g.ID, "ann")
	f.do(change.Op{Action: delegation.GroupDelete, Target: groupRef(g.ID)})
	if _, err := f.st.Group(f.ctx, groupRef(g.ID)); !errorsIsNotFound(err) {
		t.Errorf("deleted group: %v", err)
	}
	if ms, err := f.st.Memberships(f.ctx, ann.Ref()); err != nil || len(ms) != 0 {
		t.Errorf("memberships in a deleted group: %v, %v", ms, err)
	}
}

func testServiceAccountCrud(t *testing.T, f *fixture) {
	f.mkOU("apps", "")
	ann := f.mkUser(directory.UserInput{Username: "ann"})
	bob := f.mkUser(directory.UserInput{Username: "bob"})
	res := f.do(change.Op{Action: delegation.SACreate, Service: &directory.ServiceAccountInput{
		Name: "CI-Bot", Description: "builds", OU: "APPS", Owners: []string{"bob", "ann"}}})
	s := f.getSA(res.Target.ID)
	if s.Name != "CI-Bot" || s.OUPath != "apps" || s.Status != directory.StatusActive || s.Version != 1 ||
		!reflect.DeepEqual(s.Owners, []directory.Ref{ann.Ref(), bob.Ref()}) {
		t.Errorf("created service account %+v", s)
	}
	if got := f.getSA("ci-bot"); got.ID != s.ID {
		t.Errorf("service account by name: %s", got.ID)
	}
	for _, in := range []directory.ServiceAccountInput{
		{Name: "x", OU: "/"}, // no owner
		{Name: "bad name", OU: "/", Owners: []string{"ann"}}, // not an identifier
		{Name: "x", OU: "/", Owners: []string{"ann"}, Status: "locked"},
	} {
		_, err := f.try(change.Op{Action: delegation.SACreate, Service: &in})
		wantErr(t, err, directory.ErrInvalid, "")
	}
	f.do(change.Op{Action: delegation.SAUpdate, Target: saRef("ci-bot"),
		Patch: patch(t, map[string]any{"status": "disabled", "owners": []string{"bob"}})})
	if got := f.getSA(s.ID); got.Status != directory.StatusDisabled || !reflect.DeepEqual(got.Owners, []directory.Ref{bob.Ref()}) || got.Version != 2 {
		t.Errorf("updated service account %+v", got)
	}
	_, err := f.try(change.Op{Action: delegation.SAUpdate, Target: saRef("ci-bot"), Patch: patch(t, map[string]any{"owners": []string{}})})
	wantErr(t, err, directory.ErrInvalid, "owners")
	f.do(change.Op{Action: delegation.SAMove, Target: saRef("ci-bot"), To: "/"})
	f.do(change.Op{Action: delegation.SADelete, Target: saRef("ci-bot")})
	if _, err := f.st.ServiceAccount(f.ctx, saRef(s.ID)); !errorsIsNotFound(err) {
		t.Errorf("deleted service account: %v", err)
	}
}

// testNameConflicts covers the unique names of groups and service accounts.
func testNameConflicts(t *testing.T, f *fixture) {
	owner := f.mkUser(directory.UserInput{Username: "owner"})
	f.mkGroup("Ärzte", "")
	f.mkGroup("other", "")
	f.mkSA("bot", owner.ID)
	f.mkSA("bot2", owner.ID)
	tests := []struct {
		name string
		op   change.Op
	}{
		{"group create", change.Op{Action: delegation.GroupCreate, Group: &directory.GroupInput{Name: "ärzte", OU: "/"}}},
		{"group create upper", change.Op{Action: delegation.GroupCreate, Group: &directory.GroupInput{Name: "ÄRZTE", OU: "/"}}},
		{"group rename", change.Op{Action: delegation.GroupUpdate, Target: groupRef("other"), Patch: patch(t, map[string]any{"name": "ÄrZtE"})}},
		{"sa create", change.Op{Action: delegation.SACreate, Service: &directory.ServiceAccountInput{Name: "BOT", OU: "/", Owners: []string{"owner"}}}},
		{"sa rename", change.Op{Action: delegation.SAUpdate, Target: saRef("bot2"), Patch: patch(t, map[string]any{"name": "Bot"})}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			before := f.snapshot()
			_, err := f.try(tc.op)
			wantErr(t, err, directory.ErrConflict, "name")
			f.unchanged(before)
		})
	}
	// Names are unique per kind: a group, a service account and a user may share one.
	f.mkGroup("bot", "")
	f.mkUser(directory.UserInput{Username: "bot"})
}

func testNestingCycles(t *testing.T, f *fixture) {
	for _, n := range []string{"a", "b", "c", "d"} {
		f.mkGroup(n, "")
	}
	f.addMember("a", "group:b") // a contains b
	f.addMember("b", "group:c") // b contains c
	f.addMember("c", "group:d") // c contains d
	tests := []struct {
		name, group, member string
		want                error
	}{
		{"itself", "a", "group:a", directory.ErrConflict},
		{"direct", "b", "group:a", directory.ErrConflict},
		{"through a chain", "c", "group:a", directory.ErrConflict},
		{"through a longer chain", "d", "group:A", directory.ErrConflict},
		{"by ID", "d", f.getGroup("b").ID, directory.ErrConflict},
		{"already a member", "a", "group:b", directory.ErrConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			before := f.snapshot()
			_, err := f.try(change.Op{Action: delegation.GroupAddMember, Target: groupRef(tc.group), Member: tc.member})
			wantErr(t, err, tc.want, "member")
			f.unchanged(before)
		})
	}
	// A diamond is not a cycle.
	f.addMember("a", "group:d")
	// Removing a link lets the reverse nesting through: a no longer contains c.
	f.do(change.Op{Action: delegation.GroupRemoveMember, Target: groupRef("b"), Member: "group:c"})
	f.do(change.Op{Action: delegation.GroupAddMember, Target: groupRef("c"), Member: "group:a"})
	// Now c contains a, which contains d: d cannot contain c.
	_, err := f.try(change.Op{Action: delegation.GroupAddMember, Target: groupRef("d"), Member: "group:c"})
	wantErr(t, err, directory.ErrConflict, "member")
	_, err = f.try(change.Op{Action: delegation.GroupRemoveMember, Target: groupRef("c"), Member: "group:b"})
	wantErr(t, err, directory.ErrNotFound, "")
}

func testMemberships(t *testing.T, f *fixture) {
	owner := f.mkUser(directory.UserInput{Username: "owner"})
	u := f.mkUser(directory.UserInput{Username: "ann"})
	bot := f.mkSA("bot", owner.ID)
	for _, n := range []string{"inner", "middle", "outer", "other", "zeta"} {
		f.mkGroup(n, "")
	}
	f.addMember("inner", "ann")
	f.addMember("middle", "group:inner")
	f.addMember("outer", "group:middle")
	f.addMember("zeta", "ann")          // direct...
	f.addMember("outer", "group:other") // other is not on ann's path
	f.addMember("middle", "sa:bot")
	f.addMember("inner", bot.ID)

	type ms struct {
		group string
		via   []string
	}
	flat := func(got []directory.Membership) []ms {
		out := make([]ms, len(got))
		for i, m := range got {
			out[i] = ms{m.Group.Name, refNames(m.Via)}
			if len(m.Via) == 0 {
				out[i].via = nil
			}
			if m.Group.Kind != directory.KindGroup || m.Group.ID == "" {
				t.Errorf("membership group ref %+v", m.Group)
			}
		}
		return out
	}
	tests := []struct {
		member directory.Ref
		want   []ms
	}{
		{u.Ref(), []ms{{"inner", nil}, {"middle", []string{"inner"}}, {"outer", []string{"inner", "middle"}}, {"zeta", nil}}},
		// bot is direct in middle and inner; middle counts as direct though it is also reached through inner.
		{bot.Ref(), []ms{{"inner", nil}, {"middle", nil}, {"outer", []string{"middle"}}}},
		{groupRefOf(f.getGroup("inner")), []ms{{"middle", nil}, {"outer", []string{"middle"}}}},
		{groupRefOf(f.getGroup("outer")), []ms{}},
	}
	for _, tc := range tests {
		got, err := f.st.Memberships(f.ctx, tc.member)
		if err != nil {
			t.Fatal(err)
		}
		if g := flat(got); !reflect.DeepEqual(g, tc.want) {
			t.Errorf("memberships of %s = %+v, want %+v", tc.member.Name, g, tc.want)
		}
	}
	// Inserting a group into the chain lengthens it.
	f.mkGroup("between", "")
	f.do(change.Op{Action: delegation.GroupRemoveMember, Target: groupRef("outer"), Member: "group:middle"})
	f.addMember("between", "group:middle")
	f.addMember("outer", "group:between")
	got, err := f.st.Memberships(f.ctx, u.Ref())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(got, func(m directory.Membership) bool { return m.Group.Name == "outer" })
	if i < 0 || !reflect.DeepEqual(refNames(got[i].Via), []string{"inner", "middle", "between"}) {
		t.Errorf("memberships after lengthening the chain: %+v", flat(got))
	}
}

func testMembers(t *testing.T, f *fixture) {
	owner := f.mkUser(directory.UserInput{Username: "owner"})
	f.mkGroup("team", "")
	f.mkGroup("sub", "")
	f.mkUser(directory.UserInput{Username: "zed"})
	f.mkUser(directory.UserInput{Username: "Ann"})
	f.mkSA("bot", owner.ID)
	f.addMember("team", "zed")
	f.addMember("team", "user:ann")
	f.addMember("team", "sa:BOT")
	res := f.addMember("team", "group:sub")
	at := f.lastEvent().Time

	page, err := f.st.Members(f.ctx, groupRef("TEAM"), directory.ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range page.Items {
		got = append(got, string(m.Ref.Kind)+":"+m.Ref.Name)
		if m.Provenance.Source != "manual" || m.Provenance.By.ID != f.admin.ID || m.Provenance.By.Name != AdminName ||
			m.Provenance.By.Kind != directory.KindUser || m.Provenance.At.IsZero() || m.Ref.ID == "" {
			t.Errorf("member %s provenance %+v", m.Ref.Name, m.Provenance)
		}
	}
	if want := []string{"user:Ann", "service_account:bot", "group:sub", "user:zed"}; !reflect.DeepEqual(got, want) {
		t.Errorf("members = %v, want %v", got, want)
	}
	if last := page.Items[2]; !last.Provenance.At.Equal(at) {
		t.Errorf("provenance time of sub %v, want the event's %v", last.Provenance.At, at)
	}
	if g := f.getGroup("team"); g.Version != res.Version || g.Version != 5 {
		t.Errorf("group version %d after four member changes, result %d", g.Version, res.Version)
	}

	filters := []struct {
		filter string
		want   []string
	}{
		{`type eq "user"`, []string{"Ann", "zed"}},
		{`type ne "user"`, []string{"bot", "sub"}},
		{`name sw "A" or name eq "SUB"`, []string{"Ann", "sub"}},
		{`source eq "manual" and not (type eq "group")`, []string{"Ann", "bot", "zed"}},
		{`id eq "` + f.getUser("zed").ID + `"`, []string{"zed"}},
		{`source eq "rule"`, nil},
	}
	for _, tc := range filters {
		page, err := f.st.Members(f.ctx, groupRef("team"), directory.ListQuery{Filter: f.parse(tc.filter, directory.MemberSchema)})
		if err != nil {
			t.Fatalf("%s: %v", tc.filter, err)
		}
		var names []string
		for _, m := range page.Items {
			names = append(names, m.Ref.Name)
		}
		if !reflect.DeepEqual(names, tc.want) {
			t.Errorf("members with %s = %v, want %v", tc.filter, names, tc.want)
		}
	}
	if _, err := f.st.Members(f.ctx, groupRef("nope"), directory.ListQuery{}); !errorsIsNotFound(err) {
		t.Errorf("members of a missing group: %v", err)
	}
	// Removing a member is recorded with the member as before-state.
	f.do(change.Op{Action: delegation.GroupRemoveMember, Target: groupRef("team"), Member: "zed"})
	e := f.lastEvent()
	if e.Outcome != audit.Applied || e.Before == nil || e.After != nil || !strings.Contains(string(mustEncode(t, &e)), `"zed"`) {
		t.Errorf("remove-member event %+v", e)
	}
}

func testResolveMember(t *testing.T, f *fixture) {
	owner := f.mkUser(directory.UserInput{Username: "owner"})
	ops := f.mkUser(directory.UserInput{Username: "ops"})
	opsGroup := f.mkGroup("OPS", "")
	f.mkGroup("team", "")
	bot := f.mkSA("bot", owner.ID)
	tests := []struct {
		key     string
		want    directory.Ref
		wantErr error
	}{
		{"ops", directory.Ref{}, directory.ErrConflict},
		{"Ops", directory.Ref{}, directory.ErrConflict},
		{"user:ops", ops.Ref(), nil},
		{"group:ops", opsGroup.Ref(), nil},
		{"GROUP:ops", opsGroup.Ref(), nil},
		{ops.ID, ops.Ref(), nil},
		{opsGroup.ID, opsGroup.Ref(), nil},
		{"bot", bot.Ref(), nil},
		{"sa:bot", bot.Ref(), nil},
		{"service_account:bot", bot.Ref(), nil},
		{"user:bot", directory.Ref{}, directory.ErrNotFound},
		{"nobody", directory.Ref{}, directory.ErrNotFound},
	}
	for _, tc := range tests {
		ref, err := directory.ParseMemberRef(tc.key)
		if err != nil {
			t.Fatalf("parse %q: %v", tc.key, err)
		}
		got, err := f.st.ResolveMember(f.ctx, ref)
		if tc.wantErr != nil {
			wantErr(t, err, tc.wantErr, "")
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ResolveMember(%q) = %+v, %v; want %+v", tc.key, got, err, tc.want)
		}
	}
	// Through the pipeline: the ambiguous name is refused naming the member field and the
	// prefixes that resolve it; a prefixed one works.
	before := f.snapshot()
	_, err := f.try(change.Op{Action: delegation.GroupAddMember, Target: groupRef("team"), Member: "ops"})
	wantErr(t, err, directory.ErrConflict, "member")
	if !strings.Contains(err.Error(), "user:ops") || !strings.Contains(err.Error(), "group:OPS") {
		t.Errorf("the ambiguity error does not say how to resolve it: %v", err)
	}
	f.unchanged(before)
	_, err = f.try(change.Op{Action: delegation.GroupAddMember, Target: groupRef("team"), Member: "nobody"})
	wantErr(t, err, directory.ErrInvalid, "member")
	f.addMember("team", "group:ops")
	f.addMember("team", "user:OPS")
	page, err := f.st.Members(f.ctx, groupRef("team"), directory.ListQuery{})
	if err != nil || len(page.Items) != 2 {
		t.Errorf("members after adding both: %+v, %v", page.Items, err)
	}
}

func groupRefOf(g directory.Group) directory.Ref { return g.Ref() }

func mustEncode(t *testing.T, e *audit.Event) []byte {
	t.Helper()
	b, err := audit.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
