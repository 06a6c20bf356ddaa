package lifecycle_test

import (
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/lifecycle"
	"github.com/deputy-iam/deputy/internal/store"
	"github.com/deputy-iam/deputy/internal/store/storetest"
)

// orgDir is the shared test organisation; tests that read it skip when it is absent (a user's
// clone has no ../shared).
const orgDir = "../../../shared/data/org-1k"

func needOrg(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(orgDir, "hr-day1.csv")); err != nil {
		t.Skipf("shared test data not found at %s (a clone without ../shared): %v", orgDir, err)
	}
}

// org is a directory set up for the test rules, with the pipeline and the admin.
type org struct {
	t     testing.TB
	ctx   context.Context
	st    *store.Store
	p     *change.Pipeline
	admin delegation.Actor
	rules *lifecycle.RuleSet
}

func newOrg(t testing.TB, dsn string) *org {
	t.Helper()
	st := storetest.Open(t, dsn)
	env := storetest.Bootstrap(t, st)
	b, err := os.ReadFile("testdata/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := lifecycle.ParseRules(b)
	if err != nil {
		t.Fatal(err)
	}
	o := &org{t: t, ctx: context.Background(), st: st, p: env.Pipeline, admin: env.Admin, rules: &rules}
	_ = errors.Is
	if err := env.Pipeline.InstallDefaultPolicies(o.ctx); err != nil { // lifecycle is not gated by them
		t.Fatal(err)
	}
	ops := lifecycle.SetupOps(&rules, lifecycle.Existing{
		OU: func(p string) bool {
			_, err := st.OU(o.ctx, directory.ParseRef(directory.KindOU, p))
			return err == nil
		},
		Group: func(n string) bool {
			_, err := st.ResolveMember(o.ctx, directory.ParseRef(directory.KindGroup, n))
			return err == nil
		},
		Role:       func(string) ([]delegation.Action, bool) { return nil, false },
		Assignment: func(string) bool { return false },
	})
	for _, op := range ops {
		if _, err := env.Pipeline.Submit(o.ctx, env.Admin, change.Meta{Transport: audit.TransportCLI}, op); err != nil {
			t.Fatalf("setup %s %v: %v", op.Action, op.Target, err)
		}
	}
	return o
}

func (o *org) feed(name string) lifecycle.Feed {
	o.t.Helper()
	f, err := os.Open(filepath.Join(orgDir, name))
	if err != nil {
		o.t.Fatal(err)
	}
	defer f.Close()
	feed, err := lifecycle.ParseCSV(f, lifecycle.DefaultMapping())
	if err != nil {
		o.t.Fatal(err)
	}
	return feed
}

func (o *org) importFeed(feed lifecycle.Feed, today string, opt lifecycle.ImportOptions) (*lifecycle.Run, *lifecycle.Plan, error) {
	o.t.Helper()
	d, err := time.Parse(time.DateOnly, today)
	if err != nil {
		o.t.Fatal(err)
	}
	opt.Today = d
	return lifecycle.Import(o.ctx, o.st, o.p, o.rules, feed, opt)
}

func (o *org) residual() []lifecycle.Residual {
	o.t.Helper()
	r, err := o.st.ResidualAccess(o.ctx, time.Now())
	if err != nil {
		o.t.Fatal(err)
	}
	return r
}

// TestOrgDays imports day 1 of org-1k, then day 2, and checks: every person's change against
// hr-day2-expected.csv, the residual-access report empty after each day, a second import of
// the same feed changing nothing, and each op's authority naming its rule and run.
func TestOrgDays(t *testing.T) {
	needOrg(t)
	forEngines(t, func(t *testing.T, dsn string) {
		o := newOrg(t, dsn)
		day1 := o.feed("hr-day1.csv")
		run, plan, err := o.importFeed(day1, "2026-11-26", lifecycle.ImportOptions{Source: "hr-day1.csv"})
		if err != nil {
			t.Fatal(err)
		}
		if len(run.Failed) > 0 {
			t.Fatalf("day 1: %d people failed, first: %+v", len(run.Failed), run.Failed[0])
		}
		if plan.Totals[lifecycle.KindJoiner] != 1000 || run.Applied != 1000 {
			t.Fatalf("day 1: totals %v, applied %d", plan.Totals, run.Applied)
		}
		if r := o.residual(); len(r) != 0 {
			t.Fatalf("residual access after day 1: %v", r)
		}
		// Every joiner with a manager has an activation link, sent to the manager only.
		withManager := 0
		for _, pp := range plan.People {
			if pp.Manager != "" {
				withManager++
			}
		}
		msgs, err := o.st.Outbox(o.ctx, "notify", 0, 100000)
		if err != nil {
			t.Fatal(err)
		}
		links := 0
		for _, m := range msgs {
			if p := string(m.Payload); strings.Contains(p, "account_activation") {
				if links++; !strings.Contains(p, "/activate?user=") {
					t.Fatalf("an activation without its link: %s", p)
				}
			}
		}
		if withManager == 0 || links != withManager {
			t.Fatalf("day 1: %d activation links for %d joiners with a manager", links, withManager)
		}
		// The same feed again changes nothing.
		run2, plan2, err := o.importFeed(day1, "2026-11-26", lifecycle.ImportOptions{Source: "hr-day1.csv"})
		if err != nil || plan2.Ops != 0 || run2.Applied != 0 {
			t.Fatalf("day 1 again: %d ops (%v), %v", plan2.Ops, firstOps(plan2), err)
		}

		// A mover's access granted by hand stays, and their new manager is asked to review it.
		mover := o.account("E000034")
		meta := change.Meta{Transport: audit.TransportCLI}
		if _, err := o.p.Submit(o.ctx, o.admin, meta, change.Op{Action: delegation.GroupCreate,
			Group: &directory.GroupInput{Name: "project-x", OU: "corp"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := o.p.Submit(o.ctx, o.admin, meta, change.Op{Action: delegation.GroupAddMember,
			Target: directory.ParseRef(directory.KindGroup, "project-x"), Member: "user:" + mover.Username}); err != nil {
			t.Fatal(err)
		}

		day2 := o.feed("hr-day2.csv")
		run, plan, err = o.importFeed(day2, "2026-11-27", lifecycle.ImportOptions{Source: "hr-day2.csv"})
		if err != nil {
			t.Fatal(err)
		}
		if len(run.Failed) > 0 {
			t.Fatalf("day 2: %d people failed, first: %+v", len(run.Failed), run.Failed[0])
		}
		expected := readExpected(t)
		got := map[string]string{}
		for _, pp := range plan.People {
			if pp.Kind != lifecycle.KindUnchanged {
				got[pp.EmployeeID] = pp.Kind
			}
		}
		for id, want := range expected {
			if got[id] != want {
				t.Errorf("%s: planned %q, expected %q", id, got[id], want)
			}
		}
		for id, kind := range got {
			if _, ok := expected[id]; !ok {
				t.Errorf("%s: planned %q, expected no change", id, kind)
			}
		}
		if r := o.residual(); len(r) != 0 {
			t.Fatalf("residual access after day 2: %v", r)
		}
		if held := o.account("E000034").Groups; !slices.ContainsFunc(held, func(h lifecycle.Held) bool { return h.Group.Name == "project-x" }) {
			t.Fatalf("the mover lost access granted by hand: %v", held)
		}
		msgs, err = o.st.Outbox(o.ctx, "notify", 0, 100000)
		if err != nil || !slices.ContainsFunc(msgs, func(m store.OutboxMessage) bool {
			return strings.Contains(string(m.Payload), "lifecycle_review") && strings.Contains(string(m.Payload), "project-x")
		}) {
			t.Fatalf("no review notification for the mover's kept access (%d messages, %v)", len(msgs), err)
		}
		if _, plan2, err := o.importFeed(day2, "2026-11-27", lifecycle.ImportOptions{}); err != nil || plan2.Ops != 0 {
			t.Fatalf("day 2 again: %d ops (%v), %v", plan2.Ops, firstOps(plan2), err)
		}
		// Every lifecycle op names its run, and birthright ops their rule.
		evs, _, err := o.st.Events(o.ctx, audit.Query{Authority: run.ID, Limit: directory.MaxLimit})
		if err != nil || len(evs) == 0 {
			t.Fatalf("events of the day 2 run: %d, %v", len(evs), err)
		}
		rules := 0
		for _, ev := range evs {
			if ev.Authority.Run != run.ID || ev.Actor.ID != lifecycle.Actor.ID || ev.Transport != audit.TransportLifecycle {
				t.Fatalf("event %d: %+v", ev.Index, ev)
			}
			if ev.Authority.LifecycleRule != "" {
				rules++
			}
		}
		if rules == 0 {
			t.Fatal("no day 2 event names a lifecycle rule")
		}
	})
}

func firstOps(p *lifecycle.Plan) []string {
	var out []string
	for _, pp := range p.People {
		for _, o := range pp.Ops {
			out = append(out, pp.EmployeeID+": "+o.Why)
			if len(out) == 5 {
				return out
			}
		}
	}
	return out
}

func readExpected(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(orgDir, "hr-day2-expected.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range recs[1:] {
		out[r[0]] = strings.TrimSpace(r[1])
	}
	return out
}

// forEngines runs fn on SQLite and, when configured, PostgreSQL.
func forEngines(t *testing.T, fn func(t *testing.T, dsn string)) {
	for _, e := range []struct {
		name string
		dsn  func(testing.TB) string
	}{{"sqlite", storetest.SQLiteDSN}, {"postgres", storetest.PostgresDSN}} {
		t.Run(e.name, func(t *testing.T) { fn(t, e.dsn(t)) })
	}
}

// TestFeedSafety: a feed with bad rows applies nothing unless told to skip them; a feed that
// would disable too many stops; an empty feed changes nothing.
func TestFeedSafety(t *testing.T) {
	needOrg(t)
	o := newOrg(t, storetest.SQLiteDSN(t))
	broken := o.feed("hr-broken.csv")
	if len(broken.Problems) != 10 {
		t.Fatalf("hr-broken.csv: %d problems", len(broken.Problems))
	}
	run, _, err := o.importFeed(broken, "2026-11-26", lifecycle.ImportOptions{})
	if !errors.Is(err, lifecycle.ErrStopped) || run.Applied != 0 {
		t.Fatalf("broken feed: %v, %+v", err, run)
	}
	if n := o.users(); n != 1 {
		t.Fatalf("a broken feed created %d users", n-1)
	}
	run, _, err = o.importFeed(broken, "2026-11-26", lifecycle.ImportOptions{SkipInvalid: true})
	if err != nil || run.Applied != 20 {
		t.Fatalf("--skip-invalid: %v, applied %d", err, run.Applied)
	}
	// Everyone terminated at once is a mass change.
	valid := o.feed("hr-broken.csv").People
	for i := range valid {
		valid[i].Status, valid[i].EndDate = "terminated", time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	}
	run, plan, err := o.importFeed(lifecycle.Feed{People: valid}, "2026-11-27", lifecycle.ImportOptions{})
	if !errors.Is(err, lifecycle.ErrStopped) || run.Applied != 0 || plan.Disables != 20 {
		t.Fatalf("mass leave: %v, %+v", err, run)
	}
	// An empty feed leaves everyone alone.
	_, plan, err = o.importFeed(lifecycle.Feed{}, "2026-11-27", lifecycle.ImportOptions{})
	if err != nil || plan.Ops != 0 || plan.Missing != 20 {
		t.Fatalf("empty feed: %v, %d ops, %d missing", err, plan.Ops, plan.Missing)
	}
}

func (o *org) account(employeeID string) *lifecycle.Account {
	o.t.Helper()
	cur, err := o.st.LifecycleCurrent(o.ctx)
	if err != nil || cur.Accounts[employeeID] == nil {
		o.t.Fatalf("account %s: %v", employeeID, err)
	}
	return cur.Accounts[employeeID]
}

func (o *org) users() int {
	o.t.Helper()
	n, err := o.st.Count(o.ctx, directory.KindUser, directory.ListQuery{})
	if err != nil {
		o.t.Fatal(err)
	}
	return n
}

// stopAfter is an Applier that applies the first n transactions and then fails, as a run killed
// half-way.
type stopAfter struct {
	next lifecycle.Applier
	n    int
}

func (s *stopAfter) SubmitEach(ctx context.Context, actor delegation.Actor, meta change.Meta, b [][]change.Op) ([]change.BatchResult, error) {
	if s.n == 0 {
		return nil, errors.New("killed")
	}
	s.n--
	return s.next.SubmitEach(ctx, actor, meta, b)
}

// TestInterruptedRun: a run that dies half-way, then runs again, ends where one whole run does.
func TestInterruptedRun(t *testing.T) {
	needOrg(t)
	o := newOrg(t, storetest.SQLiteDSN(t))
	day1 := o.feed("hr-day1.csv")
	today, _ := time.Parse(time.DateOnly, "2026-11-26")
	_, _, err := lifecycle.Import(o.ctx, o.st, &stopAfter{next: o.p, n: 1}, o.rules, day1,
		lifecycle.ImportOptions{Today: today, PeoplePerTx: 300})
	if err == nil || o.users() != 301 {
		t.Fatalf("killed run: %v, %d users", err, o.users())
	}
	run, plan, err := o.importFeed(day1, "2026-11-26", lifecycle.ImportOptions{})
	if err != nil || len(run.Failed) > 0 || plan.Totals[lifecycle.KindJoiner] != 700 || o.users() != 1001 {
		t.Fatalf("the run again: %v, %v, %d users", err, plan.Totals, o.users())
	}
	if _, plan, _ := o.importFeed(day1, "2026-11-26", lifecycle.ImportOptions{}); plan.Ops != 0 {
		t.Fatalf("a third time: %d ops", plan.Ops)
	}
}

// TestRecompute: after day 2, a rule change applies to everyone at the next recompute, and the
// day's leavers are deleted once their retention is over; a rehire comes back as the same user.
func TestRecompute(t *testing.T) {
	needOrg(t)
	o := newOrg(t, storetest.SQLiteDSN(t))
	svc := &lifecycle.Service{Store: o.st, Applier: o.p, Config: o.p}
	rulesDoc, _ := os.ReadFile("testdata/rules.yaml")
	rules, _ := lifecycle.ParseRules(rulesDoc)
	if _, _, err := svc.Recompute(o.ctx, lifecycle.ImportOptions{}); !errors.Is(err, lifecycle.ErrNoRules) {
		t.Fatalf("recompute without rules: %v", err)
	}
	if err := svc.SetRules(o.ctx, o.admin, change.Meta{Transport: audit.TransportCLI}, rules); err != nil {
		t.Fatal(err)
	}
	d1, _ := time.Parse(time.DateOnly, "2026-11-26")
	d2, _ := time.Parse(time.DateOnly, "2026-11-27")
	if _, _, err := svc.Import(o.ctx, o.feed("hr-day1.csv"), lifecycle.ImportOptions{Today: d1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Import(o.ctx, o.feed("hr-day2.csv"), lifecycle.ImportOptions{Today: d2}); err != nil {
		t.Fatal(err)
	}
	// The contractors rule goes: its group is taken back from every contractor.
	rules.Rules = slicesDelete(rules.Rules, "contractors")
	if err := svc.SetRules(o.ctx, o.admin, change.Meta{Transport: audit.TransportCLI}, rules); err != nil {
		t.Fatal(err)
	}
	run, plan, err := svc.Recompute(o.ctx, lifecycle.ImportOptions{Today: d2})
	if err != nil || len(run.Failed) > 0 || plan.Totals[lifecycle.KindUpdate] < 60 {
		t.Fatalf("recompute: %v, %v, failed %v", err, plan.Totals, run.Failed)
	}
	members, err := o.st.Members(o.ctx, directory.ParseRef(directory.KindGroup, "contractors"), directory.ListQuery{Limit: 10})
	if err != nil || len(members.Items) != 0 {
		t.Fatalf("contractors after the rule went: %v, %v", members.Items, err)
	}
	// 30 days after day 2 the leavers are deleted.
	run, plan, err = svc.Recompute(o.ctx, lifecycle.ImportOptions{Today: d2.AddDate(0, 0, 30), AllowMassChange: true})
	if err != nil || plan.Totals[lifecycle.KindDelete] != 11 || len(run.Failed) > 0 {
		t.Fatalf("retention: %v, %v, %v", err, plan.Totals, run.Failed)
	}
	if r, _ := o.st.ResidualAccess(o.ctx, time.Now()); len(r) != 0 {
		t.Fatalf("residual after retention: %v", r)
	}
}

func slicesDelete(rs []lifecycle.Rule, name string) []lifecycle.Rule {
	out := rs[:0:0]
	for _, r := range rs {
		if r.Name != name {
			out = append(out, r)
		}
	}
	return out
}

// TestRehire: a leaver who comes back is the same user again, enabled, with their birthright.
func TestRehire(t *testing.T) {
	needOrg(t)
	o := newOrg(t, storetest.SQLiteDSN(t))
	if _, _, err := o.importFeed(o.feed("hr-day1.csv"), "2026-11-26", lifecycle.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	day2 := o.feed("hr-day2.csv")
	if _, _, err := o.importFeed(day2, "2026-11-27", lifecycle.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	var leaver *lifecycle.Person
	for i := range day2.People {
		if day2.People[i].Status == "terminated" {
			leaver = &day2.People[i]
			break
		}
	}
	before := o.account(leaver.EmployeeID)
	if before.Status != directory.StatusDisabled || len(before.Groups) != 0 || before.Attributes[lifecycle.AttrLeftAt] == "" {
		t.Fatalf("the leaver after day 2: %+v", before)
	}
	leaver.Status, leaver.EndDate = "active", time.Time{}
	run, plan, err := o.importFeed(day2, "2026-12-01", lifecycle.ImportOptions{})
	if err != nil || len(run.Failed) > 0 || plan.Totals[lifecycle.KindRehire] != 1 {
		t.Fatalf("rehire: %v, %v, %v", err, plan.Totals, run.Failed)
	}
	after := o.account(leaver.EmployeeID)
	if after.UserID != before.UserID || after.Status != directory.StatusActive || len(after.Groups) == 0 ||
		after.Attributes[lifecycle.AttrLeftAt] != "" {
		t.Fatalf("the rehire: %+v", after)
	}
	if r := o.residual(); len(r) != 0 {
		t.Fatalf("residual after the rehire: %v", r)
	}
}

// TestLifecycleBounds: system:lifecycle cannot touch a protected user (that person's changes
// fail, the others apply), and a leaver's groups go to the configured steward.
func TestLifecycleBounds(t *testing.T) {
	needOrg(t)
	o := newOrg(t, storetest.SQLiteDSN(t))
	if _, _, err := o.importFeed(o.feed("hr-day1.csv"), "2026-11-26", lifecycle.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	meta := change.Meta{Transport: audit.TransportCLI}
	day2 := o.feed("hr-day2.csv")
	var leaver, mover string
	for _, p := range day2.People {
		if p.Status == "terminated" && leaver == "" {
			leaver = p.EmployeeID
		}
	}
	mover = "E000034" // a mover on day 2
	protect := o.account(mover)
	if _, err := o.p.Submit(o.ctx, o.admin, meta, change.Op{Action: delegation.UserUpdate,
		Target: directory.Ref{Kind: directory.KindUser, ID: protect.UserID}, Patch: directory.Patch{"protected": []byte("true")}}); err != nil {
		t.Fatal(err)
	}
	gone := o.account(leaver)
	if _, err := o.p.Submit(o.ctx, o.admin, meta, change.Op{Action: delegation.GroupCreate,
		Group: &directory.GroupInput{Name: "leavers-team", OU: "corp", Owners: []string{gone.Username}}}); err != nil {
		t.Fatal(err)
	}
	o.rules.Steward = storetest.AdminName
	run, _, err := o.importFeed(day2, "2026-11-27", lifecycle.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Failed) != 1 || run.Failed[0].EmployeeID != mover || run.Failed[0].Reason != delegation.ReasonProtected {
		t.Fatalf("failures: %+v", run.Failed)
	}
	if a := o.account(mover); a.Department != protect.Department {
		t.Fatalf("the protected mover changed: %s -> %s", protect.Department, a.Department)
	}
	g, err := o.st.Group(o.ctx, directory.ParseRef(directory.KindGroup, "leavers-team"))
	if err != nil || len(g.Owners) != 1 || g.Owners[0].Name != storetest.AdminName {
		t.Fatalf("leavers-team owners after the leaver: %+v, %v", g.Owners, err)
	}
	if r := o.residual(); len(r) != 0 {
		t.Fatalf("residual: %v", r)
	}
}
