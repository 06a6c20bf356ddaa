package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
	"github.com/deputy-iam/deputy/internal/store"
)

// Run runs every store behaviour against the engine behind open. Each subtest calls open for a
// fresh, empty database; open must fail or skip the test itself when it cannot provide one.
// All writes go through change.Pipeline (the only writer), all reads through the store's
// directory.Reader and audit.Reader methods.
func Run(t *testing.T, open func(t *testing.T) *store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"Bootstrap", testBootstrap},
		{"OUCrud", testOUCrud},
		{"OUSiblingNamesUnique", testOUSiblingNamesUnique},
		{"OURenameRewritesPaths", testOURenameRewritesPaths},
		{"OUMove", testOUMove},
		{"OUDelete", testOUDelete},
		{"UserCrud", testUserCrud},
		{"NewUserMemo", testNewUserMemo},
		{"UserUniqueConflicts", testUserUniqueConflicts},
		{"StaleVersion", testStaleVersion},
		{"GroupCrud", testGroupCrud},
		{"ServiceAccountCrud", testServiceAccountCrud},
		{"NameConflicts", testNameConflicts},
		{"NestingCycles", testNestingCycles},
		{"Memberships", testMemberships},
		{"Members", testMembers},
		{"ResolveMember", testResolveMember},
		{"ManagerCycles", testManagerCycles},
		{"UserDeleteGuards", testUserDeleteGuards},
		{"Tier0Guards", testTier0Guards},
		{"FilterOperators", testFilterOperators},
		{"FilterOtherKinds", testFilterOtherKinds},
		{"FilterAgreesWithMatch", testFilterAgreesWithMatch},
		{"StructuralAgreesWithMatch", testStructuralAgreesWithMatch},
		{"Pagination", testPagination},
		{"AuditTrail", testAuditTrail},
		{"AuditQueries", testAuditQueries},
		{"MerkleLog", testMerkleLog},
		{"Outbox", testOutbox},
		{"Tokens", testTokens},
		{"SchemaVersion", testSchemaVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newFixture(t, open(t)))
		})
	}
}

// Epoch is the time at which a Clock starts.
var Epoch = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// Clock is a deterministic clock for change.WithClock: every reading is one second after the
// previous one. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock whose first reading is Epoch.
func NewClock() *Clock { return &Clock{now: Epoch} }

// Now returns the current reading and advances the clock by a second.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now
	c.now = c.now.Add(time.Second)
	return t
}

// fixture is one subtest's database with a bootstrapped pipeline.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	st    *store.Store
	p     *change.Pipeline
	admin delegation.Actor
	clock *Clock
	meta  change.Meta
	token string // the admin's bootstrap API token
}

func newFixture(t *testing.T, st *store.Store) *fixture {
	t.Helper()
	clock := NewClock()
	env := Bootstrap(t, st, change.WithClock(clock.Now))
	return &fixture{t: t, ctx: context.Background(), st: st, p: env.Pipeline, admin: env.Admin, clock: clock,
		meta: change.Meta{Transport: audit.TransportAPI, ClientAddr: "192.0.2.1", UserAgent: "storetest"}, token: env.AdminToken}
}

// sub returns f for use in the subtest t.
func (f *fixture) sub(t *testing.T) *fixture {
	c := *f
	c.t = t
	return &c
}

// try submits op as the admin.
func (f *fixture) try(op change.Op) (change.Result, error) {
	return f.p.Submit(f.ctx, f.admin, f.meta, op)
}

// do submits op as the admin and fails the test unless it applies.
func (f *fixture) do(op change.Op) change.Result {
	f.t.Helper()
	res, err := f.try(op)
	if err != nil {
		f.t.Fatalf("%s %s: %v", op.Action, op.Target, err)
	}
	if res.Outcome != audit.Applied {
		f.t.Fatalf("%s %s: outcome %s, want applied", op.Action, op.Target, res.Outcome)
	}
	return res
}

// mkOU creates an OU under parent ("" for the root) and returns it.
func (f *fixture) mkOU(name, parent string) directory.OU {
	f.t.Helper()
	res := f.do(change.Op{Action: delegation.OUCreate, OU: &directory.OUInput{Name: name, Parent: parent}})
	return f.getOU(directory.Ref{Kind: directory.KindOU, ID: res.Target.ID})
}

