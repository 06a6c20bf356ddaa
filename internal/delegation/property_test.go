package delegation_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/store"
	"github.com/deputy-iam/deputy/internal/store/storetest"
)

// TestProperties builds random organisations (an OU tree, users with managers and
// departments, nested groups with owners, service accounts, protected objects) and random
// assignments (built-in and custom roles, every kind of scope, exclusions, eligible, expired and
// not yet valid ones, group holders) through the pipeline, then holds the engine to an
// independent model (model_test.go) on many sampled questions:
//   - no allow without an authority: every assignment an allow names exists, is active, is held
//     by the actor (directly or through groups) and its role allows the action;
//   - no allow outside scope, and no not_authorized inside it: the engine's coverage is the
//     model's, evaluated on the object's attributes and place as the tables hold them;
//   - no takeover upwards: an allowed takeover never reaches a right (active or not) the actor
//     does not already hold over every object it covers; untouchable objects are tier-0's;
//   - scope escape: an allowed update or move is covered on the object before and after it;
//   - can-what (Reach, Visibility and the store's SQL for the scope expression) selects exactly
//     what the model covers, and agrees with Decide on every pair; who-can (Candidates) finds
//     everyone Decide allows;
//   - role.assign grants only a subset of a redelegatable assignment the granter holds.
func TestProperties(t *testing.T) {
	engines := []struct {
		name  string
		open  func(t *testing.T) *store.Store
		seeds []uint64
	}{
		{"sqlite", storetest.SQLite, []uint64{1, 2, 3}},
		{"postgres", storetest.Postgres, []uint64{4}},
	}
	for _, e := range engines {
		for _, seed := range e.seeds {
			t.Run(fmt.Sprintf("%s/seed=%d", e.name, seed), func(t *testing.T) {
				t.Parallel()
				p := &prop{t: t, w: newWorld(t, e.open(t)), r: rand.New(rand.NewPCG(seed, seed*7919))}
				// An engine loaded now and caught up later from the log as another replica
				// reads it (decoded events), and one loaded from the tables at the end, must
				// decide as the pipeline's engine, which folded its own sessions' events.
				p.replica = p.engine()
				p.build()
				must(t, p.replica.CatchUp(p.w.ctx, p.w.st))
				p.fresh = p.engine()
				p.m = loadModel(p.w)
				p.checkDecisions(1500)
				p.checkAddMember(400)
				p.checkChanges(300)
				p.checkCanWhat()
				p.checkWhoCan()
				p.checkRedelegation(100)
			})
		}
	}
}

// prop is one run of the property test.
type prop struct {
	t      *testing.T
	w      *world
	r      *rand.Rand
	m      *model
	ous    []string // OU paths, "/" first
	users  []string
	groups []string
	sas    []string
	roles  []string // every role name, built-in and custom
	errors int
	// replica and fresh are engines of their own over the same store (see TestProperties).
	replica, fresh *delegation.Engine
}

// engine returns a new engine on the world's clock, loaded from the store.
func (p *prop) engine() *delegation.Engine {
	e := delegation.NewEngine(storetest.Logger(p.t))
	e.SetClock(p.w.clk.Now)
	must(p.t, e.Load(p.w.ctx, p.w.st))
	return e
}

// decide asks the pipeline's engine, and checks that the other two answer the same.
func (p *prop) decide(q *delegation.Question) delegation.Decision {
	p.t.Helper()
	d := p.w.eng.Decide(p.w.ctx, q)
	for name, e := range map[string]*delegation.Engine{"a replica's": p.replica, "a freshly loaded": p.fresh} {
		if o := e.Decide(p.w.ctx, q); o.Allow != d.Allow || o.Reason != d.Reason || !slices.Equal(o.Authority.Assignments, d.Authority.Assignments) {
			p.fail("%s %s on %s: %s engine says %+v, the pipeline's %+v", q.Actor.Name, q.Action, q.Target, name, o, d)
		}
	}
	return d
}

