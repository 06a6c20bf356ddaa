package authn

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/httpx"
)

// Sessions: a random 256-bit ID in an HttpOnly, SameSite=Lax cookie (Secure over TLS), stored
// only as a hash; an idle and an absolute timeout; a new ID at every sign-in and privilege
// change (no fixation). A state-changing request on a session must echo the session's CSRF
// token in the X-CSRF-Token header (the double submit a cross-site form cannot make).

// Cookie and header names.
const (
	SessionCookie = "deputy_session"
	CSRFHeader    = "X-CSRF-Token"
	TOTPHeader    = "Deputy-TOTP" // a fresh second factor on a token request (step-up)
)

// Config says how sign-in behaves.
type Config struct {
	IdleTimeout      time.Duration // default 30m
	AbsoluteTimeout  time.Duration // default 12h
	LockoutThreshold int           // failed sign-ins in LockoutWindow that lock the account; default 10
	LockoutWindow    time.Duration // default 15m
	LockoutDuration  time.Duration // automatic unlock after; default 15m
	// MFAForHolders requires a second factor of anyone who holds a role assignment (default
	// true; set MFAOptional to turn it off).
	MFAOptional  bool
	StepUpWindow time.Duration // a second factor this recent satisfies a step-up; default 5m
	SecureCookie bool          // set Secure on cookies (served over TLS)
	// PerIPRate and PerIPBurst throttle sign-in and recovery attempts per client address.
	PerIPRate  float64 // attempts per second; default 0.2 (12 a minute)
	PerIPBurst int     // default 20
}

func (c *Config) defaults() {
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 30 * time.Minute
	}
	if c.AbsoluteTimeout == 0 {
		c.AbsoluteTimeout = 12 * time.Hour
	}
	if c.LockoutThreshold == 0 {
		c.LockoutThreshold = 10
	}
	if c.LockoutWindow == 0 {
		c.LockoutWindow = 15 * time.Minute
	}
	if c.LockoutDuration == 0 {
		c.LockoutDuration = 15 * time.Minute
	}
	if c.StepUpWindow == 0 {
		c.StepUpWindow = 5 * time.Minute
	}
	if c.PerIPRate == 0 {
		c.PerIPRate = 0.2
	}
	if c.PerIPBurst == 0 {
		c.PerIPBurst = 20
	}
}

// SessionStore keeps credentials and sessions.
type SessionStore interface {
	UserCredential(ctx context.Context, userID string) (credential.UserCredential, error)
	SaveSignInState(ctx context.Context, uc *credential.UserCredential) error
	Session(ctx context.Context, idHash string) (credential.Session, error)
	// SaveSession stores a session; a new one also becomes its user's last sign-in.
	SaveSession(ctx context.Context, s *credential.Session) error
	TouchSession(ctx context.Context, idHash string, at time.Time) error
	DeleteSession(ctx context.Context, idHash string) error
	DeleteUserSessions(ctx context.Context, userID string) error
	Verification(ctx context.Context, userID, actorID string) (credential.Verification, error)
	SaveVerification(ctx context.Context, v *credential.Verification) error
}

// Recorder writes authentication events and forgotten-password resets (the pipeline).
type Recorder interface {
	RecordAuth(ctx context.Context, actor delegation.Actor, meta change.Meta, action string, target directory.Ref,
		outcome audit.Outcome, reason, message string) (int64, error)
	ResetForgotten(ctx context.Context, meta change.Meta, user directory.User, newHash string) (int64, error)
	Notify(ctx context.Context, n change.Notification) error
}

// Holders says whether someone holds any role assignment, in force or eligible (the
// delegation engine).
type Holders interface {
	HoldsAssignments(id string) bool
}

// needsMFA reports whether a user without an authenticator must enrol one before anything
// else: when MFA is required (the default), anyone who holds a role assignment, in force or
// eligible, directly or through a group.
func (a *Authenticator) needsMFA(userID string, uc credential.UserCredential) bool {
	return !uc.TOTPEnabled && !a.cfg.MFAOptional && a.holders != nil && a.holders.HoldsAssignments(userID)
}

// WithSessions turns on sign-in with passwords and sessions.
func (a *Authenticator) WithSessions(s SessionStore, rec Recorder, holders Holders, policy credential.PasswordPolicy, cfg Config) *Authenticator {
	cfg.defaults()
	a.sessions, a.rec, a.holders, a.policy, a.cfg = s, rec, holders, policy, cfg
	a.throttle = newThrottle(cfg.PerIPRate, cfg.PerIPBurst)
	return a
}

type sessionKey struct{}

// SessionFrom returns the session a request was authenticated by, if it was one.
func SessionFrom(ctx context.Context) (*credential.Session, bool) {
	s, ok := ctx.Value(sessionKey{}).(*credential.Session)
	return s, ok
}

