// Package httpx is Deputy's HTTP plumbing: strict JSON decoding, JSON and problem+json
// responses (RFC 9457), the one mapping from domain errors to status codes, and middleware.
package httpx

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/deputy-iam/deputy/internal/approval"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
)

// Problem is an RFC 9457 problem detail with Deputy's extensions: a stable Code clients may
// match on, the invalid Fields, and the audit Event that recorded the attempt.
type Problem struct {
	Type   string                 `json:"type"`
	Title  string                 `json:"title"`
	Status int                    `json:"status"`
	Detail string                 `json:"detail,omitempty"`
	Code   string                 `json:"code"`
	Fields []directory.FieldError `json:"errors,omitempty"`
	Event  *int64                 `json:"event,omitempty"`
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// NewProblem returns a problem with status, code and detail.
func NewProblem(status int, code, detail string) *Problem {
	return &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Code: code, Detail: detail}
}

// ProblemFor maps an error to the problem a client sees. This is the one place where domain
// errors become status codes; anything unrecognized is a 500 whose detail reveals nothing.
func ProblemFor(err error) *Problem {
	var (
		p        *Problem
		denied   *change.DeniedError
		fields   directory.FieldErrors
		conflict *directory.ConflictError
	)
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &denied):
		status := http.StatusForbidden
		if errors.Is(err, approval.ErrClosed) || errors.Is(err, approval.ErrAlreadyDecided) {
			status = http.StatusConflict // the request is past deciding, or the caller has decided
		}
		p = NewProblem(status, denied.Reason, denied.Message)
		if denied.Event > 0 {
			p.Event = &denied.Event
		}
		return p
	case errors.Is(err, credential.ErrBadToken):
		return NewProblem(http.StatusUnauthorized, "unauthenticated", "a valid bearer token is required")
	case errors.As(err, &fields):
		p = NewProblem(http.StatusUnprocessableEntity, "invalid", fields.Error())
		p.Fields = fields
		return p
	case errors.Is(err, filter.ErrInvalid):
		p = NewProblem(http.StatusBadRequest, "invalid_filter", err.Error())
		p.Fields = []directory.FieldError{{Field: "filter", Message: err.Error()}}
		return p
	case errors.As(err, &conflict):
		code := "conflict"
		if conflict.Stale {
			code = "stale_version"
		}
		p = NewProblem(http.StatusConflict, code, conflict.Error())
		if conflict.Field != "" {
			p.Fields = []directory.FieldError{{Field: conflict.Field, Message: conflict.Message}}
		}
		return p
	case errors.Is(err, directory.ErrNotFound):
		return NewProblem(http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, change.ErrParked):
		return NewProblem(http.StatusConflict, "approval_required", "an op in this batch needs approval: a batch applies all together or not at all, so submit that op on its own")
	}
	return NewProblem(http.StatusInternalServerError, "internal", "the server could not complete the request; it has been logged")
}

// WriteError writes err as problem+json, logging server errors with their cause.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	p := ProblemFor(err)
	if p.Status >= 500 {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
