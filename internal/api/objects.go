package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
	"github.com/deputy-iam/deputy/internal/httpx"
)

// kindAPI is what the generic handlers need to know about one kind of object.
type kindAPI struct {
	kind   directory.Kind
	param  string // the path wildcard naming the object
	base   string // the collection's path
	schema filter.Schema
	// read returns the object's view, version and attributes.
	read func(ctx context.Context, ref directory.Ref) (loaded, error)
	// list returns a page of views.
	list func(ctx context.Context, q directory.ListQuery) (any, error)
	// action names the kind's update, move and delete actions.
	update, move, del delegation.Action
}

func (s *Server) kinds() map[directory.Kind]*kindAPI {
	return map[directory.Kind]*kindAPI{
		directory.KindOU: {kind: directory.KindOU, param: "ou", base: "/api/v1/ous", schema: directory.OUSchema,
			read: func(ctx context.Context, ref directory.Ref) (loaded, error) {
				o, err := s.dir.OU(ctx, ref)
				return loaded{viewOU(o), o.Version, o.Ref(), o.Fields()}, err
			},
			list: func(ctx context.Context, q directory.ListQuery) (any, error) {
				p, err := s.dir.ListOUs(ctx, q)
				return viewPage(p, viewOU), err
			},
			update: delegation.OUUpdate, move: delegation.OUMove, del: delegation.OUDelete},
		directory.KindUser: {kind: directory.KindUser, param: "user", base: "/api/v1/users", schema: directory.UserSchema,
			read: func(ctx context.Context, ref directory.Ref) (loaded, error) {
				u, err := s.dir.User(ctx, ref)
				if err != nil {
					return loaded{}, err
				}
				ms, err := s.dir.Memberships(ctx, u.Ref())
				if ms == nil {
					ms = []directory.Membership{}
				}
				return loaded{viewUser(u, ms), u.Version, u.Ref(), u.Fields()}, err
			},
			list: func(ctx context.Context, q directory.ListQuery) (any, error) {
				p, err := s.dir.ListUsers(ctx, q)
				return viewPage(p, func(u directory.User) userView { return viewUser(u, nil) }), err
			},
			update: delegation.UserUpdate, move: delegation.UserMove, del: delegation.UserDelete},
		directory.KindGroup: {kind: directory.KindGroup, param: "group", base: "/api/v1/groups", schema: directory.GroupSchema,
			read: func(ctx context.Context, ref directory.Ref) (loaded, error) {
				g, err := s.dir.Group(ctx, ref)
				if err != nil {
					return loaded{}, err
				}
				ms, err := s.dir.Memberships(ctx, g.Ref())
				v := viewGroup(g)
				v.MemberOf = viewMemberships(ms)
				return loaded{v, g.Version, g.Ref(), g.Fields()}, err
			},
			list: func(ctx context.Context, q directory.ListQuery) (any, error) {
				p, err := s.dir.ListGroups(ctx, q)
				return viewPage(p, viewGroup), err
			},
			update: delegation.GroupUpdate, move: delegation.GroupMove, del: delegation.GroupDelete},
		directory.KindServiceAccount: {kind: directory.KindServiceAccount, param: "sa", base: "/api/v1/service-accounts",
			schema: directory.ServiceAccountSchema,
			read: func(ctx context.Context, ref directory.Ref) (loaded, error) {
				sa, err := s.dir.ServiceAccount(ctx, ref)
				return loaded{viewServiceAccount(sa), sa.Version, sa.Ref(), sa.Fields()}, err
			},
			list: func(ctx context.Context, q directory.ListQuery) (any, error) {
				p, err := s.dir.ListServiceAccounts(ctx, q)
				return viewPage(p, viewServiceAccount), err
			},
			update: delegation.SAUpdate, move: delegation.SAMove, del: delegation.SADelete},
	}
}

// ref is the object the request's path names.
func (k *kindAPI) ref(r *http.Request) directory.Ref {
	return directory.ParseRef(k.kind, r.PathValue(k.param))
}

