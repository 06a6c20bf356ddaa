package delegation_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
)

// model is an independent reading of who may do what, computed from the store's tables alone
// (the OU table, the memberships, the assignments), without the engine: the oracle the property
// test holds the engine to. It is deliberately simple and slow.
type model struct {
	now       time.Time
	ous       map[string]directory.OU
	users     map[string]directory.User
	groups    map[string]directory.Group
	sas       map[string]directory.ServiceAccount
	memberOf  map[string][]string // member ID -> groups it is a direct member of
	members   map[string][]string // group ID -> direct members
	assigns   []delegation.Assignment
	roles     map[string]delegation.Role
	objects   []mobj // every object, for the semantic checks
	userOrder []string
}

// mobj is an object with what scopes look at.
type mobj struct {
	kind directory.Kind
	id   string
	ou   string // the OU it lives in; for an OU, its parent
	user *directory.User
	own  []directory.Ref // owners of a group or service account
	prot bool
}

func loadModel(w *world) *model {
	w.t.Helper()
	m := &model{now: w.clk.Peek(), ous: map[string]directory.OU{}, users: map[string]directory.User{},
		groups: map[string]directory.Group{}, sas: map[string]directory.ServiceAccount{},
		memberOf: map[string][]string{}, members: map[string][]string{}, roles: map[string]delegation.Role{}}
	q := directory.ListQuery{Limit: directory.MaxLimit}
	ous, err := w.st.ListOUs(w.ctx, q)
	must(w.t, err)
	for _, o := range ous.Items {
		m.ous[o.ID] = o
		m.objects = append(m.objects, mobj{kind: directory.KindOU, id: o.ID, ou: o.ParentID, prot: o.Protected})
	}
	for _, u := range listAll(w, w.st.ListUsers) {
		m.users[u.ID] = u
		m.userOrder = append(m.userOrder, u.ID)
		m.objects = append(m.objects, mobj{kind: directory.KindUser, id: u.ID, ou: u.OUID, user: &u, prot: u.Protected})
	}
	for _, g := range listAll(w, w.st.ListGroups) {
		m.groups[g.ID] = g
		m.objects = append(m.objects, mobj{kind: directory.KindGroup, id: g.ID, ou: g.OUID, own: g.Owners, prot: g.Protected})
		page, err := w.st.Members(w.ctx, g.Ref(), q)
		must(w.t, err)
		for _, mb := range page.Items {
			m.members[g.ID] = append(m.members[g.ID], mb.Ref.ID)
			m.memberOf[mb.Ref.ID] = append(m.memberOf[mb.Ref.ID], g.ID)
		}
	}
	for _, s := range listAll(w, w.st.ListServiceAccounts) {
		m.sas[s.ID] = s
		m.objects = append(m.objects, mobj{kind: directory.KindServiceAccount, id: s.ID, ou: s.OUID, own: s.Owners, prot: s.Protected})
	}
	m.assigns, err = w.st.Assignments(w.ctx, "", "", "", directory.MaxLimit)
	must(w.t, err)
	for _, r := range delegation.BuiltinRoles() {
		m.roles[r.Name] = r
	}
	custom, err := w.st.Roles(w.ctx)
	must(w.t, err)
	for _, r := range custom {
		m.roles[r.Name] = r
	}
	return m
}

