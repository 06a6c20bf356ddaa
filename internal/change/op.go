// Package change is the only writer of identity state. Every change is an Op that goes
// authorize -> gate -> apply (one transaction: the change, its audit event and its outbox
// rows) -> publish (connectors consume the outbox later). Denied and failed attempts are
// recorded too.
package change

import (
	"fmt"
	"strings"

	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// Op is one intended change, as data: serializable, so an approval request can hold it, the
// audit can describe it and an undo can build its inverse. Exactly the fields its action needs
// are set: the input object for a create, a merge patch for an update, To for a move, Member for
// a membership change, Token for a token issue, Key for a service-account key issue and KeyID
// (the key's id) for its revocation.
type Op struct {
	Action delegation.Action `json:"action"`
	Target directory.Ref     `json:"target"`
	// IfVersion, when non-zero, makes the op fail with directory.ErrStale unless the target is
	// still at that version (an HTTP If-Match).
	IfVersion  int64                          `json:"if_version,omitempty"`
	OU         *directory.OUInput             `json:"ou,omitempty"`
	User       *directory.UserInput           `json:"user,omitempty"`
	Group      *directory.GroupInput          `json:"group,omitempty"`
	Service    *directory.ServiceAccountInput `json:"service_account,omitempty"`
	Patch      directory.Patch                `json:"patch,omitempty"`
	To         string                         `json:"to,omitempty"`
	Member     string                         `json:"member,omitempty"`
	Token      *TokenInput                    `json:"token,omitempty"`
	Key        *KeyInput                      `json:"key,omitempty"`
	KeyID      string                         `json:"key_id,omitempty"`
	Role       *delegation.RoleInput          `json:"role,omitempty"`
	Assignment *delegation.AssignmentInput    `json:"assignment,omitempty"`
	Activation *delegation.ActivationInput    `json:"activation,omitempty"`
	// Provenance, on group.add_member, restores a membership as it was (an undo of its
	// removal); otherwise the membership is the actor's, added now.
	Provenance *directory.Provenance `json:"provenance,omitempty"`
	// RestoreID, on ou.create, gives the OU the ID it had before it was deleted (an undo of the
	// delete), so its history continues; otherwise a create gets a new ID.
	RestoreID string `json:"restore_id,omitempty"`
	// Rule, on an op of the system actor system:lifecycle, names the birthright rule it
	// carries out; the audit event records it as its authority's lifecycle rule.
	Rule          string `json:"rule,omitempty"`
	Justification string `json:"justification,omitempty"`
	// Welcome, on user.create, also sends the new account's activation link to its manager
	// (see WelcomeInput): the code is made when the op applies, never carried in it.
	Welcome *WelcomeInput `json:"welcome,omitempty"`

	// Password, Reset and MFA carry secrets: they never leave the process (see credentials.go).
	Password *PasswordChange `json:"-"`
	Reset    *ResetInput     `json:"-"`
	MFA      *MFAInput       `json:"-"`
	prep     *prepared
}

// TokenInput asks for a personal API token.
type TokenInput struct {
	Name          string `json:"name"`
	ExpiresInDays int    `json:"expires_in_days,omitempty"`
}

// Token lifetimes, in days.
const (
	DefaultTokenDays = 90
	MaxTokenDays     = 366
)

// check verifies that op is well formed for its action: a known action, the target kind it
// acts on, and the parameters it needs present.
func (op *Op) check() error {
	kind, ok := op.Action.Kind()
	if !ok {
		return directory.Invalid("action", "unknown action %q", op.Action)
	}
	if op.Target.Kind == "" {
		op.Target.Kind = kind
	}
	if op.Target.Kind != kind {
		return directory.Invalid("target", "%s acts on a %s, not a %s", op.Action, kind.Noun(), op.Target.Kind.Noun())
	}
	creates := op.Action == delegation.OUCreate || op.Action == delegation.UserCreate || op.Action == delegation.GroupCreate ||
		op.Action == delegation.SACreate || op.Action == delegation.RoleCreate || op.Action == delegation.RoleAssign
	if !creates && op.Target.Key() == "" {
		return directory.Invalid("target", "names no %s", kind.Noun())
	}
	var missing string
	switch {
	case op.Action == delegation.OUCreate && op.OU == nil:
		missing = "ou"
	case op.Action == delegation.UserCreate && op.User == nil:
		missing = "user"
	case op.Action == delegation.GroupCreate && op.Group == nil:
		missing = "group"
	case op.Action == delegation.SACreate && op.Service == nil:
		missing = "service_account"
	case strings.HasSuffix(string(op.Action), ".update") && len(op.Patch) == 0:
		missing = "patch"
	case strings.HasSuffix(string(op.Action), ".move") && strings.TrimSpace(op.To) == "":
		missing = "to"
	case (op.Action == delegation.GroupAddMember || op.Action == delegation.GroupRemoveMember) && strings.TrimSpace(op.Member) == "":
		missing = "member"
	case op.Action == delegation.UserIssueToken && op.Token == nil:
		missing = "token"
	case op.Action == delegation.SAIssueKey && op.Key == nil:
		missing = "key"
	case op.Action == delegation.SARevokeKey && strings.TrimSpace(op.KeyID) == "":
		missing = "key_id"
	case op.Action == delegation.RoleCreate && op.Role == nil:
		missing = "role"
	case op.Action == delegation.RoleAssign && op.Assignment == nil:
		missing = "assignment"
	case op.Action == delegation.RoleActivate && op.Activation == nil:
		missing = "activation"
	}
	if missing != "" {
		return directory.Invalid(missing, "is required for %s", op.Action)
	}
	if len(op.Justification) > 2000 {
		return directory.Invalid("justification", "is longer than 2000 characters")
	}
	return nil
}

// String describes op for logs and messages.
func (op *Op) String() string {
	return fmt.Sprintf("%s %s", op.Action, op.Target)
}