// loaded is an object read for an answer: its view and version, and its reference and
// attributes for the authorizer.
type loaded struct {
	view    any
	version int64
	ref     directory.Ref
	fields  map[string]any
}

// readVisible reads the object ref names for the caller, writing a 403 or 404 and returning
// false when they may not see it or it does not exist. A caller who may read nothing of the kind
// gets 403 either way, so that they learn nothing of what exists.
func (s *Server) readVisible(w http.ResponseWriter, r *http.Request, k *kindAPI, ref directory.Ref) (loaded, bool) {
	l, err := k.read(r.Context(), ref)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		if all, expr := s.authz.Visibility(actor(r), k.kind); !all && expr == nil {
			s.allowed(w, r, delegation.DirectoryRead, ref, nil)
			return l, false
		}
		s.fail(w, r, err)
		return l, false
	case err != nil:
		s.fail(w, r, err)
		return l, false
	}
	return l, s.allowed(w, r, delegation.DirectoryRead, l.ref, l.fields)
}

// get answers GET on one object.
func (s *Server) get(k *kindAPI) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		l, ok := s.readVisible(w, r, k, k.ref(r))
		if ok {
			written(w, http.StatusOK, "", l.version, l.view)
		}
	}
}

// visible narrows a list query to what the caller may read, or writes a 403 (recorded) when
// they may read nothing of the kind.
func (s *Server) visible(w http.ResponseWriter, r *http.Request, kind directory.Kind, q *directory.ListQuery) bool {
	all, expr := s.authz.Visibility(actor(r), kind)
	switch {
	case all:
		return true
	case expr == nil:
		return s.allowed(w, r, delegation.DirectoryRead, directory.Ref{Kind: kind}, nil)
	case q.Filter == nil:
		q.Filter = expr
	default:
		q.Filter = &filter.And{Left: expr, Right: q.Filter}
	}
	return true
}

// list answers GET on a collection, with what the caller may see.
func (s *Server) list(k *kindAPI) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := listQuery(r, k.schema)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !s.visible(w, r, k.kind, &q) {
			return
		}
		page, err := k.list(r.Context(), q)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, page)
	}
}

// respond submits op and answers with the object as it is afterwards.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, k *kindAPI, op change.Op, status int) {
	res, ok := s.submit(w, r, op)
	if !ok {
		return
	}
	l, err := k.read(r.Context(), res.Target)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	location := ""
	if status == http.StatusCreated {
		location = k.base + "/" + res.Target.ID
	}
	written(w, status, location, l.version, l.view)
}

// create answers POST on a collection: body is decoded into the op's input.
func (s *Server) create(k *kindAPI, action delegation.Action, body func(op *change.Op) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		op := change.Op{Action: action}
		if err := httpx.Decode(w, r, body(&op)); err != nil {
			s.fail(w, r, err)
			return
		}
		s.respond(w, r, k, op, http.StatusCreated)
	}
}

// update answers PATCH with a JSON merge patch.
func (s *Server) update(k *kindAPI) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var patch directory.Patch
		if err := httpx.Decode(w, r, &patch); err != nil {
			s.fail(w, r, err)
			return
		}
		if len(patch) == 0 {
			s.fail(w, r, directory.Invalid("body", "the patch changes nothing"))
			return
		}
		s.respond(w, r, k, change.Op{Action: k.update, Target: k.ref(r), Patch: patch}, http.StatusOK)
	}
}

// move answers POST .../move with {"to": OU}.
func (s *Server) move(k *kindAPI) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in moveInput
		if err := httpx.Decode(w, r, &in); err != nil {
			s.fail(w, r, err)
			return
		}
		s.respond(w, r, k, change.Op{Action: k.move, Target: k.ref(r), To: in.To}, http.StatusOK)
	}
}

// del answers DELETE with 204.
func (s *Server) del(k *kindAPI) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.submit(w, r, change.Op{Action: k.del, Target: k.ref(r)}); ok {
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

// simple answers an action without a body (disable, enable) with the object afterwards.
func (s *Server) simple(k *kindAPI, action delegation.Action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.respond(w, r, k, change.Op{Action: action, Target: k.ref(r)}, http.StatusOK)
	}
}
