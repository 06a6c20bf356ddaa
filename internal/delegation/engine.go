package delegation

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/directory"
)

// Engine is Deputy's delegation engine: it holds, in memory, what authorization depends on
// (roles, assignments, the membership graph, the OU tree, who is active and protected) and
// decides questions in microseconds. It is a projection of the audit log, loaded from the
// database at start and kept current by folding in every applied event: its own transactions'
// through sessions, and any other writer's (another replica) by reading the log's tail when a
// session starts.
type Engine struct {
	mu  sync.RWMutex
	st  *state
	log *slog.Logger
	now func() time.Time
	// actors caches, per actor, what Decide derives from the actor alone (their groups and
	// the assignments those hold), valid while the committed state stays at the same index;
	// folding events replaces it. Guarded by mu (the pointer), safe for concurrent readers.
	actors *sync.Map // actor ID -> *actorCache
}

// actorCache is an actor's record, closure and held assignments at one state index and time
// window.
type actorCache struct {
	index   int64
	expires time.Time // when the first assignment in it changes activeness
	who     actorInfo
	mine    []string
	gs      []grant
}

// NewEngine returns an engine with an empty state; Load fills it.
func NewEngine(log *slog.Logger) *Engine {
	return &Engine{st: newState(), log: log, now: time.Now, actors: &sync.Map{}}
}

// SetClock replaces time.Now (tests).
func (e *Engine) SetClock(now func() time.Time) { e.now = now }

// Snapshot is the state the engine loads at start: a consistent read of the tables, and the
// index of the last audit event that read includes.
type Snapshot struct {
	Roles       []Role
	Assignments []Assignment
	Memberships [][2]string // {group ID, member ID}
	OUs         [][2]string // {OU ID, parent ID}
	Objects     []SnapshotObject
	LastIndex   int64
}

// SnapshotObject is a user, group or service account as the engine keeps it.
type SnapshotObject struct {
	ID        string
	Kind      directory.Kind
	Status    directory.Status
	Protected bool
	OU        string
	Manager   string   // users
	Owners    []string // groups and service accounts
}

// Loader reads a Snapshot.
type Loader interface {
	AuthzSnapshot(ctx context.Context) (Snapshot, error)
}

// Load replaces the engine's state with a snapshot.
func (e *Engine) Load(ctx context.Context, l Loader) error {
	snap, err := l.AuthzSnapshot(ctx)
	if err != nil {
		return fmt.Errorf("delegation: load: %w", err)
	}
	st := newState()
	for i := range snap.Roles {
		r := snap.Roles[i]
		st.roles.set(r.Name, &r)
	}
	for i := range snap.Assignments {
		a := snap.Assignments[i]
		st.putAssignment(&a)
	}
	for _, m := range snap.Memberships {
		st.addMember(m[0], m[1])
	}
	for _, o := range snap.OUs {
		st.ouParent.set(o[0], o[1])
	}
	for _, o := range snap.Objects {
		st.setObject(o.ID, objInfo{kind: o.Kind, status: o.Status, protected: o.Protected, ou: o.OU, manager: o.Manager,
			owners: o.Owners})
	}
	st.lastIndex = snap.LastIndex
	e.mu.Lock()
	e.st, e.actors = st, &sync.Map{}
	e.mu.Unlock()
	e.log.Info("delegation: engine loaded", "roles", len(snap.Roles), "assignments", len(snap.Assignments),
		"memberships", len(snap.Memberships), "objects", len(snap.Objects), "last_index", snap.LastIndex)
	return nil
}

// CatchUp folds in the applied events other writers committed since the engine last looked.
func (e *Engine) CatchUp(ctx context.Context, facts Facts) error {
	e.mu.RLock()
	last := e.st.lastIndex
	e.mu.RUnlock()
	events, err := facts.EventsSince(ctx, last)
	if err != nil {
		return fmt.Errorf("delegation: catch up: %w", err)
	}
	if len(events) > 0 {
		e.fold(events)
	}
	return nil
}

// fold applies committed events in index order, skipping those already folded in.
func (e *Engine) fold(events []audit.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	folded := false
	for i := range events {
		if events[i].Index <= e.st.lastIndex {
			continue
		}
		e.st.apply(&events[i])
		e.st.lastIndex = events[i].Index
		folded = true
	}
	if folded {
		e.actors = &sync.Map{}
	}
}

// Decide implements Authorizer on the committed state.
func (e *Engine) Decide(ctx context.Context, q *Question) Decision {
	e.mu.RLock()
	defer e.mu.RUnlock()
	now := e.now()
	c := e.actorGrants(q.Actor.ID, now)
	return decideFor(e.st, q, now, c.who, c.mine, c.gs, nil)
}

