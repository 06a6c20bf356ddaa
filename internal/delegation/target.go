package delegation

import (
	"slices"

	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
)

// subject is an object as scopes see it: its attributes in one state (before or after a change)
// and its place (OU chain, groups) from the engine's state.
type subject struct {
	kind   directory.Kind
	id     string
	fields map[string]any
	st     *state
	// computed on first use
	chain, groups []string
	chainDone     bool
	groupsDone    bool
	known         objInfo
	knownOK       bool
	knownDone     bool
	// covered remembers the last scopes judged on the subject, for the several actions
	// Allowed asks about one object (a fixed array: a single question allocates nothing).
	covered  [4]coverMemo
	nCovered int
}

// coverMemo is one scope's answer on a subject, for one actor.
type coverMemo struct {
	scope  *Scope
	actor  string
	result bool
}

func (st *state) subject(ref directory.Ref, fields map[string]any) *subject {
	return &subject{kind: ref.Kind, id: ref.ID, fields: fields, st: st}
}

// get is the filter.Getter of the subject.
func (s *subject) get(attr string) (any, bool) {
	switch attr {
	case filter.AttrOUIDs:
		return s.ouChain(), true
	case filter.AttrGroupIDs:
		return s.groupIDs(), true
	case filter.AttrManagerID:
		return refID(s.fields["manager"]), true
	case filter.AttrOwnerIDs:
		return refIDs(s.fields["owners"]), true
	case "id":
		return s.id, true
	case "manager", "ou":
		return refName(s.fields[attr]), true
	}
	v, ok := s.fields[attr]
	return v, ok
}

// ouChain is the IDs of the subject's OU and its ancestors, nearest first. For an OU, the OU
// itself comes first, under the parent its fields name: the state the question is about (a new
// OU not yet in the tree, or a moved one at its destination), not the tree as it is; without a
// parent field, under its parent in the tree.
func (s *subject) ouChain() []string {
	if s.chainDone {
		return s.chain
	}
	s.chainDone = true
	start := refID(s.fields["ou"])
	if s.kind == directory.KindOU {
		s.chain = append(s.chain, s.id)
		if p, ok := s.fields["parent"]; ok {
			start = refID(p)
		} else {
			start, _ = s.st.ouParent.get(s.id)
		}
	}
	for id, n := start, 0; id != "" && n < 1024; n++ {
		s.chain = append(s.chain, id)
		parent, ok := s.st.ouParent.get(id)
		if !ok {
			break
		}
		id = parent
	}
	return s.chain
}

// info is what the engine knows of the subject's object (ok false when nothing).
func (s *subject) info() (objInfo, bool) {
	if !s.knownDone {
		s.known, s.knownOK = s.st.objects.get(s.id)
		s.knownDone = true
	}
	return s.known, s.knownOK
}

// groupIDs is the subject's own ID and every group it belongs to, transitively.
func (s *subject) groupIDs() []string {
	if s.groupsDone {
		return s.groups
	}
	s.groupsDone = true
	s.groups = s.st.closure(s.id)
	return s.groups
}

// closure returns id and the IDs of every group id belongs to, directly or through nesting.
func (st *state) closure(id string) []string {
	out := []string{id}
	for i := 0; i < len(out) && i < 4096; i++ {
		groups, _ := st.memberOf.get(out[i])
		for _, g := range groups {
			if !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	return out
}

// refName is the name of a reference as events and fields record it.
func refName(v any) string {
	switch r := v.(type) {
	case map[string]string:
		return r["name"]
	case map[string]any:
		n, _ := r["name"].(string)
		return n
	}
	return ""
}

// refIDs is the IDs of a list of references.
func refIDs(v any) []string {
	var out []string
	switch l := v.(type) {
	case []map[string]string:
		for _, r := range l {
			out = append(out, r["id"])
		}
	case []any:
		for _, r := range l {
			if id := refID(r); id != "" {
				out = append(out, id)
			}
		}
	}
	return out
}

// expr compiles the scope, for actor, into an expression over objects of kind. A filter scope
// selects users only; relation scopes select the objects of their relation's kind.
func (s *Scope) exprFor(actor string, kind directory.Kind) filter.Expr {
	if e, ok := s.byKind[kind]; ok {
		return e
	}
	return s.build(actor, kind)
}

// build compiles the scope for actor and kind (exprFor caches what does not depend on actor).
func (s *Scope) build(actor string, kind directory.Kind) filter.Expr {
	var e filter.Expr
	switch s.Kind() {
	case "ou":
		e = &filter.Within{OU: s.OU, Subtree: s.Subtree}
	case "groups":
		e = &filter.MemberOf{Groups: s.Groups}
	case "filter":
		if kind != directory.KindUser || s.expr == nil {
			return &filter.Nothing{} // a filter scope selects users; an unparsed one nothing
		}
		e = s.expr
	case "relation":
		switch {
		case s.Relation == RelSelf && kind == directory.KindUser:
			e = &filter.Related{Attr: "id", ID: actor}
		case s.Relation == RelDirectReports && kind == directory.KindUser:
			e = &filter.Related{Attr: filter.AttrManagerID, ID: actor}
		case s.Relation == RelOwnedGroups && kind == directory.KindGroup,
			s.Relation == RelOwnedServiceAccounts && kind == directory.KindServiceAccount:
			e = &filter.Related{Attr: filter.AttrOwnerIDs, ID: actor}
		default:
			return &filter.Nothing{}
		}
	default:
		return &filter.Nothing{}
	}
	for _, ou := range s.ExcludeOUs {
		e = &filter.And{Left: e, Right: &filter.Not{X: &filter.Within{OU: ou, Subtree: true}}}
	}
	for _, g := range s.ExcludeGroups {
		e = &filter.And{Left: e, Right: &filter.Not{X: &filter.MemberOf{Groups: []string{g}}}}
	}
	return e
}

// covers reports whether the scope, held by actor, covers the subject.
func (s *Scope) covers(actor string, sub *subject) bool {
	for _, m := range sub.covered[:sub.nCovered] {
		if m.scope == s && m.actor == actor {
			return m.result
		}
	}
	ok := filter.Match(s.exprFor(actor, sub.kind), sub.get)
	sub.covered[sub.nCovered%len(sub.covered)] = coverMemo{scope: s, actor: actor, result: ok}
	if sub.nCovered < len(sub.covered) {
		sub.nCovered++
	}
	return ok
}
