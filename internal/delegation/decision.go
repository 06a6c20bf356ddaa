package delegation

import (
	"context"
	"fmt"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/directory"
)

// Actor is who acts: a signed-in user, a service account's key, or a system actor.
type Actor struct {
	Kind string // "user", "service_account" or "system"
	ID   string // object ID; for a system actor its name ("system:lifecycle")
	Name string // username, service-account name or system name
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
	// Facts, when set, is what the authorizer reads instead of its own store: inside the
	// pipeline it is the change's transaction, so a decision sees the writes made before it
	// in the same transaction (and costs no second connection).
	Facts Facts
}

// Facts is the state the authorizers read.
type Facts interface {
	// Tier0Assignment returns the ID of an assignment of RoleTier0 held by the active user id,
	// or an error wrapping directory.ErrNotFound when there is none or the user is not active.
	Tier0Assignment(ctx context.Context, userID string) (string, error)
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
	ReasonNotAuthorized = "not_authorized"
	ReasonActorInactive = "actor_inactive"
)

// Allow returns an allowing decision with its authority.
func Allow(authority audit.Authority) Decision { return Decision{Allow: true, Authority: authority} }

// Deny returns a denying decision.
func Deny(reason, format string, args ...any) Decision {
	return Decision{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Authorizer decides questions. Decide never writes and never fails open: when it cannot read
// what it needs, it denies.
type Authorizer interface {
	Decide(ctx context.Context, q *Question) Decision
}
