package lifecycle

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// RoleName is the custom role `deputy hr setup` creates for system:lifecycle: what applying a
// feed needs, and nothing that could touch tier-0 (guardrails still apply to it).
const RoleName = "lifecycle"

// RoleActions are the lifecycle role's actions.
var RoleActions = []delegation.Action{delegation.DirectoryRead, delegation.UserCreate, delegation.UserUpdate,
	delegation.UserMove, delegation.UserDisable, delegation.UserEnable, delegation.UserDelete, delegation.UserRevokeTokens,
	delegation.GroupAddMember,
	delegation.GroupRemoveMember, delegation.GroupUpdate, delegation.GroupSetOwner, delegation.SAUpdate, delegation.SASetOwner}

// Existing says what is already there, for SetupOps.
type Existing struct {
	OU    func(path string) bool
	Group func(name string) bool
	// Role returns the actions of the role called name, and whether it exists.
	Role       func(name string) ([]delegation.Action, bool)
	Assignment func(role string) bool // system:lifecycle holds this role (over the whole tree)
}

// SetupOps are the ops a tier-0 admin submits once so that a rule set can be applied: the OUs
// and groups its rules name that do not exist, the lifecycle role, and system:lifecycle's
// assignments: that role over the whole tree, and every birthright role with can_redelegate
// (it grants them onward, only as rules say).
func SetupOps(rules *RuleSet, ex Existing) []change.Op {
	var ops []change.Op
	const why = "HR lifecycle setup"
	made := map[string]bool{}
	var mkOU func(path string)
	mkOU = func(path string) {
		path = strings.Trim(path, "/")
		if path == "" || made[strings.ToLower(path)] || ex.OU(path) {
			return
		}
		made[strings.ToLower(path)] = true
		parent, name := "", path
		if i := strings.LastIndex(path, "/"); i >= 0 {
			parent, name = path[:i], path[i+1:]
			mkOU(parent)
		}
		if parent == "" {
			parent = directory.RootPath
		}
		ops = append(ops, change.Op{Action: delegation.OUCreate, OU: &directory.OUInput{Name: name, Parent: parent}, Justification: why})
	}
	mkOU(rules.DefaultOU)
	groups := map[string]string{}
	var roles []string
	for _, r := range rules.Rules {
		if r.OU != "" {
			mkOU(r.OU)
		}
		for _, g := range r.Groups {
			if _, ok := groups[strings.ToLower(g)]; !ok {
				ou := r.OU
				if ou == "" {
					ou = rules.DefaultOU
				}
				groups[strings.ToLower(g)] = ou + "\x00" + g
			}
		}
		for _, a := range r.Assignments {
			if !slices.Contains(roles, a.Role) {
				roles = append(roles, a.Role)
			}
		}
	}
	names := make([]string, 0, len(groups))
	for k := range groups {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		ou, g, _ := strings.Cut(groups[k], "\x00")
		if !ex.Group(g) {
			ops = append(ops, change.Op{Action: delegation.GroupCreate, Justification: why,
				Group: &directory.GroupInput{Name: g, OU: ou, Description: "Birthright group of the HR lifecycle rules"}})
		}
	}
	switch have, ok := ex.Role(RoleName); {
	case !ok:
		ops = append(ops, change.Op{Action: delegation.RoleCreate, Justification: why, Role: &delegation.RoleInput{Name: RoleName,
			Description: "What system:lifecycle needs to apply HR feeds", Actions: RoleActions}})
	case slices.ContainsFunc(RoleActions, func(a delegation.Action) bool { return !slices.Contains(have, a) }):
		// A role set up by an earlier version lacks actions this one needs: add them.
		want := slices.Clone(have)
		for _, a := range RoleActions {
			if !slices.Contains(want, a) {
				want = append(want, a)
			}
		}
		b, _ := json.Marshal(want)
		ops = append(ops, change.Op{Action: delegation.RoleUpdate, Justification: why,
			Target: directory.Ref{Kind: directory.KindRole, ID: RoleName, Name: RoleName}, Patch: directory.Patch{"actions": b}})
	}
	grant := func(role string, redelegate bool) {
		if ex.Assignment(role) {
			return
		}
		ops = append(ops, change.Op{Action: delegation.RoleAssign, Justification: why, Assignment: &delegation.AssignmentInput{
			Role: role, Holder: delegation.HolderInput{System: "lifecycle"}, Scope: delegation.ScopeInput{OU: directory.RootPath},
			CanRedelegate: redelegate, Justification: why}})
	}
	grant(RoleName, false)
	for _, r := range roles {
		grant(r, true)
	}
	return ops
}
