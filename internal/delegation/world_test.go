package delegation_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
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

// clock is the one clock of a world: the pipeline's (validity checks, audit times) and the
// engine's (which assignments are active). Every reading advances it by a millisecond, so
// events keep their order; Advance jumps ahead.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now
	c.now = c.now.Add(time.Millisecond)
	return t
}

// Peek returns the next reading without taking it.
func (c *clock) Peek() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// world is a real store with a real pipeline whose authorizer is the delegation engine, and a
// bootstrapped tier-0 admin. Everything in it is built the way production builds it: by ops
// submitted to the pipeline.
type world struct {
	t     testing.TB
	ctx   context.Context
	st    *store.Store
	p     *change.Pipeline
	eng   *delegation.Engine
	clk   *clock
	admin delegation.Actor
	meta  change.Meta
}

func newWorld(t testing.TB, st *store.Store) *world {
	t.Helper()
	clk := &clock{now: storetest.Epoch}
	env := storetest.Bootstrap(t, st, change.WithClock(clk.Now))
	eng, ok := env.Pipeline.Authorizer().(*delegation.Engine)
	if !ok {
		t.Fatalf("the pipeline's authorizer is a %T, not the delegation engine", env.Pipeline.Authorizer())
	}
	eng.SetClock(clk.Now)
	return &world{t: t, ctx: context.Background(), st: st, p: env.Pipeline, eng: eng, clk: clk, admin: env.Admin,
		meta: change.Meta{Transport: audit.TransportAPI}}
}

// reopenWorld returns a world over a database that was bootstrapped (and built) before, with a
// new engine loaded from it, as at start, and the clock at the given reading.
func reopenWorld(t testing.TB, st *store.Store, admin delegation.Actor, at time.Time) *world {
	t.Helper()
	clk := &clock{now: at}
	eng := delegation.NewEngine(storetest.Logger(t))
	eng.SetClock(clk.Now)
	if err := eng.Load(context.Background(), st); err != nil {
		t.Fatalf("load the delegation engine: %v", err)
	}
	return &world{t: t, ctx: context.Background(), st: st, p: change.New(st, eng, storetest.Logger(t), change.WithClock(clk.Now)),
		eng: eng, clk: clk, admin: admin, meta: change.Meta{Transport: audit.TransportAPI}}
}

// actor returns the user called name as an actor ("admin" is the bootstrapped tier-0 admin).
func (w *world) actor(name string) delegation.Actor {
	w.t.Helper()
	return storetest.ActorOf(w.user(name))
}

func (w *world) user(name string) directory.User {
	w.t.Helper()
	u, err := w.st.User(w.ctx, directory.ParseRef(directory.KindUser, name))
	if err != nil {
		w.t.Fatalf("read user %s: %v", name, err)
	}
	return u
}

func (w *world) group(name string) directory.Group {
	w.t.Helper()
	g, err := w.st.Group(w.ctx, directory.ParseRef(directory.KindGroup, name))
	if err != nil {
		w.t.Fatalf("read group %s: %v", name, err)
	}
	return g
}

// submit runs op as the user called name.
func (w *world) submit(name string, op change.Op) (change.Result, error) {
	return w.p.Submit(w.ctx, w.actor(name), w.meta, op)
}

// do runs op as the admin and fails the test unless it applies.
func (w *world) do(op change.Op) change.Result {
	w.t.Helper()
	res, err := w.p.Submit(w.ctx, w.admin, w.meta, op)
	if err != nil || res.Outcome != audit.Applied {
		w.t.Fatalf("admin: %s %s: %+v, %v", op.Action, op.Target, res, err)
	}
	return res
}

// mkOU creates the OU at path (its parent must exist).
func (w *world) mkOU(path string) {
	w.t.Helper()
	parent, name := "", path
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		parent, name = path[:i], path[i+1:]
	}
	w.do(change.Op{Action: delegation.OUCreate, OU: &directory.OUInput{Name: name, Parent: parent}})
}

func (w *world) mkUser(in directory.UserInput) directory.User {
	w.t.Helper()
	res := w.do(change.Op{Action: delegation.UserCreate, User: &in})
	return w.user(res.Target.ID)
}

