package change_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/approval"
	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/store/storetest"
)

// gated is a directory with an approval policy on a privileged group: adding a member to
// "payroll-admins" (which holds an assignment) needs one of its owners, bob or erin. alice is a
// helpdesk agent who may manage memberships under corp; carol is the user she adds.
type gated struct {
	*world
	clock                         *fakeClock
	alice, bob, erin, carol, dave delegation.Actor
	group                         directory.Ref
	gate                          *approval.Gate
}

type fakeClock struct{ now atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.now.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.now.Add(int64(d)) }

func newGated(t *testing.T, e engine, policy approval.Policy) *gated {
	t.Helper()
	clock := &fakeClock{}
	clock.now.Store(time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC).UnixNano())
	dsn := e.dsn(t)
	st := storetest.Open(t, dsn)
	env := storetest.Bootstrap(t, st, change.WithClock(clock.Now))
	w := &world{t: t, ctx: context.Background(), dsn: dsn, st: st, p: env.Pipeline, admin: env.Admin,
		meta: change.Meta{Transport: audit.TransportAPI}}
	g := &gated{world: w, clock: clock, gate: env.Gate}
	w.do(change.Op{Action: delegation.OUCreate, OU: &directory.OUInput{Name: "corp", Parent: directory.RootPath}})
	for _, p := range []struct {
		name string
		into *delegation.Actor
	}{{"alice", &g.alice}, {"bob", &g.bob}, {"erin", &g.erin}, {"carol", &g.carol}, {"dave", &g.dave}} {
		w.do(change.Op{Action: delegation.UserCreate, User: &directory.UserInput{Username: p.name, OU: "corp"}})
		u, err := st.User(w.ctx, directory.ParseRef(directory.KindUser, p.name))
		if err != nil {
			t.Fatal(err)
		}
		*p.into = storetest.ActorOf(u)
	}
	res := w.do(change.Op{Action: delegation.GroupCreate, Group: &directory.GroupInput{Name: "payroll-admins", OU: "corp",
		Owners: []string{"bob", "erin"}}})
	g.group = res.Target
	w.do(change.Op{Action: delegation.RoleCreate, Role: &delegation.RoleInput{Name: "membership-desk",
		Actions: []delegation.Action{delegation.GroupAddMember, delegation.GroupRemoveMember, delegation.DirectoryRead}}})
	w.do(change.Op{Action: delegation.RoleAssign, Assignment: &delegation.AssignmentInput{Role: "membership-desk",
		Holder: delegation.HolderInput{User: "alice"}, Scope: delegation.ScopeInput{OU: "corp"}, Justification: "helpdesk"}})
	w.do(change.Op{Action: delegation.RoleAssign, Assignment: &delegation.AssignmentInput{Role: delegation.RoleReader,
		Holder: delegation.HolderInput{Group: "payroll-admins"}, Scope: delegation.ScopeInput{OU: "corp"}, Justification: "payroll"}})
	if _, err := w.p.CreatePolicy(w.ctx, w.admin, w.meta, policy); err != nil {
		t.Fatal(err)
	}
	return g
}

// ownersPolicy gates memberships of groups that hold assignments on one owner's approval.
func ownersPolicy() approval.Policy {
	yes := true
	return approval.Policy{Name: "privileged", Actions: []delegation.Action{delegation.GroupAddMember},
		When:   approval.Predicate{HoldsAssignments: &yes},
		Stages: []approval.Stage{{Approvers: []approval.Approver{{Kind: approval.ApproverOwners}}}}}
}

// addCarol submits alice's request to add carol to the group and returns the request's ID.
func (g *gated) addCarol() string {
	g.t.Helper()
	res, err := g.p.Submit(g.ctx, g.alice, g.meta, change.Op{Action: delegation.GroupAddMember, Target: g.group,
		Member: "user:carol", Justification: "carol runs payroll from Monday"})
	var pending *change.PendingError
	if !errors.As(err, &pending) || res.Outcome != audit.Pending || res.Request == "" || pending.Request != res.Request {
		g.t.Fatalf("add carol: want pending, got %+v, %v", res, err)
	}
	return res.Request
}

