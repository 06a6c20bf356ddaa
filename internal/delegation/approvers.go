package delegation

import (
	"slices"

	"github.com/deputy-iam/deputy/internal/directory"
)

// These queries answer the approval gate: which targets a policy applies to and who may
// approve. They read the committed state, like Decide outside a transaction.

// Covers reports whether s (an OU, groups or filter scope: not a relation) covers the target
// with attributes fields. An invalid filter covers nothing.
func (e *Engine) Covers(s *Scope, target directory.Ref, fields map[string]any) bool {
	if s.Kind() == "relation" || s.compile() != nil {
		return false
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	return s.covers("", e.st.subject(target, fields))
}

// CompileScope checks a scope built in code (an OU, groups or filter), so that Covers can use it.
func CompileScope(s *Scope) error { return s.compile() }

// RoleHolders returns the active users who hold an active assignment of role whose scope covers
// the target, directly or as members of a holding group, sorted. A relation scope counts only
// for the user it relates to the target (the manager of a report, an owner).
func (e *Engine) RoleHolders(role string, target directory.Ref, fields map[string]any) []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	now := e.now()
	sub := e.st.subject(target, fields)
	var out []string
	for _, a := range e.st.assignments.base {
		if a.Role != role || !a.Active(now) {
			continue
		}
		if a.Scope.Kind() == "relation" && role != RoleTier0 {
			for _, u := range relatedUsers(a.Scope.Relation, target, sub) {
				if slices.Contains(e.st.closure(u), a.Holder.ID) && a.Scope.covers(u, sub) && e.st.activeUser(u) {
					out = append(out, u)
				}
			}
			continue
		}
		if role != RoleTier0 && !a.Scope.covers(a.Holder.ID, sub) {
			continue
		}
		out = append(out, e.st.usersUnder(a.Holder.ID)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// GroupUsers returns the active users in a group, directly or through nested groups, sorted.
func (e *Engine) GroupUsers(groupID string) []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if info, ok := e.st.objects.get(groupID); !ok || info.kind != directory.KindGroup {
		return nil
	}
	out := e.st.usersUnder(groupID)
	slices.Sort(out)
	return out
}

// HoldsAssignments reports whether the object holds a role assignment (active or not),
// directly or through a group it is in.
func (e *Engine) HoldsAssignments(id string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, holder := range e.st.closure(id) {
		if ids, _ := e.st.byHolder.get(holder); len(ids) > 0 {
			return true
		}
	}
	return false
}

// ActiveUser reports whether id is an active user.
func (e *Engine) ActiveUser(id string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.st.activeUser(id)
}

// HoldsTier0 reports whether the user holds an active tier-0 admin assignment.
func (e *Engine) HoldsTier0(id string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return holdsTier0(e.st.grants(id, e.now())) != nil
}

func (st *state) activeUser(id string) bool {
	info, ok := st.objects.get(id)
	return ok && info.kind == directory.KindUser && info.status == directory.StatusActive
}