func (w *world) mkGroup(in directory.GroupInput, members ...string) {
	w.t.Helper()
	w.do(change.Op{Action: delegation.GroupCreate, Group: &in})
	for _, m := range members {
		w.do(addMember(in.Name, m))
	}
}

func (w *world) mkSA(name, ou string, owners ...string) {
	w.t.Helper()
	w.do(change.Op{Action: delegation.SACreate, Service: &directory.ServiceAccountInput{Name: name, OU: ou, Owners: owners}})
}

// grant creates an assignment as the admin and returns its ID.
func (w *world) grant(in delegation.AssignmentInput) string {
	w.t.Helper()
	return w.do(assign(in)).Target.ID
}

// assignmentOf returns the ID of the (first) assignment of role held directly by holder.
func (w *world) assignmentOf(holder directory.Ref, role string) string {
	w.t.Helper()
	ref, err := w.st.ResolveMember(w.ctx, holder)
	if err != nil {
		w.t.Fatalf("resolve %s: %v", holder, err)
	}
	as, err := w.st.Assignments(w.ctx, role, ref.ID, "", 100)
	if err != nil || len(as) == 0 {
		w.t.Fatalf("assignment of %s to %s: %v, %v", role, holder, as, err)
	}
	return as[0].ID
}

// object loads the object key names (of kind) with its attributes.
func (w *world) object(kind directory.Kind, key string) delegation.Object {
	w.t.Helper()
	ref := directory.ParseRef(kind, key)
	switch kind {
	case directory.KindUser:
		u := w.user(key)
		return delegation.Object{Ref: u.Ref(), Fields: u.Fields()}
	case directory.KindGroup:
		g := w.group(key)
		return delegation.Object{Ref: g.Ref(), Fields: g.Fields()}
	case directory.KindServiceAccount:
		s, err := w.st.ServiceAccount(w.ctx, ref)
		if err != nil {
			w.t.Fatalf("read service account %s: %v", key, err)
		}
		return delegation.Object{Ref: s.Ref(), Fields: s.Fields()}
	case directory.KindOU:
		o, err := w.st.OU(w.ctx, ref)
		if err != nil {
			w.t.Fatalf("read OU %s: %v", key, err)
		}
		return delegation.Object{Ref: o.Ref(), Fields: o.Fields()}
	}
	w.t.Fatalf("no object of kind %s", kind)
	return delegation.Object{}
}

// ask asks the engine, on the committed state, whether actor may perform action on the object
// (of kind) called key as it is now: the question the API's check and can-what ask.
func (w *world) ask(actor string, action delegation.Action, kind directory.Kind, key string) delegation.Decision {
	w.t.Helper()
	o := w.object(kind, key)
	d, err := w.p.Ask(w.ctx, &delegation.Question{Actor: w.actor(actor), Action: action, Target: o.Ref,
		Before: o.Fields, After: o.Fields})
	if err != nil {
		w.t.Fatal(err)
	}
	return d
}

// Op builders.

func patch(m map[string]any) directory.Patch {
	p := directory.Patch{}
	for k, v := range m {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		p[k] = b
	}
	return p
}

func update(user string, m map[string]any) change.Op {
	return change.Op{Action: delegation.UserUpdate, Target: directory.ParseRef(directory.KindUser, user), Patch: patch(m)}
}

func updateGroup(group string, m map[string]any) change.Op {
	return change.Op{Action: delegation.GroupUpdate, Target: directory.ParseRef(directory.KindGroup, group), Patch: patch(m)}
}

func move(kind directory.Kind, key, to string) change.Op {
	var a delegation.Action
	switch kind {
	case directory.KindUser:
		a = delegation.UserMove
	case directory.KindGroup:
		a = delegation.GroupMove
	case directory.KindServiceAccount:
		a = delegation.SAMove
	case directory.KindOU:
		a = delegation.OUMove
	}
	return change.Op{Action: a, Target: directory.ParseRef(kind, key), To: to}
}

func addMember(group, member string) change.Op {
	return change.Op{Action: delegation.GroupAddMember, Target: directory.ParseRef(directory.KindGroup, group), Member: member}
}

