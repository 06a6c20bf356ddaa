// Package api serves Deputy's REST API v1. Handlers decode a request, submit an op to the change
// pipeline (writes) or ask the authorizer and read through the directory and audit readers
// (reads), and render JSON. api/openapi.yaml is the contract.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/authn"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
	"github.com/deputy-iam/deputy/internal/httpx"
)

// Authz is what the API asks the delegation engine beyond single decisions.
type Authz interface {
	Decide(ctx context.Context, q *delegation.Question) delegation.Decision
	Allowed(ctx context.Context, actor delegation.Actor, obj delegation.Object, actions []delegation.Action) []delegation.Action
	Visibility(actor delegation.Actor, kind directory.Kind) (all bool, expr filter.Expr)
	Reach(actor delegation.Actor, kind directory.Kind, action delegation.Action) (all bool, expr filter.Expr)
	Grants(principal string) []delegation.Grant
	CandidatesFor(action delegation.Action, target directory.Ref, fields map[string]any) []string
	Escalations() []delegation.Escalation
}

// Server holds the handlers' dependencies.
type Server struct {
	pipeline *change.Pipeline
	authz    Authz
	dir      directory.Reader
	deleg    delegation.Reader
	audit    audit.Reader
	evidence Evidence
	requests Requests
	creds    Credentials
	stepUp   StepUp
	portal   string // the portal's external address, for reset links ("" leaves the path)
	hr       HR
	keys     Keys
	log      *slog.Logger
}

// New returns the API server.
func New(pipeline *change.Pipeline, authz Authz, dir directory.Reader, deleg delegation.Reader, auditReader audit.Reader,
	log *slog.Logger) *Server {
	return &Server{pipeline: pipeline, authz: authz, dir: dir, deleg: deleg, audit: auditReader, log: log}
}

// Register adds the API's routes to mux, each behind auth.
func (s *Server) Register(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	route := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, auth(h)) }

	k := s.kinds()
	ou, user, group, sa := k[directory.KindOU], k[directory.KindUser], k[directory.KindGroup], k[directory.KindServiceAccount]

	route("GET /api/v1/me", s.me)

	route("GET /api/v1/ous", s.list(ou))
	route("POST /api/v1/ous", s.create(ou, delegation.OUCreate, func(op *change.Op) any {
		op.OU = &directory.OUInput{}
		return op.OU
	}))
	route("GET /api/v1/ous/{ou}", s.get(ou))
	route("PATCH /api/v1/ous/{ou}", s.update(ou))
	route("DELETE /api/v1/ous/{ou}", s.del(ou))
	route("POST /api/v1/ous/{ou}/move", s.move(ou))

	route("GET /api/v1/users", s.list(user))
	route("POST /api/v1/users", s.create(user, delegation.UserCreate, func(op *change.Op) any {
		op.User = &directory.UserInput{}
		return op.User
	}))
	route("GET /api/v1/users/{user}", s.get(user))
	route("PATCH /api/v1/users/{user}", s.update(user))
	route("DELETE /api/v1/users/{user}", s.del(user))
	route("POST /api/v1/users/{user}/disable", s.simple(user, delegation.UserDisable))
	route("POST /api/v1/users/{user}/enable", s.simple(user, delegation.UserEnable))
	route("POST /api/v1/users/{user}/move", s.move(user))
	route("POST /api/v1/users/{user}/tokens", s.issueToken(user))

	route("GET /api/v1/groups", s.list(group))
	route("POST /api/v1/groups", s.create(group, delegation.GroupCreate, func(op *change.Op) any {
		op.Group = &directory.GroupInput{}
		return op.Group
	}))
	route("GET /api/v1/groups/{group}", s.get(group))
	route("PATCH /api/v1/groups/{group}", s.update(group))
	route("DELETE /api/v1/groups/{group}", s.del(group))
	route("POST /api/v1/groups/{group}/move", s.move(group))
	route("GET /api/v1/groups/{group}/members", s.listMembers(group))
	route("POST /api/v1/groups/{group}/members", s.addMember(group))
	route("DELETE /api/v1/groups/{group}/members/{member}", s.removeMember(group))

	route("GET /api/v1/service-accounts", s.list(sa))
	route("POST /api/v1/service-accounts", s.create(sa, delegation.SACreate, func(op *change.Op) any {
		op.Service = &directory.ServiceAccountInput{}
		return op.Service
	}))
	route("GET /api/v1/service-accounts/{sa}", s.get(sa))
	route("PATCH /api/v1/service-accounts/{sa}", s.update(sa))
	route("DELETE /api/v1/service-accounts/{sa}", s.del(sa))
	route("POST /api/v1/service-accounts/{sa}/move", s.move(sa))
	route("GET /api/v1/service-accounts/{sa}/keys", s.listKeys(sa))
	route("POST /api/v1/service-accounts/{sa}/keys", s.issueKey(sa))
	route("DELETE /api/v1/service-accounts/{sa}/keys/{id}", s.revokeKey(sa))

	route("GET /api/v1/roles", s.listRoles)
	route("POST /api/v1/roles", s.createRole)
	route("GET /api/v1/roles/{role}", s.getRole)
	route("PATCH /api/v1/roles/{role}", s.updateRole)
	route("DELETE /api/v1/roles/{role}", s.deleteRole)

	route("GET /api/v1/assignments", s.listAssignments)
	route("POST /api/v1/assignments", s.createAssignment)
	route("GET /api/v1/assignments/{id}", s.getAssignment)
	route("DELETE /api/v1/assignments/{id}", s.deleteAssignment)
	route("POST /api/v1/assignments/{id}/activate", s.activateAssignment)

	route("GET /api/v1/authz/check", s.check)
	route("GET /api/v1/authz/who-can", s.whoCan)
	route("GET /api/v1/authz/can-what", s.canWhat)
	route("GET /api/v1/authz/escalations", s.escalations)

	route("GET /api/v1/audit/events", s.listEvents)
	route("GET /api/v1/audit/events/{index}", s.getEvent)
	route("POST /api/v1/audit/events/{index}/revert", s.revertEvent)
	route("GET /api/v1/audit/export", s.exportEvents)
	route("GET /api/v1/audit/checkpoint", s.getCheckpoint)
	route("POST /api/v1/audit/checkpoint", s.signCheckpoint)
	route("GET /api/v1/audit/proof/inclusion", s.proveInclusion)
	route("GET /api/v1/audit/proof/consistency", s.proveConsistency)

	route("GET /api/v1/reports/keys", s.keyReport)
	route("GET /api/v1/reports/orphaned-service-accounts", s.orphanedReport)

	s.registerRequests(route)
	s.registerCredentials(route)
	s.registerHR(route)
}

