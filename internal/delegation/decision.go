package delegation

import (
	"context"
	"fmt"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/directory"
)

// Actor is who acts: a signed-in user, a service account's key, or a system actor.
type Actor struct {
	Kind string `json:"type"` // "user", "service_account" or "system"
	ID   string `json:"id"`   // object ID; for a system actor its name ("system:lifecycle")
	Name string `json:"name"` // username, service-account name or system name
}

// Actor kinds.
const (
	ActorUser           = "user"
	ActorServiceAccount = "service_account"
	ActorSystem         = "system"
)

// SystemActor returns the system actor called name ("lifecycle" gives "system:lifecycle").
func SystemActor(name string) Actor {
	id := "system:" + name
	return Actor{Kind: ActorSystem, ID: id, Name: id}
}

// Principal is the actor as an audit record names it.
func (a Actor) Principal() audit.Principal {
	return audit.Principal{Type: a.Kind, ID: a.ID, Name: a.Name}
}

// IsUser reports whether the actor is the user with id.
func (a Actor) IsUser(id string) bool { return a.Kind == ActorUser && a.ID == id }

// Question is what the authorizer judges: an actor, an action, its target and, for a change,
// the target's attributes before and after it, so that a scope can be checked on both states.
// For a read action only Actor, Action and Target are set.
type Question struct {
	Actor   Actor
	Action  Action
	Target  directory.Ref
	Before  map[string]any
	After   map[string]any
	Touched []string // the attributes an update changes
	// Member is the other object a question involves, with its attributes: the member a
	// group.add_member adds, the holder a role.assign grants to.
	Member *Object
	// Verified says the target user's identity was verified for this op (a password reset
	// with the code they read out), for roles that ask for it.
	Verified bool
}

// Object is a directory object with its attributes, as Fields renders them.
type Object struct {
	Ref    directory.Ref
	Fields map[string]any
}

// Decision is the authorizer's answer. An allow carries the authority that permits it; a deny
// carries a stable reason code and a message for the caller.
type Decision struct {
	Allow     bool
	Authority audit.Authority
	Reason    string
	Message   string
}

// Reason codes of denials. They are part of the API: clients may match on them.
const (
	ReasonNotAuthorized  = "not_authorized"        // no assignment covers the action on the target
	ReasonActorInactive  = "actor_inactive"        // the actor is not an active user
	ReasonEscalation     = "escalation"            // a takeover of someone who holds rights the actor does not
	ReasonProtected      = "protected"             // a protected object or a tier-0 holder, touched by someone who is not tier-0
	ReasonSelfEscalation = "self_escalation"       // changing one's own rights or group memberships
	ReasonExceedsGrant   = "exceeds_grant"         // granting more than one's own redelegatable assignment
	ReasonVerification   = "verification_required" // the role asks for the user's identity to be verified first
)

// Allow returns an allowing decision with its authority.
func Allow(authority audit.Authority) Decision { return Decision{Allow: true, Authority: authority} }

// Deny returns a denying decision.
func Deny(reason, format string, args ...any) Decision {
	return Decision{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Authorizer decides questions. Decide answers on the committed state (for reads); a Session
// answers inside a write transaction. Neither writes, and neither fails open: when the state
// cannot be read, the answer is a denial.
type Authorizer interface {
	Decide(ctx context.Context, q *Question) Decision
	// CatchUp folds in what other writers committed since the authorizer last looked.
	CatchUp(ctx context.Context, facts Facts) error
	// Session starts deciding for a write transaction whose already committed events facts
	// can read.
	Session(ctx context.Context, facts Facts) (Session, error)
}

// Session decides inside one write transaction: on the committed state plus the events the
// transaction has applied so far (Record). Commit folds them into the committed state once the
// transaction has committed; a session whose transaction rolled back is simply dropped.
type Session interface {
	Decide(ctx context.Context, q *Question) Decision
	Record(e *audit.Event)
	// Mark and Rewind follow a savepoint of the transaction: Rewind(Mark()) forgets what was
	// recorded after the mark, when the savepoint's writes were rolled back.
	Mark() int
	Rewind(mark int)
	Commit()
}

// Facts is what an authorizer reads from the database inside a transaction.
type Facts interface {
	// EventsSince returns the applied events with an index above after, in index order.
	EventsSince(ctx context.Context, after int64) ([]audit.Event, error)
}
