package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

func errorsIsNotFound(err error) bool { return errors.Is(err, directory.ErrNotFound) }

func usernames(us []directory.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.Username
	}
	return out
}

func testUserCrud(t *testing.T, f *fixture) {
	f.mkOU("Corp", "")
	boss := f.mkUser(directory.UserInput{Username: "Boss", GivenName: "Big", FamilyName: "Boss"})
	in := directory.UserInput{
		Username: "Ada.Lovelace", GivenName: " Ada ", FamilyName: "Lovelace", Email: "Ada@Example.com", Phone: "+44 20 7946 0000",
		EmployeeID: "E-1", Department: "Engineering", Title: "Analyst", Manager: "boss", Location: "London",
		EmploymentType: "employee", OU: "CORP", Attributes: map[string]string{"cost_center": "CC-1", "Desk": "4.02"},
	}
	u := f.mkUser(in)
	want := directory.User{
		ID: u.ID, Username: "Ada.Lovelace", GivenName: "Ada", FamilyName: "Lovelace", DisplayName: "Ada Lovelace",
		Email: "Ada@Example.com", Phone: "+44 20 7946 0000", EmployeeID: "E-1", Department: "Engineering",
		Title: "Analyst", ManagerID: boss.ID, ManagerName: "Boss", Location: "London", EmploymentType: "employee",
		Status: directory.StatusActive, OUID: f.getOU(ouRef("corp")).ID, OUPath: "Corp",
		Attributes: map[string]string{"cost_center": "CC-1", "Desk": "4.02"}, Version: 1, Created: u.Created, Updated: u.Created,
	}
	if !reflect.DeepEqual(u, want) {
		t.Errorf("created user\n got %+v\nwant %+v", u, want)
	}
	if u.Created.IsZero() || u.Created.Location().String() != "UTC" {
		t.Errorf("created time %v", u.Created)
	}
	for _, key := range []string{u.ID, "ada.lovelace", "ADA.LOVELACE"} {
		if got := f.getUser(key); got.ID != u.ID {
			t.Errorf("user by %q is %s", key, got.ID)
		}
	}

	updates := []struct {
		name  string
		patch map[string]any
		check func(u directory.User) bool
	}{
		{"rename", map[string]any{"username": "ada"}, func(u directory.User) bool { return u.Username == "ada" }},
		{"attributes merge", map[string]any{"attributes": map[string]any{"Desk": nil, "floor": "4"}},
			func(u directory.User) bool {
				return reflect.DeepEqual(u.Attributes, map[string]string{"cost_center": "CC-1", "floor": "4"})
			}},
		{"clear manager and email", map[string]any{"manager": nil, "email": nil},
			func(u directory.User) bool { return u.ManagerID == "" && u.ManagerName == "" && u.Email == "" }},
		{"manager by name", map[string]any{"manager": "BOSS"}, func(u directory.User) bool { return u.ManagerID == boss.ID }},
		{"unicode names", map[string]any{"given_name": "Élodie", "family_name": "Ørsted", "display_name": "Élodie Ørsted"},
			func(u directory.User) bool { return u.DisplayName == "Élodie Ørsted" }},
	}
	version := u.Version
	for _, up := range updates {
		res := f.do(change.Op{Action: delegation.UserUpdate, Target: userRef(u.ID), Patch: patch(t, up.patch), IfVersion: version})
		got := f.getUser(u.ID)
		if !up.check(got) || got.Version != version+1 || res.Version != got.Version {
			t.Errorf("%s: user %+v at version %d (result %d), want version %d", up.name, got, got.Version, res.Version, version+1)
		}
		version = got.Version
	}
	refused := []struct {
		patch map[string]any
		field string
	}{
		{map[string]any{"status": "disabled"}, "status"},
		{map[string]any{"ou": "corp"}, "ou"},
		{map[string]any{"id": "x"}, "id"},
		{map[string]any{"nope": "x"}, "nope"},
		{map[string]any{"email": "not an address"}, "email"},
		{map[string]any{"manager": "nobody"}, "manager"},
		{map[string]any{"manager": u.ID}, "manager"},
		{map[string]any{"username": "has space"}, "username"},
	}
	for _, r := range refused {
		before := f.snapshot()
		_, err := f.try(change.Op{Action: delegation.UserUpdate, Target: userRef(u.ID), Patch: patch(t, r.patch)})
		wantErr(t, err, directory.ErrInvalid, r.field)
		f.unchanged(before)
	}

	f.do(change.Op{Action: delegation.UserMove, Target: userRef("ada"), To: "/"})
	if got := f.getUser("ada"); got.OUPath != "/" || got.OUID != f.getOU(ouRef("/")).ID {
		t.Errorf("moved user: ou %s %q", got.OUID, got.OUPath)
	}
	_, err := f.try(change.Op{Action: delegation.UserMove, Target: userRef("ada"), To: "/"})
	wantErr(t, err, directory.ErrConflict, "")

	f.do(change.Op{Action: delegation.UserDisable, Target: userRef("ada")})
	if got := f.getUser("ada"); got.Status != directory.StatusDisabled {
		t.Errorf("disabled user has status %s", got.Status)
	}
	_, err = f.try(change.Op{Action: delegation.UserDisable, Target: userRef("ada")})
	wantErr(t, err, directory.ErrConflict, "")
	f.do(change.Op{Action: delegation.UserEnable, Target: userRef("ada")})
	if got := f.getUser("ada"); got.Status != directory.StatusActive {
		t.Errorf("enabled user has status %s", got.Status)
	}

	f.do(change.Op{Action: delegation.UserDelete, Target: userRef("ADA")})
	for _, key := range []string{u.ID, "ada"} {
		if _, err := f.st.User(f.ctx, userRef(key)); !errorsIsNotFound(err) {
			t.Errorf("deleted user by %q: %v", key, err)
		}
	}
	_, err = f.try(change.Op{Action: delegation.UserDelete, Target: userRef(u.ID)})
	wantErr(t, err, directory.ErrNotFound, "")
	if e := f.lastEvent(); e.Outcome != audit.Failed || e.Reason != "not_found" {
		t.Errorf("the failed delete is recorded as %s/%s", e.Outcome, e.Reason)
	}
}

