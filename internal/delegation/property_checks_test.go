package delegation_test

import (
	"fmt"
	"slices"
	"strings"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
	"github.com/deputy-iam/deputy/internal/store/storetest"
)

// kindActions are the actions sampled on objects of each kind.
var kindActions = map[directory.Kind][]delegation.Action{
	directory.KindUser: {delegation.DirectoryRead, delegation.UserUpdate, delegation.UserMove, delegation.UserDisable,
		delegation.UserEnable, delegation.UserDelete, delegation.UserResetPassword, delegation.UserUnlock, delegation.UserIssueToken},
	directory.KindGroup: {delegation.DirectoryRead, delegation.GroupUpdate, delegation.GroupDelete, delegation.GroupRemoveMember,
		delegation.GroupAddMember, delegation.GroupSetOwner, delegation.GroupMove},
	directory.KindServiceAccount: {delegation.DirectoryRead, delegation.SAIssueKey, delegation.SARevokeKey, delegation.SAUpdate,
		delegation.SAMove, delegation.SASetOwner},
	directory.KindOU: {delegation.DirectoryRead, delegation.OUUpdate, delegation.OUMove, delegation.OUDelete},
}

var kinds = []directory.Kind{directory.KindOU, directory.KindUser, directory.KindGroup, directory.KindServiceAccount}

// fields returns o's attributes as the store has them, and its reference.
func (p *prop) fields(o mobj) (directory.Ref, map[string]any) {
	m := p.m
	switch o.kind {
	case directory.KindOU:
		ou := m.ous[o.id]
		return ou.Ref(), ou.Fields()
	case directory.KindUser:
		u := m.users[o.id]
		return u.Ref(), u.Fields()
	case directory.KindGroup:
		g := m.groups[o.id]
		return g.Ref(), g.Fields()
	}
	s := m.sas[o.id]
	return s.Ref(), s.Fields()
}

func (p *prop) actor(id string) delegation.Actor { return storetest.ActorOf(p.m.users[id]) }

