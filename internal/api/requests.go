package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/deputy-iam/deputy/internal/approval"
	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/httpx"
)

// Requests reads approval requests and policies.
type Requests interface {
	Request(ctx context.Context, id string) (approval.Request, error)
	Requests(ctx context.Context, q approval.Query) ([]approval.Request, error)
	Policies(ctx context.Context) ([]approval.Policy, error)
}

// WithRequests serves the approval endpoints from rs.
func (s *Server) WithRequests(rs Requests) *Server {
	s.requests = rs
	return s
}

func (s *Server) registerRequests(route func(string, http.HandlerFunc)) {
	route("GET /api/v1/requests", s.listRequests)
	route("GET /api/v1/requests/{id}", s.getRequest)
	for _, verdict := range []string{approval.VerdictApprove, approval.VerdictReject, approval.VerdictCancel, approval.VerdictReview} {
		route("POST /api/v1/requests/{id}/"+verdict, s.decideRequest(verdict))
	}
	route("GET /api/v1/approval-policies", s.listPolicies)
	route("POST /api/v1/approval-policies", s.createPolicy)
	route("GET /api/v1/approval-policies/{id}", s.getPolicy)
	route("PATCH /api/v1/approval-policies/{id}", s.updatePolicy)
	route("DELETE /api/v1/approval-policies/{id}", s.deletePolicy)
}

// requestView is a request as the API shows it: the request, who may act on it now, and
// whether the caller is one of them.
type requestView struct {
	approval.Request
	WaitingFor []string `json:"waiting_for"`
	CanDecide  bool     `json:"can_decide"`
}

func viewRequest(r approval.Request, caller string) requestView {
	inbox := r.Inbox()
	if inbox == nil {
		inbox = []string{}
	}
	return requestView{Request: r, WaitingFor: inbox, CanDecide: slices.Contains(inbox, caller)}
}

// pending answers an op the gate parked: 202 with the request that holds it.
func (s *Server) pending(w http.ResponseWriter, r *http.Request, p *change.PendingError) {
	w.Header().Set("Deputy-Audit-Event", strconv.FormatInt(p.Event, 10))
	w.Header().Set("Location", "/api/v1/requests/"+p.Request)
	if s.requests != nil {
		if req, err := s.requests.Request(r.Context(), p.Request); err == nil {
			httpx.WriteJSON(w, http.StatusAccepted, viewRequest(req, actor(r).ID))
			return
		}
	}
	httpx.WriteJSON(w, http.StatusAccepted, map[string]any{"id": p.Request, "state": approval.Open})
}

// requestScope says which requests the caller may see: their own, those they are (or were)
// asked to approve, and those about objects they may read; an auditor sees all.
type requestScope struct {
	all    bool
	caller string
	events *delegation.EventScope
}

func (s *Server) newRequestScope(r *http.Request) (*requestScope, error) {
	all, err := s.auditor(r)
	if err != nil {
		return nil, err
	}
	a := actor(r)
	return &requestScope{all: all, caller: a.ID, events: newEventScope(s, a)}, nil
}

func (v *requestScope) visible(ctx context.Context, req *approval.Request) bool {
	if v.all || req.Requester.ID == v.caller {
		return true
	}
	for _, st := range req.Stages {
		if slices.Contains(st.Eligible, v.caller) {
			return true
		}
	}
	if slices.ContainsFunc(req.Decisions, func(d approval.Decision) bool { return d.By.ID == v.caller }) {
		return true
	}
	return v.events.Visible(ctx, &audit.Event{Target: audit.Target{Type: string(req.Target.Kind), ID: req.Target.ID}})
}

// listRequests: view=waiting (for me to decide), mine (I submitted), or all (that I may see);
// state filters; cursor is the last ID of the previous page.
func (s *Server) listRequests(w http.ResponseWriter, r *http.Request) {
	if s.requests == nil {
		s.fail(w, r, directory.NotFound(directory.KindRequest, "any"))
		return
	}
	qv := r.URL.Query()
	q := approval.Query{After: qv.Get("cursor"), State: approval.State(qv.Get("state")), Limit: 50}
	if l := qv.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			s.fail(w, r, directory.Invalid("limit", "must be a number from 1 to 500"))
			return
		}
		q.Limit = n
	}
	switch q.State {
	case "", approval.Open, approval.Applied, approval.Rejected, approval.Cancelled, approval.Expired, approval.Failed,
		approval.Unreviewed, approval.Reviewed:
	default:
		s.fail(w, r, directory.Invalid("state", "must be open, applied, rejected, cancelled, expired, failed, unreviewed or reviewed"))
		return
	}
	a := actor(r)
	view := qv.Get("view")
	switch view {
	case "", "waiting":
		view, q.Approver = "waiting", a.ID
	case "mine":
		q.Requester = a.ID
	case "all":
	default:
		s.fail(w, r, directory.Invalid("view", "must be waiting, mine or all"))
		return
	}
	var (
		out   []requestView
		next  string
		scope *requestScope
	)
	if view == "all" {
		var err error
		if scope, err = s.newRequestScope(r); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	// A view of all is filtered row by row; it stops after scanBudget rows and hands back a
	// cursor, so that a caller who may see little never makes the server read everything.
	scanned, limit := 0, q.Limit
	for len(out) < limit && scanned < scanBudget {
		q.Limit = min(limit-len(out)+1, 500)
		if scope != nil {
			q.Limit = 500
		}
		page, err := s.requests.Requests(r.Context(), q)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for i := range page {
			scanned++
			q.After = page[i].ID
			if scope == nil || scope.visible(r.Context(), &page[i]) {
				if len(out) == limit {
					next = out[len(out)-1].ID
					break
				}
				out = append(out, viewRequest(page[i], a.ID))
			}
		}
		if next != "" || len(page) < q.Limit {
			break
		}
		if len(out) < limit && scanned >= scanBudget {
			next = q.After
		}
	}
	if out == nil {
		out = []requestView{}
	}
	resp := map[string]any{"items": out}
	if next != "" {
		resp["next_cursor"] = next
	}
	httpx.WriteJSON(w, http.StatusOK, resp)
}