func (g *gated) isMember(who delegation.Actor) bool {
	g.t.Helper()
	ms, err := g.st.Memberships(g.ctx, directory.Ref{Kind: directory.KindUser, ID: who.ID})
	if err != nil {
		g.t.Fatal(err)
	}
	return slices.ContainsFunc(ms, func(m directory.Membership) bool { return m.Group.ID == g.group.ID })
}

func (g *gated) request(id string) approval.Request {
	g.t.Helper()
	r, err := g.st.Request(g.ctx, id)
	if err != nil {
		g.t.Fatal(err)
	}
	return r
}

func TestRequestLifecycle(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		g := newGated(t, e, ownersPolicy())
		// Without a justification a gated op is refused, and nothing is parked.
		_, err := g.p.Submit(g.ctx, g.alice, g.meta, change.Op{Action: delegation.GroupAddMember, Target: g.group, Member: "user:carol"})
		if !errors.Is(err, directory.ErrInvalid) {
			t.Fatalf("no justification: %v", err)
		}
		id := g.addCarol()
		if g.isMember(g.carol) {
			t.Fatal("a parked op was applied")
		}
		inbox, err := g.st.Requests(g.ctx, approval.Query{Approver: g.bob.ID})
		if err != nil || len(inbox) != 1 || inbox[0].ID != id {
			t.Fatalf("bob's inbox: %v, %v", inbox, err)
		}
		if mine, _ := g.st.Requests(g.ctx, approval.Query{Requester: g.alice.ID}); len(mine) != 1 {
			t.Fatalf("alice's requests: %v", mine)
		}
		for _, c := range []struct {
			who    delegation.Actor
			reason string
		}{{g.alice, "separation_of_duties"}, {g.carol, "separation_of_duties"}, {g.dave, "not_approver"}} {
			_, err := g.p.Decide(g.ctx, c.who, g.meta, id, approval.VerdictApprove, "")
			var denied *change.DeniedError
			if !errors.As(err, &denied) || denied.Reason != c.reason || denied.Event == 0 {
				t.Fatalf("%s approves: want %s, got %v", c.who.Name, c.reason, err)
			}
		}
		r, err := g.p.Decide(g.ctx, g.bob, g.meta, id, approval.VerdictApprove, "ok")
		if err != nil || r.State != approval.Applied || r.Result == 0 {
			t.Fatalf("bob approves: %+v, %v", r, err)
		}
		if !g.isMember(g.carol) {
			t.Fatal("the approved op was not applied")
		}
		// Replaying the approval, or erin approving now, changes nothing and says why.
		for _, who := range []delegation.Actor{g.bob, g.erin} {
			_, err := g.p.Decide(g.ctx, who, g.meta, id, approval.VerdictApprove, "")
			if !errors.Is(err, approval.ErrClosed) && !errors.Is(err, approval.ErrAlreadyDecided) {
				t.Fatalf("%s approves an applied request: %v", who.Name, err)
			}
		}
		// The audit trail holds the chain: pending, approval, and the change whose authority
		// is the request and its approval.
		evs := g.events()
		var pendingEv, approveEv, applied *audit.Event
		for i := range evs {
			ev := &evs[i]
			if ev.RequestID != id {
				continue
			}
			switch {
			case ev.Outcome == audit.Pending:
				pendingEv = ev
			case ev.Action == change.ActionRequestApprove && ev.Outcome == audit.Applied:
				approveEv = ev
			case ev.Action == string(delegation.GroupAddMember) && ev.Outcome == audit.Applied:
				applied = ev
			}
		}
		if pendingEv == nil || approveEv == nil || applied == nil {
			t.Fatalf("chain incomplete: pending %v, approve %v, applied %v", pendingEv, approveEv, applied)
		}
		if applied.Actor.ID != g.alice.ID || applied.Authority.Request != id ||
			!slices.Equal(applied.Authority.Approvals, []int64{approveEv.Index}) || len(applied.Authority.Assignments) == 0 {
			t.Fatalf("applied event: %+v", applied)
		}
		if inbox, _ := g.st.Requests(g.ctx, approval.Query{Approver: g.erin.ID}); len(inbox) != 0 {
			t.Fatalf("erin's inbox after the request closed: %v", inbox)
		}
	})
}

