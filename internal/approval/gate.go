package approval

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// Directory is what the gate asks about people and rights. The delegation engine implements
// it, on its committed state.
type Directory interface {
	Covers(s *delegation.Scope, target directory.Ref, fields map[string]any) bool
	RoleHolders(role string, target directory.Ref, fields map[string]any) []string
	GroupUsers(groupID string) []string
	HoldsAssignments(id string) bool
	ActiveUser(id string) bool
	CandidatesFor(action delegation.Action, target directory.Ref, fields map[string]any) []string
	HoldsTier0(id string) bool
}

// Gate holds the policies in force and routes allowed ops: apply now, park for approval, or
// apply as break-glass. It is safe for concurrent use; Set replaces the policies at once.
type Gate struct {
	dir      Directory
	policies atomic.Pointer[[]compiled]
}

// compiled is a policy with its predicate's scopes ready to evaluate.
type compiled struct {
	Policy
	scopes []*delegation.Scope
}

// NewGate returns a gate with no policies: everything applies at once until Set.
func NewGate(dir Directory) *Gate {
	g := &Gate{dir: dir}
	g.policies.Store(&[]compiled{})
	return g
}

// Set replaces the policies in force (in the order given: a request's stages follow it). A
// policy whose predicate cannot be compiled is an error and nothing is replaced.
func (g *Gate) Set(ps []Policy) error {
	out := make([]compiled, 0, len(ps))
	for _, p := range ps {
		c := compiled{Policy: p}
		if p.When.OUID != "" {
			c.scopes = append(c.scopes, &delegation.Scope{OU: p.When.OUID, Subtree: true})
		}
		if p.When.GroupID != "" {
			c.scopes = append(c.scopes, &delegation.Scope{Groups: []string{p.When.GroupID}})
		}
		if p.When.Filter != "" {
			c.scopes = append(c.scopes, &delegation.Scope{Filter: p.When.Filter})
		}
		for _, s := range c.scopes {
			if err := delegation.CompileScope(s); err != nil {
				return directory.Invalid("when", "policy %s: %v", p.Name, err)
			}
		}
		out = append(out, c)
	}
	g.policies.Store(&out)
	return nil
}

// Policies returns the policies in force.
func (g *Gate) Policies() []Policy {
	cs := *g.policies.Load()
	out := make([]Policy, len(cs))
	for i := range cs {
		out[i] = cs[i].Policy
	}
	return out
}

// Routing is the gate's answer for one op. A nil *Routing means: apply now.
type Routing struct {
	Policies []string
	Stages   []StagePlan
	Expires  time.Time
	Excluded []string
	// BreakGlass is set when a stage has no one to approve it but the requester: the op applies
	// at once, marked unreviewed, for a tier-0 admin to review afterwards.
	BreakGlass bool
}

// Tier0 lists the active tier-0 admins: the approvers of last resort, and the reviewers of
// break-glass changes.
func (g *Gate) Tier0() []string {
	return g.dir.RoleHolders(delegation.RoleTier0, directory.Ref{}, nil)
}

// IsTier0 reports whether the user holds an active tier-0 admin assignment.
func (g *Gate) IsTier0(id string) bool { return g.dir.HoldsTier0(id) }

// Route matches q (an op the authorizer allowed) against the policies.
func (g *Gate) Route(q *delegation.Question, now time.Time) *Routing {
	var rt *Routing
	for i := range *g.policies.Load() {
		c := &(*g.policies.Load())[i]
		if !c.Matches(q.Action) || !g.matches(c, q) {
			continue
		}
		if rt == nil {
			rt = &Routing{Excluded: excluded(q), Expires: now.Add(c.Expiry.D)}
		}
		rt.Policies = append(rt.Policies, c.Name)
		if e := now.Add(c.Expiry.D); e.Before(rt.Expires) {
			rt.Expires = e
		}
		for _, s := range c.Stages {
			rt.Stages = append(rt.Stages, StagePlan{Policy: c.Name, Name: s.Name, Required: s.Required,
				Approvers: s.Approvers, Escalate: s.Escalate, Timeout: s.Timeout})
		}
	}
	if rt == nil {
		return nil
	}
	for i := range rt.Stages {
		s := &rt.Stages[i]
		s.Eligible = g.Eligible(s, q, rt.Excluded, false)
		if len(s.Eligible) < s.Required {
			// Nobody named can approve: the escalation approvers may at once, then tier-0.
			s.Eligible = g.Eligible(s, q, rt.Excluded, true)
			s.Escalated = len(s.Escalate) > 0
		}
		if len(s.Eligible) < s.Required {
			s.Tier0Fallback = true
			s.Eligible = g.Eligible(s, q, rt.Excluded, s.Escalated)
		}
	}
	// Break-glass when the stages cannot be completed by people other than the requester, each
	// approving once: a fresh install with one tier-0 admin is not locked out.
	if !feasible(rt.Stages) {
		for i := range rt.Stages {
			s := &rt.Stages[i]
			s.Tier0Fallback = true
			s.Eligible = g.Eligible(s, q, rt.Excluded, s.Escalated)
		}
		rt.BreakGlass = !feasible(rt.Stages)
	}
	if s := &rt.Stages[0]; s.Timeout.D > 0 && !s.Escalated {
		s.Due = now.Add(s.Timeout.D)
	}
	return rt
}

