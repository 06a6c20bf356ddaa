package approval

import "github.com/deputy-iam/deputy/internal/delegation"

// Defaults are the policies a new installation starts with (and can edit or delete): four eyes
// on the changes that grant or remove power, nowhere else.
func Defaults() []Policy {
	yes := true
	one := func(approvers ...Approver) []Stage { return []Stage{{Approvers: approvers, Required: 1}} }
	tier0 := Approver{Kind: ApproverRole, Role: delegation.RoleTier0}
	return []Policy{
		{Name: "privileged-group-membership", Description: "Adding a member to a group that holds a role assignment grants them its rights.",
			Actions: []delegation.Action{delegation.GroupAddMember}, When: Predicate{HoldsAssignments: &yes},
			Stages: one(Approver{Kind: ApproverOwners}, Approver{Kind: ApproverAuthorized})},
		{Name: "role-assignment", Description: "Granting a role gives someone rights.",
			Actions: []delegation.Action{delegation.RoleAssign}, Stages: one(Approver{Kind: ApproverAuthorized})},
		{Name: "delegation-configuration", Description: "What roles are: one approval, then a tier-0 admin's.",
			Actions: []delegation.Action{delegation.RoleCreate, delegation.RoleUpdate, delegation.RoleDelete},
			Stages: []Stage{{Name: "peer", Approvers: []Approver{{Kind: ApproverAuthorized}}, Required: 1},
				{Name: "tier-0", Approvers: []Approver{tier0}, Required: 1}}},
		{Name: "tier0-activation", Description: "Activating an eligible tier-0 admin assignment.",
			Actions: []delegation.Action{delegation.RoleActivate}, When: Predicate{Roles: []string{delegation.RoleTier0}},
			Stages: one(tier0)},
		{Name: "protected-objects", Description: "Any change to a protected object.",
			Actions: GateableActions(), When: Predicate{Protected: &yes}, Stages: one(tier0)},
		{Name: "user-deletion", Description: "Deleting a user cannot be undone.",
			Actions: []delegation.Action{delegation.UserDelete},
			Stages:  one(Approver{Kind: ApproverManager}, Approver{Kind: ApproverAuthorized})},
	}
}

// feasible reports whether the stages can all be completed by distinct people: each stage
// needs Required approvers from its Eligible, and no one may approve two stages. It is a
// bipartite matching of approval slots to people (augmenting paths; stages and slots are few).
func feasible(stages []StagePlan) bool {
	type slot struct{ stage int }
	var slots []slot
	for i, s := range stages {
		for range s.Required {
			slots = append(slots, slot{i})
		}
	}
	owner := map[string]int{} // person -> slot
	var try func(sl int, seen map[string]bool) bool
	try = func(sl int, seen map[string]bool) bool {
		for _, u := range stages[slots[sl].stage].Eligible {
			if seen[u] {
				continue
			}
			seen[u] = true
			if cur, taken := owner[u]; !taken || try(cur, seen) {
				owner[u] = sl
				return true
			}
		}
		return false
	}
	for sl := range slots {
		if !try(sl, map[string]bool{}) {
			return false
		}
	}
	return true
}
