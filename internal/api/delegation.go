package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/httpx"
)

type roleView struct {
	Name           string     `json:"name"`
	Description    string     `json:"description"`
	Actions        []string   `json:"actions"`
	UserAttributes []string   `json:"user_attributes"`
	Builtin        bool       `json:"builtin"`
	VerifyIdentity bool       `json:"verify_identity,omitempty"`
	Version        int64      `json:"version,omitempty"`
	Created        *time.Time `json:"created,omitempty"`
	Updated        *time.Time `json:"updated,omitempty"`
}

func viewRole(r delegation.Role) roleView {
	v := roleView{Name: r.Name, Description: r.Description, Builtin: r.Builtin, Version: r.Version,
		UserAttributes: r.UserAttributes, VerifyIdentity: r.VerifyIdentity}
	for _, a := range r.Actions {
		v.Actions = append(v.Actions, string(a))
	}
	if v.UserAttributes == nil {
		v.UserAttributes = []string{}
	}
	if !r.Created.IsZero() {
		c, u := r.Created, r.Updated
		v.Created, v.Updated = &c, &u
	}
	return v
}

// role reads a built-in or custom role.
func (s *Server) role(ctx context.Context, name string) (delegation.Role, error) {
	name = strings.ToLower(name)
	if r, ok := delegation.BuiltinRole(name); ok {
		return r, nil
	}
	return s.deleg.Role(ctx, name)
}