func (p *prop) objectsOf(kind directory.Kind) []mobj {
	var out []mobj
	for _, o := range p.m.objects {
		if o.kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// isTakeover reports whether action (on attribute attr) is a takeover action on another user.
func isTakeover(action delegation.Action, attr string) bool {
	switch action {
	case delegation.UserResetPassword, delegation.UserIssueToken, delegation.SAIssueKey:
		return true
	case delegation.UserUpdate:
		return attr == "phone" || attr == "email" || attr == "manager"
	}
	return false
}

// expect checks one decision on a question without a member against the model. attr is the
// attribute a user.update touches ("" for none).
func (p *prop) expect(actor string, action delegation.Action, attr string, o mobj, d delegation.Decision) {
	p.t.Helper()
	m := p.m
	gs := m.grants(actor)
	what := fmt.Sprintf("%s: %s %s on %s %s", m.users[actor].Username, action, attr, o.kind, o.id)
	switch {
	case m.users[actor].Status != directory.StatusActive:
		if d.Reason != delegation.ReasonActorInactive {
			p.fail("%s: an inactive actor got %+v", what, d)
		}
		return
	case tier0(gs):
		if !d.Allow || d.Authority.Rule != delegation.RoleTier0 || len(d.Authority.Assignments) != 1 ||
			!slices.ContainsFunc(gs, func(g mgrant) bool {
				return g.a.ID == d.Authority.Assignments[0] && g.role.Name == delegation.RoleTier0
			}) {
			p.fail("%s: tier-0 got %+v", what, d)
		}
		return
	case o.id == actor && (action == delegation.DirectoryRead || action == delegation.UserIssueToken):
		if !d.Allow || d.Authority.Rule != "self" {
			p.fail("%s: self-service got %+v", what, d)
		}
		return
	}
	_, cov := m.can(actor, gs, action, attr, o)
	if cov != (d.Allow || d.Reason == delegation.ReasonProtected || d.Reason == delegation.ReasonEscalation) {
		p.fail("%s: the model says covered=%v, the engine %+v; grants %s", what, cov, d, m.describeGrants(gs))
	}
	if !d.Allow {
		if d.Reason == delegation.ReasonProtected && !m.untouchable(o) {
			p.fail("%s: denied as protected, but it is neither protected nor a tier-0 holder", what)
		}
		if d.Reason == delegation.ReasonEscalation && !isTakeover(action, attr) {
			p.fail("%s: denied as escalation, but %s is no takeover", what, action)
		}
		return
	}
	p.checkAuthority(what, actor, gs, action, attr, o, d)
	if action != delegation.DirectoryRead && m.untouchable(o) {
		p.fail("%s: allowed on a protected object or tier-0 holder (%+v)", what, d)
	}
	if isTakeover(action, attr) {
		p.checkNoTakeover(what, actor, gs, o.id, []string{o.id})
	}
}

// checkAuthority checks that every assignment an allow names is an active grant of the actor
// whose role allows action on o, and that there is one.
func (p *prop) checkAuthority(what, actor string, gs []mgrant, action delegation.Action, attr string, o mobj, d delegation.Decision) {
	p.t.Helper()
	if d.Authority.Rule != "" || len(d.Authority.Assignments) == 0 {
		p.fail("%s: allowed by %+v, want assignments", what, d.Authority)
		return
	}
	for _, id := range d.Authority.Assignments {
		i := slices.IndexFunc(gs, func(g mgrant) bool { return g.a.ID == id })
		if i < 0 {
			p.fail("%s: allowed by %s, which is not an active assignment the actor holds", what, id)
			continue
		}
		if g := gs[i]; !slices.Contains(g.role.Actions, action) || !allowsAttr(g.role, attr) || !p.m.covers(&g.a.Scope, actor, o) {
			p.fail("%s: allowed by %s (%s over %+v), which does not allow it there", what, id, g.role.Name, g.a.Scope)
		}
	}
}

// checkNoTakeover checks that the actor already holds every right target holds, as each of
// holders would use it.
func (p *prop) checkNoTakeover(what, actor string, gs []mgrant, target string, holders []string) {
	p.t.Helper()
	for _, r := range p.m.held(target) {
		if !p.m.coversRight(actor, gs, r, holders) {
			p.fail("%s: a takeover of %s (%s over %+v), which the actor does not hold", what, r.a.ID, r.role.Name, r.a.Scope)
		}
	}
}

// checkDecisions samples questions on objects as they are (what check and can-what ask).
func (p *prop) checkDecisions(n int) {
	for range n {
		actor := pick(p.r, p.m.userOrder)
		o := pick(p.r, p.m.objects)
		action := pick(p.r, kindActions[o.kind])
		if action == delegation.GroupAddMember {
			continue // checkAddMember
		}
		ref, f := p.fields(o)
		q := &delegation.Question{Actor: p.actor(actor), Action: action, Target: ref, Before: f, After: f}
		attr := ""
		if action == delegation.UserUpdate && p.chance(70) {
			attr = pick(p.r, append(slices.Clone(userAttrs), "given_name", "attributes.cost_center"))
			q.Touched = []string{attr}
		}
		p.expect(actor, action, attr, o, p.decide(q))
	}
}

// checkAddMember samples group.add_member questions: the right on the group, sight of the
// member, no self-escalation, nothing untouchable, no takeover of the group's rights.
func (p *prop) checkAddMember(n int) {
	m := p.m
	for range n {
		actor := pick(p.r, m.userOrder)
		g := pick(p.r, p.objectsOf(directory.KindGroup))
		mem := pick(p.r, m.objects)
		if mem.kind == directory.KindOU || mem.id == g.id {
			continue
		}
		gref, gf := p.fields(g)
		mref, mf := p.fields(mem)
		d := p.decide(&delegation.Question{Actor: p.actor(actor), Action: delegation.GroupAddMember,
			Target: gref, Before: gf, After: gf, Touched: []string{"members"}, Member: &delegation.Object{Ref: mref, Fields: mf}})
		gs := m.grants(actor)
		what := fmt.Sprintf("%s adds %s %s to %s", m.users[actor].Username, mem.kind, mref.Name, gref.Name)
		switch {
		case m.users[actor].Status != directory.StatusActive:
			if d.Reason != delegation.ReasonActorInactive {
				p.fail("%s: an inactive actor got %+v", what, d)
			}
			continue
		case slices.Contains(m.closure(actor), mem.id):
			if d.Reason != delegation.ReasonSelfEscalation {
				p.fail("%s: adding oneself got %+v", what, d)
			}
			continue
		case tier0(gs):
			if !d.Allow {
				p.fail("%s: tier-0 got %+v", what, d)
			}
			continue
		}
		_, cov := m.can(actor, gs, delegation.GroupAddMember, "", g)
		_, sight := m.can(actor, gs, delegation.DirectoryRead, "", mem)
		if want := cov && sight; want != (d.Allow || d.Reason == delegation.ReasonProtected || d.Reason == delegation.ReasonEscalation) {
			p.fail("%s: the model says covered=%v, sight=%v; the engine %+v", what, cov, sight, d)
		}
		if !d.Allow {
			continue
		}
		p.checkAuthority(what, actor, gs, delegation.GroupAddMember, "", g, d)
		if m.untouchable(g) || m.untouchable(mem) {
			p.fail("%s: allowed, but the group or the member is tier-0's alone", what)
		}
		p.checkNoTakeover(what, actor, gs, g.id, append(m.usersUnder(mem.id), mem.id))
	}
}

// checkChanges previews random updates and moves (planned by the pipeline, decided in a
// session, rolled back) and checks the decision against the model on the object's states before
// and after the change.
func (p *prop) checkChanges(n int) {
	m, w := p.m, p.w
	for range n {
		actor := pick(p.r, m.userOrder)
		var (
			op     change.Op
			before mobj
			after  mobj
			attr   string
		)
		switch p.r.IntN(4) {
		case 0, 1:
			u := m.users[pick(p.r, m.userOrder)]
			attr = pick(p.r, userAttrs)
			next := u
			var v any
			switch attr {
			case "department":
				next.Department = pick(p.r, departments)
				v = next.Department
			case "title":
				next.Title = pick(p.r, titles)
				v = next.Title
			case "location":
				next.Location = pick(p.r, locations)
				v = next.Location
			case "phone":
				next.Phone = "+1 555 0999"
				v = next.Phone
			case "email":
				next.Email = fmt.Sprintf("new%d@example.com", p.r.IntN(1e6))
				v = next.Email
			case "manager":
				mgr := m.users[pick(p.r, m.userOrder)]
				next.ManagerID, next.ManagerName = mgr.ID, mgr.Username
				v = mgr.ID
			}
			op = update(u.ID, map[string]any{attr: v})
			before = mobj{kind: directory.KindUser, id: u.ID, ou: u.OUID, user: &u, prot: u.Protected}
			after = mobj{kind: directory.KindUser, id: u.ID, ou: u.OUID, user: &next, prot: u.Protected}
		case 2:
			u := m.users[pick(p.r, m.userOrder)]
			to := pick(p.r, p.objectsOf(directory.KindOU))
			next := u
			next.OUID = to.id
			op = change.Op{Action: delegation.UserMove, Target: u.Ref(), To: to.id}
			before = mobj{kind: directory.KindUser, id: u.ID, ou: u.OUID, user: &u, prot: u.Protected}
			after = mobj{kind: directory.KindUser, id: u.ID, ou: to.id, user: &next, prot: u.Protected}
		default:
			o := pick(p.r, p.objectsOf(directory.KindOU))
			to := pick(p.r, p.objectsOf(directory.KindOU))
			if slices.Contains(m.chain(to), o.id) {
				continue // into itself: refused by planning
			}
			op = change.Op{Action: delegation.OUMove, Target: directory.Ref{Kind: directory.KindOU, ID: o.id}, To: to.id}
			before, after = o, o
			after.ou = to.id
		}
		d, _, err := w.p.Preview(w.ctx, p.actor(actor), op)
		if err != nil {
			continue // planning refused it (a management cycle, an unchanged move, the root)
		}
		what := fmt.Sprintf("%s: %s %s %s", m.users[actor].Username, op.Action, attr, before.id)
		gs := m.grants(actor)
		switch {
		case m.users[actor].Status != directory.StatusActive:
			if d.Reason != delegation.ReasonActorInactive {
				p.fail("%s: an inactive actor got %+v", what, d)
			}
			continue
		case attr == "manager" && after.user.ManagerID == actor && before.user.ManagerID != actor && !tier0(gs):
			if d.Reason != delegation.ReasonSelfEscalation {
				p.fail("%s: making oneself the manager got %+v", what, d)
			}
			continue
		case tier0(gs):
			if !d.Allow {
				p.fail("%s: tier-0 got %+v", what, d)
			}
			continue
		}
		_, covBefore := m.can(actor, gs, op.Action, attr, before)
		_, covAfter := m.can(actor, gs, op.Action, attr, after)
		want := covBefore && covAfter && !m.untouchable(before)
		if isTakeover(op.Action, attr) {
			if d.Allow && !want {
				p.fail("%s: allowed, but the model says before=%v after=%v untouchable=%v", what, covBefore, covAfter, m.untouchable(before))
			}
			if d.Allow {
				p.checkNoTakeover(what, actor, gs, before.id, []string{before.id})
			}
			continue
		}
		if d.Allow != want {
			p.fail("%s: the engine %+v, the model says before=%v after=%v untouchable=%v", what, d, covBefore, covAfter, m.untouchable(before))
		}
	}
}

// listKind lists every object of kind the expression selects, through the store's SQL.
func (p *prop) listKind(kind directory.Kind, e filter.Expr) map[string]bool {
	w := p.w
	got := map[string]bool{}
	q := directory.ListQuery{Filter: e, Limit: directory.MaxLimit}
	for {
		var next string
		switch kind {
		case directory.KindOU:
			page, err := w.st.ListOUs(w.ctx, q)
			must(p.t, err)
			for _, o := range page.Items {
				got[o.ID] = true
			}
			next = page.Next
		case directory.KindUser:
			page, err := w.st.ListUsers(w.ctx, q)
			must(p.t, err)
			for _, o := range page.Items {
				got[o.ID] = true
			}
			next = page.Next
		case directory.KindGroup:
			page, err := w.st.ListGroups(w.ctx, q)
			must(p.t, err)
			for _, o := range page.Items {
				got[o.ID] = true
			}
			next = page.Next
		case directory.KindServiceAccount:
			page, err := w.st.ListServiceAccounts(w.ctx, q)
			must(p.t, err)
			for _, o := range page.Items {
				got[o.ID] = true
			}
			next = page.Next
		}
		if next == "" {
			return got
		}
		q.Cursor = next
	}
}

// checkCanWhat holds Reach and Visibility, run through the store's SQL as the API's can-what
// and lists run them, to the model and to Decide, for every actor, kind and action.
func (p *prop) checkCanWhat() {
	m, w := p.m, p.w
	for _, actor := range m.userOrder {
		gs := m.grants(actor)
		for _, kind := range kinds {
			for _, action := range append([]delegation.Action{""}, kindActions[kind]...) {
				var all bool
				var e filter.Expr
				if action == delegation.DirectoryRead {
					all, e = w.eng.Visibility(p.actor(actor), kind)
				} else {
					all, e = w.eng.Reach(p.actor(actor), kind, action)
				}
				var sql map[string]bool
				switch {
				case all:
					sql = p.listKind(kind, nil)
				case e != nil:
					sql = p.listKind(kind, e)
				default:
					sql = map[string]bool{}
				}
				what := fmt.Sprintf("%s: can-what %s %q", m.users[actor].Username, kind, action)
				reads := slices.ContainsFunc(gs, func(g mgrant) bool { return slices.Contains(g.role.Actions, delegation.DirectoryRead) })
				for _, o := range p.objectsOf(kind) {
					want := tier0(gs) || slices.ContainsFunc(gs, func(g mgrant) bool {
						return (action == "" || slices.Contains(g.role.Actions, action)) && m.covers(&g.a.Scope, actor, o)
					})
					if action == delegation.DirectoryRead && o.id == actor && reads {
						want = true // Visibility lists one's own record to anyone who may list
					}
					if sql[o.id] != want {
						p.fail("%s: the SQL selects %s: %v, the model: %v (%s)", what, o.id, sql[o.id], want, p.m.describe(o))
					}
					if action == "" {
						continue
					}
					ref, f := p.fields(o)
					d := w.eng.Decide(w.ctx, &delegation.Question{Actor: p.actor(actor), Action: action, Target: ref, Before: f, After: f})
					self := o.id == actor && (action == delegation.DirectoryRead || action == delegation.UserIssueToken)
					switch {
					case sql[o.id] && !d.Allow && d.Reason != delegation.ReasonProtected && d.Reason != delegation.ReasonEscalation &&
						d.Reason != delegation.ReasonSelfEscalation:
						p.fail("%s: %s is in reach but Decide says %+v", what, o.id, d)
					case !sql[o.id] && d.Allow && !self:
						p.fail("%s: %s is out of reach but Decide allows it (%+v)", what, o.id, d.Authority)
					}
				}
			}
			p.checkAllowed(actor, kind)
		}
	}
}

// checkAllowed holds Allowed (what can-what asks per object) to Decide asked once per action;
// for users, when the actor's reach only tests where objects sit, also on the lean fields the
// API then lists (directory.User.FactFields).
func (p *prop) checkAllowed(actor string, kind directory.Kind) {
	w, a := p.w, p.actor(actor)
	_, reach := w.eng.Reach(a, kind, "")
	lean := kind == directory.KindUser && filter.OnlyStructural(reach)
	for _, o := range p.objectsOf(kind) {
		ref, f := p.fields(o)
		var want []delegation.Action
		for _, action := range kindActions[kind] {
			if w.eng.Decide(w.ctx, &delegation.Question{Actor: a, Action: action, Target: ref, Before: f, After: f}).Allow {
				want = append(want, action)
			}
		}
		if got := w.eng.Allowed(w.ctx, a, delegation.Object{Ref: ref, Fields: f}, kindActions[kind]); !slices.Equal(got, want) {
			p.fail("%s: Allowed on %s %s says %v, Decide %v", a.Name, kind, ref, got, want)
		}
		if lean {
			u := p.m.users[o.id]
			if got := w.eng.Allowed(w.ctx, a, delegation.Object{Ref: ref, Fields: u.FactFields()}, kindActions[kind]); !slices.Equal(got, want) {
				p.fail("%s: Allowed on the facts of user %s says %v, on all its fields %v", a.Name, ref, got, want)
			}
		}
	}
}

// describeGrants renders grants for messages.
func (m *model) describeGrants(gs []mgrant) string {
	var out []string
	for _, g := range gs {
		out = append(out, fmt.Sprintf("%s %s over %s", g.a.ID, g.role.Name, g.a.Scope.Describe()))
	}
	return strings.Join(out, "; ")
}

// describe renders an object for messages.
func (m *model) describe(o mobj) string {
	s := fmt.Sprintf("%s %s in OU chain %v, groups %v", o.kind, o.id, m.chain(o), m.closure(o.id))
	if o.user != nil {
		s += fmt.Sprintf(", user %+v", *o.user)
	}
	return s
}

// checkWhoCan holds Candidates to the model (the active users an active grant allowing the
// action reaches) and to Decide: everyone Decide allows, but for self-service, is a candidate,
// both for the action and (CandidatesFor) for the target.
func (p *prop) checkWhoCan() {
	m, w := p.m, p.w
	for _, kind := range kinds {
		for _, action := range kindActions[kind] {
			cands := w.eng.Candidates(action)
			var want []string
			for _, u := range m.userOrder {
				if slices.ContainsFunc(m.grants(u), func(g mgrant) bool { return slices.Contains(g.role.Actions, action) }) {
					want = append(want, u)
				}
			}
			slices.Sort(want)
			if !slices.Equal(cands, want) {
				p.fail("who-can %s: candidates %v, the model %v", action, cands, want)
			}
			for range 6 {
				o := pick(p.r, p.objectsOf(kind))
				ref, f := p.fields(o)
				forTarget := w.eng.CandidatesFor(action, ref, f)
				for _, u := range forTarget {
					if !slices.Contains(cands, u) {
						p.fail("who-can %s on %s: %s is a candidate for the target but not for the action", action, o.id, m.users[u].Username)
					}
				}
				for _, u := range m.userOrder {
					d := w.eng.Decide(w.ctx, &delegation.Question{Actor: p.actor(u), Action: action, Target: ref, Before: f, After: f})
					if d.Allow && d.Authority.Rule != "self" && (!slices.Contains(cands, u) || !slices.Contains(forTarget, u)) {
						p.fail("who-can %s on %s: Decide allows %s, who is no candidate", action, o.id, m.users[u].Username)
					}
				}
			}
		}
	}
}