func testUserUniqueConflicts(t *testing.T, f *fixture) {
	f.mkUser(directory.UserInput{Username: "ada", Email: "ada@example.com", EmployeeID: "E-1"})
	f.mkUser(directory.UserInput{Username: "bob"})
	f.mkUser(directory.UserInput{Username: "nobody-a"}) // two users without email and employee ID coexist
	f.mkUser(directory.UserInput{Username: "nobody-b"})
	creates := []struct {
		name  string
		in    directory.UserInput
		field string
	}{
		{"username in another case", directory.UserInput{Username: "ADA"}, "username"},
		{"email in another case", directory.UserInput{Username: "ada2", Email: "ADA@EXAMPLE.COM"}, "email"},
		{"employee ID in another case", directory.UserInput{Username: "ada3", EmployeeID: "e-1"}, "employee_id"},
	}
	for _, tc := range creates {
		t.Run("create "+tc.name, func(t *testing.T) {
			f := f.sub(t)
			tc.in.OU = "/"
			before := f.snapshot()
			_, err := f.try(change.Op{Action: delegation.UserCreate, User: &tc.in})
			wantErr(t, err, directory.ErrConflict, tc.field)
			f.unchanged(before)
			if e := f.lastEvent(); e.Outcome != audit.Failed || e.Reason != "conflict" || e.Action != string(delegation.UserCreate) {
				t.Errorf("recorded as %s %s/%s", e.Action, e.Outcome, e.Reason)
			}
		})
	}
	updates := []struct {
		name  string
		patch map[string]any
		field string
	}{
		{"username", map[string]any{"username": "Ada"}, "username"},
		{"email", map[string]any{"email": "Ada@Example.Com"}, "email"},
		{"employee ID", map[string]any{"employee_id": "E-1"}, "employee_id"},
	}
	for _, tc := range updates {
		t.Run("update "+tc.name, func(t *testing.T) {
			f := f.sub(t)
			before := f.snapshot()
			_, err := f.try(change.Op{Action: delegation.UserUpdate, Target: userRef("bob"), Patch: patch(t, tc.patch)})
			wantErr(t, err, directory.ErrConflict, tc.field)
			f.unchanged(before)
		})
	}
	// A user may change the case of their own unique values.
	f.do(change.Op{Action: delegation.UserUpdate, Target: userRef("ada"),
		Patch: patch(t, map[string]any{"username": "Ada", "email": "ADA@example.com", "employee_id": "e-1"})})
	if got := f.getUser("ada"); got.Username != "Ada" || got.Email != "ADA@example.com" || got.EmployeeID != "e-1" {
		t.Errorf("after changing case: %+v", got)
	}
}