func removeMember(group, member string) change.Op {
	return change.Op{Action: delegation.GroupRemoveMember, Target: directory.ParseRef(directory.KindGroup, group), Member: member}
}

func assign(in delegation.AssignmentInput) change.Op {
	return change.Op{Action: delegation.RoleAssign, Assignment: &in}
}

func assignmentRef(id string) directory.Ref {
	return directory.Ref{Kind: directory.KindAssignment, ID: id}
}

// Assignment builders. holder is "user:NAME" or "group:NAME".

func asg(role, holder string, scope delegation.ScopeInput, opts ...func(*delegation.AssignmentInput)) delegation.AssignmentInput {
	in := delegation.AssignmentInput{Role: role, Scope: scope, Justification: "test"}
	if name, ok := strings.CutPrefix(holder, "group:"); ok {
		in.Holder.Group = name
	} else {
		in.Holder.User = strings.TrimPrefix(holder, "user:")
	}
	for _, o := range opts {
		o(&in)
	}
	return in
}

func subtree(ou string) delegation.ScopeInput { return delegation.ScopeInput{OU: ou} }

func ouOnly(ou string) delegation.ScopeInput {
	no := false
	return delegation.ScopeInput{OU: ou, Subtree: &no}
}

func groups(gs ...string) delegation.ScopeInput       { return delegation.ScopeInput{Groups: gs} }
func where(f string) delegation.ScopeInput            { return delegation.ScopeInput{Filter: f} }
func rel(r delegation.Relation) delegation.ScopeInput { return delegation.ScopeInput{Relation: r} }

func excludeOU(ou string) func(*delegation.AssignmentInput) {
	return func(in *delegation.AssignmentInput) {
		if in.Exclude == nil {
			in.Exclude = &delegation.ExcludeInput{}
		}
		in.Exclude.OUs = append(in.Exclude.OUs, ou)
	}
}

func excludeGroup(g string) func(*delegation.AssignmentInput) {
	return func(in *delegation.AssignmentInput) {
		if in.Exclude == nil {
			in.Exclude = &delegation.ExcludeInput{}
		}
		in.Exclude.Groups = append(in.Exclude.Groups, g)
	}
}

func redelegable(in *delegation.AssignmentInput) { in.CanRedelegate = true }

func eligible(maxActivation string) func(*delegation.AssignmentInput) {
	return func(in *delegation.AssignmentInput) { in.Eligible, in.MaxActivation = true, maxActivation }
}

func validity(from, until time.Time) func(*delegation.AssignmentInput) {
	return func(in *delegation.AssignmentInput) {
		if !from.IsZero() {
			in.From = from.Format(time.RFC3339Nano)
		}
		if !until.IsZero() {
			in.Until = until.Format(time.RFC3339Nano)
		}
	}
}

// wantReason checks that err is nil when reason is "", and otherwise a denial with reason.
func wantReason(t testing.TB, err error, reason string) {
	t.Helper()
	if reason == "" {
		if err != nil {
			t.Fatalf("denied or failed, want allowed: %v", err)
		}
		return
	}
	var denied *change.DeniedError
	if !errors.As(err, &denied) {
		t.Fatalf("error %v, want a denial (%s)", err, reason)
	}
	if denied.Reason != reason {
		t.Fatalf("denied with reason %s, want %s: %s", denied.Reason, reason, denied.Message)
	}
	if !errors.Is(err, change.ErrDenied) {
		t.Fatalf("a denial that does not match change.ErrDenied: %v", err)
	}
}

// wantDecision checks a decision the same way.
func wantDecision(t testing.TB, d delegation.Decision, reason string) {
	t.Helper()
	switch {
	case reason == "" && !d.Allow:
		t.Fatalf("denied (%s: %s), want allowed", d.Reason, d.Message)
	case reason != "" && d.Allow:
		t.Fatalf("allowed (authority %+v), want denied with %s", d.Authority, reason)
	case reason != "" && d.Reason != reason:
		t.Fatalf("denied with reason %s, want %s: %s", d.Reason, reason, d.Message)
	}
}