func (f *fixture) getOU(ref directory.Ref) directory.OU {
	f.t.Helper()
	o, err := f.st.OU(f.ctx, ref)
	if err != nil {
		f.t.Fatalf("read OU %s: %v", ref.Key(), err)
	}
	return o
}

// mkUser creates a user (in the root OU when in.OU is empty) and returns it as stored.
func (f *fixture) mkUser(in directory.UserInput) directory.User {
	f.t.Helper()
	if in.OU == "" {
		in.OU = directory.RootPath
	}
	res := f.do(change.Op{Action: delegation.UserCreate, User: &in})
	return f.getUser(res.Target.ID)
}

func (f *fixture) getUser(key string) directory.User {
	f.t.Helper()
	u, err := f.st.User(f.ctx, directory.ParseRef(directory.KindUser, key))
	if err != nil {
		f.t.Fatalf("read user %s: %v", key, err)
	}
	return u
}

// mkGroup creates a group in ou ("" for the root) owned by owners.
func (f *fixture) mkGroup(name, ou string, owners ...string) directory.Group {
	f.t.Helper()
	if ou == "" {
		ou = directory.RootPath
	}
	res := f.do(change.Op{Action: delegation.GroupCreate, Group: &directory.GroupInput{Name: name, OU: ou, Owners: owners}})
	return f.getGroup(res.Target.ID)
}

func (f *fixture) getGroup(key string) directory.Group {
	f.t.Helper()
	g, err := f.st.Group(f.ctx, directory.ParseRef(directory.KindGroup, key))
	if err != nil {
		f.t.Fatalf("read group %s: %v", key, err)
	}
	return g
}

// mkSA creates a service account in the root OU owned by owners.
func (f *fixture) mkSA(name string, owners ...string) directory.ServiceAccount {
	f.t.Helper()
	res := f.do(change.Op{Action: delegation.SACreate,
		Service: &directory.ServiceAccountInput{Name: name, OU: directory.RootPath, Owners: owners}})
	return f.getSA(res.Target.ID)
}

func (f *fixture) getSA(key string) directory.ServiceAccount {
	f.t.Helper()
	s, err := f.st.ServiceAccount(f.ctx, directory.ParseRef(directory.KindServiceAccount, key))
	if err != nil {
		f.t.Fatalf("read service account %s: %v", key, err)
	}
	return s
}

// addMember nests or adds member into group.
func (f *fixture) addMember(group, member string) change.Result {
	f.t.Helper()
	return f.do(change.Op{Action: delegation.GroupAddMember, Target: directory.ParseRef(directory.KindGroup, group), Member: member})
}

// patch builds a merge patch from a map of JSON-encodable values.
func patch(t *testing.T, m map[string]any) directory.Patch {
	t.Helper()
	p := directory.Patch{}
	for k, v := range m {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("encode patch value %s: %v", k, err)
		}
		p[k] = b
	}
	return p
}

// userRef, groupRef, saRef and ouRef build references by ID or name.
func userRef(key string) directory.Ref  { return directory.ParseRef(directory.KindUser, key) }
func groupRef(key string) directory.Ref { return directory.ParseRef(directory.KindGroup, key) }
func saRef(key string) directory.Ref    { return directory.ParseRef(directory.KindServiceAccount, key) }
func ouRef(key string) directory.Ref    { return directory.ParseRef(directory.KindOU, key) }

// allUsers lists every user matching the filter text (parsed against UserSchema).
func (f *fixture) allUsers(filterText string) []directory.User {
	f.t.Helper()
	var out []directory.User
	q := directory.ListQuery{Filter: f.parse(filterText, directory.UserSchema), Limit: directory.MaxLimit}
	for {
		page, err := f.st.ListUsers(f.ctx, q)
		if err != nil {
			f.t.Fatalf("list users %q: %v", filterText, err)
		}
		out = append(out, page.Items...)
		if page.Next == "" {
			return out
		}
		q.Cursor = page.Next
	}
}

func (f *fixture) parse(text string, schema filter.Schema) filter.Expr {
	f.t.Helper()
	e, err := filter.Parse(text, schema)
	if err != nil {
		f.t.Fatalf("parse filter %q: %v", text, err)
	}
	return e
}

// events returns the whole audit trail in index order.
func (f *fixture) events() []audit.Event {
	f.t.Helper()
	var all []audit.Event
	q := audit.Query{Limit: directory.MaxLimit}
	for {
		page, next, err := f.st.Events(f.ctx, q)
		if err != nil {
			f.t.Fatalf("read audit events: %v", err)
		}
		all = append(all, page...)
		if next == 0 {
			break
		}
		q.Before = next
	}
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	return all
}