// testStaleVersion submits every versioned action with an If-Match that no longer holds.
func testStaleVersion(t *testing.T, f *fixture) {
	f.mkOU("corp", "")
	f.mkOU("dept", "corp")
	owner := f.mkUser(directory.UserInput{Username: "owner"})
	f.mkUser(directory.UserInput{Username: "ada"})
	f.mkGroup("team", "", owner.ID)
	f.mkSA("bot", owner.ID)
	tests := []struct {
		name string
		ref  directory.Ref
		op   change.Op
	}{
		{"ou.update", ouRef("corp/dept"), change.Op{Action: delegation.OUUpdate, Patch: patch(t, map[string]any{"name": "x"})}},
		{"ou.move", ouRef("corp/dept"), change.Op{Action: delegation.OUMove, To: "/"}},
		{"ou.delete", ouRef("corp/dept"), change.Op{Action: delegation.OUDelete}},
		{"user.update", userRef("ada"), change.Op{Action: delegation.UserUpdate, Patch: patch(t, map[string]any{"title": "x"})}},
		{"user.move", userRef("ada"), change.Op{Action: delegation.UserMove, To: "corp"}},
		{"user.disable", userRef("ada"), change.Op{Action: delegation.UserDisable}},
		{"user.delete", userRef("ada"), change.Op{Action: delegation.UserDelete}},
		{"group.update", groupRef("team"), change.Op{Action: delegation.GroupUpdate, Patch: patch(t, map[string]any{"description": "x"})}},
		{"group.move", groupRef("team"), change.Op{Action: delegation.GroupMove, To: "corp"}},
		{"group.add_member", groupRef("team"), change.Op{Action: delegation.GroupAddMember, Member: "user:ada"}},
		{"group.delete", groupRef("team"), change.Op{Action: delegation.GroupDelete}},
		{"sa.update", saRef("bot"), change.Op{Action: delegation.SAUpdate, Patch: patch(t, map[string]any{"description": "x"})}},
		{"sa.move", saRef("bot"), change.Op{Action: delegation.SAMove, To: "corp"}},
		{"sa.delete", saRef("bot"), change.Op{Action: delegation.SADelete}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			version := f.version(tc.ref)
			for _, stale := range []int64{version - 1, version + 1} {
				op := tc.op
				op.Target, op.IfVersion = tc.ref, stale
				if stale == 0 {
					continue // 0 means "no If-Match"
				}
				before := f.snapshot()
				_, err := f.try(op)
				wantErr(t, err, directory.ErrStale, "version")
				if !errors.Is(err, directory.ErrConflict) {
					t.Errorf("a stale version should also match ErrConflict: %v", err)
				}
				f.unchanged(before)
				if e := f.lastEvent(); e.Outcome != audit.Failed || e.Reason != "stale_version" {
					t.Errorf("recorded as %s/%s", e.Outcome, e.Reason)
				}
			}
		})
	}
	// Bump the user's version, then an If-Match of the old version fails and the new one holds.
	u := f.getUser("ada")
	f.do(change.Op{Action: delegation.UserUpdate, Target: userRef(u.ID), Patch: patch(t, map[string]any{"title": "one"}), IfVersion: u.Version})
	_, err := f.try(change.Op{Action: delegation.UserUpdate, Target: userRef(u.ID), Patch: patch(t, map[string]any{"title": "two"}), IfVersion: u.Version})
	wantErr(t, err, directory.ErrStale, "version")
	f.do(change.Op{Action: delegation.UserUpdate, Target: userRef(u.ID), Patch: patch(t, map[string]any{"title": "two"}), IfVersion: u.Version + 1})
	if got := f.getUser(u.ID); got.Title != "two" || got.Version != u.Version+2 {
		t.Errorf("user after two updates: title %q version %d", got.Title, got.Version)
	}
}

// version reads the current version of the object behind ref.
func (f *fixture) version(ref directory.Ref) int64 {
	f.t.Helper()
	switch ref.Kind {
	case directory.KindOU:
		return f.getOU(ref).Version
	case directory.KindUser:
		return f.getUser(ref.Key()).Version
	case directory.KindGroup:
		return f.getGroup(ref.Key()).Version
	case directory.KindServiceAccount:
		return f.getSA(ref.Key()).Version
	}
	f.t.Fatalf("no version for %v", ref)
	return 0
}