// fail reports a violated property, and stops the run after a few.
func (p *prop) fail(format string, args ...any) {
	p.t.Helper()
	p.errors++
	p.t.Errorf(format, args...)
	if p.errors >= 15 {
		p.t.FailNow()
	}
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func (p *prop) chance(pct int) bool { return p.r.IntN(100) < pct }

var (
	departments = []string{"Sales", "Engineering", "HR", "IT", "Legal"}
	titles      = []string{"Rep", "Lead", "Engineer"}
	locations   = []string{"London", "Paris"}
	// customActions are what random custom roles are made of.
	customActions = []delegation.Action{delegation.DirectoryRead, delegation.UserUpdate, delegation.UserMove, delegation.UserDisable,
		delegation.UserEnable, delegation.UserResetPassword, delegation.UserIssueToken, delegation.GroupAddMember,
		delegation.GroupRemoveMember, delegation.GroupUpdate, delegation.GroupSetOwner, delegation.GroupMove, delegation.SAIssueKey,
		delegation.SAUpdate, delegation.SAMove, delegation.OUMove, delegation.OUUpdate, delegation.AuditRead}
	userAttrs = []string{"phone", "title", "department", "location", "manager", "email"}
)

// build creates the organisation and its assignments through the pipeline, as the admin.
func (p *prop) build() {
	w, r := p.w, p.r
	p.ous = []string{"/"}
	for i := range 10 {
		parent := pick(r, p.ous)
		path := fmt.Sprintf("o%d", i)
		if parent != "/" {
			path = parent + "/" + path
		}
		w.mkOU(path)
		p.ous = append(p.ous, path)
	}
	var created []time.Time
	for i := range 36 {
		in := directory.UserInput{Username: fmt.Sprintf("u%02d", i), OU: pick(r, p.ous), Department: pick(r, departments)}
		if p.chance(60) {
			in.Title = pick(r, titles)
		}
		if p.chance(50) {
			in.Location = pick(r, locations)
		}
		if p.chance(40) {
			in.Phone = fmt.Sprintf("+1 555 01%02d", i)
		}
		if p.chance(40) {
			in.Email = fmt.Sprintf("u%02d@example.com", i)
		}
		if len(p.users) > 0 && p.chance(60) {
			in.Manager = pick(r, p.users)
		}
		if p.chance(30) {
			in.Attributes = map[string]string{"cost_center": pick(r, []string{"cc-1", "cc-2"})}
		}
		in.Protected = p.chance(5)
		if p.chance(10) {
			in.Status = directory.StatusDisabled
		}
		u := w.mkUser(in)
		created = append(created, u.Created)
		p.users = append(p.users, in.Username)
	}
	for i := range 5 {
		owners := []string{pick(r, p.users)}
		if p.chance(40) {
			owners = append(owners, pick(r, p.users))
		}
		name := fmt.Sprintf("sa%d", i)
		w.mkSA(name, pick(r, p.ous), owners...)
		p.sas = append(p.sas, name)
	}
	for i := range 12 {
		var owners []string
		for range r.IntN(3) {
			owners = append(owners, pick(r, p.users))
		}
		name := fmt.Sprintf("g%02d", i)
		var members []string
		for range r.IntN(5) {
			members = append(members, "user:"+pick(r, p.users))
		}
		if len(p.groups) > 0 {
			for range r.IntN(3) {
				members = append(members, "group:"+pick(r, p.groups)) // only earlier groups: no cycles
			}
		}
		if p.chance(25) {
			members = append(members, "sa:"+pick(r, p.sas))
		}
		slices.Sort(members)
		w.mkGroup(directory.GroupInput{Name: name, OU: pick(r, p.ous), Owners: owners, Protected: p.chance(8)}, slices.Compact(members)...)
		p.groups = append(p.groups, name)
	}
	for _, rl := range delegation.BuiltinRoles() {
		p.roles = append(p.roles, rl.Name)
	}
	for i := range 3 {
		in := delegation.RoleInput{Name: fmt.Sprintf("custom-%d", i)}
		for range 2 + r.IntN(5) {
			in.Actions = append(in.Actions, pick(r, customActions))
		}
		if slices.Contains(in.Actions, delegation.UserUpdate) && p.chance(60) {
			for range 1 + r.IntN(3) {
				in.UserAttributes = append(in.UserAttributes, pick(r, userAttrs))
			}
		}
		w.do(change.Op{Action: delegation.RoleCreate, Role: &in})
		p.roles = append(p.roles, in.Name)
	}
	filters := []string{`department eq "Sales"`, `department eq "Engineering" or title eq "Lead"`, `location eq "London"`,
		`title sw "L"`, `not (department eq "Sales")`, `manager pr`, `attributes.cost_center eq "cc-1"`, `ou sw "o1"`,
		`status eq "active"`, `protected eq false`, `username sw "u1"`, `email pr`, `manager eq "u03"`,
		`created lt "` + created[18].Format(time.RFC3339Nano) + `"`, `updated gt "2000-01-01T00:00:00Z"`}

	// Tier-0 for a user and a group; then random assignments, some expiring, some eligible.
	w.grant(asg(delegation.RoleTier0, "user:"+p.users[0], subtree("/")))
	w.grant(asg(delegation.RoleTier0, "group:"+pick(r, p.groups), subtree("/")))
	now := w.clk.Peek()
	var lapse, later []delegation.AssignmentInput // eligible ones to activate before and after the clock moves
	for range 36 {
		in := p.randomAssignment(filters)
		switch n := r.IntN(100); {
		case n < 15:
			until := now.Add(time.Hour) // expired once the clock moves
			in.Until = until.Format(time.RFC3339Nano)
		case n < 25:
			from := now.Add(10 * 24 * time.Hour) // not yet valid
			in.From = from.Format(time.RFC3339Nano)
		case n < 45 && in.Holder.User != "": // eligible assignments are held by users only
			in.Eligible, in.MaxActivation = true, "4h"
		}
		in.CanRedelegate = p.chance(35)
		if _, err := w.p.Submit(w.ctx, w.admin, w.meta, assign(in)); err != nil {
			if strings.Contains(in.Scope.Filter, "created") || strings.Contains(in.Scope.Filter, "updated") {
				continue // a scope filter may not use what a change cannot be judged on
			}
			p.t.Fatalf("admin grants %+v: %v", in, err)
		}
		if in.Eligible {
			switch r.IntN(3) {
			case 0:
				lapse = append(lapse, in)
			case 1:
				later = append(later, in)
			}
		}
	}
	p.activateAll(lapse)
	w.clk.Advance(2 * time.Hour)
	p.activateAll(later)
}

// randomAssignment draws a role, a holder, a scope and exclusions.
func (p *prop) randomAssignment(filters []string) delegation.AssignmentInput {
	r := p.r
	var role string
	for role == "" || role == delegation.RoleTier0 {
		role = pick(r, p.roles)
	}
	holder := "user:" + pick(r, p.users)
	if p.chance(30) {
		holder = "group:" + pick(r, p.groups)
	}
	var scope delegation.ScopeInput
	switch r.IntN(5) {
	case 0:
		scope = subtree(pick(r, p.ous))
	case 1:
		scope = ouOnly(pick(r, p.ous))
	case 2:
		scope = groups(pick(r, p.groups))
		if p.chance(30) {
			scope.Groups = append(scope.Groups, pick(r, p.groups))
		}
	case 3:
		scope = where(pick(r, filters))
	default:
		scope = rel(pick(r, []delegation.Relation{delegation.RelSelf, delegation.RelDirectReports, delegation.RelOwnedGroups,
			delegation.RelOwnedServiceAccounts}))
	}
	var opts []func(*delegation.AssignmentInput)
	if p.chance(30) {
		opts = append(opts, excludeOU(pick(r, p.ous[1:])))
	}
	if p.chance(20) {
		opts = append(opts, excludeGroup(pick(r, p.groups)))
	}
	return asg(role, holder, scope, opts...)
}

// activateAll activates, for an hour, each eligible assignment like in, by an active user it
// applies to.
func (p *prop) activateAll(ins []delegation.AssignmentInput) {
	w := p.w
	for _, in := range ins {
		holder := directory.Ref{Kind: directory.KindUser, Name: in.Holder.User}
		if in.Holder.Group != "" {
			holder = directory.Ref{Kind: directory.KindGroup, Name: in.Holder.Group}
		}
		ref, err := w.st.ResolveMember(w.ctx, holder)
		must(p.t, err)
		as, err := w.st.Assignments(w.ctx, in.Role, ref.ID, "", directory.MaxLimit)
		must(p.t, err)
		m := loadModel(w)
		for _, a := range as {
			if !a.Eligible || !a.ActiveUntil.IsZero() {
				continue
			}
			for _, u := range m.usersUnder(ref.ID) {
				if m.users[u].Status != directory.StatusActive {
					continue
				}
				_, err := w.p.Submit(w.ctx, storetest.ActorOf(m.users[u]), w.meta, change.Op{Action: delegation.RoleActivate,
					Target: assignmentRef(a.ID), Activation: &delegation.ActivationInput{Duration: "1h", Justification: "test"}})
				if err != nil && a.Valid(w.clk.Peek()) {
					p.t.Fatalf("%s activates %s: %v", m.users[u].Username, a.ID, err)
				}
				break
			}
		}
	}
}
