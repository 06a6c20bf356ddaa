package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
	"github.com/deputy-iam/deputy/internal/httpx"
)

// kindParam reads a target type as the API writes it.
func kindParam(s string) (directory.Kind, error) {
	switch strings.ToLower(s) {
	case "":
		return "", nil
	case "user", "users":
		return directory.KindUser, nil
	case "group", "groups":
		return directory.KindGroup, nil
	case "sa", "service_account", "service-account", "service_accounts":
		return directory.KindServiceAccount, nil
	case "ou", "ous":
		return directory.KindOU, nil
	}
	return "", directory.Invalid("type", "must be user, group, service_account or ou")
}

// object reads a directory object's reference and attributes.
func (s *Server) object(ctx context.Context, ref directory.Ref) (directory.Ref, map[string]any, error) {
	switch ref.Kind {
	case directory.KindUser, directory.KindGroup, directory.KindServiceAccount, directory.KindOU:
		obj, err := delegation.ReadObject(ctx, s.dir, ref)
		return obj.Ref, obj.Fields, err
	}
	r, err := s.dir.ResolveMember(ctx, ref)
	if err != nil {
		return r, nil, err
	}
	return s.object(ctx, r)
}

// subjectActor resolves the actor a question is about: the caller when key is empty or names
// them; anyone else only for a caller who may read the delegation configuration (an auditor).
func (s *Server) subjectActor(w http.ResponseWriter, r *http.Request, key string) (delegation.Actor, bool) {
	me := actor(r)
	if key == "" || key == me.ID || strings.EqualFold(key, me.Name) {
		return me, true
	}
	if !s.allowed(w, r, delegation.AuditRead, directory.Ref{}, nil) {
		return delegation.Actor{}, false
	}
	u, err := s.dir.ResolveMember(r.Context(), directory.ParseRef(directory.KindUser, key))
	if err != nil {
		s.fail(w, r, fieldError("actor", err))
		return delegation.Actor{}, false
	}
	return delegation.Actor{Kind: delegation.ActorUser, ID: u.ID, Name: u.Name}, true
}

// fieldError turns a lookup that found nothing into an error about a query parameter.
func fieldError(field string, err error) error {
	if errors.Is(err, directory.ErrNotFound) {
		return directory.Invalid(field, "%v", err)
	}
	return err
}

// question builds the question an authz query asks: action on target (by key and type), with
// optional attribute and member. A create action's target is the OU the object would be
// created in.
func (s *Server) question(ctx context.Context, a delegation.Actor, action delegation.Action, target, typ, attr,
	member string) (*delegation.Question, error) {
	if !action.Known() {
		return nil, directory.Invalid("action", "unknown action %q", action)
	}
	kind, err := kindParam(typ)
	if err != nil {
		return nil, err
	}
	q := &delegation.Question{Actor: a, Action: action}
	if attr != "" {
		q.Touched = []string{attr}
	}
	objKind, _ := action.Kind()
	switch {
	case action == delegation.AuditRead, objKind == directory.KindRole:
		return q, nil // about the whole configuration: no target
	case action == delegation.RoleAssign:
		return nil, directory.Invalid("action", "ask whether you may grant an assignment with POST /api/v1/assignments?dry_run=true")
	}
	if target == "" {
		return nil, directory.Invalid("target", "is required")
	}
	switch action {
	case delegation.RoleRevoke, delegation.RoleActivate:
		as, err := s.deleg.Assignment(ctx, strings.ToLower(target))
		if err != nil {
			return nil, fieldError("target", err)
		}
		q.Target, q.Before, q.After = as.Ref(), as.Fields(), as.Fields()
		return q, nil
	case delegation.UserCreate, delegation.GroupCreate, delegation.SACreate, delegation.OUCreate:
		ou, err := s.dir.OU(ctx, directory.ParseRef(directory.KindOU, target))
		if err != nil {
			return nil, fieldError("target", err)
		}
		key := "ou"
		if action == delegation.OUCreate {
			key = "parent"
		}
		// The object does not exist yet: it is named by where it would be created.
		q.Target = directory.Ref{Kind: objKind, Name: "in " + ou.DisplayPath()}
		q.After = map[string]any{key: map[string]string{"id": ou.ID, "name": ou.DisplayPath()}}
		return q, nil
	}
	if kind == "" {
		kind = objKind
	}
	ref, fields, err := s.object(ctx, directory.ParseRef(kind, target))
	if err != nil {
		return nil, fieldError("target", err)
	}
	q.Target, q.Before, q.After = ref, fields, fields
	if member != "" {
		mref, mfields, err := s.object(ctx, directory.ParseRef("", member))
		if err != nil {
			return nil, fieldError("member", err)
		}
		q.Member = &delegation.Object{Ref: mref, Fields: mfields}
	}
	return q, nil
}