func TestRequestRejectCancelExpire(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		g := newGated(t, e, ownersPolicy())
		id := g.addCarol()
		if _, err := g.p.Decide(g.ctx, g.bob, g.meta, id, approval.VerdictReject, ""); !errors.Is(err, directory.ErrInvalid) {
			t.Fatalf("reject without a comment: %v", err)
		}
		if r, err := g.p.Decide(g.ctx, g.bob, g.meta, id, approval.VerdictReject, "not this week"); err != nil || r.State != approval.Rejected {
			t.Fatalf("reject: %+v, %v", r, err)
		}
		if _, err := g.p.Decide(g.ctx, g.erin, g.meta, id, approval.VerdictApprove, ""); !errors.Is(err, approval.ErrClosed) {
			t.Fatalf("approve after reject: %v", err)
		}

		id = g.addCarol()
		if _, err := g.p.Decide(g.ctx, g.bob, g.meta, id, approval.VerdictCancel, ""); !errors.Is(err, approval.ErrNotApprover) {
			t.Fatalf("bob cancels alice's request: %v", err)
		}
		if r, err := g.p.Decide(g.ctx, g.alice, g.meta, id, approval.VerdictCancel, ""); err != nil || r.State != approval.Cancelled {
			t.Fatalf("cancel: %+v, %v", r, err)
		}

		id = g.addCarol()
		g.clock.Advance(approval.DefaultExpiry + time.Second)
		// Past its expiry a request cannot be approved even before the scheduler has run.
		if _, err := g.p.Decide(g.ctx, g.bob, g.meta, id, approval.VerdictApprove, ""); !errors.Is(err, approval.ErrClosed) {
			t.Fatalf("approve after expiry: %v", err)
		}
		if n, err := g.p.Sweep(g.ctx); err != nil || n != 1 {
			t.Fatalf("sweep: %d, %v", n, err)
		}
		if r := g.request(id); r.State != approval.Expired {
			t.Fatalf("after the sweep: %s", r.State)
		}
		if n, err := g.p.Sweep(g.ctx); err != nil || n != 0 {
			t.Fatalf("second sweep: %d, %v", n, err)
		}
		if g.isMember(g.carol) {
			t.Fatal("carol was added")
		}
	})
}

func TestRequestFailsSafe(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		g := newGated(t, e, ownersPolicy())
		// The requester loses the right before the approval: the request fails, nothing applies.
		id := g.addCarol()
		as, err := g.st.Assignments(g.ctx, "membership-desk", "", "", 10)
		if err != nil || len(as) != 1 {
			t.Fatalf("assignments: %v, %v", as, err)
		}
		g.do(change.Op{Action: delegation.RoleRevoke, Target: as[0].Ref()})
		r, err := g.p.Decide(g.ctx, g.bob, g.meta, id, approval.VerdictApprove, "")
		if err != nil || r.State != approval.Failed || r.Reason != delegation.ReasonNotAuthorized {
			t.Fatalf("approve after the requester lost the right: %+v, %v", r, err)
		}
		if g.isMember(g.carol) {
			t.Fatal("a failed request applied")
		}

		// The object changed since the request: the version check fails it.
		g.do(change.Op{Action: delegation.RoleAssign, Assignment: &delegation.AssignmentInput{Role: "membership-desk",
			Holder: delegation.HolderInput{User: "alice"}, Scope: delegation.ScopeInput{OU: "corp"}, Justification: "back"}})
		id = g.addCarol()
		g.do(change.Op{Action: delegation.GroupUpdate, Target: g.group, Patch: directory.Patch{"description": []byte(`"payroll"`)}})
		if r, err := g.p.Decide(g.ctx, g.erin, g.meta, id, approval.VerdictApprove, ""); err != nil || r.State != approval.Failed ||
			r.Reason != "stale_version" {
			t.Fatalf("approve after the group changed: %+v, %v", r, err)
		}

		// The member was deleted meanwhile: the request fails.
		id = g.addCarol()
		g.do(change.Op{Action: delegation.UserDelete, Target: directory.Ref{Kind: directory.KindUser, ID: g.carol.ID}})
		if r, err := g.p.Decide(g.ctx, g.bob, g.meta, id, approval.VerdictApprove, ""); err != nil || r.State != approval.Failed {
			t.Fatalf("approve after the member was deleted: %+v, %v", r, err)
		}
	})
}

