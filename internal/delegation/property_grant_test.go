package delegation_test

import (
	"fmt"
	"slices"
	"time"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// checkRedelegation has random delegates grant random assignments and checks every grant that
// applies against the model as it was before: the granter holds an active, non-eligible,
// redelegatable assignment whose role covers the new one's, whose scope covers (over every
// object of the organisation) everything the new one does, and whose validity contains it; the
// holder is neither the granter nor a group they are in, nor untouchable, and in their sight.
func (p *prop) checkRedelegation(n int) {
	w := p.w
	applied, reasons := 0, map[string]int{}
	for range n {
		m := p.m
		// Mostly delegates who may redelegate, granting something close to what they hold.
		var granters []string
		for _, u := range m.userOrder {
			if gs := m.grants(u); !tier0(gs) && slices.ContainsFunc(gs, func(g mgrant) bool { return g.a.CanRedelegate }) {
				granters = append(granters, u)
			}
		}
		actor := pick(p.r, m.userOrder)
		if len(granters) > 0 && p.chance(80) {
			actor = pick(p.r, granters)
		}
		if tier0(m.grants(actor)) {
			continue
		}
		in := p.randomAssignment([]string{`department eq "Sales"`, `department eq "Sales" and title eq "Lead"`})
		if gs := m.grants(actor); len(gs) > 0 && p.chance(70) {
			// Something close to one of the granter's own assignments, to someone they see.
			g := pick(p.r, gs)
			in.Role = g.role.Name
			if p.chance(70) {
				s := g.a.Scope
				in.Scope = delegation.ScopeInput{OU: s.OU, Groups: s.Groups, Filter: s.Filter, Relation: s.Relation}
				if s.OU != "" {
					in.Scope.Subtree = &s.Subtree
				}
				in.Exclude = &delegation.ExcludeInput{OUs: s.ExcludeOUs, Groups: s.ExcludeGroups}
				if p.chance(30) {
					in.Exclude.OUs = append(slices.Clone(in.Exclude.OUs), pick(p.r, p.ous[1:]))
				}
			}
			if !g.a.Until.IsZero() {
				until := g.a.Until.Add(-time.Duration(p.r.IntN(2)) * time.Hour)
				in.Until = until.Format(time.RFC3339Nano)
			}
			var seen []string
			for _, u := range m.userOrder {
				if _, ok := m.can(actor, gs, delegation.DirectoryRead, "", m.obj(u)); ok && u != actor {
					seen = append(seen, u)
				}
			}
			if len(seen) > 0 {
				in.Holder = delegation.HolderInput{User: m.users[pick(p.r, seen)].Username}
			}
		}
		in.CanRedelegate = p.chance(30)
		res, err := w.p.Submit(w.ctx, p.actor(actor), w.meta, assign(in))
		if err != nil {
			reasons[change.FailureReason(err)]++
			continue
		}
		applied++
		a, err := w.st.Assignment(w.ctx, res.Target.ID)
		must(p.t, err)
		p.checkGrant(actor, a)
		p.m = loadModel(w)
	}
	p.t.Logf("%d of %d random grants by delegates applied; refusals: %v", applied, n, reasons)
}

// checkGrant checks an applied grant of a by actor against the model from before it.
func (p *prop) checkGrant(actor string, a delegation.Assignment) {
	p.t.Helper()
	m := p.m
	what := fmt.Sprintf("%s grants %s to %s over %+v", m.users[actor].Username, a.Role, a.Holder.Name, a.Scope)
	role, ok := m.roles[a.Role]
	holder := m.obj(a.Holder.ID)
	switch {
	case !ok || a.Role == delegation.RoleTier0:
		p.fail("%s: a role that is not there or tier-0", what)
		return
	case slices.Contains(m.closure(actor), a.Holder.ID):
		p.fail("%s: a grant to oneself", what)
	case m.untouchable(holder):
		p.fail("%s: a grant to a protected object or tier-0 holder", what)
	}
	gs := m.grants(actor)
	if _, sight := m.can(actor, gs, delegation.DirectoryRead, "", holder); !sight {
		p.fail("%s: a grant to someone the granter cannot see", what)
	}
	holders := m.usersUnder(a.Holder.ID)
	if a.Holder.Kind == directory.KindUser {
		holders = []string{a.Holder.ID}
	}
	for _, g := range gs {
		if !g.a.CanRedelegate || g.a.Eligible || !roleCovers(g.role, role) || !p.validWithin(&a, g.a) {
			continue
		}
		contained := true
		for _, h := range holders {
			for _, o := range m.objects {
				if m.covers(&a.Scope, h, o) && !m.covers(&g.a.Scope, actor, o) {
					contained = false
				}
			}
		}
		if contained {
			return
		}
	}
	p.fail("%s: no redelegatable assignment of the granter contains it", what)
}

// roleCovers reports whether outer grants everything inner does (independently of
// delegation.Role.Covers).
func roleCovers(outer, inner delegation.Role) bool {
	for _, a := range inner.Actions {
		if !slices.Contains(outer.Actions, a) {
			return false
		}
	}
	if !slices.Contains(inner.Actions, delegation.UserUpdate) || len(outer.UserAttributes) == 0 {
		return true
	}
	if len(inner.UserAttributes) == 0 {
		return false
	}
	for _, attr := range inner.UserAttributes {
		if !slices.Contains(outer.UserAttributes, attr) && !(attr != "attributes.*" && allowsAttr(outer, attr)) {
			return false
		}
	}
	return true
}

// validWithin reports whether inner's validity lies inside outer's.
func (p *prop) validWithin(inner, outer *delegation.Assignment) bool {
	if !outer.From.IsZero() && (inner.From.IsZero() || inner.From.Before(outer.From)) {
		return false
	}
	return outer.Until.IsZero() || !inner.Until.IsZero() && !inner.Until.After(outer.Until)
}