// fail writes err as a problem.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpx.WriteError(w, r, s.log, err)
}

// actor is the authenticated caller (the auth middleware guarantees one).
func actor(r *http.Request) delegation.Actor {
	a, _ := authn.ActorFrom(r.Context())
	return a
}

// meta describes how a request arrived, for the audit record. The CLI identifies itself by its
// User-Agent.
func meta(r *http.Request) change.Meta {
	ua := r.UserAgent()
	transport := audit.TransportAPI
	if strings.HasPrefix(ua, "deputy-cli/") {
		transport = audit.TransportCLI
	}
	if len(ua) > 256 {
		ua = ua[:256]
	}
	return change.Meta{Transport: transport, ClientAddr: httpx.ClientAddr(r), UserAgent: ua}
}

// submit runs op through the pipeline for the caller, adding the request's If-Match and
// justification. On failure it writes the problem and returns false.
func (s *Server) submit(w http.ResponseWriter, r *http.Request, op change.Op) (change.Result, bool) {
	v, err := httpx.IfMatch(r)
	if err != nil {
		s.fail(w, r, err)
		return change.Result{}, false
	}
	op.IfVersion = v
	op.Justification = strings.TrimSpace(r.Header.Get("Deputy-Justification"))
	res, err := s.pipeline.Submit(r.Context(), actor(r), meta(r), op)
	if s.asPending(w, r, err) {
		return res, false
	}
	auditHeader(w, res)
	if err != nil {
		s.fail(w, r, err)
		return res, false
	}
	return res, true
}

// allowed asks whether the caller may perform a read action on target, writing a 403 (whose
// denial the pipeline has recorded) when not.
func (s *Server) allowed(w http.ResponseWriter, r *http.Request, action delegation.Action, target directory.Ref, fields map[string]any) bool {
	a := actor(r)
	if target.Kind == directory.KindUser && target.ID == "" && strings.EqualFold(target.Name, a.Name) {
		target.ID = a.ID // the caller reading themselves
	}
	if err := s.pipeline.Check(r.Context(), a, meta(r), action, target, fields); err != nil {
		s.failDenied(w, r, err)
		return false
	}
	return true
}

// auditHeader names the event that recorded a submitted op.
func auditHeader(w http.ResponseWriter, res change.Result) {
	if res.Event > 0 || res.Outcome == audit.Applied {
		w.Header().Set("Deputy-Audit-Event", strconv.FormatInt(res.Event, 10))
	}
}

// failDenied writes err, naming in the header the event that recorded a denial.
func (s *Server) failDenied(w http.ResponseWriter, r *http.Request, err error) {
	var denied *change.DeniedError
	if errors.As(err, &denied) {
		w.Header().Set("Deputy-Audit-Event", strconv.FormatInt(denied.Event, 10))
	}
	s.fail(w, r, err)
}

// listQuery reads filter, cursor and limit, checking the filter against schema.
func listQuery(r *http.Request, schema filter.Schema) (directory.ListQuery, error) {
	q := r.URL.Query()
	expr, err := filter.Parse(q.Get("filter"), schema)
	if err != nil {
		return directory.ListQuery{}, err
	}
	lq := directory.ListQuery{Filter: expr, Cursor: q.Get("cursor")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > directory.MaxLimit {
			return lq, directory.Invalid("limit", "must be a number from 1 to %d", directory.MaxLimit)
		}
		lq.Limit = n
	}
	return lq, nil
}

// written answers a successful write with the object, its ETag and, for a create, its Location.
func written(w http.ResponseWriter, status int, location string, version int64, body any) {
	if location != "" {
		w.Header().Set("Location", location)
	}
	if version > 0 {
		w.Header().Set("ETag", httpx.ETag(version))
	}
	httpx.WriteJSON(w, status, body)
}

// moveInput is the body of every move.
type moveInput struct {
	To string `json:"to"`
}

// memberInput is the body of adding a member.
type memberInput struct {
	Member string `json:"member"`
}
