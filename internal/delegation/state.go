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

// setLayer maps keys to sets of IDs (a group's members, a manager's reports), layered like
// layer. The base's sets change in place; a shadow records what it adds and removes, ID by ID,
// over the base's sets: a change to a set of a million IDs costs what a change to a set of one
// does, where copying the set on write would make loading a large group quadratic.
type setLayer struct {
	base           map[string]map[string]struct{}
	added, removed map[string]map[string]struct{} // a shadow's own changes
}

func newSetLayer() setLayer { return setLayer{base: map[string]map[string]struct{}{}} }

// shadow returns a set layer that reads through l and records its own changes.
func (l setLayer) shadow() setLayer {
	return setLayer{base: l.base, added: map[string]map[string]struct{}{}, removed: map[string]map[string]struct{}{}}
}

func (l *setLayer) has(key, id string) bool {
	if l.added != nil {
		if _, ok := l.added[key][id]; ok {
			return true
		}
		if _, ok := l.removed[key][id]; ok {
			return false
		}
	}
	_, ok := l.base[key][id]
	return ok
}

// put adds id to key's set and reports whether it was not there.
func (l *setLayer) put(key, id string) bool {
	if l.has(key, id) {
		return false
	}
	switch {
	case l.added == nil:
		addTo(l.base, key, id)
	case dropFrom(l.removed, key, id): // it is in the base: no longer removed
	default:
		addTo(l.added, key, id)
	}
	return true
}

// drop removes id from key's set and reports whether it was there.
func (l *setLayer) drop(key, id string) bool {
	if !l.has(key, id) {
		return false
	}
	switch {
	case l.added == nil:
		dropFrom(l.base, key, id)
	case dropFrom(l.added, key, id): // the shadow's own addition
	default:
		addTo(l.removed, key, id)
	}
	return true
}

// ids returns key's set, in no particular order.
func (l *setLayer) ids(key string) []string {
	var out []string
	for id := range l.base[key] {
		if _, gone := l.removed[key][id]; !gone {
			out = append(out, id)
		}
	}
	for id := range l.added[key] {
		out = append(out, id)
	}
	return out
}

func addTo(m map[string]map[string]struct{}, key, id string) {
	set, ok := m[key]
	if !ok {
		set = map[string]struct{}{}
		m[key] = set
	}
	set[id] = struct{}{}
}

// dropFrom removes id from key's set in m (and an emptied set) and reports whether it was there.
func dropFrom(m map[string]map[string]struct{}, key, id string) bool {
	set, ok := m[key]
	if _, in := set[id]; !ok || !in {
		return false
	}
	delete(set, id)
	if len(set) == 0 {
		delete(m, key)
	}
	return true
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
	members     setLayer        // group ID -> its direct members
	ouParent    layer[string]   // OU ID -> parent OU ID ("" for the root)
	objects     layer[objInfo]  // user, group and service-account ID -> status and protection
	reports     setLayer        // manager ID -> the users they manage
	owned       setLayer        // user ID -> the groups and service accounts they own
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
		memberOf: newLayer[[]string](), members: newSetLayer(), ouParent: newLayer[string](),
		objects: newLayer[objInfo](), reports: newSetLayer(), owned: newSetLayer(), lastIndex: -1}
}

// shadow returns a state that reads through s and keeps its own writes.
func (s *state) shadow() *state {
	sh := &state{roles: s.roles.shadow(), assignments: s.assignments.shadow(), byHolder: s.byHolder.shadow(),
		memberOf: s.memberOf.shadow(), members: s.members.shadow(), ouParent: s.ouParent.shadow(),
		objects: s.objects.shadow(), reports: s.reports.shadow(), owned: s.owned.shadow(), lastIndex: s.lastIndex}
	sh.tier0.Store(s.tier0.Load()) // the shadow starts equal to s
	return sh
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
	s.members.put(group, member)
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
	s.members.drop(group, member)
}

// dropPrincipal removes a deleted user, group or service account: its memberships, its members
// (for a group) and the assignments it holds.
func (s *state) dropPrincipal(id string) {
	groups, _ := s.memberOf.get(id)
	for _, g := range slices.Clone(groups) {
		s.removeMember(g, id)
	}
	for _, m := range s.members.ids(id) {
		s.removeMember(id, m)
	}
	held, _ := s.byHolder.get(id)
	for _, a := range slices.Clone(held) {
		s.dropAssignment(a)
	}
	if info, ok := s.objects.get(id); ok {
		s.relate(id, info, objInfo{})
	}
	for _, o := range s.owned.ids(id) {
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
			s.reports.drop(old.manager, id)
		}
		if next.manager != "" {
			s.reports.put(next.manager, id)
		}
	}
	for _, o := range old.owners {
		if !slices.Contains(next.owners, o) {
			s.owned.drop(o, id)
		}
	}
	for _, o := range next.owners {
		if !slices.Contains(old.owners, o) {
			s.owned.put(o, id)
		}
	}
}

// apply folds one applied event into the state. Events of other outcomes, and of actions that
// change nothing authorization depends on, are ignored.
func (s *state) apply(ev *audit.Event) {
	if ev.Outcome != audit.Applied {
		return
	}
	id := ev.Target.ID
	if s.changesTier0(ev) {
		s.tier0.Store(nil)
	}
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
	if a := Action(ev.Action); a == UserDisable || a == UserDelete {
		s.handOver(ev.After["orphaned_service_accounts"])
	}
}

// handOver gives each service account that disabling or deleting its last active owner handed
// over (an event's orphaned_service_accounts: [{"id", "new_owner": {"id"}}]) its new owner.
func (s *state) handOver(rec any) {
	var accounts []struct {
		ID       string `json:"id"`
		NewOwner struct {
			ID string `json:"id"`
		} `json:"new_owner"`
	}
	if !decodeRecord(rec, &accounts) {
		return
	}
	for _, a := range accounts {
		info, ok := s.objects.get(a.ID)
		if !ok || a.NewOwner.ID == "" || slices.Contains(info.owners, a.NewOwner.ID) {
			continue
		}
		next := info
		next.owners = append(slices.Clone(info.owners), a.NewOwner.ID)
		s.setObject(a.ID, next)
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

// changesTier0 reports whether an applied event can change who holds tier-0 (which the memo of
// tier0Holders must then forget): a change of roles or assignments, or of the members or
// existence of a principal that holds it. Creating, updating or moving users and groups, and
// memberships of groups outside tier-0, cannot; a bulk import is mostly those.
func (s *state) changesTier0(ev *audit.Event) bool {
	m := s.tier0.Load()
	if m == nil {
		return false // nothing memoized
	}
	switch Action(ev.Action) {
	case UserCreate, UserUpdate, UserMove, UserEnable, GroupCreate, GroupUpdate, GroupMove,
		SACreate, SAUpdate, SAMove, OUCreate, OUUpdate, OUMove, OUDelete:
		return false
	case GroupAddMember, GroupRemoveMember, UserDisable, UserDelete, GroupDelete, SADelete:
		return (*m)[ev.Target.ID]
	case RoleAssign, RoleRevoke, RoleActivate:
		// Only a tier-0 assignment changes who holds tier-0.
		a := assignmentOf(&Question{After: ev.After, Before: ev.Before})
		return a == nil || a.Role == RoleTier0
	}
	return true
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
		for _, m := range s.members.ids(queue[i]) {
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
