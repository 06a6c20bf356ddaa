package delegation

import (
	"encoding/json"
	"slices"
	"sync/atomic"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/directory"
)

// layer is a map that can be shadowed: a session's writes go to over (nil for the committed
// state, whose writes go to base), deletions are remembered in gone.
type layer[V any] struct {
	base map[string]V
	over map[string]V
	gone map[string]bool
}

func newLayer[V any]() layer[V] { return layer[V]{base: map[string]V{}} }

// shadow returns a layer that reads through l and writes to maps of its own.
func (l layer[V]) shadow() layer[V] {
	return layer[V]{base: l.base, over: map[string]V{}, gone: map[string]bool{}}
}

func (l *layer[V]) get(k string) (V, bool) {
	if l.over != nil {
		if v, ok := l.over[k]; ok {
			return v, true
		}
		if l.gone[k] {
			var zero V
			return zero, false
		}
	}
	v, ok := l.base[k]
	return v, ok
}

func (l *layer[V]) set(k string, v V) {
	if l.over == nil {
		l.base[k] = v
		return
	}
	l.over[k] = v
	delete(l.gone, k)
}

func (l *layer[V]) del(k string) {
	if l.over == nil {
		delete(l.base, k)
		return
	}
	delete(l.over, k)
	l.gone[k] = true
}

// state is what authorization depends on, kept in memory: roles, assignments, the membership
// graph, the OU tree and users' status. It is a projection of the audit log: every applied
// event that changes one of these is folded in by apply, the same way for a write transaction's
// own events (in a session's shadow layers) and for committed ones.
type state struct {
	roles       layer[*Role]
	assignments layer[*Assignment]
	byHolder    layer[[]string] // holder ID -> assignment IDs
	memberOf    layer[[]string] // principal ID -> groups it is a direct member of
	members     layer[[]string] // group ID -> its direct members
	ouParent    layer[string]   // OU ID -> parent OU ID ("" for the root)
	objects     layer[objInfo]  // user, group and service-account ID -> status and protection
	reports     layer[[]string] // manager ID -> the users they manage
	owned       layer[[]string] // user ID -> the groups and service accounts they own
	lastIndex   int64           // the last event folded in (committed state only)
	// tier0 memoizes tier0Holders; any change resets it (apply runs under the engine's write
	// lock, readers fill it under the read lock).
	tier0 atomic.Pointer[map[string]bool]
}

// objInfo is what authorization needs to know of a user, group or service account itself:
// besides its status and protection, its place and relations (OU, manager, owners), so that a
// right held over related objects (a manager's reports, an owner's groups) can be judged on
// those objects.
type objInfo struct {
	kind      directory.Kind
	status    directory.Status // users and service accounts
	protected bool
	ou        string
	manager   string   // users
	owners    []string // groups and service accounts
}

func newState() *state {
	return &state{roles: newLayer[*Role](), assignments: newLayer[*Assignment](), byHolder: newLayer[[]string](),
		memberOf: newLayer[[]string](), members: newLayer[[]string](), ouParent: newLayer[string](),
		objects: newLayer[objInfo](), reports: newLayer[[]string](), owned: newLayer[[]string](), lastIndex: -1}
}

// shadow returns a state that reads through s and keeps its own writes.
func (s *state) shadow() *state {
	return &state{roles: s.roles.shadow(), assignments: s.assignments.shadow(), byHolder: s.byHolder.shadow(),
		memberOf: s.memberOf.shadow(), members: s.members.shadow(), ouParent: s.ouParent.shadow(),
		objects: s.objects.shadow(), reports: s.reports.shadow(), owned: s.owned.shadow(), lastIndex: s.lastIndex}
}

// role returns a custom or built-in role.
func (s *state) role(name string) (*Role, bool) {
	if r, ok := builtinByName[name]; ok {
		return r, true
	}
	return s.roles.get(name)
}

var builtinByName = func() map[string]*Role {
	m := map[string]*Role{}
	for _, r := range BuiltinRoles() {
		m[r.Name] = &r
	}
	return m
}()

