package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/httpx"
)

// Evidence signs checkpoints of the audit log and proves events against them (audit.Evidence).
type Evidence interface {
	Latest(ctx context.Context) ([]byte, audit.Checkpoint, error)
	Checkpoint(ctx context.Context) ([]byte, audit.Checkpoint, error)
	ProveInclusion(ctx context.Context, index, size uint64) (audit.InclusionProof, error)
	ProveConsistency(ctx context.Context, from, to uint64) (audit.ConsistencyProof, error)
}

// WithEvidence serves checkpoints and proofs from e; without it those routes answer 503.
func (s *Server) WithEvidence(e Evidence) *Server {
	s.evidence = e
	return s
}

// checkpointView is a checkpoint as the API shows it: its fields and the signed note.
type checkpointView struct {
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	Root   []byte `json:"root"`
	Signed string `json:"signed"`
}

// noEvidence answers when the server has no signing key.
func (s *Server) noEvidence(w http.ResponseWriter, r *http.Request) bool {
	if s.evidence != nil {
		return false
	}
	s.fail(w, r, httpx.NewProblem(http.StatusServiceUnavailable, "no_signing_key",
		"the audit signing key is missing: run 'deputy init' (or restore the key file) and restart"))
	return true
}

// getCheckpoint returns the latest signed checkpoint. It states only a size and a hash, so any
// authenticated caller (a witness with a token of its own) may read it.
func (s *Server) getCheckpoint(w http.ResponseWriter, r *http.Request) {
	if s.noEvidence(w, r) {
		return
	}
	signed, cp, err := s.evidence.Latest(r.Context())
	if errors.Is(err, audit.ErrNoCheckpoint) {
		s.fail(w, r, httpx.NewProblem(http.StatusNotFound, "not_found", "no checkpoint has been signed yet; POST to this URL signs one"))
		return
	}
	s.writeCheckpoint(w, r, http.StatusOK, signed, cp, err)
}

// signCheckpoint signs a checkpoint now (when the log grew since the last one).
func (s *Server) signCheckpoint(w http.ResponseWriter, r *http.Request) {
	if s.noEvidence(w, r) || !s.allowed(w, r, delegation.AuditRead, directory.Ref{}, nil) {
		return
	}
	signed, cp, err := s.evidence.Checkpoint(r.Context())
	s.writeCheckpoint(w, r, http.StatusOK, signed, cp, err)
}

func (s *Server) writeCheckpoint(w http.ResponseWriter, r *http.Request, status int, signed []byte, cp audit.Checkpoint, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if r.URL.Query().Get("format") == "note" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		w.Write(signed)
		return
	}
	httpx.WriteJSON(w, status, checkpointView{Origin: cp.Origin, Size: cp.Size, Root: cp.Root, Signed: string(signed)})
}

// proveInclusion proves an event is in the log. The proof carries the event, so it needs
// audit.read.
func (s *Server) proveInclusion(w http.ResponseWriter, r *http.Request) {
	if s.noEvidence(w, r) || !s.allowed(w, r, delegation.AuditRead, directory.Ref{}, nil) {
		return
	}
	index, ok := s.sizeParam(w, r, "index", true)
	if !ok {
		return
	}
	size, ok := s.sizeParam(w, r, "size", false)
	if !ok {
		return
	}
	p, err := s.evidence.ProveInclusion(r.Context(), index, size)
	s.writeProof(w, r, p, err)
}

// proveConsistency proves the log of one size is a prefix of a larger one; it states only
// hashes, so any authenticated caller may ask.
func (s *Server) proveConsistency(w http.ResponseWriter, r *http.Request) {
	if s.noEvidence(w, r) {
		return
	}
	from, ok := s.sizeParam(w, r, "from", true)
	if !ok {
		return
	}
	to, ok := s.sizeParam(w, r, "to", false)
	if !ok {
		return
	}
	p, err := s.evidence.ProveConsistency(r.Context(), from, to)
	s.writeProof(w, r, p, err)
}

func (s *Server) writeProof(w http.ResponseWriter, r *http.Request, p any, err error) {
	var rng *audit.RangeError
	switch {
	case errors.As(err, &rng):
		s.fail(w, r, directory.Invalid("size", "%s", rng.Msg))
	case err != nil:
		s.fail(w, r, err)
	default:
		httpx.WriteJSON(w, http.StatusOK, p)
	}
}

// sizeParam reads a non-negative integer query parameter (0 when absent and not required).
func (s *Server) sizeParam(w http.ResponseWriter, r *http.Request, name string, required bool) (uint64, bool) {
	v := r.URL.Query().Get(name)
	if v == "" && !required {
		return 0, true
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		s.fail(w, r, directory.Invalid(name, "must be a non-negative number"))
		return 0, false
	}
	return n, true
}
