package delegation_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/store"
	"github.com/deputy-iam/deputy/internal/store/storetest"
)

// standardOrg returns a world of its own (a copy of one SQLite database, built once through the
// pipeline) holding the organisation the table tests run in:
//
//	/                   admin (bootstrapped, protected, tier-0)
//	corp/eng            helen, eve, gina, oscar, ivan
//	corp/hr             hank
//	corp/sales          mia, sam (reports to mia), rita, pat (protected), root2 (tier-0), tom
//	corp/sales/vip      sue
//	corp/sales/emea     (empty)
//	ext                 xena
//
// Groups: crm-users {sam, crm-power{sue}}; admins (protected, owned by gina) {pat};
// t0-group (owned by gina, holds tier-0) {tom, t0-sub (owned by gina)}; it-helpdesk (owned by
// gina) {ivan, hd-sub (owned by gina)}; project (owned by gina) {eve}; eng-all {gina, eve}.
// Service accounts: ci-bot (corp/eng, owned by oscar), sales-bot (corp/sales, owned by mia).
// Nobody but root2, the members of t0-group and the admin holds anything: each test grants what
// it needs.
func standardOrg(t *testing.T) *world {
	t.Helper()
	standard.once.Do(func() { buildStandard(t) })
	if standard.db == nil {
		t.Fatal("the standard organisation could not be built: see the first test that tried")
	}
	// Each test gets its own copy of the database, with an engine loaded from it as at start.
	path := storetest.SQLiteDSN(t)
	if err := os.WriteFile(path, standard.db, 0o600); err != nil {
		t.Fatal(err)
	}
	return reopenWorld(t, storetest.Open(t, path), standard.admin, standard.at)
}

// standard is the standard organisation's database, built once through the pipeline and
// copied for each test.
var standard struct {
	once  sync.Once
	db    []byte
	admin delegation.Actor
	at    time.Time // the clock's reading after it was built
}

func buildStandard(t *testing.T) {
	path := filepath.Join(t.TempDir(), "standard.db")
	st, err := store.Open(context.Background(), path, storetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, st)
	for _, ou := range []string{"corp", "corp/sales", "corp/sales/vip", "corp/sales/emea", "corp/eng", "corp/hr", "ext"} {
		w.mkOU(ou)
	}
	for _, in := range []directory.UserInput{
		{Username: "helen", OU: "corp/eng", Department: "IT"},
		{Username: "hank", OU: "corp/hr", Department: "HR"},
		{Username: "mia", OU: "corp/sales", Department: "Sales"},
		{Username: "sam", OU: "corp/sales", Department: "Sales", Manager: "mia", Phone: "+1 555 0100"},
		{Username: "sue", OU: "corp/sales/vip", Department: "Sales"},
		{Username: "eve", OU: "corp/eng", Department: "Engineering"},
		{Username: "gina", OU: "corp/eng", Department: "Engineering"},
		{Username: "oscar", OU: "corp/eng", Department: "Engineering"},
		{Username: "ivan", OU: "corp/eng", Department: "IT"},
		{Username: "rita", OU: "corp/sales", Department: "Sales"},
		{Username: "pat", OU: "corp/sales", Department: "Sales", Protected: true},
		{Username: "root2", OU: "corp/sales", Department: "Sales"},
		{Username: "tom", OU: "corp/sales", Department: "Sales"},
		{Username: "xena", OU: "ext", Department: "Sales"},
	} {
		w.mkUser(in)
	}
	w.mkGroup(directory.GroupInput{Name: "crm-power", OU: "corp/sales"}, "user:sue")
	w.mkGroup(directory.GroupInput{Name: "crm-users", OU: "corp/sales"}, "user:sam", "group:crm-power")
	w.mkGroup(directory.GroupInput{Name: "admins", OU: "corp/eng", Owners: []string{"gina"}, Protected: true}, "user:pat")
	w.mkGroup(directory.GroupInput{Name: "t0-sub", OU: "corp/eng", Owners: []string{"gina"}})
	w.mkGroup(directory.GroupInput{Name: "t0-group", OU: "corp/eng", Owners: []string{"gina"}}, "user:tom", "group:t0-sub")
	w.mkGroup(directory.GroupInput{Name: "hd-sub", OU: "corp/eng", Owners: []string{"gina"}})
	w.mkGroup(directory.GroupInput{Name: "it-helpdesk", OU: "corp/eng", Owners: []string{"gina"}}, "user:ivan", "group:hd-sub")
	w.mkGroup(directory.GroupInput{Name: "project", OU: "corp/eng", Owners: []string{"gina"}}, "user:eve")
	w.mkGroup(directory.GroupInput{Name: "eng-all", OU: "corp/eng"}, "user:gina", "user:eve")
	w.mkSA("ci-bot", "corp/eng", "oscar")
	w.mkSA("sales-bot", "corp/sales", "mia")
	w.grant(asg(delegation.RoleTier0, "user:root2", subtree("/")))
	w.grant(asg(delegation.RoleTier0, "group:t0-group", subtree("/")))
	if err := st.Close(); err != nil { // checkpoints the WAL into the file
		t.Fatal(err)
	}
	db, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	standard.db, standard.admin, standard.at = db, w.admin, w.clk.Peek()
}

// row is one case of a table test: grants and setup made by the admin in a fresh standard
// organisation, then either an op submitted by actor, or a question (action on the object of
// kind called target) asked of the engine for actor. want is "" for an allow, else the reason
// code of the denial.
type row struct {
	name   string
	grants []delegation.AssignmentInput
	setup  func(w *world)
	actor  string
	op     func(w *world) change.Op
	action delegation.Action
	kind   directory.Kind
	target string
	want   string
}

func runRows(t *testing.T, rows []row) {
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			w := standardOrg(t)
			for _, g := range r.grants {
				w.grant(g)
			}
			if r.setup != nil {
				r.setup(w)
			}
			if r.op == nil {
				wantDecision(t, w.ask(r.actor, r.action, r.kind, r.target), r.want)
				return
			}
			res, err := w.submit(r.actor, r.op(w))
			wantReason(t, err, r.want)
			want := audit.Applied
			if r.want != "" {
				want = audit.Denied
			}
			if res.Outcome != want {
				t.Fatalf("outcome %s, want %s", res.Outcome, want)
			}
			// The attempt is in the audit trail, with the reason of a denial.
			evs, _, err := w.st.Events(w.ctx, audit.Query{Limit: 1})
			if err != nil || len(evs) != 1 {
				t.Fatalf("last event: %v, %v", evs, err)
			}
			if e := evs[0]; e.Outcome != want || e.Reason != r.want || e.Actor.Name != r.actor {
				t.Fatalf("last event: outcome %s, reason %q, actor %s; want %s, %q, %s", e.Outcome, e.Reason, e.Actor.Name,
					want, r.want, r.actor)
			}
		})
	}
}

// Shorthands for rows.

func opFn(op change.Op) func(*world) change.Op { return func(*world) change.Op { return op } }

func roleCreate(name string, attrs []string, actions ...delegation.Action) func(w *world) {
	return func(w *world) {
		w.do(change.Op{Action: delegation.RoleCreate, Role: &delegation.RoleInput{Name: name, Actions: actions, UserAttributes: attrs}})
	}
}

func both(fs ...func(w *world)) func(w *world) {
	return func(w *world) {
		for _, f := range fs {
			f(w)
		}
	}
}

func adminDoes(op change.Op) func(w *world) { return func(w *world) { w.do(op) } }
