package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/httpx"
)

// Keys reads the API keys of service accounts and the reports over them (*store.Store). No
// method returns a secret or a hash.
type Keys interface {
	// ServiceAccountKeys lists every key of the service account id, newest first.
	ServiceAccountKeys(ctx context.Context, id string) ([]credential.Token, error)
	// AccountKeys lists the active service-account keys q selects.
	AccountKeys(ctx context.Context, q credential.KeyQuery) ([]credential.AccountKey, error)
	// OrphanedServiceAccounts lists the service accounts flagged orphaned, with their owners.
	OrphanedServiceAccounts(ctx context.Context) ([]directory.ServiceAccount, error)
}

// WithKeys serves key listings and key reports from k; without it they answer 503.
func (s *Server) WithKeys(k Keys) *Server {
	s.keys = k
	return s
}

// noKeys answers when the server has no key reader.
func (s *Server) noKeys(w http.ResponseWriter, r *http.Request) bool {
	if s.keys != nil {
		return false
	}
	s.fail(w, r, httpx.NewProblem(http.StatusServiceUnavailable, "keys_unavailable", "this server does not read API keys"))
	return true
}

// keyIssued answers a key issue: the key itself is in this answer only.
type keyIssued struct {
	ID             string      `json:"id"`
	Name           string      `json:"name"`
	Key            string      `json:"key"`
	ServiceAccount string      `json:"service_account"`
	Expires        time.Time   `json:"expires"`
	Rotated        *keyRotated `json:"rotated,omitempty"`
}

// keyRotated is the key a rotation replaced, valid until its new expiry.
type keyRotated struct {
	ID      string    `json:"id"`
	Expires time.Time `json:"expires"`
}

// keyView is a stored key, never its secret.
type keyView struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires,omitzero"`
	LastUsed time.Time `json:"last_used,omitzero"`
	Revoked  time.Time `json:"revoked,omitzero"`
	Active   bool      `json:"active"`
}

func viewKey(t credential.Token, now time.Time) keyView {
	return keyView{ID: t.ID, Name: t.Name, Created: t.Created, Expires: t.Expires, LastUsed: t.LastUsed,
		Revoked: t.Revoked, Active: t.Active(now)}
}

// keyReportView is a key as a report lists it, with its account.
type keyReportView struct {
	ID               string    `json:"id"`
	Name             string    `json:"name"`
	ServiceAccount   string    `json:"service_account"`
	ServiceAccountID string    `json:"service_account_id"`
	Created          time.Time `json:"created"`
	Expires          time.Time `json:"expires,omitzero"`
	LastUsed         time.Time `json:"last_used,omitzero"`
}

// issueKey answers POST /api/v1/service-accounts/{sa}/keys (sa.issue_key).
func (s *Server) issueKey(k *kindAPI) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in change.KeyInput
		if err := httpx.Decode(w, r, &in); err != nil {
			s.fail(w, r, err)
			return
		}
		res, ok := s.submit(w, r, change.Op{Action: delegation.SAIssueKey, Target: k.ref(r), Key: &in})
		if !ok {
			return
		}
		c := res.Credential
		v := keyIssued{ID: c.ID, Name: in.Name, Key: c.Secret, ServiceAccount: res.Target.Name, Expires: c.Expires}
		if c.Rotated != nil {
			v.Rotated = &keyRotated{ID: c.Rotated.ID, Expires: c.Rotated.Expires}
		}
		httpx.WriteJSON(w, http.StatusCreated, v)
	}
}

// revokeKey answers DELETE /api/v1/service-accounts/{sa}/keys/{id} (sa.revoke_key).
func (s *Server) revokeKey(k *kindAPI) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.submit(w, r, change.Op{Action: delegation.SARevokeKey, Target: k.ref(r), KeyID: r.PathValue("id")}); ok {
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

// listKeys answers GET /api/v1/service-accounts/{sa}/keys: every key of an account the caller
// may read, without secrets.
func (s *Server) listKeys(k *kindAPI) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.noKeys(w, r) {
			return
		}
		l, ok := s.readVisible(w, r, k, k.ref(r))
		if !ok {
			return
		}
		keys, err := s.keys.ServiceAccountKeys(r.Context(), l.ref.ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		now := time.Now()
		out := make([]keyView, len(keys))
		for i, t := range keys {
			out[i] = viewKey(t, now)
		}
		httpx.WriteJSON(w, http.StatusOK, listView[keyView]{Items: out})
	}
}

// maxReportDays bounds the day counts of the key report.
const maxReportDays = 3650

// keyReport answers GET /api/v1/reports/keys: active service-account keys expiring within N
// days, unused for N days, or not rotated for N days (all the conditions given must hold).
func (s *Server) keyReport(w http.ResponseWriter, r *http.Request) {
	if s.noKeys(w, r) || !s.allowed(w, r, delegation.AuditRead, directory.Ref{}, nil) {
		return
	}
	now := time.Now().UTC()
	q := credential.KeyQuery{Now: now}
	var fe directory.FieldErrors
	days := func(name string) (time.Duration, bool) {
		v := r.URL.Query().Get(name)
		if v == "" {
			return 0, false
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxReportDays {
			fe.Add(name, "must be a number of days from 1 to %d", maxReportDays)
			return 0, false
		}
		return time.Duration(n) * 24 * time.Hour, true
	}
	if d, ok := days("expiring_within_days"); ok {
		q.ExpiringBefore = now.Add(d)
	}
	if d, ok := days("unused_for_days"); ok {
		q.UnusedSince = now.Add(-d)
	}
	if d, ok := days("not_rotated_for_days"); ok {
		q.CreatedBefore = now.Add(-d)
	}
	if err := fe.Err(); err != nil {
		s.fail(w, r, err)
		return
	}
	keys, err := s.keys.AccountKeys(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]keyReportView, len(keys))
	for i, k := range keys {
		out[i] = keyReportView{ID: k.ID, Name: k.Name, ServiceAccount: k.Account.Name, ServiceAccountID: k.Account.ID,
			Created: k.Created, Expires: k.Expires, LastUsed: k.LastUsed}
	}
	httpx.WriteJSON(w, http.StatusOK, listView[keyReportView]{Items: out})
}

// orphanedReport answers GET /api/v1/reports/orphaned-service-accounts: the accounts whose last
// active owner left, awaiting a review of their owners.
func (s *Server) orphanedReport(w http.ResponseWriter, r *http.Request) {
	if s.noKeys(w, r) || !s.allowed(w, r, delegation.AuditRead, directory.Ref{}, nil) {
		return
	}
	sas, err := s.keys.OrphanedServiceAccounts(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]serviceAccountView, len(sas))
	for i, sa := range sas {
		out[i] = viewServiceAccount(sa)
	}
	httpx.WriteJSON(w, http.StatusOK, listView[serviceAccountView]{Items: out})
}