// restrictedPaths are what a restricted session may reach.
var restrictedPaths = map[string][]string{
	credential.RestrictChangePassword: {"/api/v1/me", "/api/v1/me/password", "/api/v1/auth/sign-out", "/api/v1/auth/session"},
	credential.RestrictEnrolMFA: {"/api/v1/me", "/api/v1/me/mfa", "/api/v1/me/mfa/confirm", "/api/v1/auth/sign-out", "/api/v1/me/password",
		"/api/v1/auth/session"},
}

// authenticateSession resolves the session cookie of r, checks its timeouts, restriction and
// (for a state-changing request) its CSRF token, and records its use.
func (a *Authenticator) authenticateSession(r *http.Request, c *http.Cookie) (delegation.Actor, *credential.Session, error) {
	ctx := r.Context()
	if a.sessions == nil {
		return delegation.Actor{}, nil, credential.ErrBadToken
	}
	s, err := a.sessions.Session(ctx, credential.HashSessionID(c.Value))
	if err != nil {
		return delegation.Actor{}, nil, credential.ErrBadToken
	}
	now := a.now()
	if !now.Before(s.Expires) || now.Sub(s.LastSeen) > a.cfg.IdleTimeout {
		_ = a.sessions.DeleteSession(ctx, s.IDHash)
		return delegation.Actor{}, nil, credential.ErrBadToken
	}
	if !safeMethod(r.Method) && !CSRFMatches(r.Header.Get(CSRFHeader), &s) {
		return delegation.Actor{}, nil, httpx.NewProblem(http.StatusForbidden, "csrf", "a state-changing request on a session must carry its "+CSRFHeader+" header")
	}
	if s.Restricted != "" && !allowedRestricted(s.Restricted, r.URL.Path) {
		code := "password_change_required"
		if s.Restricted == credential.RestrictEnrolMFA {
			code = "mfa_enrolment_required"
		}
		return delegation.Actor{}, nil, httpx.NewProblem(http.StatusForbidden, code, "this session may only "+strings.ReplaceAll(s.Restricted, "_", " ")+" first")
	}
	u, err := a.users.User(ctx, directory.Ref{Kind: directory.KindUser, ID: s.UserID})
	if err != nil || u.Status != directory.StatusActive {
		_ = a.sessions.DeleteSession(ctx, s.IDHash)
		return delegation.Actor{}, nil, credential.ErrBadToken
	}
	if now.Sub(s.LastSeen) > time.Minute {
		if err := a.sessions.TouchSession(ctx, s.IDHash, now); err != nil {
			a.log.WarnContext(ctx, "authn: record session use", "err", err)
		}
	}
	return delegation.Actor{Kind: delegation.ActorUser, ID: u.ID, Name: u.Username}, &s, nil
}

// CSRFMatches reports, in constant time, whether token is the session's CSRF token.
func CSRFMatches(token string, s *credential.Session) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.CSRF)) == 1
}

// SessionOf resolves the session cookie of a request for the portal, which checks CSRF form
// fields and restrictions itself: the session must exist, be within its timeouts and belong to
// an active user; its use is recorded.
func (a *Authenticator) SessionOf(r *http.Request) (delegation.Actor, *credential.Session, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" || a.sessions == nil {
		return delegation.Actor{}, nil, credential.ErrBadToken
	}
	ctx := r.Context()
	s, err := a.sessions.Session(ctx, credential.HashSessionID(c.Value))
	if err != nil {
		return delegation.Actor{}, nil, credential.ErrBadToken
	}
	now := a.now()
	if !now.Before(s.Expires) || now.Sub(s.LastSeen) > a.cfg.IdleTimeout {
		_ = a.sessions.DeleteSession(ctx, s.IDHash)
		return delegation.Actor{}, nil, credential.ErrBadToken
	}
	u, err := a.users.User(ctx, directory.Ref{Kind: directory.KindUser, ID: s.UserID})
	if err != nil || u.Status != directory.StatusActive {
		_ = a.sessions.DeleteSession(ctx, s.IDHash)
		return delegation.Actor{}, nil, credential.ErrBadToken
	}
	if now.Sub(s.LastSeen) > time.Minute {
		_ = a.sessions.TouchSession(ctx, s.IDHash, now)
	}
	return delegation.Actor{Kind: delegation.ActorUser, ID: u.ID, Name: u.Username}, &s, nil
}

// SetSessionCookie writes the session cookie for the portal (an empty id clears it).
func (a *Authenticator) SetSessionCookie(w http.ResponseWriter, id string, expires time.Time) {
	a.setCookie(w, id, expires)
}

