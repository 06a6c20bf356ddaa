package delegation

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/directory"
)

// RoleTier0 is the built-in role that may do everything, and the only one that may touch
// protected objects.
const RoleTier0 = "tier0-admin"

// Assignment grants a role to a holder. The foundation knows only direct user holders of the
// tier-0 role; scopes, group holders and validity windows build on this record.
type Assignment struct {
	ID            string
	Role          string
	HolderKind    string // "user"
	HolderID      string
	GrantedBy     string // the actor ID that granted it
	Justification string
	Created       time.Time
}

// Tier0 is the foundation's authorizer: the holders of the tier-0 admin role may do everything;
// every user may read their own record and issue their own API tokens; everyone else is denied.
type Tier0 struct {
	store Facts
	log   *slog.Logger
}

// NewTier0 returns the tier-0 authorizer over store.
func NewTier0(store Facts, log *slog.Logger) *Tier0 { return &Tier0{store: store, log: log} }

// Decide implements Authorizer.
func (t *Tier0) Decide(ctx context.Context, q *Question) Decision {
	if q.Actor.Kind != ActorUser {
		return Deny(ReasonNotAuthorized, "%s %q holds no role that permits %s", q.Actor.Kind, q.Actor.Name, q.Action)
	}
	facts := q.Facts
	if facts == nil {
		facts = t.store
	}
	id, err := facts.Tier0Assignment(ctx, q.Actor.ID)
	switch {
	case err == nil:
		return Allow(audit.Authority{Assignments: []string{id}, Rule: RoleTier0})
	case !errors.Is(err, directory.ErrNotFound):
		t.log.ErrorContext(ctx, "authorize: read tier-0 assignment", "actor", q.Actor.ID, "err", err)
		return Deny(ReasonNotAuthorized, "the authorization data could not be read; nothing was done")
	}
	self := q.Target.Kind == directory.KindUser && q.Target.ID == q.Actor.ID
	if self && (q.Action == DirectoryRead || q.Action == UserIssueToken) {
		return Allow(audit.Authority{Rule: "self"})
	}
	switch {
	case q.Target.Key() != "":
		return Deny(ReasonNotAuthorized, "%s on %s %s needs the %s role", q.Action, q.Target.Kind.Noun(), q.Target, RoleTier0)
	case q.Target.Kind != "":
		return Deny(ReasonNotAuthorized, "%s on %ss needs the %s role", q.Action, q.Target.Kind.Noun(), RoleTier0)
	}
	return Deny(ReasonNotAuthorized, "%s needs the %s role", q.Action, RoleTier0)
}
