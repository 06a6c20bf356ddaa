package api

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"time"

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

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	if !s.allowed(w, r, delegation.AuditRead, directory.Ref{}, nil) {
		return
	}
	q, err := auditQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	events, next, err := s.audit.Events(r.Context(), q)
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

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) {
	if !s.allowed(w, r, delegation.AuditRead, directory.Ref{}, nil) {
		return
	}
	idx, err := strconv.ParseInt(r.PathValue("index"), 10, 64)
	if err != nil || idx < 0 {
		s.fail(w, r, directory.Invalid("index", "must be a non-negative number"))
		return
	}
	e, err := s.audit.Event(r.Context(), idx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, e)
}

// me answers who the caller is.
func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	a := actor(r)
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