func testManagerCycles(t *testing.T, f *fixture) {
	f.mkUser(directory.UserInput{Username: "a"})
	f.mkUser(directory.UserInput{Username: "b", Manager: "a"})
	f.mkUser(directory.UserInput{Username: "c", Manager: "b"})
	f.mkUser(directory.UserInput{Username: "d", Manager: "c"})
	tests := []struct {
		user, manager string
		want          error
	}{
		{"a", "a", directory.ErrInvalid},  // oneself
		{"a", "b", directory.ErrConflict}, // a <- b
		{"a", "d", directory.ErrConflict}, // a <- b <- c <- d
		{"b", "D", directory.ErrConflict},
		{"c", "d", directory.ErrConflict},
	}
	for _, tc := range tests {
		before := f.snapshot()
		_, err := f.try(change.Op{Action: delegation.UserUpdate, Target: userRef(tc.user), Patch: patch(t, map[string]any{"manager": tc.manager})})
		wantErr(t, err, tc.want, "manager")
		f.unchanged(before)
	}
	// Re-pointing along the chain without closing it is fine.
	f.do(change.Op{Action: delegation.UserUpdate, Target: userRef("d"), Patch: patch(t, map[string]any{"manager": "a"})})
	f.do(change.Op{Action: delegation.UserUpdate, Target: userRef("c"), Patch: patch(t, map[string]any{"manager": "d"})})
	if got := f.getUser("c"); got.ManagerName != "d" {
		t.Errorf("c's manager is %q", got.ManagerName)
	}
	if got := f.allUsers(`manager eq "A"`); !reflect.DeepEqual(usernames(got), []string{"b", "d"}) {
		t.Errorf(`manager eq "A": %v`, usernames(got))
	}
}

func testUserDeleteGuards(t *testing.T, f *fixture) {
	f.mkUser(directory.UserInput{Username: "boss"})
	f.mkUser(directory.UserInput{Username: "report", Manager: "boss"})
	f.mkUser(directory.UserInput{Username: "solo"})
	f.mkUser(directory.UserInput{Username: "co1"})
	f.mkUser(directory.UserInput{Username: "co2"})
	f.mkSA("solo-bot", "solo")
	f.mkSA("shared-bot", "co1", "co2")
	f.mkGroup("owned", "", "co1")
	f.addMember("owned", "user:co1")

	for _, user := range []string{"boss", "solo"} {
		before := f.snapshot()
		_, err := f.try(change.Op{Action: delegation.UserDelete, Target: userRef(user)})
		wantErr(t, err, directory.ErrConflict, "")
		f.unchanged(before)
	}
	// Co-ownership, group ownership and membership do not block a delete; they go with the user.
	f.do(change.Op{Action: delegation.UserDelete, Target: userRef("co1")})
	if got := f.getSA("shared-bot"); len(got.Owners) != 1 || got.Owners[0].Name != "co2" {
		t.Errorf("owners after deleting a co-owner: %v", got.Owners)
	}
	if got := f.getGroup("owned"); len(got.Owners) != 0 {
		t.Errorf("group owners after deleting the owner: %v", got.Owners)
	}
	members, err := f.st.Members(f.ctx, groupRef("owned"), directory.ListQuery{})
	if err != nil || len(members.Items) != 0 {
		t.Errorf("members after deleting the member: %v, %v", members.Items, err)
	}
	// Once the reports have another manager, and the account another owner, the deletes apply.
	f.do(change.Op{Action: delegation.UserUpdate, Target: userRef("report"), Patch: patch(t, map[string]any{"manager": nil})})
	f.do(change.Op{Action: delegation.UserDelete, Target: userRef("boss")})
	f.do(change.Op{Action: delegation.SAUpdate, Target: saRef("solo-bot"), Patch: patch(t, map[string]any{"owners": []string{"co2"}})})
	f.do(change.Op{Action: delegation.UserDelete, Target: userRef("solo")})
}

// allowAll is an authorizer that allows everything, to reach the guards that hold whatever an
// authorizer says.
type allowAll struct{}

func (allowAll) Decide(context.Context, *delegation.Question) delegation.Decision {
	return delegation.Allow(audit.Authority{Rule: "test"})
}

func (a allowAll) Session(context.Context, delegation.Facts) (delegation.Session, error) {
	return a, nil
}
func (allowAll) CatchUp(context.Context, delegation.Facts) error { return nil }
func (allowAll) Record(*audit.Event)                             {}
func (allowAll) Commit()                                         {}
func (allowAll) Mark() int                                       { return 0 }
func (allowAll) Rewind(int)                                      {}

// grantTier0 gives user the tier-0 role, granted by the admin through the pipeline.
func (f *fixture) grantTier0(user directory.User) {
	f.t.Helper()
	f.do(change.Op{Action: delegation.RoleAssign, Assignment: &delegation.AssignmentInput{Role: delegation.RoleTier0,
		Holder: delegation.HolderInput{User: user.ID}, Scope: delegation.ScopeInput{OU: "/"}, Justification: "a second admin"}})
}

