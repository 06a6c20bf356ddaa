package delegation

import (
	"context"
	"slices"

	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
)

// Visibility says what actor may read of kind: everything (all), or the objects expr selects.
// All false and a nil expr mean nothing: the actor holds no read right (their own record they
// may still read one by one). Anyone who may list users sees themselves among them.
func (e *Engine) Visibility(actor Actor, kind directory.Kind) (all bool, expr filter.Expr) {
	all, expr = e.Reach(actor, kind, DirectoryRead)
	if expr != nil && kind == directory.KindUser {
		expr = or(expr, &filter.Related{Attr: "id", ID: actor.ID})
	}
	return all, expr
}

// Reach says which objects of kind any of actor's grants allowing action (any action when
// action is "") covers: everything (all), or the objects expr selects; nothing when all is
// false and expr nil. It is where a question over many objects starts; guardrails may still
// refuse some of them, so Decide has the last word on each.
func (e *Engine) Reach(actor Actor, kind directory.Kind, action Action) (all bool, expr filter.Expr) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if info, ok := e.st.objects.get(actor.ID); !ok || info.status != directory.StatusActive || actor.Kind != ActorUser {
		return false, nil
	}
	gs := e.st.grants(actor.ID, e.now())
	if holdsTier0(gs) != nil {
		return true, nil
	}
	for _, g := range gs {
		if action != "" && !g.role.Allows(action) {
			continue
		}
		if s := &g.a.Scope; s.Kind() == "ou" && s.Subtree && e.st.isRoot(s.OU) && len(s.ExcludeOUs) == 0 && len(s.ExcludeGroups) == 0 {
			return true, nil
		}
		expr = or(expr, g.a.Scope.exprFor(actor.ID, kind))
	}
	return false, expr
}

// ScopeExpr compiles an assignment's scope, as its holder would hold it, for objects of kind.
func ScopeExpr(a *Assignment, kind directory.Kind) filter.Expr {
	_ = a.Scope.compile()
	return a.Scope.exprFor(a.Holder.ID, kind)
}

func or(a, b filter.Expr) filter.Expr {
	if a == nil {
		return b
	}
	return &filter.Or{Left: a, Right: b}
}

// Grant is an active assignment with its role, as the queries report them.
type Grant struct {
	Assignment Assignment
	Role       Role
}

// Grants returns the active assignments principal holds, directly or through its groups.
func (e *Engine) Grants(principal string) []Grant {
	e.mu.RLock()
	defer e.mu.RUnlock()
	var out []Grant
	for _, g := range e.st.grants(principal, e.now()) {
		out = append(out, Grant{Assignment: *g.a, Role: *g.role})
	}
	return out
}

// Candidates returns the active users who hold an active assignment whose role allows action,
// directly or as members (transitively) of a holding group, each once. It is where who-can
// starts; Decide has the last word on each.
func (e *Engine) Candidates(action Action) []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	now := e.now()
	seen := map[string]bool{}
	var out []string
	for _, holder := range e.st.byHolder.base {
		for _, id := range holder {
			a, ok := e.st.assignments.get(id)
			if !ok || !a.Active(now) {
				continue
			}
			r, ok := e.st.role(a.Role)
			if !ok || !r.Allows(action) {
				continue
			}
			for _, u := range e.st.usersUnder(a.Holder.ID) {
				if !seen[u] {
					seen[u] = true
					out = append(out, u)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// usersUnder returns the active users that are principal or its members, transitively.
func (st *state) usersUnder(principal string) []string {
	var out []string
	queue, seen := []string{principal}, map[string]bool{principal: true}
	for i := 0; i < len(queue); i++ {
		id := queue[i]
		if info, ok := st.objects.get(id); ok && info.kind == directory.KindUser && info.status == directory.StatusActive {
			out = append(out, id)
		}
		for _, m := range st.members.ids(id) {
			if !seen[m] {
				seen[m] = true
				queue = append(queue, m)
			}
		}
	}
	return out
}

// Assignments returns every assignment (active or not), for the escalation analysis.
func (st *state) allAssignments() []*Assignment {
	var out []*Assignment
	for _, a := range st.assignments.base {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b *Assignment) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// Reader reads the delegation configuration from the database.
type Reader interface {
	// Role returns the custom role called name (built-in ones are in BuiltinRoles).
	Role(ctx context.Context, name string) (Role, error)
	Roles(ctx context.Context) ([]Role, error)
	Assignment(ctx context.Context, id string) (Assignment, error)
	// Assignments lists assignments in ID order after the cursor, optionally only those of a
	// role or held by a holder (an ID).
	Assignments(ctx context.Context, role, holder, after string, limit int) ([]Assignment, error)
}

// CandidatesFor returns the active users who hold an active assignment whose role allows action
// and whose scope covers the target (with attributes fields), directly or as members of a
// holding group, each once and sorted. A relation scope covers the target only for the related
// user (the manager of a report, the owner of a group), so only they are candidates through it.
// Decide still has the last word on each (guardrails).
func (e *Engine) CandidatesFor(action Action, target directory.Ref, fields map[string]any) []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	now := e.now()
	sub := e.st.subject(target, fields)
	seen := map[string]bool{}
	var out []string
	add := func(u string) {
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	for _, a := range e.st.assignments.base {
		if !a.Active(now) {
			continue
		}
		r, ok := e.st.role(a.Role)
		if !ok || !r.Allows(action) {
			continue
		}
		if a.Scope.Kind() == "relation" && r.Name != RoleTier0 {
			// Only the users the relation names can be covered: check each of them.
			for _, u := range relatedUsers(a.Scope.Relation, target, sub) {
				if slices.Contains(e.st.closure(u), a.Holder.ID) && a.Scope.covers(u, sub) {
					if info, ok := e.st.objects.get(u); ok && info.status == directory.StatusActive {
						add(u)
					}
				}
			}
			continue
		}
		if r.Name != RoleTier0 && !a.Scope.covers(a.Holder.ID, sub) {
			continue
		}
		for _, u := range e.st.usersUnder(a.Holder.ID) {
			add(u)
		}
	}
	slices.Sort(out)
	return out
}

// relatedUsers lists the users a relation scope could be held by to cover target.
func relatedUsers(rel Relation, target directory.Ref, sub *subject) []string {
	switch rel {
	case RelSelf:
		return []string{target.ID}
	case RelDirectReports:
		if m := refID(sub.fields["manager"]); m != "" {
			return []string{m}
		}
	case RelOwnedGroups, RelOwnedServiceAccounts:
		return refIDs(sub.fields["owners"])
	}
	return nil
}
