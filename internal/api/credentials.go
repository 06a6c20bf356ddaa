package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/httpx"
)

// Credentials is what the credential endpoints read and keep beside the pipeline.
type Credentials interface {
	UserCredential(ctx context.Context, userID string) (credential.UserCredential, error)
	SaveVerification(ctx context.Context, v *credential.Verification) error
	UserTokens(ctx context.Context, userID string) ([]credential.Token, error)
}

// StepUp checks that a request carries a recent second factor (authn.Authenticator.StepUp).
type StepUp func(r *http.Request, actor delegation.Actor) error

// WithCredentials serves the password, unlock, verification and token endpoints; stepUp, when
// not nil, is asked before the actions that need a fresh second factor (a password reset, the
// activation of an eligible assignment).
func (s *Server) WithCredentials(c Credentials, stepUp StepUp) *Server {
	s.creds, s.stepUp = c, stepUp
	return s
}

// WithPortal names the portal's external address (--base-url) for the reset links it sends.
func (s *Server) WithPortal(base string) *Server {
	s.portal = strings.TrimRight(base, "/")
	return s
}

func (s *Server) registerCredentials(route func(string, http.HandlerFunc)) {
	route("POST /api/v1/users/{user}/reset-password", s.resetPassword)
	route("POST /api/v1/users/{user}/unlock", s.simple(s.kinds()[directory.KindUser], delegation.UserUnlock))
	route("POST /api/v1/users/{user}/reset-mfa", s.resetMFA)
	route("POST /api/v1/users/{user}/verification", s.sendVerification)
	route("GET /api/v1/users/{user}/tokens", s.listTokens)
	route("DELETE /api/v1/users/{user}/tokens/{id}", s.revokeToken)
}

// steppedUp answers 403 step_up_required unless the request carries a fresh second factor.
func (s *Server) steppedUp(w http.ResponseWriter, r *http.Request) bool {
	if s.stepUp == nil {
		return true
	}
	if err := s.stepUp(r, actor(r)); err != nil {
		s.fail(w, r, err)
		return false
	}
	return true
}

// resetPassword sets a one-time temporary password, shown once in the answer; the user must
// change it at their next sign-in. A role may ask for a verification code first.
func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Verification string `json:"verification,omitempty"`
		Deliver      string `json:"deliver,omitempty"`
	}
	if r.ContentLength != 0 {
		if err := httpx.Decode(w, r, &in); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if !s.steppedUp(w, r) {
		return
	}
	res, ok := s.submit(w, r, change.Op{Action: delegation.UserResetPassword, Target: userTarget(r),
		Reset: &change.ResetInput{Verification: strings.TrimSpace(in.Verification), Deliver: in.Deliver, Portal: s.portal}})
	if !ok {
		return
	}
	if in.Deliver != "" {
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"user": res.Target.Name, "delivered_to": in.Deliver, "event": res.Event})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"user": res.Target.Name, "temporary_password": res.Credential.Secret,
		"must_change": true, "event": res.Event})
}

func userTarget(r *http.Request) directory.Ref {
	return directory.ParseRef(directory.KindUser, r.PathValue("user"))
}