// Allowed returns those of actions that actor may take on obj as it is (the question a listing
// of what one may do asks: Before and After are obj's fields). It judges them as Decide would,
// sharing the work the questions have in common: the actor's grants and the scopes' answers on
// the object.
func (e *Engine) Allowed(ctx context.Context, actor Actor, obj Object, actions []Action) []Action {
	e.mu.RLock()
	defer e.mu.RUnlock()
	now := e.now()
	c := e.actorGrants(actor.ID, now)
	sub := e.st.subject(obj.Ref, obj.Fields)
	var out []Action
	for _, action := range actions {
		// Verified: what the actor may do once they have taken the steps it asks for (a reset
		// after the user's identity is verified is still theirs to do).
		q := Question{Actor: actor, Action: action, Target: obj.Ref, Before: obj.Fields, After: obj.Fields, Verified: true}
		if decideFor(e.st, &q, now, c.who, c.mine, c.gs, sub).Allow {
			out = append(out, action)
		}
	}
	return out
}

// actorGrants returns the actor's record, closure and active assignments on the committed
// state, from the cache when nothing changed since they were computed. The caller holds e.mu.
func (e *Engine) actorGrants(actor string, now time.Time) *actorCache {
	if v, ok := e.actors.Load(actor); ok {
		c := v.(*actorCache)
		if c.index == e.st.lastIndex && now.Before(c.expires) {
			return c
		}
	}
	mine := e.st.closure(actor)
	c := &actorCache{index: e.st.lastIndex, expires: e.st.nextChange(mine, now), who: actorOf(e.st, actor), mine: mine,
		gs: e.st.grantsOf(mine, now)}
	e.actors.Store(actor, c)
	return c
}

// nextChange is the first time after now at which one of the assignments held by holders
// becomes or stops being active (a validity bound or an activation end): until then, the
// grants computed at now stay the same.
func (st *state) nextChange(holders []string, now time.Time) time.Time {
	next := now.Add(time.Minute)
	consider := func(t time.Time) {
		if t.After(now) && t.Before(next) {
			next = t
		}
	}
	for _, h := range holders {
		ids, _ := st.byHolder.get(h)
		for _, id := range ids {
			if a, ok := st.assignments.get(id); ok {
				consider(a.From)
				consider(a.Until)
				consider(a.ActiveUntil)
			}
		}
	}
	return next
}

// Session implements Authorizer: it first catches up with the log, then decides on a shadow of
// the committed state that the transaction's own events update.
func (e *Engine) Session(ctx context.Context, facts Facts) (Session, error) {
	if err := e.CatchUp(ctx, facts); err != nil {
		return nil, err
	}
	e.mu.RLock()
	sh := e.st.shadow()
	e.mu.RUnlock()
	return &session{e: e, st: sh}, nil
}

// session is a Session over a shadow state.
type session struct {
	e      *Engine
	st     *state
	events []audit.Event
}

func (s *session) Decide(ctx context.Context, q *Question) Decision {
	// The shadow reads through to the committed maps, which a concurrent fold may write.
	s.e.mu.RLock()
	defer s.e.mu.RUnlock()
	return decide(s.st, q, s.e.now())
}

func (s *session) Record(ev *audit.Event) {
	s.e.mu.RLock()
	s.st.apply(ev)
	s.e.mu.RUnlock()
	s.events = append(s.events, *ev)
}

// Mark returns how many events the session has recorded, for Rewind.
func (s *session) Mark() int { return len(s.events) }

// Rewind forgets the events recorded after mark (a savepoint of the transaction was rolled
// back): the shadow is rebuilt from the committed state and the events before mark.
func (s *session) Rewind(mark int) {
	if mark >= len(s.events) {
		return
	}
	s.e.mu.RLock()
	defer s.e.mu.RUnlock()
	s.events = s.events[:mark]
	s.st = s.e.st.shadow()
	for i := range s.events {
		s.st.apply(&s.events[i])
	}
}

func (s *session) Commit() {
	if len(s.events) > 0 {
		s.e.fold(s.events)
	}
}

// grant is an active assignment with its role.
type grant struct {
	a    *Assignment
	role *Role
}

// grants returns the active assignments principal holds, directly or through its groups.
func (st *state) grants(principal string, now time.Time) []grant {
	return st.grantsOf(st.closure(principal), now)
}

// grantsOf returns the active assignments held by any of holders (a principal's closure).
func (st *state) grantsOf(holders []string, now time.Time) []grant {
	var out []grant
	for _, holder := range holders {
		ids, _ := st.byHolder.get(holder)
		for _, id := range ids {
			a, ok := st.assignments.get(id)
			if !ok || !a.Active(now) {
				continue
			}
			if r, ok := st.role(a.Role); ok {
				out = append(out, grant{a: a, role: r})
			}
		}
	}
	return out
}

// holdsTier0 reports whether principal holds an active tier-0 assignment.
func holdsTier0(gs []grant) *grant {
	for i := range gs {
		if gs[i].role.Name == RoleTier0 {
			return &gs[i]
		}
	}
	return nil
}

// authority collects the assignments an allow rests on.
type authority []string

func (a *authority) add(id string) {
	if !slices.Contains(*a, id) {
		*a = append(*a, id)
	}
}

func (a authority) decision(rule string) Decision {
	ids := slices.Clone(a)
	slices.Sort(ids)
	return Allow(audit.Authority{Assignments: ids, Rule: rule})
}