// lastEvent returns the newest audit event.
func (f *fixture) lastEvent() audit.Event {
	f.t.Helper()
	evs, _, err := f.st.Events(f.ctx, audit.Query{Limit: 1})
	if err != nil || len(evs) != 1 {
		f.t.Fatalf("read the last audit event: %d events, %v", len(evs), err)
	}
	return evs[0]
}

// wantErr checks that err matches target with errors.Is and, for a conflict or invalid input,
// that it names field ("" skips that check).
func wantErr(t *testing.T, err, target error, field string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want one matching %v", err, target)
	}
	if field == "" {
		return
	}
	var ce *directory.ConflictError
	var fe directory.FieldErrors
	switch {
	case errors.As(err, &ce):
		if ce.Field != field {
			t.Fatalf("conflict names field %q, want %q (%v)", ce.Field, field, err)
		}
	case errors.As(err, &fe):
		for _, e := range fe {
			if e.Field == field {
				return
			}
		}
		t.Fatalf("field errors %v do not name %q", fe, field)
	default:
		t.Fatalf("error %v names no field, want %q", err, field)
	}
}

// snapshot is the observable state of a database, to show that a refused change left it as it was.
type snapshot struct {
	OUs    []directory.OU
	Users  []directory.User
	Groups []directory.Group
	SAs    []directory.ServiceAccount
	Events int
}

func (f *fixture) snapshot() snapshot {
	f.t.Helper()
	q := directory.ListQuery{Limit: directory.MaxLimit}
	ous, err := f.st.ListOUs(f.ctx, q)
	if err != nil {
		f.t.Fatalf("list OUs: %v", err)
	}
	groups, err := f.st.ListGroups(f.ctx, q)
	if err != nil {
		f.t.Fatalf("list groups: %v", err)
	}
	sas, err := f.st.ListServiceAccounts(f.ctx, q)
	if err != nil {
		f.t.Fatalf("list service accounts: %v", err)
	}
	return snapshot{OUs: ous.Items, Users: f.allUsers(""), Groups: groups.Items, SAs: sas.Items, Events: len(f.events())}
}

// unchanged fails the test unless the directory is as in before and exactly one event (the
// refused attempt) was added.
func (f *fixture) unchanged(before snapshot) {
	f.t.Helper()
	after := f.snapshot()
	if after.Events != before.Events+1 {
		f.t.Errorf("audit trail grew from %d to %d events, want one more (the refused attempt)", before.Events, after.Events)
	}
	after.Events = before.Events
	a, _ := json.Marshal(after)
	b, _ := json.Marshal(before)
	if string(a) != string(b) {
		f.t.Errorf("a refused change altered the directory:\nbefore %s\nafter  %s", b, a)
	}
}

func testBootstrap(t *testing.T, f *fixture) {
	root := f.getOU(directory.Ref{Kind: directory.KindOU})
	if root.ParentID != "" || root.Path != "" || root.DisplayPath() != "/" || !root.Protected {
		t.Errorf("root OU = %+v", root)
	}
	if got := f.getOU(ouRef("/")); got.ID != root.ID {
		t.Errorf("OU \"/\" is %s, want the root %s", got.ID, root.ID)
	}
	admin := f.getUser(AdminName)
	if admin.ID != f.admin.ID || !admin.Protected || admin.Status != directory.StatusActive || admin.OUPath != "/" {
		t.Errorf("admin = %+v", admin)
	}
	_, err := f.p.Bootstrap(f.ctx, f.meta, "second")
	if !errors.Is(err, change.ErrInitialized) {
		t.Errorf("second bootstrap: %v, want ErrInitialized", err)
	}
	if _, err := f.st.User(f.ctx, userRef("second")); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("user of the refused bootstrap: %v, want ErrNotFound", err)
	}
	for i, e := range f.events() {
		if e.Outcome != audit.Applied || e.Authority.Rule != "bootstrap" || e.Actor.ID != "system:bootstrap" {
			t.Errorf("bootstrap event %d = %+v", i, e)
		}
	}
}

func testSchemaVersion(t *testing.T, f *fixture) {
	v, err := f.st.SchemaVersion(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v < 1 {
		t.Errorf("SchemaVersion = %d, want at least 1", v)
	}
}