// Eligible resolves who may approve stage s of the op q now: those its approver rules name
// (and, once escalated, its escalation rules; with Tier0Fallback, the tier-0 admins), active,
// minus the excluded. Sorted, each once.
func (g *Gate) Eligible(s *StagePlan, q *delegation.Question, excludedIDs []string, escalated bool) []string {
	return g.EligibleLazy(s, func() *delegation.Question { return q }, excludedIDs, escalated)
}

// EligibleLazy is Eligible for a caller whose question costs something to build: question is
// called only when a rule needs the target (a named user or group does not).
func (g *Gate) EligibleLazy(s *StagePlan, question func() *delegation.Question, excludedIDs []string, escalated bool) []string {
	var (
		out []string
		q   *delegation.Question
	)
	rules := s.Approvers
	if escalated || s.Escalated {
		rules = append(slices.Clone(rules), s.Escalate...)
	}
	for _, a := range rules {
		if q == nil && a.Kind != ApproverUser && a.Kind != ApproverGroup {
			q = question()
		}
		out = append(out, g.resolve(a, q)...)
	}
	if s.Tier0Fallback {
		out = append(out, g.Tier0()...)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return slices.DeleteFunc(out, func(u string) bool { return g.Excludes(excludedIDs, u) || !g.dir.ActiveUser(u) })
}

// Excludes reports whether user is one of excludedIDs, or a member (now, transitively) of a
// group among them: the members of a group a role is granted to, or that is added to a group,
// gain from the change as much as a user would, so they may not approve it either.
func (g *Gate) Excludes(excludedIDs []string, user string) bool {
	if slices.Contains(excludedIDs, user) {
		return true
	}
	for _, id := range excludedIDs {
		if slices.Contains(g.dir.GroupUsers(id), user) {
			return true
		}
	}
	return false
}

// resolve lists the users an approver rule names for q.
func (g *Gate) resolve(a Approver, q *delegation.Question) []string {
	switch a.Kind {
	case ApproverUser:
		return []string{a.ID}
	case ApproverGroup:
		return g.dir.GroupUsers(a.ID)
	}
	fields := stateOf(q)
	switch a.Kind {
	case ApproverManager:
		f := fields
		if q.Member != nil && q.Member.Ref.Kind == directory.KindUser {
			f = q.Member.Fields
		}
		if m := refID(f["manager"]); m != "" {
			return []string{m}
		}
	case ApproverOwners:
		return refIDs(fields["owners"])
	case ApproverRole:
		return g.dir.RoleHolders(a.Role, q.Target, fields)
	case ApproverAuthorized:
		return g.dir.CandidatesFor(q.Action, q.Target, fields)
	}
	return nil
}

// matches reports whether the policy's predicate holds for q's target, before or after.
func (g *Gate) matches(c *compiled, q *delegation.Question) bool {
	states := []map[string]any{q.Before, q.After}
	if q.Before == nil || q.After == nil {
		states = []map[string]any{stateOf(q)}
	}
	for _, s := range c.scopes {
		if !slices.ContainsFunc(states, func(f map[string]any) bool { return g.dir.Covers(s, q.Target, f) }) {
			return false
		}
	}
	if p := c.When.Protected; p != nil {
		prot := slices.ContainsFunc(states, func(f map[string]any) bool { v, _ := f["protected"].(bool); return v })
		if prot != *p {
			return false
		}
	}
	if len(c.When.Roles) > 0 {
		a, ok := stateOf(q)["assignment"].(delegation.Assignment)
		if !ok || !slices.Contains(c.When.Roles, a.Role) {
			return false
		}
	}
	if h := c.When.HoldsAssignments; h != nil && g.dir.HoldsAssignments(q.Target.ID) != *h {
		return false
	}
	return true
}

// stateOf is the target's attributes as they are (or, for a create, will be).
func stateOf(q *delegation.Question) map[string]any {
	if q.Before != nil {
		return q.Before
	}
	return q.After
}

// excluded lists who may not approve q: the requester, the target and the member it is about.
func excluded(q *delegation.Question) []string {
	out := []string{q.Actor.ID}
	if q.Target.Kind == directory.KindUser && q.Target.ID != "" {
		out = append(out, q.Target.ID)
	}
	if q.Member != nil && q.Member.Ref.ID != "" {
		out = append(out, q.Member.Ref.ID)
	}
	if a, ok := stateOf(q)["assignment"].(delegation.Assignment); ok && a.Holder.ID != "" {
		out = append(out, a.Holder.ID)
	}
	return out
}

func refID(v any) string {
	switch x := v.(type) {
	case map[string]string:
		return x["id"]
	case map[string]any:
		s, _ := x["id"].(string)
		return s
	}
	return ""
}

func refIDs(v any) []string {
	var out []string
	switch x := v.(type) {
	case []map[string]string:
		for _, r := range x {
			out = append(out, r["id"])
		}
	case []any:
		for _, r := range x {
			if id := refID(r); id != "" {
				out = append(out, id)
			}
		}
	}
	return out
}