// sendVerification starts an identity check before a reset: with channel "email" a six-digit
// code goes to the user's email, for them to read out; with "totp" the user reads the current
// code of their authenticator. Only someone who may reset the user's password may ask.
func (s *Server) sendVerification(w http.ResponseWriter, r *http.Request) {
	if s.creds == nil {
		s.fail(w, r, directory.NotFound("verification", ""))
		return
	}
	var in struct {
		Channel string `json:"channel"`
	}
	if err := httpx.Decode(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, a := r.Context(), actor(r)
	u, err := s.dir.User(ctx, userTarget(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// Asked as if verified: the question is whether the caller may reset at all.
	dec, err := s.pipeline.Ask(ctx, &delegation.Question{Actor: a, Action: delegation.UserResetPassword, Target: u.Ref(),
		Before: u.Fields(), After: u.Fields(), Verified: true})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !dec.Allow {
		s.failDenied(w, r, s.pipeline.Refuse(ctx, a, meta(r), change.Op{Action: change.ActionVerifyIdentity, Target: u.Ref()},
			dec.Reason, dec.Message))
		return
	}
	uc, err := s.creds.UserCredential(ctx, u.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := &credential.Verification{UserID: u.ID, ActorID: a.ID, Channel: in.Channel, Expires: time.Now().Add(change.VerificationTTL)}
	message := ""
	switch in.Channel {
	case "email":
		if u.Email == "" {
			s.fail(w, r, directory.Invalid("channel", "%s has no email address to send a code to", u.Username))
			return
		}
		code, hash := credential.NewCode()
		v.CodeHash = hash
		if err := s.pipeline.Notify(ctx, change.Notification{Kind: "identity_verification", To: []string{u.ID},
			Subject: "Your Deputy verification code", Body: "Your code is " + code + ". Read it to " + a.Name +
				" only if you asked them for help; it expires in 10 minutes."}); err != nil {
			s.fail(w, r, err)
			return
		}
		message = "a code was sent to the user's email"
	case "totp":
		if !uc.TOTPEnabled {
			s.fail(w, r, directory.Invalid("channel", "%s has no authenticator enrolled; use email", u.Username))
			return
		}
		message = "the user reads out their authenticator's current code"
	default:
		s.fail(w, r, directory.Invalid("channel", "must be email or totp"))
		return
	}
	if err := s.creds.SaveVerification(ctx, v); err != nil {
		s.fail(w, r, err)
		return
	}
	idx, err := s.pipeline.RecordAuth(ctx, a, meta(r), change.ActionVerifyIdentity, u.Ref(), audit.Applied, "", message)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Deputy-Audit-Event", strconv.FormatInt(idx, 10))
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"channel": in.Channel, "expires": v.Expires.UTC(), "status": message})
}

type tokenListView struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Created  time.Time  `json:"created"`
	Expires  *time.Time `json:"expires"`
	LastUsed *time.Time `json:"last_used"`
	Revoked  *time.Time `json:"revoked"`
	Active   bool       `json:"active"`
}

// listTokens lists a user's API tokens (never their secrets), for the user and whoever may
// reset the user's tokens (revoke them).
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	if s.creds == nil {
		s.fail(w, r, directory.NotFound(directory.KindToken, ""))
		return
	}
	u, err := s.dir.User(r.Context(), userTarget(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if u.ID != actor(r).ID && !s.allowed(w, r, delegation.UserRevokeTokens, u.Ref(), u.Fields()) {
		return
	}
	toks, err := s.creds.UserTokens(r.Context(), u.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := time.Now()
	out := make([]tokenListView, 0, len(toks))
	for _, t := range toks {
		out = append(out, tokenListView{ID: t.ID, Name: t.Name, Created: t.Created, Expires: timePtr(t.Expires),
			LastUsed: timePtr(t.LastUsed), Revoked: timePtr(t.Revoked), Active: t.Active(now)})
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": out})
}

// revokeToken revokes one API token of a user (their own, or as a delegate with
// user.revoke_tokens).
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.submit(w, r, change.Op{Action: delegation.UserRevokeTokens, Target: userTarget(r), KeyID: r.PathValue("id")}); ok {
		w.WriteHeader(http.StatusNoContent)
	}
}

// resetMFA removes a user's authenticator (lost or replaced); it asks the caller for a fresh
// second factor, as a password reset does.
func (s *Server) resetMFA(w http.ResponseWriter, r *http.Request) {
	if !s.steppedUp(w, r) {
		return
	}
	if _, ok := s.submit(w, r, change.Op{Action: delegation.UserResetMFA, Target: userTarget(r)}); ok {
		w.WriteHeader(http.StatusNoContent)
	}
}