func testTier0Guards(t *testing.T, f *fixture) {
	// Nobody can disable or delete themselves.
	for _, a := range []delegation.Action{delegation.UserDisable, delegation.UserDelete} {
		before := f.snapshot()
		_, err := f.try(change.Op{Action: a, Target: userRef(f.admin.ID)})
		wantErr(t, err, directory.ErrConflict, "")
		f.unchanged(before)
	}
	// The last active tier-0 admin cannot be disabled or deleted, whoever asks.
	system := delegation.SystemActor("test")
	anyone := change.New(f.st, allowAll{}, Logger(t), change.WithClock(f.clock.Now))
	lastAdmin := func() {
		t.Helper()
		for _, a := range []delegation.Action{delegation.UserDisable, delegation.UserDelete} {
			before := f.snapshot()
			_, err := anyone.Submit(f.ctx, system, f.meta, change.Op{Action: a, Target: userRef(f.admin.ID)})
			wantErr(t, err, directory.ErrConflict, "")
			f.unchanged(before)
		}
	}
	lastAdmin()

	// With a second admin, either may disable the other, but not both.
	second := f.mkUser(directory.UserInput{Username: "second"})
	f.grantTier0(second)
	res, err := f.p.Submit(f.ctx, ActorOf(second), f.meta, change.Op{Action: delegation.UserDisable, Target: userRef(f.admin.ID)})
	if err != nil || res.Outcome != audit.Applied {
		t.Fatalf("second admin disables the first: %+v, %v", res, err)
	}
	// The disabled admin holds no rights any more.
	_, err = f.p.Submit(f.ctx, f.admin, f.meta, change.Op{Action: delegation.UserDisable, Target: userRef(second.ID)})
	wantErr(t, err, change.ErrDenied, "")
	// And the second admin is now the last one.
	_, err = anyone.Submit(f.ctx, system, f.meta, change.Op{Action: delegation.UserDisable, Target: userRef(second.ID)})
	wantErr(t, err, directory.ErrConflict, "")
	// A disabled admin is not counted, so deleting one is allowed.
	f.do2(ActorOf(second), change.Op{Action: delegation.UserEnable, Target: userRef(f.admin.ID)})
	f.do(change.Op{Action: delegation.UserDisable, Target: userRef(second.ID)})
	f.do(change.Op{Action: delegation.UserDelete, Target: userRef(second.ID)})
	lastAdmin()
}

// do2 submits op as actor and fails the test unless it applies.
func (f *fixture) do2(actor delegation.Actor, op change.Op) change.Result {
	f.t.Helper()
	res, err := f.p.Submit(f.ctx, actor, f.meta, op)
	if err != nil || res.Outcome != audit.Applied {
		f.t.Fatalf("%s as %s: %+v, %v", op.Action, actor.Name, res, err)
	}
	return res
}

// testNewUserMemo: a user read back in the transaction that inserted it (from the
// transaction's memo, as a bulk import adds each new user to groups) is the user a fresh read
// returns after the commit, with and without a manager and custom attributes.
func testNewUserMemo(t *testing.T, f *fixture) {
	f.mkOU("Corp", "")
	boss := f.mkUser(directory.UserInput{Username: "Boss", GivenName: "Big", FamilyName: "Boss"})
	corp := f.getOU(ouRef("corp"))
	now := audit.Timestamp(f.clock.Now())
	users := []directory.User{
		{ID: directory.NewID(), Username: "Ada.Lovelace", GivenName: "Ada", FamilyName: "Lovelace", DisplayName: "Ada Lovelace",
			Email: "ada@example.com", ManagerID: boss.ID, ManagerName: boss.Username, Status: directory.StatusActive,
			OUID: corp.ID, OUPath: corp.DisplayPath(), Attributes: map[string]string{"cost_center": "CC-1"},
			Version: 1, Created: now, Updated: now},
		{ID: directory.NewID(), Username: "grace", DisplayName: "grace", Status: directory.StatusActive,
			OUID: boss.OUID, OUPath: boss.OUPath, Version: 1, Created: now, Updated: now},
	}
	inTx := make([]directory.User, len(users))
	err := f.st.InTx(f.ctx, func(tx change.Tx) error {
		for i := range users {
			if err := tx.InsertUser(f.ctx, &users[i]); err != nil {
				return err
			}
		}
		for i, u := range users {
			got, err := tx.User(f.ctx, directory.Ref{Kind: directory.KindUser, Name: u.Username})
			if err != nil {
				return err
			}
			inTx[i] = got
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range users {
		if after := f.getUser(u.ID); !reflect.DeepEqual(inTx[i], after) {
			t.Errorf("%s read in its transaction\n got %+v\nwant %+v (read after the commit)", u.Username, inTx[i], after)
		}
	}
}