// EndSession ends one session (sign-out from the portal) and records it.
func (a *Authenticator) EndSession(r *http.Request, actor delegation.Actor, s *credential.Session) {
	_ = a.sessions.DeleteSession(r.Context(), s.IDHash)
	_, _ = a.rec.RecordAuth(r.Context(), actor, meta(r), change.ActionSignOut, userRef(actor), audit.Applied, "", "")
}

func allowedRestricted(restriction, path string) bool {
	for _, p := range restrictedPaths[restriction] {
		if path == p {
			return true
		}
	}
	return false
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// StepUp checks that the caller gave a second factor within the step-up window: on a session
// by signing in or stepping up with it, on a token by a valid code in the Deputy-TOTP header.
// It returns a problem (403 step_up_required) otherwise. Without sessions configured, it allows.
func (a *Authenticator) StepUp(r *http.Request, actor delegation.Actor) error {
	s, _ := SessionFrom(r.Context())
	return a.CheckStepUp(r, actor, s)
}

// CheckStepUp is StepUp on session s (nil for a token): the portal passes its own session.
func (a *Authenticator) CheckStepUp(r *http.Request, actor delegation.Actor, s *credential.Session) error {
	if a.sessions == nil {
		return nil
	}
	ctx := r.Context()
	if s != nil && a.now().Sub(s.MFAAt) <= a.cfg.StepUpWindow && !s.MFAAt.IsZero() {
		return nil
	}
	uc, err := a.sessions.UserCredential(ctx, actor.ID)
	if err != nil {
		return err
	}
	if !uc.TOTPEnabled {
		if a.needsMFA(actor.ID, uc) {
			return httpx.NewProblem(http.StatusForbidden, "mfa_enrolment_required",
				"this action needs a second factor, and you hold rights without one: enrol an authenticator first (POST /api/v1/me/mfa)")
		}
		return nil // MFA is optional here, or the caller holds no rights that need it
	}
	if code := r.Header.Get(TOTPHeader); code != "" {
		{
			if step, ok := credential.MatchTOTP(code, uc.TOTPSecret, a.now(), uint64(uc.TOTPLastStep)); ok {
				uc.TOTPLastStep = int64(step)
				if err := a.sessions.SaveSignInState(ctx, &uc); err != nil {
					return err
				}
				return nil
			}
		}
	}
	return httpx.NewProblem(http.StatusForbidden, "step_up_required",
		fmt.Sprintf("this action needs a second factor from the last %s: step up (POST /api/v1/auth/step-up) or send a %s header",
			a.cfg.StepUpWindow, TOTPHeader))
}

// newSession creates and stores a session for u, returning its ID (for the cookie).
func (a *Authenticator) newSession(ctx context.Context, u directory.User, mfa bool, restricted, addr, ua string) (string, *credential.Session, error) {
	id, hash := credential.NewSessionID()
	now := a.now()
	s := &credential.Session{IDHash: hash, UserID: u.ID, Created: now, LastSeen: now, Expires: now.Add(a.cfg.AbsoluteTimeout),
		Restricted: restricted, CSRF: credential.NewCSRFToken(), ClientAddr: addr, UserAgent: ua}
	if mfa {
		s.MFAAt = now
	}
	if err := a.sessions.SaveSession(ctx, s); err != nil {
		return "", nil, err
	}
	return id, s, nil
}

// setCookie writes the session cookie (an empty id clears it).
func (a *Authenticator) setCookie(w http.ResponseWriter, id string, expires time.Time) {
	c := &http.Cookie{Name: SessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: a.cfg.SecureCookie}
	if id == "" {
		c.MaxAge = -1
	} else {
		c.Expires = expires
	}
	http.SetCookie(w, c)
}

// throttle is a token bucket per client address: it slows one source of guesses without
// locking anyone out (lockout counts per account; this counts per address).
type throttle struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newThrottle(rate float64, burst int) *throttle {
	return &throttle{rate: rate, burst: float64(burst), buckets: map[string]*bucket{}}
}

// allow takes a token for addr, reporting whether one was there.
func (t *throttle) allow(addr string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.buckets) > 100000 { // forget idle sources rather than grow without bound
		for k, b := range t.buckets {
			if now.Sub(b.at) > time.Hour {
				delete(t.buckets, k)
			}
		}
	}
	b := t.buckets[addr]
	if b == nil {
		b = &bucket{tokens: t.burst, at: now}
		t.buckets[addr] = b
	}
	b.tokens = min(t.burst, b.tokens+now.Sub(b.at).Seconds()*t.rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

var errThrottled = httpx.NewProblem(http.StatusTooManyRequests, "too_many_attempts", "too many attempts from this address: wait a minute")