// TestRequestRaces: two approvers at once apply the op once; a cancel racing an approval ends
// in one of the two states, consistently.
func TestRequestRaces(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		g := newGated(t, e, ownersPolicy())
		// On PostgreSQL the deciders are two replicas, each with a store and engine of its own.
		pipes := g.pipelines(e, 2)
		if err := pipes[1].CatchUp(g.ctx); err != nil {
			t.Fatal(err)
		}
		for round := range 6 {
			id := g.addCarol()
			deciders := []struct {
				who     delegation.Actor
				verdict string
			}{{g.bob, approval.VerdictApprove}, {g.erin, approval.VerdictApprove}}
			if round%2 == 1 {
				deciders[1] = struct {
					who     delegation.Actor
					verdict string
				}{g.alice, approval.VerdictCancel}
			}
			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				errs  [2]error
			)
			for i, d := range deciders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, errs[i] = pipes[i].Decide(g.ctx, d.who, g.meta, id, d.verdict, "")
				}()
			}
			close(start)
			wg.Wait()
			r := g.request(id)
			won := 0
			for _, err := range errs {
				if err == nil {
					won++
				} else if !errors.Is(err, approval.ErrClosed) {
					t.Fatalf("round %d: the loser got %v", round, err)
				}
			}
			if won != 1 {
				t.Fatalf("round %d: %d deciders won (%v)", round, won, errs)
			}
			applied := 0
			for _, ev := range g.events() {
				if ev.RequestID == id && ev.Action == string(delegation.GroupAddMember) && ev.Outcome == audit.Applied {
					applied++
				}
			}
			want := 0
			if r.State == approval.Applied {
				want = 1
			}
			if applied != want || g.isMember(g.carol) != (want == 1) {
				t.Fatalf("round %d: state %s, %d applied events, member %v", round, r.State, applied, g.isMember(g.carol))
			}
			if g.isMember(g.carol) {
				g.do(change.Op{Action: delegation.GroupRemoveMember, Target: g.group, Member: "user:carol"})
			}
		}
	})
}

func TestRequestStagesAndEscalation(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		p := ownersPolicy()
		p.Stages = []approval.Stage{
			{Name: "owner", Approvers: []approval.Approver{{Kind: approval.ApproverUser, User: "bob"}},
				Timeout: approval.Duration{D: time.Hour}, Escalate: []approval.Approver{{Kind: approval.ApproverUser, User: "dave"}}},
			{Name: "second", Approvers: []approval.Approver{{Kind: approval.ApproverOwners}}},
		}
		g := newGated(t, e, p)
		id := g.addCarol()
		if _, err := g.p.Decide(g.ctx, g.dave, g.meta, id, approval.VerdictApprove, ""); !errors.Is(err, approval.ErrNotApprover) {
			t.Fatalf("dave before the escalation: %v", err)
		}
		g.clock.Advance(50 * time.Minute) // the reminder falls due 15 minutes before the timeout
		if n, err := g.p.Sweep(g.ctx); err != nil || n != 1 {
			t.Fatalf("reminder sweep: %d, %v", n, err)
		}
		g.clock.Advance(11 * time.Minute)
		if n, err := g.p.Sweep(g.ctx); err != nil || n != 1 {
			t.Fatalf("escalation sweep: %d, %v", n, err)
		}
		r, err := g.p.Decide(g.ctx, g.dave, g.meta, id, approval.VerdictApprove, "covering for bob")
		if err != nil || r.State != approval.Open || r.Stage != 1 {
			t.Fatalf("dave approves stage 1: %+v, %v", r, err)
		}
		// Stage 2 names bob and erin; dave approved already and counts once.
		if _, err := g.p.Decide(g.ctx, g.dave, g.meta, id, approval.VerdictApprove, ""); !errors.Is(err, approval.ErrAlreadyDecided) {
			t.Fatalf("dave again: %v", err)
		}
		if r, err := g.p.Decide(g.ctx, g.erin, g.meta, id, approval.VerdictApprove, ""); err != nil || r.State != approval.Applied {
			t.Fatalf("erin approves stage 2: %+v, %v", r, err)
		}
	})
}

