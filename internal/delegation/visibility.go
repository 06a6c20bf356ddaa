package delegation

import (
	"context"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/directory"
)

// ReadObject reads the directory object ref names (a user, group, service account or OU) as
// the authorizer is asked about it: its resolved reference and its attributes, as it is now.
func ReadObject(ctx context.Context, dir directory.Reader, ref directory.Ref) (Object, error) {
	switch ref.Kind {
	case directory.KindUser:
		u, err := dir.User(ctx, ref)
		return Object{Ref: u.Ref(), Fields: u.Fields()}, err
	case directory.KindGroup:
		g, err := dir.Group(ctx, ref)
		return Object{Ref: g.Ref(), Fields: g.Fields()}, err
	case directory.KindServiceAccount:
		sa, err := dir.ServiceAccount(ctx, ref)
		return Object{Ref: sa.Ref(), Fields: sa.Fields()}, err
	case directory.KindOU:
		o, err := dir.OU(ctx, ref)
		return Object{Ref: o.Ref(), Fields: o.Fields()}, err
	}
	return Object{}, directory.NotFound(ref.Kind, ref.Key())
}

// Allower answers which of some actions an actor may take on an object (the Engine).
type Allower interface {
	Allowed(ctx context.Context, actor Actor, obj Object, actions []Action) []Action
}

// EventScope says which audit events someone without audit.read over the whole directory may
// see: their own actions (and those done on their behalf), and events about directory objects
// (users, groups, service accounts, OUs) they may read now. Events about objects deleted since,
// roles and assignments are left out unless they are the person's own. The REST API and the
// portal both read the trail through it. It remembers its answer per object: use one per search.
type EventScope struct {
	dir     directory.Reader
	az      Allower
	actor   Actor
	targets map[string]bool // object ID -> readable
}

// NewEventScope makes the scope of actor's reading.
func NewEventScope(dir directory.Reader, az Allower, actor Actor) *EventScope {
	return &EventScope{dir: dir, az: az, actor: actor, targets: map[string]bool{}}
}

// Visible reports whether the scope's actor may see e.
func (v *EventScope) Visible(ctx context.Context, e *audit.Event) bool {
	if e.Actor.ID == v.actor.ID || e.OnBehalfOf != nil && e.OnBehalfOf.ID == v.actor.ID {
		return true
	}
	if e.Target.ID == "" {
		return false
	}
	if ok, seen := v.targets[e.Target.ID]; seen {
		return ok
	}
	ok := false
	if obj, err := ReadObject(ctx, v.dir, directory.Ref{Kind: directory.Kind(e.Target.Type), ID: e.Target.ID}); err == nil {
		ok = len(v.az.Allowed(ctx, v.actor, obj, []Action{DirectoryRead})) > 0
	}
	v.targets[e.Target.ID] = ok
	return ok
}