// putAssignment stores a, with its scope's filter parsed (scopes are shared read-only
// afterwards).
func (s *state) putAssignment(a *Assignment) {
	_ = a.Scope.compile() // an invalid filter selects nothing
	if old, ok := s.assignments.get(a.ID); ok {
		s.dropHolderLink(old.Holder.ID, a.ID)
	}
	s.assignments.set(a.ID, a)
	ids, _ := s.byHolder.get(a.Holder.ID)
	if !slices.Contains(ids, a.ID) {
		s.byHolder.set(a.Holder.ID, append(slices.Clone(ids), a.ID))
	}
}

func (s *state) dropAssignment(id string) {
	if a, ok := s.assignments.get(id); ok {
		s.dropHolderLink(a.Holder.ID, id)
		s.assignments.del(id)
	}
}

func (s *state) dropHolderLink(holder, id string) {
	ids, _ := s.byHolder.get(holder)
	if i := slices.Index(ids, id); i >= 0 {
		ids = slices.Delete(slices.Clone(ids), i, i+1)
		if len(ids) == 0 {
			s.byHolder.del(holder)
		} else {
			s.byHolder.set(holder, ids)
		}
	}
}

func (s *state) addMember(group, member string) {
	groups, _ := s.memberOf.get(member)
	if !slices.Contains(groups, group) {
		s.memberOf.set(member, append(slices.Clone(groups), group))
	}
	ms, _ := s.members.get(group)
	if !slices.Contains(ms, member) {
		s.members.set(group, append(slices.Clone(ms), member))
	}
}

func (s *state) removeMember(group, member string) {
	if groups, _ := s.memberOf.get(member); slices.Contains(groups, group) {
		groups = slices.DeleteFunc(slices.Clone(groups), func(g string) bool { return g == group })
		if len(groups) == 0 {
			s.memberOf.del(member)
		} else {
			s.memberOf.set(member, groups)
		}
	}
	if ms, _ := s.members.get(group); slices.Contains(ms, member) {
		ms = slices.DeleteFunc(slices.Clone(ms), func(m string) bool { return m == member })
		if len(ms) == 0 {
			s.members.del(group)
		} else {
			s.members.set(group, ms)
		}
	}
}

// dropPrincipal removes a deleted user, group or service account: its memberships, its members
// (for a group) and the assignments it holds.
func (s *state) dropPrincipal(id string) {
	groups, _ := s.memberOf.get(id)
	for _, g := range slices.Clone(groups) {
		s.removeMember(g, id)
	}
	members, _ := s.members.get(id)
	for _, m := range slices.Clone(members) {
		s.removeMember(id, m)
	}
	held, _ := s.byHolder.get(id)
	for _, a := range slices.Clone(held) {
		s.dropAssignment(a)
	}
	if info, ok := s.objects.get(id); ok {
		s.relate(id, info, objInfo{})
	}
	owns, _ := s.owned.get(id)
	for _, o := range slices.Clone(owns) {
		if info, ok := s.objects.get(o); ok {
			next := info
			next.owners = slices.DeleteFunc(slices.Clone(info.owners), func(x string) bool { return x == id })
			s.setObject(o, next)
		}
	}
	s.objects.del(id)
}

// setObject stores an object's info and keeps the reverse relations (reports, owned) in step.
func (s *state) setObject(id string, info objInfo) {
	old, _ := s.objects.get(id)
	s.relate(id, old, info)
	s.objects.set(id, info)
}

// relate moves id's entries in the reverse relations from what old says to what next says.
func (s *state) relate(id string, old, next objInfo) {
	if old.manager != next.manager {
		if old.manager != "" {
			s.unlink(&s.reports, old.manager, id)
		}
		if next.manager != "" {
			s.link(&s.reports, next.manager, id)
		}
	}
	for _, o := range old.owners {
		if !slices.Contains(next.owners, o) {
			s.unlink(&s.owned, o, id)
		}
	}
	for _, o := range next.owners {
		if !slices.Contains(old.owners, o) {
			s.link(&s.owned, o, id)
		}
	}
}

func (s *state) link(l *layer[[]string], key, id string) {
	ids, _ := l.get(key)
	if !slices.Contains(ids, id) {
		l.set(key, append(slices.Clone(ids), id))
	}
}

