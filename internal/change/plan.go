package change

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// plan is an op resolved against the current state: its target, the target's attributes before
// and after (nil before a create, nil after a delete), and the write that makes it so. Nothing is
// written until the op has been authorized.
type plan struct {
	target  directory.Ref
	before  map[string]any
	after   map[string]any
	touched []string
	version int64 // the target's version after the write
	write   func(ctx context.Context) error
	// relBefore and relAfter replace the attribute diff in the audit event for ops that change
	// a relation rather than attributes (a membership, a token).
	relBefore, relAfter map[string]any
	issued              *Issued
	// member is the other object the op involves (a member added, a holder granted to), for
	// the authorizer.
	member *delegation.Object
	// checked is the target's version as planned (what an If-Match would have to say).
	checked int64
	// verified says the user's identity was verified for this op (a reset with a code).
	verified bool
	// note is the applied event's message (what else the op did: an activation link sent).
	note string
}

// planner holds what every handler needs.
type planner struct {
	tx    Tx
	op    *Op
	actor delegation.Actor
	now   time.Time
	// checked is the version of the target checkVersion saw (0 when none was checked).
	checked int64
	// maxKeyDays is the longest lifetime of a service account's API key.
	maxKeyDays int
	// holds reports whether an object holds a role assignment (in force or eligible), when the
	// authorizer can say; nil otherwise.
	holds func(id string) bool
}

// plan resolves op against the state in tx.
func (p *Pipeline) plan(ctx context.Context, tx Tx, op *Op, actor delegation.Actor, now time.Time) (*plan, error) {
	pl := &planner{tx: tx, op: op, actor: actor, now: now, maxKeyDays: p.maxKeyDays}
	if h, ok := p.authz.(interface{ HoldsAssignments(id string) bool }); ok {
		pl.holds = h.HoldsAssignments
	}
	out, err := pl.dispatch(ctx)
	if out != nil {
		out.checked = pl.checked
	}
	return out, err
}

// dispatch plans the op by its action.
func (pl *planner) dispatch(ctx context.Context) (*plan, error) {
	op := pl.op
	switch op.Action {
	case delegation.OUCreate:
		return pl.ouCreate(ctx)
	case delegation.OUUpdate:
		return pl.ouUpdate(ctx)
	case delegation.OUMove:
		return pl.ouMove(ctx)
	case delegation.OUDelete:
		return pl.ouDelete(ctx)
	case delegation.UserCreate:
		return pl.userCreate(ctx)
	case delegation.UserUpdate:
		return pl.userUpdate(ctx)
	case delegation.UserMove:
		return pl.userMove(ctx)
	case delegation.UserRevokeTokens:
		return pl.userRevokeTokens(ctx)
	case delegation.UserResetPassword:
		return pl.userResetPassword(ctx)
	case delegation.UserUnlock:
		return pl.userUnlock(ctx)
	case delegation.UserChangePassword:
		return pl.userChangePassword(ctx)
	case delegation.UserEnrolMFA:
		return pl.userEnrolMFA(ctx)
	case delegation.UserResetMFA:
		return pl.userResetMFA(ctx)
	case delegation.UserDisable:
		return pl.userSetStatus(ctx, directory.StatusDisabled)
	case delegation.UserEnable:
		return pl.userSetStatus(ctx, directory.StatusActive)
	case delegation.UserDelete:
		return pl.userDelete(ctx)
	case delegation.UserIssueToken:
		return pl.userIssueToken(ctx)
	case delegation.GroupCreate:
		return pl.groupCreate(ctx)
	case delegation.GroupUpdate:
		return pl.groupUpdate(ctx)
	case delegation.GroupMove:
		return pl.groupMove(ctx)
	case delegation.GroupDelete:
		return pl.groupDelete(ctx)
	case delegation.GroupAddMember:
		return pl.groupAddMember(ctx)
	case delegation.GroupRemoveMember:
		return pl.groupRemoveMember(ctx)
	case delegation.SACreate:
		return pl.saCreate(ctx)
	case delegation.SAUpdate:
		return pl.saUpdate(ctx)
	case delegation.SAMove:
		return pl.saMove(ctx)
	case delegation.SADelete:
		return pl.saDelete(ctx)
	case delegation.SAIssueKey:
		return pl.saIssueKey(ctx)
	case delegation.SARevokeKey:
		return pl.saRevokeKey(ctx)
	case delegation.RoleCreate:
		return pl.roleCreate(ctx)
	case delegation.RoleUpdate:
		return pl.roleUpdate(ctx)
	case delegation.RoleDelete:
		return pl.roleDelete(ctx)
	case delegation.RoleAssign:
		return pl.roleAssign(ctx)
	case delegation.RoleRevoke:
		return pl.roleRevoke(ctx)
	case delegation.RoleActivate:
		return pl.roleActivate(ctx)
	}
	return nil, directory.Invalid("action", "unknown action %q", op.Action)
}