// decisionView is a decision as the authz queries answer it. Target is absent for a question
// about the whole configuration (audit.read, role.create); for a create action, whose object
// does not exist yet, OU names where it would be created instead.
type decisionView struct {
	Actor     refView         `json:"actor"`
	Action    string          `json:"action"`
	Target    *refView        `json:"target,omitempty"`
	OU        *refView        `json:"ou,omitempty"`
	Allow     bool            `json:"allow"`
	Authority audit.Authority `json:"authority"`
	Reason    string          `json:"reason,omitempty"`
	Message   string          `json:"message,omitempty"`
	// VerificationRequired, in who-can, marks someone whose role lets them reset the password
	// only after the user's identity is verified (verify_identity).
	VerificationRequired bool `json:"verification_required,omitempty"`
}

func viewDecision(q *delegation.Question, d delegation.Decision) decisionView {
	v := decisionView{Actor: refView{Type: directory.KindUser, ID: q.Actor.ID, Name: q.Actor.Name}, Action: string(q.Action),
		Allow: d.Allow, Authority: d.Authority, Reason: d.Reason, Message: d.Message}
	switch {
	case q.Target.ID != "":
		t := viewRef(q.Target)
		v.Target = &t
	case q.Target.Kind != "":
		for _, key := range []string{"ou", "parent"} {
			if ou, ok := q.After[key].(map[string]string); ok {
				v.OU = &refView{Type: directory.KindOU, ID: ou["id"], Name: ou["name"]}
			}
		}
	}
	return v
}