func listAll[T any](w *world, list func(ctx context.Context, q directory.ListQuery) (directory.Page[T], error)) []T {
	w.t.Helper()
	var out []T
	q := directory.ListQuery{Limit: directory.MaxLimit}
	for {
		page, err := list(w.ctx, q)
		must(w.t, err)
		out = append(out, page.Items...)
		if page.Next == "" {
			return out
		}
		q.Cursor = page.Next
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// obj finds the object with id.
func (m *model) obj(id string) mobj {
	for _, o := range m.objects {
		if o.id == id {
			return o
		}
	}
	return mobj{}
}

// chain is the OU of o and its ancestors, nearest first; an OU starts with itself.
func (m *model) chain(o mobj) []string {
	var out []string
	id := o.ou
	if o.kind == directory.KindOU {
		out = append(out, o.id)
	}
	for n := 0; id != "" && n < 100; n++ {
		out = append(out, id)
		id = m.ous[id].ParentID
	}
	return out
}

// closure is id and every group it belongs to, transitively.
func (m *model) closure(id string) []string {
	out := []string{id}
	for i := 0; i < len(out); i++ {
		for _, g := range m.memberOf[out[i]] {
			if !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	return out
}

// usersUnder is every user that is id or a member of it, transitively.
func (m *model) usersUnder(id string) []string {
	var out []string
	queue := []string{id}
	for i := 0; i < len(queue); i++ {
		if _, ok := m.users[queue[i]]; ok {
			out = append(out, queue[i])
		}
		for _, mb := range m.members[queue[i]] {
			if !slices.Contains(queue, mb) {
				queue = append(queue, mb)
			}
		}
	}
	return out
}

// covers reports whether scope s, held by (or, for a group holder's relation, on behalf of)
// the user holder, covers o.
func (m *model) covers(s *delegation.Scope, holder string, o mobj) bool {
	var in bool
	chain := m.chain(o)
	switch {
	case s.OU != "":
		in = s.Subtree && slices.Contains(chain, s.OU) || !s.Subtree && len(chain) > 0 && chain[0] == s.OU
	case len(s.Groups) > 0:
		cl := m.closure(o.id)
		in = slices.ContainsFunc(s.Groups, func(g string) bool { return slices.Contains(cl, g) })
	case s.Filter != "":
		e, err := filter.Parse(s.Filter, directory.UserSchema)
		in = err == nil && o.user != nil && filter.Match(e, o.user.Get)
	case s.Relation != "":
		owns := slices.ContainsFunc(o.own, func(r directory.Ref) bool { return r.ID == holder })
		switch s.Relation {
		case delegation.RelSelf:
			in = o.kind == directory.KindUser && o.id == holder
		case delegation.RelDirectReports:
			in = o.user != nil && o.user.ManagerID == holder
		case delegation.RelOwnedGroups:
			in = o.kind == directory.KindGroup && owns
		case delegation.RelOwnedServiceAccounts:
			in = o.kind == directory.KindServiceAccount && owns
		}
	}
	for _, ex := range s.ExcludeOUs {
		in = in && !slices.Contains(chain, ex)
	}
	cl := m.closure(o.id)
	for _, ex := range s.ExcludeGroups {
		in = in && !slices.Contains(cl, ex)
	}
	return in
}

// active reports whether a grants anything at the model's time.
func (m *model) active(a *delegation.Assignment) bool {
	return (a.From.IsZero() || !m.now.Before(a.From)) && (a.Until.IsZero() || m.now.Before(a.Until)) &&
		(!a.Eligible || m.now.Before(a.ActiveUntil))
}

// expired reports whether a will never grant anything again.
func (m *model) expired(a *delegation.Assignment) bool {
	return !a.Until.IsZero() && !m.now.Before(a.Until)
}

// mgrant is an assignment with its role.
type mgrant struct {
	a    *delegation.Assignment
	role delegation.Role
}

// grants are the active assignments the user holds, directly or through groups; none for a
// user who is not active.
func (m *model) grants(user string) []mgrant {
	if u, ok := m.users[user]; !ok || u.Status != directory.StatusActive {
		return nil
	}
	cl := m.closure(user)
	var out []mgrant
	for i := range m.assigns {
		a := &m.assigns[i]
		if r, ok := m.roles[a.Role]; ok && slices.Contains(cl, a.Holder.ID) && m.active(a) {
			out = append(out, mgrant{a, r})
		}
	}
	return out
}

// held are the assignments principal holds, directly or through groups, that are not expired.
func (m *model) held(principal string) []mgrant {
	cl := m.closure(principal)
	var out []mgrant
	for i := range m.assigns {
		a := &m.assigns[i]
		if r, ok := m.roles[a.Role]; ok && slices.Contains(cl, a.Holder.ID) && !m.expired(a) {
			out = append(out, mgrant{a, r})
		}
	}
	return out
}

// tier0 reports whether gs include tier-0.
func tier0(gs []mgrant) bool {
	return slices.ContainsFunc(gs, func(g mgrant) bool { return g.role.Name == delegation.RoleTier0 })
}

// allowsAttr reports whether role r's user.update covers attr ("" for any).
func allowsAttr(r delegation.Role, attr string) bool {
	if attr == "" || len(r.UserAttributes) == 0 {
		return true
	}
	for _, a := range r.UserAttributes {
		if a == attr || a == "attributes.*" && len(attr) > 11 && attr[:11] == "attributes." {
			return true
		}
	}
	return false
}

// can reports whether user holds a grant allowing action (for attr) that covers o, and which.
func (m *model) can(user string, gs []mgrant, action delegation.Action, attr string, o mobj) (string, bool) {
	for _, g := range gs {
		if slices.Contains(g.role.Actions, action) && allowsAttr(g.role, attr) && m.covers(&g.a.Scope, user, o) {
			return g.a.ID, true
		}
	}
	return "", false
}

// holdsTier0Ever reports whether principal holds a tier-0 assignment that is not expired.
func (m *model) holdsTier0Ever(principal string) bool { return tier0(m.held(principal)) }

// untouchable reports whether o may be changed by tier-0 alone.
func (m *model) untouchable(o mobj) bool { return o.prot || m.holdsTier0Ever(o.id) }

// coversRight reports, semantically, whether the user actor (with grants gs) already holds right
// r as held by each of holders: for every object r reaches and every action of r's role,
// a grant of actor's allows that action (with r's attributes) on that object.
func (m *model) coversRight(actor string, gs []mgrant, r mgrant, holders []string) bool {
	if r.role.Name == delegation.RoleTier0 {
		return tier0(gs)
	}
	for _, h := range holders {
		for _, o := range m.objects {
			if !m.covers(&r.a.Scope, h, o) {
				continue
			}
			for _, x := range r.role.Actions {
				attrs := []string{""}
				if x == delegation.UserUpdate {
					attrs = r.role.UserAttributes
				}
				for _, attr := range attrs {
					ok := slices.ContainsFunc(gs, func(g mgrant) bool {
						return slices.Contains(g.role.Actions, x) && allowsAttr(g.role, attr) &&
							(x != delegation.UserUpdate || len(r.role.UserAttributes) > 0 || len(g.role.UserAttributes) == 0) &&
							m.covers(&g.a.Scope, actor, o)
					})
					if !ok {
						return false
					}
				}
			}
		}
	}
	return true
}
