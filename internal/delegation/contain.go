package delegation

import (
	"reflect"
	"slices"

	"github.com/deputy-iam/deputy/internal/filter"
)

// contains reports whether scope outer, held by outerHolder, provably covers every object scope
// inner, held by innerHolder, covers, whatever the directory holds. It is conservative: when
// containment cannot be shown from the scopes alone (an OU scope against a group scope, two
// unrelated filters, relations of different people), the answer is no.
func (st *state) contains(outer *Scope, outerHolder string, inner *Scope, innerHolder string) bool {
	if outer.Kind() == "ou" && outer.Subtree && st.isRoot(outer.OU) && len(outer.ExcludeOUs) == 0 && len(outer.ExcludeGroups) == 0 {
		return true // everything
	}
	if !st.containsBase(outer, outerHolder, inner, innerHolder) {
		return false
	}
	// What outer carves out must stay out of inner.
	for _, ex := range outer.ExcludeOUs {
		if !st.excludesOU(inner, ex) {
			return false
		}
	}
	for _, ex := range outer.ExcludeGroups {
		if !slices.Contains(inner.ExcludeGroups, ex) {
			return false
		}
	}
	return true
}

func (st *state) containsBase(outer *Scope, outerHolder string, inner *Scope, innerHolder string) bool {
	switch outer.Kind() {
	case "ou":
		if inner.Kind() != "ou" {
			return false
		}
		if !outer.Subtree {
			return inner.OU == outer.OU && !inner.Subtree
		}
		return st.ouWithin(inner.OU, outer.OU)
	case "groups":
		if inner.Kind() != "groups" {
			return false
		}
		for _, g := range inner.Groups {
			closure := st.closure(g)
			if !slices.ContainsFunc(outer.Groups, func(o string) bool { return slices.Contains(closure, o) }) {
				return false
			}
		}
		return true
	case "filter":
		return inner.Kind() == "filter" && outer.expr != nil && inner.expr != nil && narrows(inner.expr, outer.expr)
	case "relation":
		return inner.Kind() == "relation" && inner.Relation == outer.Relation && innerHolder == outerHolder
	}
	return false
}

// narrows reports whether e is outer, or outer AND-ed with more conditions.
func narrows(e, outer filter.Expr) bool {
	if reflect.DeepEqual(e, outer) {
		return true
	}
	if a, ok := e.(*filter.And); ok {
		return narrows(a.Left, outer) || narrows(a.Right, outer)
	}
	return false
}

// excludesOU reports whether inner covers nothing in the subtree of ou: it excludes that subtree
// (or one containing it), or its own OU scope lies outside it.
func (st *state) excludesOU(inner *Scope, ou string) bool {
	for _, ex := range inner.ExcludeOUs {
		if st.ouWithin(ou, ex) {
			return true
		}
	}
	if inner.Kind() != "ou" {
		return false
	}
	// Disjoint when neither subtree contains the other; an inner OU inside the excluded subtree
	// covers nothing outer covers, which is not containment either.
	return !st.ouWithin(inner.OU, ou) && !(inner.Subtree && st.ouWithin(ou, inner.OU))
}

// ouWithin reports whether OU id is anc or below it.
func (st *state) ouWithin(id, anc string) bool {
	for n := 0; id != "" && n < 1024; n++ {
		if id == anc {
			return true
		}
		parent, ok := st.ouParent.get(id)
		if !ok {
			return false
		}
		id = parent
	}
	return false
}

func (st *state) isRoot(id string) bool {
	parent, ok := st.ouParent.get(id)
	return ok && parent == ""
}
