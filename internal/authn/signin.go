package authn

import (
	"context"
	"crypto/subtle"
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

// Submitter runs self-service ops (a password change, an enrolment) through the pipeline.
type Submitter interface {
	Submit(ctx context.Context, actor delegation.Actor, meta change.Meta, op change.Op) (change.Result, error)
}

// badCredentials is the one answer to every failed sign-in: it does not say whether the account
// exists, is disabled, is locked or only the password was wrong.
var badCredentials = httpx.NewProblem(http.StatusUnauthorized, "bad_credentials",
	"the username or password is not right, or the account cannot sign in now")

// route is one sign-in route: its pattern, its handler, and whether it needs a signed-in caller.
type route struct {
	pattern string
	handler http.HandlerFunc
	auth    bool
}

// routes are the sign-in routes; sub submits self-service ops.
func (a *Authenticator) routes(sub Submitter) []route {
	return []route{
		{"POST /api/v1/auth/sign-in", a.signIn, false},
		{"POST /api/v1/auth/forgot-password", a.forgotPassword, false},
		{"POST /api/v1/auth/reset-password", a.resetForgotten, false},
		{"POST /api/v1/auth/sign-out", a.signOut, true},
		{"POST /api/v1/auth/sign-out-everywhere", a.signOutEverywhere, true},
		{"POST /api/v1/auth/step-up", a.stepUp, true},
		{"POST /api/v1/me/password", func(w http.ResponseWriter, r *http.Request) { a.changePassword(w, r, sub) }, true},
		{"POST /api/v1/me/mfa", func(w http.ResponseWriter, r *http.Request) { a.enrolMFA(w, r, sub, false) }, true},
		{"POST /api/v1/me/mfa/confirm", func(w http.ResponseWriter, r *http.Request) { a.enrolMFA(w, r, sub, true) }, true},
		{"GET /api/v1/auth/methods", a.authMethods, false},
		{"GET /api/v1/auth/oidc/start", a.oidcStart, false},
		{"GET " + oidcCallbackPath, a.oidcCallback, false},
		{"GET /api/v1/auth/session", a.currentSession, true},
	}
}

// Register adds the sign-in routes (passwords, sessions, self-service, OIDC) to mux: the
// public ones as they are, the others behind Require.
func (a *Authenticator) Register(mux *http.ServeMux, sub Submitter) {
	for _, r := range a.routes(sub) {
		if r.auth {
			mux.Handle(r.pattern, a.Require(r.handler))
		} else {
			mux.HandleFunc(r.pattern, r.handler)
		}
	}
}

// Patterns lists the patterns Register adds (the API contract's test checks them).
func (a *Authenticator) Patterns() []string {
	var out []string
	for _, r := range a.routes(nil) {
		out = append(out, r.pattern)
	}
	return out
}

// meta describes how an authentication request arrived.
func meta(r *http.Request) change.Meta {
	ua := r.UserAgent()
	if len(ua) > 256 {
		ua = ua[:256]
	}
	transport := audit.TransportAPI
	if strings.HasPrefix(ua, "deputy-cli/") {
		transport = audit.TransportCLI
	}
	return change.Meta{Transport: transport, ClientAddr: httpx.ClientAddr(r), UserAgent: ua}
}

type signInInput struct {
	Username string `json:"username"`
	Password string `json:"password"`
	TOTP     string `json:"totp,omitempty"`
}

type sessionView struct {
	User       string    `json:"user"`
	Expires    time.Time `json:"expires"`
	CSRF       string    `json:"csrf_token"`
	MFA        bool      `json:"mfa"`
	Restricted string    `json:"restricted,omitempty"`
}

// signIn checks a username, password and (when enrolled) TOTP code, and starts a session. Every
// attempt is an audit event. Failures count against the account (lockout after the threshold,
// lifted automatically) and the client address (throttling), and all look alike to the caller;
// a user who does not exist costs the same time as one who does.
func (a *Authenticator) signIn(w http.ResponseWriter, r *http.Request) {
	var in signInInput
	if err := httpx.Decode(w, r, &in); err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	id, s, err := a.SignIn(r, in.Username, in.Password, in.TOTP)
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	a.setCookie(w, id, s.Expires)
	u, _ := a.users.User(r.Context(), directory.Ref{Kind: directory.KindUser, ID: s.UserID})
	httpx.WriteJSON(w, http.StatusOK, sessionView{User: u.Username, Expires: s.Expires, CSRF: s.CSRF, MFA: !s.MFAAt.IsZero(),
		Restricted: s.Restricted})
}

// Problem codes of SignIn that a client tells apart (all others are bad_credentials).
var (
	ErrMFARequired = httpx.NewProblem(http.StatusUnauthorized, "mfa_required", "enter the code from your authenticator (totp)")
)

// SignIn checks a username, password and (when enrolled) TOTP code and starts a session,
// returning its ID (for the cookie) and the session. Every attempt is an audit event. Failures
// count against the account (lockout after the threshold, lifted automatically) and the
// client address (throttling), and all look alike (badCredentials); a user who does not exist
// costs the same time as one who does. A right password without the code the account needs
// answers ErrMFARequired.
func (a *Authenticator) SignIn(r *http.Request, username, password, code string) (string, *credential.Session, error) {
	if a.sessions == nil {
		return "", nil, httpx.NewProblem(http.StatusNotFound, "not_found", "password sign-in is not enabled")
	}
	ctx, m, now := r.Context(), meta(r), a.now()
	if !a.throttle.allow(m.ClientAddr, now) {
		return "", nil, errThrottled
	}
	name := strings.TrimSpace(username)
	u, uerr := a.users.User(ctx, directory.ParseRef(directory.KindUser, name))
	if uerr != nil || len(name) > 256 {
		credential.DummyVerify(password)
		a.refuse(r, delegation.Actor{Kind: delegation.ActorUser, Name: safeName(name)}, directory.Ref{Kind: directory.KindUser, Name: safeName(name)},
			"bad_credentials", "no such user")
		return "", nil, badCredentials
	}
	actor := delegation.Actor{Kind: delegation.ActorUser, ID: u.ID, Name: u.Username}
	uc, err := a.sessions.UserCredential(ctx, u.ID)
	if err != nil {
		return "", nil, err
	}
	var ok, rehash bool
	if uc.PasswordHash == "" {
		credential.DummyVerify(password)
	} else if ok, rehash, err = credential.VerifyPassword(password, uc.PasswordHash); err != nil {
		ok = false
	}
	reason := ""
	switch {
	case uc.Locked(now):
		reason = "locked_out"
	case !ok:
		reason = "bad_credentials"
	case u.Status != directory.StatusActive:
		reason = "not_active"
	case uc.TOTPEnabled && code == "":
		// The password was right: say that a code is needed (this does not count as a failure).
		a.refuse(r, actor, u.Ref(), "mfa_required", "password right; a TOTP code is needed")
		return "", nil, ErrMFARequired
	case uc.TOTPEnabled:
		step, good := credential.MatchTOTP(code, uc.TOTPSecret, now, uint64(uc.TOTPLastStep))
		if !good {
			reason = "bad_mfa_code"
		} else {
			uc.TOTPLastStep = int64(step)
		}
	}
	if reason != "" {
		a.countFailure(r, &uc, reason == "bad_credentials" || reason == "bad_mfa_code", now)
		a.refuse(r, actor, u.Ref(), reason, "")
		return "", nil, badCredentials
	}
	if rehash {
		if h, err := credential.HashPassword(password, credential.DefaultArgon2); err == nil {
			uc.PasswordHash = h // stronger parameters than it was stored with
		}
	}
	uc.FailedCount, uc.FailedSince, uc.LockedUntil = 0, time.Time{}, time.Time{}
	if err := a.sessions.SaveSignInState(ctx, &uc); err != nil {
		return "", nil, err
	}
	restricted := ""
	switch {
	case uc.MustChange:
		restricted = credential.RestrictChangePassword
	case a.needsMFA(u.ID, uc):
		restricted = credential.RestrictEnrolMFA // holders of rights must enrol a second factor first
	}
	id, s, err := a.newSession(ctx, u, uc.TOTPEnabled, restricted, m.ClientAddr, m.UserAgent)
	if err != nil {
		return "", nil, err
	}
	how := "password"
	if uc.TOTPEnabled {
		how = "password and TOTP"
	}
	if restricted != "" {
		how += "; restricted to " + strings.ReplaceAll(restricted, "_", " ")
	}
	if _, err := a.rec.RecordAuth(ctx, actor, m, change.ActionSignIn, u.Ref(), audit.Applied, "", how); err != nil {
		a.log.ErrorContext(ctx, "authn: record sign-in", "err", err)
	}
	return id, s, nil
}

// countFailure counts a failed attempt against the account (when it was a wrong secret) and
// locks it at the threshold.
func (a *Authenticator) countFailure(r *http.Request, uc *credential.UserCredential, count bool, now time.Time) {
	if !count {
		return
	}
	if uc.FailedSince.IsZero() || now.Sub(uc.FailedSince) > a.cfg.LockoutWindow {
		uc.FailedCount, uc.FailedSince = 0, now
	}
	uc.FailedCount++
	if uc.FailedCount >= a.cfg.LockoutThreshold {
		uc.LockedUntil = now.Add(a.cfg.LockoutDuration)
	}
	if err := a.sessions.SaveSignInState(r.Context(), uc); err != nil {
		a.log.ErrorContext(r.Context(), "authn: record a failed sign-in", "err", err)
	}
}

// refuse records a refused authentication step.
func (a *Authenticator) refuse(r *http.Request, actor delegation.Actor, target directory.Ref, reason, message string) {
	if _, err := a.rec.RecordAuth(r.Context(), actor, meta(r), change.ActionSignIn, target, audit.Denied, reason, message); err != nil {
		a.log.ErrorContext(r.Context(), "authn: record a refused sign-in", "err", err)
	}
}

// safeName bounds what an unknown username puts into an audit event.
func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

func (a *Authenticator) signOut(w http.ResponseWriter, r *http.Request) {
	actor, _ := ActorFrom(r.Context())
	if s, ok := SessionFrom(r.Context()); ok {
		if err := a.sessions.DeleteSession(r.Context(), s.IDHash); err != nil {
			httpx.WriteError(w, r, a.log, err)
			return
		}
	}
	a.setCookie(w, "", time.Time{})
	_, _ = a.rec.RecordAuth(r.Context(), actor, meta(r), change.ActionSignOut, userRef(actor), audit.Applied, "", "")
	w.WriteHeader(http.StatusNoContent)
}

// signOutEverywhere ends every session of the caller.
func (a *Authenticator) signOutEverywhere(w http.ResponseWriter, r *http.Request) {
	actor, _ := ActorFrom(r.Context())
	if a.sessions == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err := a.sessions.DeleteUserSessions(r.Context(), actor.ID); err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	a.setCookie(w, "", time.Time{})
	_, _ = a.rec.RecordAuth(r.Context(), actor, meta(r), change.ActionSignOutAll, userRef(actor), audit.Applied, "", "")
	w.WriteHeader(http.StatusNoContent)
}

func userRef(a delegation.Actor) directory.Ref {
	return directory.Ref{Kind: directory.KindUser, ID: a.ID, Name: a.Name}
}

// stepUp records a fresh second factor on the caller's session.
func (a *Authenticator) stepUp(w http.ResponseWriter, r *http.Request) {
	actor, _ := ActorFrom(r.Context())
	s, ok := SessionFrom(r.Context())
	if !ok {
		httpx.WriteError(w, r, a.log, httpx.NewProblem(http.StatusBadRequest, "no_session", "step-up applies to a session; with a token, send the "+TOTPHeader+" header"))
		return
	}
	var in struct {
		TOTP string `json:"totp"`
	}
	if err := httpx.Decode(w, r, &in); err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	if err := a.StepUpSession(r, actor, s, in.TOTP); err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// StepUpSession records a fresh second factor on session s from code, a current TOTP code of
// the actor's authenticator. A wrong code counts toward the lockout and is recorded; so is a
// step-up. The portal calls it with its own session; the API's step-up route too.
func (a *Authenticator) StepUpSession(r *http.Request, actor delegation.Actor, s *credential.Session, code string) error {
	if !a.throttle.allow(httpx.ClientAddr(r), a.now()) {
		return errThrottled
	}
	uc, err := a.sessions.UserCredential(r.Context(), actor.ID)
	if err != nil {
		return err
	}
	step, good := credential.MatchTOTP(code, uc.TOTPSecret, a.now(), uint64(uc.TOTPLastStep))
	if !uc.TOTPEnabled || !good {
		a.countFailure(r, &uc, uc.TOTPEnabled, a.now())
		_, _ = a.rec.RecordAuth(r.Context(), actor, meta(r), change.ActionStepUp, userRef(actor), audit.Denied, "bad_mfa_code", "")
		return httpx.NewProblem(http.StatusUnauthorized, "bad_mfa_code", "the code is not right")
	}
	uc.TOTPLastStep = int64(step)
	if err := a.sessions.SaveSignInState(r.Context(), &uc); err != nil {
		return err
	}
	s.MFAAt = a.now()
	if err := a.sessions.SaveSession(r.Context(), s); err != nil {
		return err
	}
	_, _ = a.rec.RecordAuth(r.Context(), actor, meta(r), change.ActionStepUp, userRef(actor), audit.Applied, "", "")
	return nil
}

// changePassword changes the caller's own password (checked against the current one and the
// policy) and replaces their session with a new one: the change ends every session.
func (a *Authenticator) changePassword(w http.ResponseWriter, r *http.Request, sub Submitter) {
	actor, _ := ActorFrom(r.Context())
	var in struct {
		Current string `json:"current_password"`
		New     string `json:"new_password"`
	}
	if err := httpx.Decode(w, r, &in); err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	if a.throttle != nil && !a.throttle.allow(httpx.ClientAddr(r), a.now()) {
		httpx.WriteError(w, r, a.log, errThrottled)
		return
	}
	res, err := sub.Submit(r.Context(), actor, meta(r), change.Op{Action: delegation.UserChangePassword,
		Target: userRef(actor), Password: &change.PasswordChange{Current: in.Current, New: in.New}})
	if err != nil {
		if directory.IsFieldError(err, "current_password") && a.sessions != nil {
			// A wrong current password is a failed sign-in: it counts toward the lockout.
			if uc, cerr := a.sessions.UserCredential(r.Context(), actor.ID); cerr == nil {
				a.countFailure(r, &uc, true, a.now())
				a.refuse(r, actor, userRef(actor), "bad_credentials", "wrong current password")
			}
		}
		httpx.WriteError(w, r, a.log, err)
		return
	}
	w.Header().Set("Deputy-Audit-Event", strconv.FormatInt(res.Event, 10))
	if old, ok := SessionFrom(r.Context()); ok {
		u, err := a.users.User(r.Context(), directory.Ref{Kind: directory.KindUser, ID: actor.ID})
		if err != nil {
			httpx.WriteError(w, r, a.log, err)
			return
		}
		restricted := ""
		if uc, err := a.sessions.UserCredential(r.Context(), u.ID); err == nil && a.needsMFA(u.ID, uc) {
			restricted = credential.RestrictEnrolMFA // a new password does not skip the second factor
		}
		id, s, err := a.newSession(r.Context(), u, !old.MFAAt.IsZero(), restricted, old.ClientAddr, old.UserAgent)
		if err != nil {
			httpx.WriteError(w, r, a.log, err)
			return
		}
		a.setCookie(w, id, s.Expires)
		httpx.WriteJSON(w, http.StatusOK, sessionView{User: u.Username, Expires: s.Expires, CSRF: s.CSRF, MFA: !s.MFAAt.IsZero(),
			Restricted: s.Restricted})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// enrolMFA starts (a new secret, shown once) or confirms a TOTP enrolment of the caller.
func (a *Authenticator) enrolMFA(w http.ResponseWriter, r *http.Request, sub Submitter, confirm bool) {
	actor, _ := ActorFrom(r.Context())
	var in struct {
		Code string `json:"code"`
	}
	if confirm {
		if err := httpx.Decode(w, r, &in); err != nil {
			httpx.WriteError(w, r, a.log, err)
			return
		}
		if in.Code == "" {
			httpx.WriteError(w, r, a.log, directory.Invalid("code", "is required"))
			return
		}
	}
	res, err := sub.Submit(r.Context(), actor, meta(r), change.Op{Action: delegation.UserEnrolMFA, Target: userRef(actor),
		MFA: &change.MFAInput{Code: in.Code}})
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	w.Header().Set("Deputy-Audit-Event", strconv.FormatInt(res.Event, 10))
	if !confirm {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"otpauth_url": res.Credential.Secret,
			"next": "add it to your authenticator app, then POST /api/v1/me/mfa/confirm with a code"})
		return
	}
	// The session that was restricted to enrolment is replaced by a full one, with a fresh
	// second factor.
	if old, ok := SessionFrom(r.Context()); ok {
		u, err := a.users.User(r.Context(), directory.Ref{Kind: directory.KindUser, ID: actor.ID})
		if err == nil {
			restricted := ""
			if old.Restricted == credential.RestrictChangePassword {
				restricted = old.Restricted
			}
			if id, s, err := a.newSession(r.Context(), u, true, restricted, old.ClientAddr, old.UserAgent); err == nil {
				_ = a.sessions.DeleteSession(r.Context(), old.IDHash)
				a.setCookie(w, id, s.Expires)
				httpx.WriteJSON(w, http.StatusOK, sessionView{User: u.Username, Expires: s.Expires, CSRF: s.CSRF, MFA: true, Restricted: restricted})
				return
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// forgotPassword is the JSON form of ForgotPassword.
func (a *Authenticator) forgotPassword(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Username string `json:"username"`
	}
	if err := httpx.Decode(w, r, &in); err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	if err := a.ForgotPassword(r, in.Username); err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusAccepted, map[string]string{"status": "if the account exists and has a recovery address, a code was sent to it"})
}

// ForgotPassword sends a one-time code to the user's recovery address (their email) when the
// account exists and may sign in. It answers the same (nil) whatever the case; an error is a
// throttle or an infrastructure failure.
func (a *Authenticator) ForgotPassword(r *http.Request, username string) error {
	if a.sessions == nil {
		return httpx.NewProblem(http.StatusNotFound, "not_found", "password sign-in is not enabled")
	}
	if !a.throttle.allow(httpx.ClientAddr(r), a.now()) {
		return errThrottled
	}
	u, err := a.users.User(r.Context(), directory.ParseRef(directory.KindUser, strings.TrimSpace(username)))
	if err != nil || u.Status != directory.StatusActive || u.Email == "" {
		return nil
	}
	code, hash := credential.NewCode()
	v := &credential.Verification{UserID: u.ID, ActorID: change.SelfVerification, CodeHash: hash, Channel: "email",
		Expires: a.now().Add(15 * time.Minute)}
	if err := a.sessions.SaveVerification(r.Context(), v); err != nil {
		return err
	}
	if err := a.rec.Notify(r.Context(), change.Notification{Kind: "password_recovery", To: []string{u.ID},
		Subject: "Your Deputy password reset code", Body: "Your code is " + code + ". It expires in 15 minutes. " +
			"If you did not ask for it, ignore this message."}); err != nil {
		return err
	}
	actor := delegation.Actor{Kind: delegation.ActorUser, ID: u.ID, Name: u.Username}
	_, _ = a.rec.RecordAuth(r.Context(), actor, meta(r), change.ActionForgotPassword, u.Ref(), audit.Applied, "", "a code was sent to the recovery address")
	return nil
}

// resetForgotten is the JSON form of ResetForgotten.
func (a *Authenticator) resetForgotten(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Username    string `json:"username"`
		Code        string `json:"code"`
		TOTP        string `json:"totp,omitempty"`
		NewPassword string `json:"new_password"`
	}
	if err := httpx.Decode(w, r, &in); err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	idx, err := a.ResetForgotten(r, in.Username, in.Code, in.TOTP, in.NewPassword)
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	w.Header().Set("Deputy-Audit-Event", strconv.FormatInt(idx, 10))
	w.WriteHeader(http.StatusNoContent)
}

// ErrBadRecovery is every failed recovery's answer.
var ErrBadRecovery = httpx.NewProblem(http.StatusBadRequest, "bad_recovery", "the code is not right or has expired: ask for a new one")

// ResetForgotten sets a new password with the code ForgotPassword sent (and a TOTP code when
// the user has an authenticator), returning the audit event. Every failed proof answers
// ErrBadRecovery; a password the policy refuses is a field error on new_password.
func (a *Authenticator) ResetForgotten(r *http.Request, username, code, totp, newPassword string) (int64, error) {
	if a.sessions == nil {
		return 0, httpx.NewProblem(http.StatusNotFound, "not_found", "password sign-in is not enabled")
	}
	now := a.now()
	if !a.throttle.allow(httpx.ClientAddr(r), now) {
		return 0, errThrottled
	}
	ctx := r.Context()
	u, err := a.users.User(ctx, directory.ParseRef(directory.KindUser, strings.TrimSpace(username)))
	if err != nil || u.Status != directory.StatusActive {
		return 0, ErrBadRecovery
	}
	v, err := a.sessions.Verification(ctx, u.ID, change.SelfVerification)
	if err != nil || !now.Before(v.Expires) || v.Attempts >= 5 {
		return 0, ErrBadRecovery
	}
	uc, err := a.sessions.UserCredential(ctx, u.ID)
	if err != nil {
		return 0, err
	}
	good := subtle.ConstantTimeCompare([]byte(credential.HashSessionID(strings.TrimSpace(code))), []byte(v.CodeHash)) == 1
	if good && uc.TOTPEnabled {
		_, good = credential.MatchTOTP(totp, uc.TOTPSecret, now, uint64(uc.TOTPLastStep))
	}
	actor := delegation.Actor{Kind: delegation.ActorUser, ID: u.ID, Name: u.Username}
	if !good {
		v.Attempts++
		_ = a.sessions.SaveVerification(ctx, &v)
		_, _ = a.rec.RecordAuth(ctx, actor, meta(r), change.ActionResetForgotten, u.Ref(), audit.Denied, "bad_recovery", "")
		return 0, ErrBadRecovery
	}
	if err := a.policy.Check(newPassword, u.Username, u.GivenName, u.FamilyName, u.Email); err != nil {
		return 0, directory.Invalid("new_password", "%v", err)
	}
	h, err := credential.HashPassword(newPassword, credential.DefaultArgon2)
	if err != nil {
		return 0, err
	}
	return a.rec.ResetForgotten(ctx, meta(r), u, h)
}