func (s *Server) listRoles(w http.ResponseWriter, r *http.Request) {
	custom, err := s.deleg.Roles(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	all := append(delegation.BuiltinRoles(), custom...)
	slices.SortFunc(all, func(a, b delegation.Role) int { return strings.Compare(a.Name, b.Name) })
	out := listView[roleView]{Items: []roleView{}}
	for _, role := range all {
		out.Items = append(out.Items, viewRole(role))
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) getRole(w http.ResponseWriter, r *http.Request) {
	role, err := s.role(r.Context(), r.PathValue("role"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	written(w, http.StatusOK, "", role.Version, viewRole(role))
}

// respondRole submits a role op and answers with the role afterwards.
func (s *Server) respondRole(w http.ResponseWriter, r *http.Request, op change.Op, status int) {
	res, ok := s.submit(w, r, op)
	if !ok {
		return
	}
	if op.Action == delegation.RoleDelete {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	role, err := s.role(r.Context(), res.Target.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	location := ""
	if status == http.StatusCreated {
		location = "/api/v1/roles/" + role.Name
	}
	written(w, status, location, role.Version, viewRole(role))
}

func (s *Server) createRole(w http.ResponseWriter, r *http.Request) {
	var in delegation.RoleInput
	if err := httpx.Decode(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	s.respondRole(w, r, change.Op{Action: delegation.RoleCreate, Role: &in}, http.StatusCreated)
}

func roleTarget(r *http.Request) directory.Ref {
	name := strings.ToLower(r.PathValue("role"))
	return directory.Ref{Kind: directory.KindRole, ID: name, Name: name}
}

func (s *Server) updateRole(w http.ResponseWriter, r *http.Request) {
	var patch directory.Patch
	if err := httpx.Decode(w, r, &patch); err != nil {
		s.fail(w, r, err)
		return
	}
	if len(patch) == 0 {
		s.fail(w, r, directory.Invalid("body", "the patch changes nothing"))
		return
	}
	s.respondRole(w, r, change.Op{Action: delegation.RoleUpdate, Target: roleTarget(r), Patch: patch}, http.StatusOK)
}

func (s *Server) deleteRole(w http.ResponseWriter, r *http.Request) {
	s.respondRole(w, r, change.Op{Action: delegation.RoleDelete, Target: roleTarget(r)}, http.StatusNoContent)
}

// scopeView renders a scope as a client writes it, with current names.
type scopeView struct {
	OU       string   `json:"ou,omitempty"`
	Subtree  *bool    `json:"subtree,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	Filter   string   `json:"filter,omitempty"`
	Relation string   `json:"relation,omitempty"`
}

type excludeView struct {
	OUs    []string `json:"ous,omitempty"`
	Groups []string `json:"groups,omitempty"`
}

type assignmentView struct {
	ID            string       `json:"id"`
	Role          string       `json:"role"`
	Holder        refView      `json:"holder"`
	Scope         scopeView    `json:"scope"`
	Exclude       *excludeView `json:"exclude,omitempty"`
	Description   string       `json:"description"`
	From          *time.Time   `json:"from"`
	Until         *time.Time   `json:"until"`
	CanRedelegate bool         `json:"can_redelegate"`
	Eligible      bool         `json:"eligible"`
	MaxActivation string       `json:"max_activation,omitempty"`
	ActiveUntil   *time.Time   `json:"active_until"`
	Active        bool         `json:"active"`
	GrantedBy     refView      `json:"granted_by"`
	Justification string       `json:"justification"`
	Source        string       `json:"source,omitempty"`
	Created       time.Time    `json:"created"`
	Version       int64        `json:"version"`
}

type refView struct {
	Type directory.Kind `json:"type"`
	ID   string         `json:"id"`
	Name string         `json:"name"`
}

func viewRef(r directory.Ref) refView { return refView{Type: r.Kind, ID: r.ID, Name: r.Name} }

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// viewAssignment renders an assignment, naming its OUs and groups as they are called now.
func (s *Server) viewAssignment(ctx context.Context, a delegation.Assignment) assignmentView {
	ouName := func(id string) string {
		if o, err := s.dir.OU(ctx, directory.Ref{Kind: directory.KindOU, ID: id}); err == nil {
			return o.DisplayPath()
		}
		return a.Scope.Names[id]
	}
	groupName := func(id string) string {
		if g, err := s.dir.ResolveMember(ctx, directory.Ref{Kind: directory.KindGroup, ID: id}); err == nil {
			return g.Name
		}
		return a.Scope.Names[id]
	}
	sc := a.Scope
	v := assignmentView{ID: a.ID, Role: a.Role, Holder: viewRef(a.Holder), Description: sc.Describe(),
		From: timePtr(a.From), Until: timePtr(a.Until), CanRedelegate: a.CanRedelegate, Eligible: a.Eligible,
		ActiveUntil: timePtr(a.ActiveUntil), Active: a.Active(time.Now()), GrantedBy: viewRef(a.GrantedBy),
		Justification: a.Justification, Source: a.Source, Created: a.Created, Version: a.Version,
		Scope: scopeView{Filter: sc.Filter, Relation: string(sc.Relation)}}
	if a.MaxActivation > 0 {
		v.MaxActivation = (time.Duration(a.MaxActivation) * time.Second).String()
	}
	if sc.OU != "" {
		sub := sc.Subtree
		v.Scope.OU, v.Scope.Subtree = ouName(sc.OU), &sub
	}
	for _, g := range sc.Groups {
		v.Scope.Groups = append(v.Scope.Groups, groupName(g))
	}
	if len(sc.ExcludeOUs)+len(sc.ExcludeGroups) > 0 {
		v.Exclude = &excludeView{}
		for _, o := range sc.ExcludeOUs {
			v.Exclude.OUs = append(v.Exclude.OUs, ouName(o))
		}
		for _, g := range sc.ExcludeGroups {
			v.Exclude.Groups = append(v.Exclude.Groups, groupName(g))
		}
	}
	return v
}

// mayReadDelegation reports whether the caller may read the whole delegation configuration (an
// auditor or tier-0 admin); everyone may read their own assignments.
func (s *Server) mayReadDelegation(r *http.Request) bool {
	return s.authz.Decide(r.Context(), &delegation.Question{Actor: actor(r), Action: delegation.AuditRead}).Allow
}

func (s *Server) listAssignments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	holder, me := q.Get("holder"), actor(r)
	var holders []string // without an audit right: the caller and the groups they are in
	switch {
	case !s.mayReadDelegation(r):
		// Without an audit right, only one's own; whether another holder exists is not told.
		if holder != "" && holder != me.ID && !strings.EqualFold(strings.TrimPrefix(holder, "user:"), me.Name) {
			s.allowed(w, r, delegation.AuditRead, directory.Ref{}, nil)
			return
		}
		ms, err := s.dir.Memberships(r.Context(), directory.Ref{Kind: directory.KindUser, ID: me.ID})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		holders = []string{me.ID}
		for _, m := range ms {
			holders = append(holders, m.Group.ID)
		}
	case strings.HasPrefix(strings.ToLower(holder), "system:"):
		holder = strings.ToLower(holder) // a system actor holds assignments under its own name
	case holder != "" && !directory.IsID(holder):
		ref, err := directory.ParseMemberRef(holder)
		if err == nil {
			ref, err = s.dir.ResolveMember(r.Context(), ref)
		}
		if err != nil {
			s.fail(w, r, fieldError("holder", err))
			return
		}
		holder = ref.ID
	}
	limit := directory.DefaultLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > directory.MaxLimit {
			s.fail(w, r, directory.Invalid("limit", "must be a number from 1 to %d", directory.MaxLimit))
			return
		}
		limit = n
	}
	role := strings.ToLower(q.Get("role"))
	var (
		page []delegation.Assignment
		err  error
	)
	if holders == nil {
		page, err = s.deleg.Assignments(r.Context(), role, holder, q.Get("cursor"), limit+1)
	} else {
		page, err = s.heldBy(r.Context(), role, holders, q.Get("cursor"), limit+1)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := listView[assignmentView]{Items: []assignmentView{}}
	if len(page) > limit {
		page = page[:limit]
		out.NextCursor = page[limit-1].ID
	}
	for _, a := range page {
		out.Items = append(out.Items, s.viewAssignment(r.Context(), a))
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// heldBy lists, in ID order after the cursor, up to limit assignments of role ("" for any) held
// by any of holders.
func (s *Server) heldBy(ctx context.Context, role string, holders []string, after string, limit int) ([]delegation.Assignment, error) {
	var all []delegation.Assignment
	for _, h := range holders {
		page, err := s.deleg.Assignments(ctx, role, h, after, limit)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
	}
	slices.SortFunc(all, func(a, b delegation.Assignment) int { return strings.Compare(a.ID, b.ID) })
	if len(all) > limit {
		all = all[:limit]
	}
	return all, nil
}

func (s *Server) getAssignment(w http.ResponseWriter, r *http.Request) {
	a, err := s.deleg.Assignment(r.Context(), strings.ToLower(r.PathValue("id")))
	if err != nil && !errors.Is(err, directory.ErrNotFound) {
		s.fail(w, r, err)
		return
	}
	mine := err == nil && s.concerns(r.Context(), actor(r), a)
	if !mine && !s.mayReadDelegation(r) {
		s.allowed(w, r, delegation.AuditRead, directory.Ref{}, nil)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	written(w, http.StatusOK, "", a.Version, s.viewAssignment(r.Context(), a))
}

// concerns reports whether an assignment is the caller's business without an audit right: they
// hold it (directly or through a group they are in), or they granted it (and may revoke it).
func (s *Server) concerns(ctx context.Context, me delegation.Actor, a delegation.Assignment) bool {
	if a.Holder.ID == me.ID || a.GrantedBy.ID == me.ID {
		return true
	}
	if a.Holder.Kind != directory.KindGroup {
		return false
	}
	ms, err := s.dir.Memberships(ctx, directory.Ref{Kind: directory.KindUser, ID: me.ID})
	return err == nil && slices.ContainsFunc(ms, func(m directory.Membership) bool { return m.Group.ID == a.Holder.ID })
}

func assignmentTarget(r *http.Request) directory.Ref {
	id := strings.ToLower(r.PathValue("id"))
	return directory.Ref{Kind: directory.KindAssignment, ID: id, Name: id}
}

func (s *Server) createAssignment(w http.ResponseWriter, r *http.Request) {
	var in delegation.AssignmentInput
	if err := httpx.Decode(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if dry := r.URL.Query().Get("dry_run"); dry == "true" || dry == "1" {
		s.previewAssignment(w, r, in)
		return
	}
	res, ok := s.submit(w, r, change.Op{Action: delegation.RoleAssign, Assignment: &in})
	if !ok {
		return
	}
	a, err := s.deleg.Assignment(r.Context(), res.Target.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	written(w, http.StatusCreated, "/api/v1/assignments/"+a.ID, a.Version, s.viewAssignment(r.Context(), a))
}

func (s *Server) deleteAssignment(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.submit(w, r, change.Op{Action: delegation.RoleRevoke, Target: assignmentTarget(r)}); ok {
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) activateAssignment(w http.ResponseWriter, r *http.Request) {
	var in delegation.ActivationInput
	if err := httpx.Decode(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if !s.steppedUp(w, r) { // activating rights asks for a fresh second factor
		return
	}
	res, ok := s.submit(w, r, change.Op{Action: delegation.RoleActivate, Target: assignmentTarget(r), Activation: &in})
	if !ok {
		return
	}
	a, err := s.deleg.Assignment(r.Context(), res.Target.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	written(w, http.StatusOK, "", a.Version, s.viewAssignment(r.Context(), a))
}
