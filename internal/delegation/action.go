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
	// UserRevokeTokens deletes all of a user's API tokens (disabling only suspends them).
	UserRevokeTokens Action = "user.revoke_tokens"
	// UserChangePassword and UserEnrolMFA are self-service: a user's own password and
	// authenticator.
	UserChangePassword Action = "user.change_password"
	UserEnrolMFA       Action = "user.enrol_mfa"
	// UserResetMFA removes a user's authenticator (lost or replaced): they enrol again at their
	// next sign-in. A takeover action, like a password reset.
	UserResetMFA Action = "user.reset_mfa"

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

	RoleCreate   Action = "role.create"
	RoleUpdate   Action = "role.update"
	RoleDelete   Action = "role.delete"
	RoleAssign   Action = "role.assign"
	RoleRevoke   Action = "role.revoke"
	RoleActivate Action = "role.activate"
)

// Actions a role may name that no op performs yet (their ops come with credentials); they are
// part of the closed set so that roles can be written once.
const (
	UserResetPassword Action = "user.reset_password"
	UserUnlock        Action = "user.unlock"
	GroupSetOwner     Action = "group.set_owner"
	SASetOwner        Action = "sa.set_owner"
	SAIssueKey        Action = "sa.issue_key"
	SARevokeKey       Action = "sa.revoke_key"
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
	UserIssueToken: directory.KindUser, UserRevokeTokens: directory.KindUser, UserChangePassword: directory.KindUser,
	UserEnrolMFA: directory.KindUser, UserResetPassword: directory.KindUser, UserUnlock: directory.KindUser,
	UserResetMFA: directory.KindUser,
	GroupCreate:  directory.KindGroup, GroupUpdate: directory.KindGroup, GroupMove: directory.KindGroup,
	GroupDelete: directory.KindGroup, GroupAddMember: directory.KindGroup, GroupRemoveMember: directory.KindGroup,
	SACreate: directory.KindServiceAccount, SAUpdate: directory.KindServiceAccount,
	SAMove: directory.KindServiceAccount, SADelete: directory.KindServiceAccount,
	SAIssueKey: directory.KindServiceAccount, SARevokeKey: directory.KindServiceAccount,
	RoleCreate: directory.KindRole, RoleUpdate: directory.KindRole, RoleDelete: directory.KindRole,
	RoleAssign: directory.KindAssignment, RoleRevoke: directory.KindAssignment, RoleActivate: directory.KindAssignment,
}

// otherActions are the actions no op performs (reads, and the reserved ones), by the kind of
// object they concern.
var otherActions = map[Action]directory.Kind{
	DirectoryRead: "", AuditRead: "",
	GroupSetOwner: directory.KindGroup, SASetOwner: directory.KindServiceAccount,
}

// Known reports whether a is in the closed set of actions (whether or not an op performs it).
func (a Action) Known() bool {
	_, op := actionKinds[a]
	_, other := otherActions[a]
	return op || other
}

// AllActions lists every known action, sorted: what a role may name.
func AllActions() []Action {
	out := Actions()
	for a := range otherActions {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
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
