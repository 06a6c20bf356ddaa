package delegation

import (
	"fmt"
	"strings"
)

// Escalation is a path by which someone could gain rights nobody granted them directly: the
// holder of Via can change a relation (who manages a user, who owns a group or service account)
// of objects in Via's scope, and whoever holds Gains, a relation-scoped assignment, then gains
// its role over those objects. The guardrails stop anyone from doing this for themselves; the
// path still lets one person hand rights to another without granting anything, which is worth
// knowing (and usually a sign that a role names user.update of manager, or set_owner, more
// widely than intended).
type Escalation struct {
	Via         Assignment `json:"via"`
	Attribute   string     `json:"attribute"`
	Gains       Assignment `json:"gains"`
	Explanation string     `json:"explanation"`
}

// changers are the relation each capability changes.
var changers = []struct {
	relation  Relation
	attribute string
	allows    func(r *Role) bool
}{
	{RelDirectReports, "manager", func(r *Role) bool { return r.Allows(UserUpdate) && r.AllowsAttribute("manager") }},
	{RelOwnedGroups, "owners", func(r *Role) bool { return r.Allows(GroupSetOwner) }},
	{RelOwnedServiceAccounts, "owners", func(r *Role) bool { return r.Allows(SASetOwner) }},
}

// Escalations lists the escalation paths of the whole configuration, computed over every
// assignment (eligible and not yet valid ones too: a path that opens later is still a path).
// Tier-0 admins are left out: they hold everything already.
func (e *Engine) Escalations() []Escalation {
	e.mu.RLock()
	defer e.mu.RUnlock()
	all := e.st.allAssignments()
	var out []Escalation
	for _, via := range all {
		rv, ok := e.st.role(via.Role)
		if !ok || rv.Name == RoleTier0 {
			continue
		}
		for _, c := range changers {
			if !c.allows(rv) {
				continue
			}
			for _, gains := range all {
				rg, ok := e.st.role(gains.Role)
				if !ok || gains.Scope.Relation != c.relation || gains.ID == via.ID {
					continue
				}
				out = append(out, Escalation{Via: *via, Attribute: c.attribute, Gains: *gains,
					Explanation: fmt.Sprintf("%s (%s over %s) can set the %s of objects in that scope to anyone; whoever holds %s (%s over %s) then gains %s over them",
						via.Holder, rv.Name, via.Scope.Describe(), c.attribute, gains.ID, rg.Name, gains.Scope.Describe(),
						strings.Join(actionStrings(rg.Actions), ", "))})
			}
		}
	}
	return out
}