func TestBreakGlass(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		p := ownersPolicy()
		p.Stages = []approval.Stage{{Approvers: []approval.Approver{{Kind: approval.ApproverRole, Role: delegation.RoleTier0}}}}
		g := newGated(t, e, p)
		// The only tier-0 admin adds carol: no one else could approve, so it applies, unreviewed.
		res, err := g.p.Submit(g.ctx, g.admin, g.meta, change.Op{Action: delegation.GroupAddMember, Target: g.group,
			Member: "user:carol", Justification: "payroll run tonight"})
		if err != nil || res.Outcome != audit.Applied || res.Request == "" {
			t.Fatalf("break-glass: %+v, %v", res, err)
		}
		if !g.isMember(g.carol) {
			t.Fatal("break-glass change not applied")
		}
		evs := g.events()
		if ev := evs[res.Event]; !ev.Unreviewed || ev.RequestID != res.Request {
			t.Fatalf("break-glass event: %+v", ev)
		}
		if open, _ := g.st.Requests(g.ctx, approval.Query{State: approval.Unreviewed}); len(open) != 1 {
			t.Fatalf("unreviewed report: %v", open)
		}
		if _, err := g.p.Decide(g.ctx, g.admin, g.meta, res.Request, approval.VerdictReview, ""); !errors.Is(err, approval.ErrSeparation) {
			t.Fatalf("self-review: %v", err)
		}
		if _, err := g.p.Decide(g.ctx, g.bob, g.meta, res.Request, approval.VerdictReview, ""); !errors.Is(err, approval.ErrNotApprover) {
			t.Fatalf("review by a non-tier-0: %v", err)
		}
		// A second tier-0 admin appears (that grant is itself unreviewed: only admin could
		// approve it) and reviews.
		g.do(change.Op{Action: delegation.RoleAssign, Assignment: &delegation.AssignmentInput{Role: delegation.RoleTier0,
			Holder: delegation.HolderInput{User: "erin"}, Scope: delegation.ScopeInput{OU: "/"}, Justification: "second admin"}})
		if r, err := g.p.Decide(g.ctx, g.erin, g.meta, res.Request, approval.VerdictReview, "seen"); err != nil || r.State != approval.Reviewed {
			t.Fatalf("review: %+v, %v", r, err)
		}
		// With a second tier-0 admin, the same change now waits for them.
		g.do(change.Op{Action: delegation.GroupRemoveMember, Target: g.group, Member: "user:carol"})
		if _, err := g.p.Submit(g.ctx, g.admin, g.meta, change.Op{Action: delegation.GroupAddMember, Target: g.group,
			Member: "user:carol", Justification: "again"}); !errors.Is(err, change.ErrPending) {
			t.Fatalf("with a second tier-0 admin: %v", err)
		}
	})
}

