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

// Search reads trail newest first as q says and keeps what the scope's actor may see: up to
// q.Limit events, reading pageSize at a time and at most budget events in all, so that someone
// who sees little of a large log gets fewer than asked for and a cursor to go on, not a slow
// answer. The cursor is the index to continue before (0 at the end of the log).
func (v *EventScope) Search(ctx context.Context, trail audit.Reader, q audit.Query, pageSize, budget int) ([]audit.Event, int64, error) {
	want := q.Limit
	q.Limit = pageSize
	var out []audit.Event
	for read := 0; read < budget; {
		page, next, err := trail.Events(ctx, q)
		if err != nil {
			return nil, 0, err
		}
		for i := range page {
			read++
			if v.Visible(ctx, &page[i]) {
				if out = append(out, page[i]); len(out) == want {
					if i == len(page)-1 && next == 0 {
						return out, 0, nil
					}
					return out, page[i].Index, nil
				}
			}
		}
		if next == 0 {
			return out, 0, nil
		}
		q.Before = next
	}
	return out, q.Before, nil
}
