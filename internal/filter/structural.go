package filter

import "slices"

// Structural expressions describe where an object sits rather than what its attributes say.
// Delegation scopes compile to them (combined with SCIM filters), so that one expression decides
// both whether an object is in a scope (Match, with a Getter that knows the object's place) and
// which objects a list may show (the store's SQL translation).

// Within holds when the object's OU is OU, or, with Subtree, any OU below it. For an OU the OU
// itself counts. Match reads the attribute "ou_ids": the IDs of the object's OU and its
// ancestors, nearest first.
type Within struct {
	OU      string
	Subtree bool
}

// MemberOf holds when the object is one of Groups or a member of one, directly or through
// nesting. Match reads "group_ids": the object's own ID and the IDs of every group it belongs
// to, transitively.
type MemberOf struct{ Groups []string }

// Related holds when the object's reference attribute Attr includes ID: "id" (the object
// itself), "manager_id" (a user's manager) or "owner_ids" (a group's or service account's
// owners). Match reads Attr as a string or a []string.
type Related struct {
	Attr string
	ID   string
}

// Nothing matches no object (a scope that cannot select anything of a kind).
type Nothing struct{}

func (*Within) isExpr()   {}
func (*MemberOf) isExpr() {}
func (*Related) isExpr()  {}
func (*Nothing) isExpr()  {}

// Virtual attributes a Getter answers for structural expressions.
const (
	AttrOUIDs     = "ou_ids"
	AttrGroupIDs  = "group_ids"
	AttrManagerID = "manager_id"
	AttrOwnerIDs  = "owner_ids"
)

func matchStructural(e Expr, get Getter) (bool, bool) {
	switch e := e.(type) {
	case *Within:
		chain := stringList(get(AttrOUIDs))
		if len(chain) == 0 {
			return false, true
		}
		if !e.Subtree {
			return chain[0] == e.OU, true
		}
		return slices.Contains(chain, e.OU), true
	case *MemberOf:
		ids := stringList(get(AttrGroupIDs))
		for _, g := range e.Groups {
			if slices.Contains(ids, g) {
				return true, true
			}
		}
		return false, true
	case *Related:
		return slices.Contains(stringList(get(e.Attr)), e.ID), true
	case *Nothing:
		return false, true
	}
	return false, false
}

// stringList reads a getter's answer as a list of strings.
func stringList(v any, ok bool) []string {
	if !ok {
		return nil
	}
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil
		}
		return []string{x}
	case []string:
		return x
	}
	return nil
}

// OnlyStructural reports whether e tests nothing but where objects sit (no attribute
// comparison), so that an object's place, without its attributes, is enough to evaluate it.
func OnlyStructural(e Expr) bool {
	switch e := e.(type) {
	case nil, *Within, *MemberOf, *Related, *Nothing:
		return true
	case *And:
		return OnlyStructural(e.Left) && OnlyStructural(e.Right)
	case *Or:
		return OnlyStructural(e.Left) && OnlyStructural(e.Right)
	case *Not:
		return OnlyStructural(e.X)
	}
	return false
}
