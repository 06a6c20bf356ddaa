// Package delegation decides who may do what to which object. It holds actors, the closed set of
// actions, assignments of roles, and the Authorizer the change pipeline asks before every change.
package delegation

import (
	"slices"

	"github.com/deputy-iam/deputy/internal/directory"
)

// Action is a closed, named verb. Roles are sets of actions.
type Action string

// The actions that change state.
const (
	OUCreate Action = "ou.create"
	OUUpdate Action = "ou.update"
	OUMove   Action = "ou.move"
	OUDelete Action = "ou.delete"

	UserCreate     Action = "user.create"
	UserUpdate     Action = "user.update"
	UserMove       Action = "user.move"
	UserDisable    Action = "user.disable"
	UserEnable     Action = "user.enable"
	UserDelete     Action = "user.delete"
	UserIssueToken Action = "user.issue_token"

	GroupCreate       Action = "group.create"
	GroupUpdate       Action = "group.update"
	GroupMove         Action = "group.move"
	GroupDelete       Action = "group.delete"
	GroupAddMember    Action = "group.add_member"
	GroupRemoveMember Action = "group.remove_member"

	SACreate Action = "sa.create"
	SAUpdate Action = "sa.update"
	SAMove   Action = "sa.move"
	SADelete Action = "sa.delete"
)

// Read actions are asked of the authorizer by transports; they are never applied.
const (
	DirectoryRead Action = "directory.read"
	AuditRead     Action = "audit.read"
)

// actionKinds is the kind of object each state-changing action targets.
var actionKinds = map[Action]directory.Kind{
	OUCreate: directory.KindOU, OUUpdate: directory.KindOU, OUMove: directory.KindOU, OUDelete: directory.KindOU,
	UserCreate: directory.KindUser, UserUpdate: directory.KindUser, UserMove: directory.KindUser,
	UserDisable: directory.KindUser, UserEnable: directory.KindUser, UserDelete: directory.KindUser,
	UserIssueToken: directory.KindUser,
	GroupCreate:    directory.KindGroup, GroupUpdate: directory.KindGroup, GroupMove: directory.KindGroup,
	GroupDelete: directory.KindGroup, GroupAddMember: directory.KindGroup, GroupRemoveMember: directory.KindGroup,
	SACreate: directory.KindServiceAccount, SAUpdate: directory.KindServiceAccount,
	SAMove: directory.KindServiceAccount, SADelete: directory.KindServiceAccount,
}

// Kind returns the kind of object a state-changing action targets, and false for an unknown
// or read action.
func (a Action) Kind() (directory.Kind, bool) {
	k, ok := actionKinds[a]
	return k, ok
}

// Actions lists every state-changing action, sorted.
func Actions() []Action {
	out := make([]Action, 0, len(actionKinds))
	for a := range actionKinds {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}