func (s *state) unlink(l *layer[[]string], key, id string) {
	ids, _ := l.get(key)
	if i := slices.Index(ids, id); i >= 0 {
		if ids = slices.Delete(slices.Clone(ids), i, i+1); len(ids) == 0 {
			l.del(key)
		} else {
			l.set(key, ids)
		}
	}
}

// apply folds one applied event into the state. Events of other outcomes, and of actions that
// change nothing authorization depends on, are ignored.
func (s *state) apply(ev *audit.Event) {
	if ev.Outcome != audit.Applied {
		return
	}
	s.tier0.Store(nil)
	id := ev.Target.ID
	switch Action(ev.Action) {
	case OUCreate, OUMove:
		s.ouParent.set(id, refID(ev.After["parent"]))
	case OUDelete:
		s.ouParent.del(id)
	case UserCreate, UserUpdate, UserMove, UserDisable, UserEnable, GroupCreate, GroupUpdate, GroupMove,
		SACreate, SAUpdate, SAMove:
		info, _ := s.objects.get(id)
		info.kind = directory.Kind(ev.Target.Type)
		if st, ok := ev.After["status"].(string); ok {
			info.status = directory.Status(st)
		}
		if p, ok := ev.After["protected"].(bool); ok {
			info.protected = p
		}
		if v, ok := ev.After["ou"]; ok {
			info.ou = refID(v)
		}
		if v, ok := ev.After["manager"]; ok {
			info.manager = refID(v)
		}
		if v, ok := ev.After["owners"]; ok {
			info.owners = refIDs(v)
		}
		s.setObject(id, info)
	case UserDelete, GroupDelete, SADelete:
		s.dropPrincipal(id)
	case GroupAddMember:
		s.addMember(id, refID(ev.After["member"]))
	case GroupRemoveMember:
		s.removeMember(id, refID(ev.Before["member"]))
	case RoleCreate, RoleUpdate:
		var r Role
		if decodeRecord(ev.After["role"], &r) {
			s.roles.set(r.Name, &r)
		}
	case RoleDelete:
		var r Role
		if decodeRecord(ev.Before["role"], &r) {
			s.roles.del(r.Name)
		}
	case RoleAssign, RoleActivate:
		var a Assignment
		if decodeRecord(ev.After["assignment"], &a) {
			s.putAssignment(&a)
		}
	case RoleRevoke:
		var a Assignment
		if decodeRecord(ev.Before["assignment"], &a) {
			s.dropAssignment(a.ID)
		}
	}
}

// refID is the ID of a reference as events record it ({"id", "name"}), "" for none.
func refID(v any) string {
	switch r := v.(type) {
	case map[string]string:
		return r["id"]
	case map[string]any:
		id, _ := r["id"].(string)
		return id
	}
	return ""
}

// decodeRecord turns a record as an event holds it (a struct before encoding, a map after)
// into v.
func decodeRecord(rec any, v any) bool {
	if rec == nil {
		return false
	}
	b, err := json.Marshal(rec)
	return err == nil && json.Unmarshal(b, v) == nil
}

// tier0Holders returns every principal that holds a tier-0 assignment (active or not: an
// eligible tier-0 admin is as protected as an active one), directly or as a member, transitively,
// of a group that does.
func (s *state) tier0Holders() map[string]bool {
	if m := s.tier0.Load(); m != nil {
		return *m
	}
	holders := map[string]bool{}
	var queue []string
	s.assignments.each(func(a *Assignment) {
		if a.Role == RoleTier0 && !holders[a.Holder.ID] {
			holders[a.Holder.ID] = true
			queue = append(queue, a.Holder.ID)
		}
	})
	for i := 0; i < len(queue); i++ {
		members, _ := s.members.get(queue[i])
		for _, m := range members {
			if !holders[m] {
				holders[m] = true
				queue = append(queue, m)
			}
		}
	}
	s.tier0.Store(&holders)
	return holders
}

// each calls fn for every value the layer holds: its own writes, and what it reads through
// to that it has not replaced or deleted.
func (l *layer[V]) each(fn func(V)) {
	for k, v := range l.base {
		if l.over != nil {
			if _, shadowed := l.over[k]; shadowed || l.gone[k] {
				continue
			}
		}
		fn(v)
	}
	for _, v := range l.over {
		fn(v)
	}
}