// checkVersion enforces the op's If-Match.
func (pl *planner) checkVersion(have int64) error {
	pl.checked = have
	if pl.op.IfVersion != 0 && pl.op.IfVersion != have {
		return directory.StaleVersion(pl.op.IfVersion, have)
	}
	return nil
}

// ou resolves an OU reference given in field; a missing OU is a field error, not a 404, since
// the request names it as a value.
func (pl *planner) ou(ctx context.Context, field, key string) (directory.OU, error) {
	o, err := pl.tx.OU(ctx, directory.ParseRef(directory.KindOU, key))
	if errors.Is(err, directory.ErrNotFound) {
		return o, directory.Invalid(field, "there is no OU %q", key)
	}
	return o, err
}

// user resolves a user reference given in field.
func (pl *planner) user(ctx context.Context, field, key string) (directory.User, error) {
	u, err := pl.tx.User(ctx, directory.ParseRef(directory.KindUser, key))
	if errors.Is(err, directory.ErrNotFound) {
		return u, directory.Invalid(field, "there is no user %q", key)
	}
	return u, err
}

// owners resolves a list of owner references to users.
func (pl *planner) owners(ctx context.Context, keys []string) ([]directory.Ref, error) {
	refs := make([]directory.Ref, 0, len(keys))
	seen := map[string]bool{}
	for _, k := range keys {
		u, err := pl.user(ctx, "owners", k)
		if err != nil {
			return nil, err
		}
		if !seen[u.ID] {
			seen[u.ID] = true
			refs = append(refs, u.Ref())
		}
	}
	return refs, nil
}

// withRelations adds to the fields of an object about to be deleted the links the delete
// removes (its memberships and ownerships), so the audit event records them and an undo can
// restore them.
func (pl *planner) withRelations(ctx context.Context, id string, fields map[string]any) (map[string]any, error) {
	rel, err := pl.tx.Relations(ctx, id)
	if err != nil {
		return nil, err
	}
	for k, v := range rel.Fields() {
		fields[k] = v
	}
	return fields, nil
}

// placed is an object that lives in an OU.
type placed interface {
	Ref() directory.Ref
	Fields() map[string]any
}

// relocate plans moving cur (now in OU curOU, at version) to the op's destination OU. set
// places a copy of the object in the destination and returns its fields and its write.
func (pl *planner) relocate(ctx context.Context, cur placed, curOU string, version int64,
	set func(to directory.OU) (map[string]any, func(context.Context) error)) (*plan, error) {
	to, err := pl.ou(ctx, "to", pl.op.To)
	if err != nil {
		return nil, err
	}
	ref := cur.Ref()
	if to.ID == curOU {
		return nil, errUnchanged("%s %s is already in OU %s", ref.Kind.Noun(), ref.Name, to.DisplayPath())
	}
	after, write := set(to)
	return &plan{target: ref, before: cur.Fields(), after: after, touched: []string{"ou"}, version: version + 1,
		write: write}, nil
}

// errUnchanged is the conflict of a move or status change that would change nothing.
func errUnchanged(format string, args ...any) error {
	return &directory.ConflictError{Message: fmt.Sprintf(format, args...)}
}