// TestRequestPinsVersion: a parked delete applies only to the object as the requester saw it.
func TestRequestPinsVersion(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		g := newGated(t, e, approval.Policy{Name: "deletes", Actions: []delegation.Action{delegation.UserDelete},
			Stages: []approval.Stage{{Approvers: []approval.Approver{{Kind: approval.ApproverUser, User: "bob"}}}}})
		dave := directory.Ref{Kind: directory.KindUser, ID: g.dave.ID}
		res, err := g.p.Submit(g.ctx, g.admin, g.meta, change.Op{Action: delegation.UserDelete, Target: dave, Justification: "left"})
		if !errors.Is(err, change.ErrPending) {
			t.Fatalf("delete: %+v, %v", res, err)
		}
		g.do(change.Op{Action: delegation.UserUpdate, Target: dave, Patch: directory.Patch{"title": []byte(`"Director"`)}})
		r, err := g.p.Decide(g.ctx, g.bob, g.meta, res.Request, approval.VerdictApprove, "")
		if err != nil || r.State != approval.Failed || r.Reason != "stale_version" {
			t.Fatalf("approve after the user changed: %+v, %v", r, err)
		}
		if _, err := g.st.User(g.ctx, dave); err != nil {
			t.Fatalf("dave was deleted: %v", err)
		}
	})
}

// TestBreakGlassRevert: undoing an unreviewed break-glass change settles its review.
func TestBreakGlassRevert(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		p := ownersPolicy()
		p.Stages = []approval.Stage{{Approvers: []approval.Approver{{Kind: approval.ApproverRole, Role: delegation.RoleTier0}}}}
		g := newGated(t, e, p)
		res, err := g.p.Submit(g.ctx, g.admin, g.meta, change.Op{Action: delegation.GroupAddMember, Target: g.group,
			Member: "user:carol", Justification: "payroll run tonight"})
		if err != nil || res.Request == "" {
			t.Fatalf("break-glass: %+v, %v", res, err)
		}
		ev := g.events()[res.Event]
		op, err := change.Inverse(ev, false)
		if err != nil {
			t.Fatal(err)
		}
		meta := change.Meta{Transport: audit.TransportUndo, Reverts: &ev.Index, RevertsRequest: ev.RequestID}
		if _, err := g.p.Submit(g.ctx, g.admin, meta, op); err != nil {
			t.Fatalf("undo: %v", err)
		}
		if r := g.request(res.Request); r.State != approval.Reviewed || r.Decisions[len(r.Decisions)-1].Verdict != approval.VerdictRevert {
			t.Fatalf("after the undo the request is %s: %+v", r.State, r.Decisions)
		}
		if g.isMember(g.carol) {
			t.Fatal("the undo did not remove carol")
		}
	})
}