// check answers GET /api/v1/authz/check: may actor perform action on target?
func (s *Server) check(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	a, ok := s.subjectActor(w, r, v.Get("actor"))
	if !ok {
		return
	}
	q, err := s.question(r.Context(), a, delegation.Action(v.Get("action")), v.Get("target"), v.Get("type"),
		v.Get("attribute"), v.Get("member"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.pipeline.Ask(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, viewDecision(q, d))
}

// mayAudit writes a 403 (recorded) unless the caller may read the whole delegation
// configuration.
func (s *Server) mayAudit(w http.ResponseWriter, r *http.Request) bool {
	return s.allowed(w, r, delegation.AuditRead, directory.Ref{}, nil)
}

// whoCan answers GET /api/v1/authz/who-can: every active user who may perform action on target,
// with the authority behind each, in ID order and paginated.
func (s *Server) whoCan(w http.ResponseWriter, r *http.Request) {
	if !s.mayAudit(w, r) {
		return
	}
	v := r.URL.Query()
	action := delegation.Action(v.Get("action"))
	if k, _ := action.Kind(); k == directory.KindAssignment {
		// Granting, revoking and activating are judged per assignment (its granter, its
		// holder), not by who holds the action: ask check, or POST with dry_run, instead.
		s.fail(w, r, directory.Invalid("action", "who-can does not answer %s; ask GET /api/v1/authz/check about one assignment", action))
		return
	}
	q, err := s.question(r.Context(), delegation.Actor{}, action, v.Get("target"), v.Get("type"), v.Get("attribute"), v.Get("member"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	limit, err := limitParam(v.Get("limit"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cursor := v.Get("cursor")
	out := listView[decisionView]{Items: []decisionView{}}
	if err := s.pipeline.CatchUp(r.Context()); err != nil {
		s.fail(w, r, err)
		return
	}
	fields := q.Before
	if fields == nil {
		fields = q.After // a create: the OU it would be made in
	}
	candidates := s.authz.CandidatesFor(action, q.Target, fields)
	if q.Target.Kind == directory.KindUser && (action == delegation.DirectoryRead || action == delegation.UserIssueToken) &&
		!slices.Contains(candidates, q.Target.ID) {
		// What every user may do to themselves needs no assignment.
		candidates = append(candidates, q.Target.ID)
		slices.Sort(candidates)
	}
	for _, id := range candidates {
		if id <= cursor {
			continue
		}
		u, err := s.dir.ResolveMember(r.Context(), directory.Ref{Kind: directory.KindUser, ID: id})
		if err != nil {
			continue // deleted since
		}
		q.Actor = delegation.Actor{Kind: delegation.ActorUser, ID: u.ID, Name: u.Name}
		d := s.authz.Decide(r.Context(), q)
		verify := false
		if !d.Allow && d.Reason == delegation.ReasonVerification {
			// Their role asks for the user's identity first: they can, after that check.
			vq := *q
			vq.Verified = true
			if vd := s.authz.Decide(r.Context(), &vq); vd.Allow {
				d, verify = vd, true
			}
		}
		if !d.Allow {
			continue
		}
		if len(out.Items) == limit {
			out.NextCursor = out.Items[limit-1].Actor.ID
			break
		}
		view := viewDecision(q, d)
		view.VerificationRequired = verify
		out.Items = append(out.Items, view)
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func limitParam(s string) (int, error) {
	if s == "" {
		return directory.DefaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > directory.MaxLimit {
		return 0, directory.Invalid("limit", "must be a number from 1 to %d", directory.MaxLimit)
	}
	return n, nil
}

// canWhatItem is one object an actor may act on, with the actions allowed on it.
type canWhatItem struct {
	Object  refView  `json:"object"`
	Actions []string `json:"actions"`
}

// kindActions are the actions can-what considers for objects of a kind (an OU's include the
// creation of objects inside it).
var kindActions = func() map[directory.Kind][]delegation.Action {
	m := map[directory.Kind][]delegation.Action{}
	for _, a := range delegation.AllActions() {
		k, ok := a.Kind()
		switch {
		case a == delegation.DirectoryRead:
			for _, kind := range []directory.Kind{directory.KindOU, directory.KindUser, directory.KindGroup, directory.KindServiceAccount} {
				m[kind] = append(m[kind], a)
			}
		case a == delegation.UserCreate || a == delegation.GroupCreate || a == delegation.SACreate || a == delegation.OUCreate:
			m[directory.KindOU] = append(m[directory.KindOU], a)
		case ok:
			m[k] = append(m[k], a)
		default:
			if k := reservedKind(a); k != "" {
				m[k] = append(m[k], a)
			}
		}
	}
	return m
}()

func reservedKind(a delegation.Action) directory.Kind {
	switch a {
	case delegation.UserResetPassword, delegation.UserUnlock:
		return directory.KindUser
	case delegation.GroupSetOwner:
		return directory.KindGroup
	case delegation.SASetOwner, delegation.SAIssueKey, delegation.SARevokeKey:
		return directory.KindServiceAccount
	}
	return ""
}

// canWhat answers GET /api/v1/authz/can-what: the objects of a type an actor may act on, with
// the actions, paginated; with stream=true, every page as newline-delimited JSON.
func (s *Server) canWhat(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	a, ok := s.subjectActor(w, r, v.Get("actor"))
	if !ok {
		return
	}
	kind, err := kindParam(v.Get("type"))
	if err == nil && kind == "" {
		kind = directory.KindUser
	}
	limit, lerr := limitParam(v.Get("limit"))
	if err = errors.Join(err, lerr); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.pipeline.CatchUp(r.Context()); err != nil {
		s.fail(w, r, err)
		return
	}
	all, expr := s.authz.Reach(a, kind, "")
	if !all && kind == directory.KindUser {
		// Every user may read their own record and issue their own tokens (self-service).
		self := &filter.Related{Attr: "id", ID: a.ID}
		if expr == nil {
			expr = self
		} else {
			expr = &filter.Or{Left: expr, Right: self}
		}
	}
	stream := v.Get("stream") == "true"
	if stream && v.Get("cursor") != "" {
		s.fail(w, r, directory.Invalid("cursor", "is for pages: a stream returns every object"))
		return
	}
	q := directory.ListQuery{Cursor: v.Get("cursor"), Limit: limit, Filter: expr}
	if !all && expr == nil {
		q.Filter = &filter.Nothing{}
	}
	k := s.kinds()[kind]
	if !stream {
		objs, next, err := s.objectsPage(r.Context(), kind, q)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, listView[canWhatItem]{Items: s.judge(r.Context(), a, k, objs), NextCursor: next})
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	// Objects are read while the previous batch is judged and written: on two cores, the
	// stream takes about as long as the slower of the two rather than their sum.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	type page struct {
		objs []delegation.Object
		err  error
	}
	pages := make(chan page, 1)
	// A scope that only tests where users sit needs none of their attributes: read the facts.
	lean := kind == directory.KindUser && filter.OnlyStructural(q.Filter)
	if v.Get("limit") == "" {
		q.Limit = directory.StreamLimit
	}
	go func() {
		defer close(pages)
		err := s.eachBatch(ctx, kind, q, lean, func(objs []delegation.Object) error {
			select {
			case pages <- page{objs: objs}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil {
			select {
			case pages <- page{err: err}:
			case <-ctx.Done(): // the writer has gone
			}
		}
	}()
	enc := json.NewEncoder(w)
	for p := range pages {
		if p.err != nil {
			s.log.ErrorContext(ctx, "can-what stream", "err", p.err)
			return
		}
		for _, it := range s.judge(ctx, a, k, p.objs) {
			if err := enc.Encode(it); err != nil {
				return
			}
		}
	}
}

// ouOwnActions and ouCreateActions split an OU's actions into those on the OU itself and the
// creation of objects inside it.
var ouOwnActions, ouCreateActions = func() (own, create []delegation.Action) {
	for _, a := range kindActions[directory.KindOU] {
		switch a {
		case delegation.UserCreate, delegation.GroupCreate, delegation.SACreate, delegation.OUCreate:
			create = append(create, a)
		default:
			own = append(own, a)
		}
	}
	return own, create
}()

// eachBatch reads every object of kind that q selects, in batches of q.Limit, for a stream:
// users under a structural scope as lean facts in no particular order (the cheapest read there
// is), anything else page by page in name order.
func (s *Server) eachBatch(ctx context.Context, kind directory.Kind, q directory.ListQuery, lean bool,
	send func([]delegation.Object) error) error {
	if lean {
		batch := make([]delegation.Object, 0, q.Limit)
		err := s.dir.EachUserFact(ctx, q.Filter, func(u directory.User) error {
			batch = append(batch, delegation.Object{Ref: u.Ref(), Fields: u.FactFields()})
			if len(batch) < q.Limit {
				return nil
			}
			full := batch
			batch = make([]delegation.Object, 0, q.Limit)
			return send(full)
		})
		if err != nil || len(batch) == 0 {
			return err
		}
		return send(batch)
	}
	for {
		objs, next, err := s.objectsPage(ctx, kind, q)
		if err != nil {
			return err
		}
		if err := send(objs); err != nil {
			return err
		}
		if next == "" {
			return nil
		}
		q.Cursor = next
	}
}

// judge keeps the objects on which the actor may take an action, with those actions.
func (s *Server) judge(ctx context.Context, a delegation.Actor, k *kindAPI, objs []delegation.Object) []canWhatItem {
	items := make([]canWhatItem, 0, len(objs))
	onObject, inOU := kindActions[k.kind], []delegation.Action(nil)
	if k.kind == directory.KindOU {
		onObject, inOU = ouOwnActions, ouCreateActions
	}
	for _, o := range objs {
		item := canWhatItem{Object: viewRef(o.Ref)}
		for _, action := range s.authz.Allowed(ctx, a, o, onObject) {
			item.Actions = append(item.Actions, string(action))
		}
		// Creating an object in an OU is asked of the new object, placed in the OU.
		for _, action := range inOU {
			created, _ := action.Kind()
			key := "ou"
			if action == delegation.OUCreate {
				key = "parent"
			}
			q := &delegation.Question{Actor: a, Action: action, Target: directory.Ref{Kind: created},
				After: map[string]any{key: map[string]string{"id": o.Ref.ID, "name": o.Ref.Name}}}
			if s.authz.Decide(ctx, q).Allow {
				item.Actions = append(item.Actions, string(action))
			}
		}
		if len(item.Actions) > 0 {
			items = append(items, item)
		}
	}
	return items
}

// objectsPage lists a page of objects of kind with their attributes.
func (s *Server) objectsPage(ctx context.Context, kind directory.Kind, q directory.ListQuery) ([]delegation.Object, string, error) {
	var out []delegation.Object
	switch kind {
	case directory.KindUser:
		p, err := s.dir.ListUsers(ctx, q)
		for _, u := range p.Items {
			out = append(out, delegation.Object{Ref: u.Ref(), Fields: u.Fields()})
		}
		return out, p.Next, err
	case directory.KindGroup:
		p, err := s.dir.ListGroups(ctx, q)
		for _, g := range p.Items {
			out = append(out, delegation.Object{Ref: g.Ref(), Fields: g.Fields()})
		}
		return out, p.Next, err
	case directory.KindServiceAccount:
		p, err := s.dir.ListServiceAccounts(ctx, q)
		for _, sa := range p.Items {
			out = append(out, delegation.Object{Ref: sa.Ref(), Fields: sa.Fields()})
		}
		return out, p.Next, err
	}
	p, err := s.dir.ListOUs(ctx, q)
	for _, o := range p.Items {
		out = append(out, delegation.Object{Ref: o.Ref(), Fields: o.Fields()})
	}
	return out, p.Next, err
}

// escalations answers GET /api/v1/authz/escalations.
func (s *Server) escalations(w http.ResponseWriter, r *http.Request) {
	if !s.mayAudit(w, r) {
		return
	}
	if err := s.pipeline.CatchUp(r.Context()); err != nil {
		s.fail(w, r, err)
		return
	}
	type item struct {
		Via         assignmentView `json:"via"`
		Attribute   string         `json:"attribute"`
		Gains       assignmentView `json:"gains"`
		Explanation string         `json:"explanation"`
	}
	out := listView[item]{Items: []item{}}
	for _, e := range s.authz.Escalations() {
		out.Items = append(out.Items, item{Via: s.viewStored(r.Context(), e.Via), Attribute: e.Attribute,
			Gains: s.viewStored(r.Context(), e.Gains), Explanation: e.Explanation})
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// viewStored renders an assignment the engine reports as the database holds it now (the
// engine's copy may lag in bookkeeping such as the version), or as reported when it is gone.
func (s *Server) viewStored(ctx context.Context, a delegation.Assignment) assignmentView {
	if cur, err := s.deleg.Assignment(ctx, a.ID); err == nil {
		a = cur
	}
	return s.viewAssignment(ctx, a)
}

// unlockView is what a kind of object an assignment would unlock: how many and a sample.
type unlockView struct {
	Count  int      `json:"count"`
	Sample []string `json:"sample"`
}

// previewAssignment answers POST /api/v1/assignments?dry_run=true: whether the caller may grant
// it, and what it would unlock, without granting anything. What it unlocks is counted among the
// objects the caller may read, so that a preview shows nobody more of the directory than a list
// would.
func (s *Server) previewAssignment(w http.ResponseWriter, r *http.Request, in delegation.AssignmentInput) {
	d, q, err := s.pipeline.Preview(r.Context(), actor(r), change.Op{Action: delegation.RoleAssign, Assignment: &in})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var a delegation.Assignment
	if m, ok := q.After["assignment"].(delegation.Assignment); ok {
		a = m
	}
	role, err := s.role(r.Context(), a.Role)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	unlocks := map[string]unlockView{}
	for name, kind := range map[string]directory.Kind{"users": directory.KindUser, "groups": directory.KindGroup,
		"service_accounts": directory.KindServiceAccount, "ous": directory.KindOU} {
		expr := delegation.ScopeExpr(&a, kind)
		switch all, vis := s.authz.Visibility(actor(r), kind); {
		case all:
		case vis == nil:
			expr = &filter.Nothing{}
		default:
			expr = &filter.And{Left: expr, Right: vis}
		}
		n, err := s.dir.Count(r.Context(), kind, directory.ListQuery{Filter: expr})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		objs, _, err := s.objectsPage(r.Context(), kind, directory.ListQuery{Filter: expr, Limit: 10})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		u := unlockView{Count: n, Sample: []string{}}
		for _, o := range objs {
			u.Sample = append(u.Sample, o.Ref.Name)
		}
		unlocks[name] = u
	}
	actions := make([]string, 0, len(role.Actions))
	for _, act := range role.Actions {
		actions = append(actions, string(act))
	}
	slices.Sort(actions)
	httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"dry_run": true, "allowed": d.Allow, "decision": viewDecision(q, d), "assignment": s.viewAssignment(r.Context(), a),
		"actions": actions, "unlocks": unlocks,
	})
}
