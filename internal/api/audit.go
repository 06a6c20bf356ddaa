package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/change"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/httpx"
)

type eventsView struct {
	Items      []audit.Event `json:"items"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// auditQuery reads the event filters of a request.
func auditQuery(r *http.Request) (audit.Query, error) {
	v := r.URL.Query()
	q := audit.Query{Actor: v.Get("actor"), Target: v.Get("target"), Action: v.Get("action"),
		Outcome: audit.Outcome(v.Get("outcome")), Transport: v.Get("transport"), Authority: v.Get("authority")}
	var fe directory.FieldErrors
	switch q.Outcome {
	case "", audit.Applied, audit.Denied, audit.Failed, audit.Pending:
	default:
		fe.Add("outcome", "must be applied, denied, failed or pending")
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := v.Get(t.name); s != "" {
			ts, err := time.Parse(time.RFC3339, s)
			if err != nil {
				fe.Add(t.name, "must be an RFC 3339 time such as 2026-11-28T09:00:00Z")
			}
			*t.dst = ts
		}
	}
	if c := v.Get("cursor"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n <= 0 {
			fe.Add("cursor", "is not a cursor this server issued")
		}
		q.Before = n
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > directory.MaxLimit {
			fe.Add("limit", "must be a number from 1 to %d", directory.MaxLimit)
		}
		q.Limit = n
	}
	return q, fe.Err()
}

// scanBudget bounds how many events one scoped search reads: a caller who sees little of a large
// log gets fewer than a page and a cursor to continue, not a slow answer.
const scanBudget = 5000

// newEventScope is what a caller without audit.read over the whole directory may see of the
// trail (delegation.EventScope: their own actions, and events about objects they may read).
func newEventScope(s *Server, a delegation.Actor) *delegation.EventScope {
	return delegation.NewEventScope(s.dir, s.authz, a)
}

// auditor reports whether the caller may read the whole trail (audit.read over the whole
// directory), without recording the question.
func (s *Server) auditor(r *http.Request) (bool, error) {
	dec, err := s.pipeline.Ask(r.Context(), &delegation.Question{Actor: actor(r), Action: delegation.AuditRead})
	return dec.Allow, err
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q, err := auditQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	all, err := s.auditor(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var (
		events []audit.Event
		next   int64
	)
	if all {
		events, next, err = s.audit.Events(r.Context(), q)
	} else {
		events, next, err = s.scopedEvents(r, q)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := eventsView{Items: events}
	if out.Items == nil {
		out.Items = []audit.Event{}
	}
	if next > 0 {
		out.NextCursor = strconv.FormatInt(next, 10)
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// scopedEvents searches as listEvents does and keeps what the caller may see, reading at most
// scanBudget events; the cursor continues after the last one read.
func (s *Server) scopedEvents(r *http.Request, q audit.Query) ([]audit.Event, int64, error) {
	if q.Limit == 0 {
		q.Limit = directory.DefaultLimit
	}
	return newEventScope(s, actor(r)).Search(r.Context(), s.audit, q, directory.MaxLimit, scanBudget)
}

// readableEvent reads the event the path names, if the caller may see it: any event with
// audit.read over the whole directory, else one of their scope. A refusal is recorded.
func (s *Server) readableEvent(w http.ResponseWriter, r *http.Request) (audit.Event, bool) {
	idx, err := strconv.ParseInt(r.PathValue("index"), 10, 64)
	if err != nil || idx < 0 {
		s.fail(w, r, directory.Invalid("index", "must be a non-negative number"))
		return audit.Event{}, false
	}
	all, err := s.auditor(r)
	if err != nil {
		s.fail(w, r, err)
		return audit.Event{}, false
	}
	e, err := s.audit.Event(r.Context(), idx)
	if err != nil {
		s.fail(w, r, err)
		return audit.Event{}, false
	}
	if !all && !newEventScope(s, actor(r)).Visible(r.Context(), &e) {
		// Not theirs to see: refused and recorded, as any refused read.
		s.allowed(w, r, delegation.AuditRead, directory.Ref{}, nil)
		return audit.Event{}, false
	}
	return e, true
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) {
	if e, ok := s.readableEvent(w, r); ok {
		httpx.WriteJSON(w, http.StatusOK, e)
	}
}

// me answers who the caller is.
func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	a := actor(r)
	if a.Kind == delegation.ActorServiceAccount { // a service account's key: the account itself
		sa, err := s.dir.ServiceAccount(r.Context(), directory.Ref{Kind: directory.KindServiceAccount, ID: a.ID})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		written(w, http.StatusOK, "", sa.Version, viewServiceAccount(sa))
		return
	}
	u, err := s.dir.User(r.Context(), directory.Ref{Kind: directory.KindUser, ID: a.ID})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ms, err := s.dir.Memberships(r.Context(), u.Ref())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ms == nil {
		ms = []directory.Membership{}
	}
	written(w, http.StatusOK, "", u.Version, viewUser(u, ms))
}

// exportEvents streams the canonical encodings of the events, oldest first, one per line: the
// form `deputy audit verify --export` checks against checkpoints.
func (s *Server) exportEvents(w http.ResponseWriter, r *http.Request) {
	if !s.allowed(w, r, delegation.AuditRead, directory.Ref{}, nil) {
		return
	}
	var fe directory.FieldErrors
	var from int64
	if v := r.URL.Query().Get("from"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			fe.Add("from", "must be a non-negative event index")
		}
		from = n
	}
	var since time.Time
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			fe.Add("since", "must be an RFC 3339 time such as 2026-11-28T09:00:00Z")
		}
		since = t
	}
	if err := fe.Err(); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	bw := bufio.NewWriterSize(w, 64<<10)
	started := false
	err := s.audit.EachEncoded(r.Context(), from, since, func(body []byte) error {
		started = true
		bw.Write(body)
		return bw.WriteByte('\n')
	})
	if err != nil && !started {
		s.fail(w, r, err)
		return
	}
	if err != nil {
		// The status is sent: end with a line that is not an event, so that neither a reader
		// nor verify mistakes the part for the whole.
		s.log.ErrorContext(r.Context(), "audit export", "err", err)
		fmt.Fprintf(bw, "{\"error\":\"the export was interrupted after a partial read; retry\"}\n")
	}
	bw.Flush()
}

// revertView answers an undo: the event that records it and the object it changed.
type revertView struct {
	Event   int64         `json:"event"`
	Reverts int64         `json:"reverts"`
	Action  string        `json:"action"`
	Target  directory.Ref `json:"target"`
	Version int64         `json:"version,omitempty"`
}

// revertEvent undoes an applied event: the inverse op, built from what the event recorded, goes
// through the pipeline as the caller (authorized, gated and audited, linked to the event).
func (s *Server) revertEvent(w http.ResponseWriter, r *http.Request) {
	force := false
	switch r.URL.Query().Get("force") {
	case "", "false":
	case "true":
		force = true
	default:
		s.fail(w, r, directory.Invalid("force", "must be true or false"))
		return
	}
	ev, ok := s.readableEvent(w, r)
	if !ok {
		return
	}
	idx, a := ev.Index, actor(r)
	op, err := change.Inverse(ev, force)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if j := strings.TrimSpace(r.Header.Get("Deputy-Justification")); j != "" {
		op.Justification = j
	}
	m := meta(r)
	m.Transport, m.Reverts = audit.TransportUndo, &idx
	if ev.Unreviewed {
		m.RevertsRequest = ev.RequestID
	}
	if force && !s.tier0(a) {
		err := s.pipeline.Refuse(r.Context(), a, m, op, "not_authorized",
			"forcing an undo over later changes needs a tier-0 admin; undo without force, or revert the later events first")
		s.failDenied(w, r, err)
		return
	}
	res, err := s.pipeline.Submit(r.Context(), a, m, op)
	if s.asPending(w, r, err) {
		return
	}
	auditHeader(w, res)
	if errors.Is(err, directory.ErrStale) {
		s.fail(w, r, s.changedSince(r.Context(), ev, err))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, revertView{Event: res.Event, Reverts: idx, Action: string(op.Action), Target: res.Target, Version: res.Version})
}

// tier0 reports whether a holds the tier-0 admin role.
func (s *Server) tier0(a delegation.Actor) bool {
	for _, g := range s.authz.Grants(a.ID) {
		if g.Role.Name == delegation.RoleTier0 {
			return true
		}
	}
	return false
}

// changedSince explains an undo refused because its object changed after the event: the
// events that changed it since.
func (s *Server) changedSince(ctx context.Context, ev audit.Event, stale error) error {
	var later []string
	q := audit.Query{Target: ev.Target.ID, Outcome: audit.Applied, Limit: 20}
	if ev.Target.ID != "" {
		if evs, _, err := s.audit.Events(ctx, q); err == nil {
			for _, e := range evs {
				undoesThis := e.Reverts != nil && *e.Reverts == ev.Index
				if e.Index > ev.Index && !undoesThis {
					later = append([]string{fmt.Sprintf("%d (%s by %s)", e.Index, e.Action, e.Actor.Name)}, later...)
				}
			}
		}
	}
	detail := fmt.Sprintf("%s %s changed after event %d", directory.Kind(ev.Target.Type).Noun(), ev.Target.Name, ev.Index)
	if len(later) > 0 {
		detail += ": events " + strings.Join(later, ", ")
	}
	p := httpx.NewProblem(http.StatusConflict, "changed_since", detail+"; undo those first, or force the undo (tier-0 admins)")
	p.Fields = []directory.FieldError{{Field: "index", Message: stale.Error()}}
	return p
}