// TestDefaultPolicies: the shipped policies install once (a deleted one stays deleted), and
// activating an eligible tier-0 assignment waits for another tier-0 admin.
func TestDefaultPolicies(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		g := newGated(t, e, ownersPolicy())
		if err := g.p.InstallDefaultPolicies(g.ctx); err != nil {
			t.Fatal(err)
		}
		names := func() []string {
			var out []string
			for _, p := range g.gate.Policies() {
				out = append(out, p.Name)
			}
			return out
		}
		if got := names(); len(got) != 1+len(approval.Defaults()) {
			t.Fatalf("policies after installing the defaults: %v", got)
		}
		if err := g.p.DeletePolicy(g.ctx, g.admin, g.meta, "user-deletion"); err != nil {
			t.Fatal(err)
		}
		if err := g.p.InstallDefaultPolicies(g.ctx); err != nil {
			t.Fatal(err)
		}
		if got := names(); slices.Contains(got, "user-deletion") || len(got) != len(approval.Defaults()) {
			t.Fatalf("a deleted default came back: %v", got)
		}
		// The sole tier-0 admin's grants apply as break-glass: no one else could approve them.
		for _, in := range []delegation.AssignmentInput{
			{Role: delegation.RoleTier0, Holder: delegation.HolderInput{User: "dave"}, Scope: delegation.ScopeInput{OU: "/"},
				Eligible: true, MaxActivation: "2h", Justification: "on call"},
			{Role: delegation.RoleTier0, Holder: delegation.HolderInput{User: "erin"}, Scope: delegation.ScopeInput{OU: "/"},
				Justification: "second admin"},
		} {
			res, err := g.p.Submit(g.ctx, g.admin, g.meta, change.Op{Action: delegation.RoleAssign, Assignment: &in})
			if err != nil || res.Request == "" || g.request(res.Request).State != approval.Unreviewed {
				t.Fatalf("grant %s to %s: %+v, %v", in.Role, in.Holder.User, res, err)
			}
		}
		// The one a break-glass grant is for cannot review it.
		glass, err := g.st.Requests(g.ctx, approval.Query{State: approval.Unreviewed})
		if err != nil || len(glass) < 2 {
			t.Fatalf("unreviewed grants: %v, %v", glass, err)
		}
		erinsGrant := glass[len(glass)-1].ID
		if _, err := g.p.Decide(g.ctx, g.erin, g.meta, erinsGrant, approval.VerdictReview, ""); !errors.Is(err, approval.ErrSeparation) {
			t.Fatalf("erin reviews her own grant: %v", err)
		}
		// Nor may the members of a group approve a role granted to the group.
		add, err := g.p.Submit(g.ctx, g.admin, g.meta, change.Op{Action: delegation.GroupAddMember, Target: g.group, Member: "user:erin", Justification: "x"})
		if !errors.Is(err, change.ErrPending) {
			t.Fatalf("add erin: %+v, %v", add, err)
		}
		// Two policies match (this test's and the default): their stages run one after the other.
		if r, err := g.p.Decide(g.ctx, g.bob, g.meta, add.Request, approval.VerdictApprove, ""); err != nil || r.State != approval.Open || r.Stage != 1 {
			t.Fatalf("bob approves erin's membership: %+v, %v", r, err)
		}
		if r, err := g.p.Decide(g.ctx, g.alice, g.meta, add.Request, approval.VerdictApprove, ""); err != nil || r.State != approval.Applied {
			t.Fatalf("alice approves erin's membership: %+v, %v", r, err)
		}
		res, err := g.p.Submit(g.ctx, g.admin, g.meta, change.Op{Action: delegation.RoleAssign, Assignment: &delegation.AssignmentInput{
			Role: delegation.RoleHR, Holder: delegation.HolderInput{Group: "payroll-admins"}, Scope: delegation.ScopeInput{OU: "corp"},
			Justification: "payroll runs HR"}})
		if err != nil || res.Request == "" {
			t.Fatalf("grant to the group: %+v, %v", res, err)
		}
		if r := g.request(res.Request); r.State != approval.Unreviewed || slices.Contains(r.Stages[0].Eligible, g.erin.ID) {
			t.Fatalf("erin, a member of the holder, is an approver: %+v", r)
		}
		if _, err := g.p.Decide(g.ctx, g.erin, g.meta, res.Request, approval.VerdictReview, ""); !errors.Is(err, approval.ErrSeparation) {
			t.Fatalf("erin reviews a grant to her group: %v", err)
		}

		as, err := g.st.Assignments(g.ctx, delegation.RoleTier0, g.dave.ID, "", 10)
		if err != nil || len(as) != 1 {
			t.Fatalf("dave's assignments: %v, %v", as, err)
		}
		res, err = g.p.Submit(g.ctx, g.dave, g.meta, change.Op{Action: delegation.RoleActivate, Target: as[0].Ref(),
			Activation: &delegation.ActivationInput{Duration: "1h", Justification: "incident 7"}, Justification: "incident 7"})
		if !errors.Is(err, change.ErrPending) {
			t.Fatalf("activation: %+v, %v", res, err)
		}
		r := g.request(res.Request)
		if got := r.Stages[0].Eligible; !slices.Equal(got, sorted(g.admin.ID, g.erin.ID)) {
			t.Fatalf("activation approvers %v, want admin and erin", got)
		}
		if r, err := g.p.Decide(g.ctx, g.erin, g.meta, res.Request, approval.VerdictApprove, ""); err != nil || r.State != approval.Applied {
			t.Fatalf("erin approves the activation: %+v, %v", r, err)
		}
	})
}

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}