func (s *Server) getRequest(w http.ResponseWriter, r *http.Request) {
	if req, ok := s.readableRequest(w, r); ok {
		httpx.WriteJSON(w, http.StatusOK, viewRequest(req, actor(r).ID))
	}
}

// readableRequest loads the request the path names, answering 404 when the caller may not see
// it (as if it did not exist).
func (s *Server) readableRequest(w http.ResponseWriter, r *http.Request) (approval.Request, bool) {
	id := r.PathValue("id")
	if s.requests == nil || !directory.IsID(id) {
		s.fail(w, r, directory.NotFound(directory.KindRequest, id))
		return approval.Request{}, false
	}
	req, err := s.requests.Request(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return req, false
	}
	scope, err := s.newRequestScope(r)
	if err != nil {
		s.fail(w, r, err)
		return req, false
	}
	if !scope.visible(r.Context(), &req) {
		s.fail(w, r, directory.NotFound(directory.KindRequest, id))
		return req, false
	}
	return req, true
}

// decideRequest posts a verdict with an optional comment (required to reject).
func (s *Server) decideRequest(verdict string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Comment string `json:"comment"`
		}
		if r.ContentLength != 0 {
			if err := httpx.Decode(w, r, &body); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		if _, ok := s.readableRequest(w, r); !ok {
			return
		}
		req, err := s.pipeline.Decide(r.Context(), actor(r), meta(r), r.PathValue("id"), verdict, body.Comment)
		if err != nil {
			s.failDenied(w, r, err)
			return
		}
		if req.Result != 0 {
			w.Header().Set("Deputy-Audit-Event", strconv.FormatInt(req.Result, 10))
		}
		httpx.WriteJSON(w, http.StatusOK, viewRequest(req, actor(r).ID))
	}
}

func (s *Server) listPolicies(w http.ResponseWriter, r *http.Request) {
	if s.requests == nil {
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": []approval.Policy{}})
		return
	}
	ps, err := s.requests.Policies(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ps == nil {
		ps = []approval.Policy{}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": ps})
}

func (s *Server) policy(w http.ResponseWriter, r *http.Request) (approval.Policy, bool) {
	key := r.PathValue("id")
	if s.requests != nil {
		ps, err := s.requests.Policies(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return approval.Policy{}, false
		}
		for _, p := range ps {
			if p.ID == key || p.Name == key {
				return p, true
			}
		}
	}
	s.fail(w, r, directory.NotFound(directory.KindPolicy, key))
	return approval.Policy{}, false
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) {
	if p, ok := s.policy(w, r); ok {
		written(w, http.StatusOK, "", p.Version, p)
	}
}

func (s *Server) createPolicy(w http.ResponseWriter, r *http.Request) {
	var in approval.Policy
	if err := httpx.Decode(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.pipeline.CreatePolicy(r.Context(), actor(r), meta(r), in)
	if err != nil {
		s.failDenied(w, r, err)
		return
	}
	written(w, http.StatusCreated, "/api/v1/approval-policies/"+p.ID, p.Version, p)
}

// updatePolicy applies a JSON merge patch (RFC 7386) to the policy's top-level fields.
func (s *Server) updatePolicy(w http.ResponseWriter, r *http.Request) {
	var patch map[string]json.RawMessage
	if err := httpx.Decode(w, r, &patch); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := httpx.IfMatch(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cur, ok := s.policy(w, r)
	if !ok {
		return
	}
	doc := map[string]json.RawMessage{}
	b, _ := json.Marshal(cur)
	if err := json.Unmarshal(b, &doc); err != nil {
		s.fail(w, r, err)
		return
	}
	for k, val := range patch {
		switch k {
		case "id", "version":
			s.fail(w, r, directory.Invalid(k, "cannot be changed"))
			return
		}
		if string(val) == "null" {
			delete(doc, k)
		} else {
			doc[k] = val
		}
	}
	var in approval.Policy
	b, _ = json.Marshal(doc)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // a misspelt field must not be dropped silently
	if err := dec.Decode(&in); err != nil {
		s.fail(w, r, directory.Invalid("body", "%v", err))
		return
	}
	p, err := s.pipeline.UpdatePolicy(r.Context(), actor(r), meta(r), cur.ID, v, in)
	if err != nil {
		s.failDenied(w, r, err)
		return
	}
	written(w, http.StatusOK, "", p.Version, p)
}

func (s *Server) deletePolicy(w http.ResponseWriter, r *http.Request) {
	cur, ok := s.policy(w, r)
	if !ok {
		return
	}
	if err := s.pipeline.DeletePolicy(r.Context(), actor(r), meta(r), cur.ID); err != nil {
		s.failDenied(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// asPending reports whether err is an op parked for approval, answering it with 202.
func (s *Server) asPending(w http.ResponseWriter, r *http.Request, err error) bool {
	var p *change.PendingError
	if errors.As(err, &p) {
		s.pending(w, r, p)
		return true
	}
	return false
}
