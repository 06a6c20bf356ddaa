package authn

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/httpx"
)

// OIDC sign-in: the authorization code flow with PKCE (S256), a state and a nonce, against any
// OpenID provider found by discovery. The ID token's UsernameClaim names the Deputy user, who
// must exist and be active: Deputy never creates users at sign-in (the directory, HR feeds and
// SCIM do). Success starts the same session a password sign-in does.
//
// The state, nonce, PKCE verifier and return path of a sign-in in progress travel in a
// short-lived HttpOnly, SameSite=Lax cookie signed with HMAC-SHA256, rather than in a map in
// this process: a map grows with every unauthenticated start and is lost on a restart, and
// with several replicas the callback may reach another process than the start did. The
// signing key is derived from the client secret when there is one, so that every replica
// configured alike accepts the cookie; a public client (no secret) gets a random key per
// process, and its sign-ins must start and finish on the same replica. The cookie is cleared
// at the callback, whatever the outcome, and a state is refused a second time by this process
// (usedStates); the provider's single-use code and the PKCE verifier refuse a replay anywhere.

// OIDCConfig says how to sign in with an OpenID provider.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL; discovery reads Issuer/.well-known/openid-configuration
	// and the ID tokens' iss must equal it.
	Issuer string
	// ClientID and ClientSecret are this server's client registration at the provider. An
	// empty secret makes a public client (PKCE alone).
	ClientID, ClientSecret string
	// RedirectURL is this server's callback as registered at the provider:
	// BASE/api/v1/auth/oidc/callback.
	RedirectURL string
	// UsernameClaim is the ID-token claim that holds the Deputy username; default
	// "preferred_username".
	UsernameClaim string
	// Scopes are asked for; default openid, profile and email. openid is always added.
	Scopes []string
}

// Names and limits of the OIDC flow.
const (
	oidcFlowCookie   = "deputy_oidc"
	oidcCallbackPath = "/api/v1/auth/oidc/callback"
	oidcFlowTTL      = 10 * time.Minute
	maxReturnTo      = 1024
	maxUsedStates    = 100000
)

// oidcSignIn is the discovered provider and this client's registration with it.
type oidcSignIn struct {
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	claim    string
	client   *http.Client // bounds every request to the provider (discovery, keys, token)
	key      []byte       // signs the flow cookie
	used     usedStates
}

// oidcFlow is what the flow cookie carries from start to callback.
type oidcFlow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	ReturnTo string `json:"r"`
	Expires  int64  `json:"e"` // Unix seconds
}

var (
	errOIDCDisabled = httpx.NewProblem(http.StatusNotFound, "oidc_disabled", "OIDC sign-in is not configured on this server")
	errOIDCState    = httpx.NewProblem(http.StatusBadRequest, "oidc_state",
		"this sign-in is not the one this browser started, was already used or has expired: start again")
	errOIDCFailed = httpx.NewProblem(http.StatusUnauthorized, "oidc_failed",
		"the identity provider's answer could not be checked: start again")
)

// WithOIDC turns on OIDC sign-in: it discovers the provider (an error when the issuer cannot be
// reached or its discovery document does not name it) and keeps what the start and callback
// routes need. ctx bounds discovery only. Sessions must be on (WithSessions) first.
func (a *Authenticator) WithOIDC(ctx context.Context, cfg OIDCConfig) (*Authenticator, error) {
	if a.sessions == nil {
		return nil, errors.New("authn: oidc: sign-in needs sessions (WithSessions)")
	}
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("authn: oidc: an issuer, a client ID and a redirect URL are required")
	}
	if cfg.UsernameClaim == "" {
		cfg.UsernameClaim = "preferred_username"
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{"profile", "email"}
	}
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		scopes = append([]string{oidc.ScopeOpenID}, scopes...)
	}
	client := &http.Client{Timeout: 15 * time.Second}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, client), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("authn: oidc: discover %s: %w", cfg.Issuer, err)
	}
	a.oidc = &oidcSignIn{
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: cfg.RedirectURL, Scopes: scopes},
		verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		claim:    cfg.UsernameClaim,
		client:   client,
		key:      flowKey(cfg.ClientSecret),
	}
	return a, nil
}

// flowKey is the key that signs flow cookies: derived from the client secret (the same on every
// replica), or random for a public client.
func flowKey(secret string) []byte {
	if secret != "" {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte("deputy oidc flow cookie v1"))
		return m.Sum(nil)
	}
	k := make([]byte, 32)
	_, _ = rand.Read(k) // never fails (crypto/rand)
	return k
}

// OIDCEnabled reports whether sign-in through an OpenID provider is on (the portal offers it).
func (a *Authenticator) OIDCEnabled() bool { return a.oidc != nil }

// authMethods says which sign-in methods a client may offer.
func (a *Authenticator) authMethods(w http.ResponseWriter, r *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, map[string]bool{"password": a.sessions != nil, "oidc": a.oidc != nil})
}

// currentSession describes the session the request came with.
func (a *Authenticator) currentSession(w http.ResponseWriter, r *http.Request) {
	s, ok := SessionFrom(r.Context())
	if !ok {
		httpx.WriteError(w, r, a.log, httpx.NewProblem(http.StatusBadRequest, "no_session", "this request came with a token, not a session"))
		return
	}
	actor, _ := ActorFrom(r.Context())
	httpx.WriteJSON(w, http.StatusOK, sessionView{User: actor.Name, Expires: s.Expires, CSRF: s.CSRF, MFA: !s.MFAAt.IsZero(),
		Restricted: s.Restricted})
}

// oidcStart sends the browser to the provider, with a fresh state, nonce and PKCE challenge
// whose secrets stay in the signed flow cookie. The query parameter return_to, a local path,
// is where the callback sends the browser after a sign-in ("/" otherwise).
func (a *Authenticator) oidcStart(w http.ResponseWriter, r *http.Request) {
	o := a.oidc
	if o == nil {
		httpx.WriteError(w, r, a.log, errOIDCDisabled)
		return
	}
	f := oidcFlow{State: randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier(),
		ReturnTo: localPath(r.URL.Query().Get("return_to")), Expires: a.now().Add(oidcFlowTTL).Unix()}
	a.setFlowCookie(w, o.seal(f))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, o.oauth.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusFound)
}

// oidcCallback finishes a sign-in the provider sent back: it checks the state against the flow
// cookie, exchanges the code (with the PKCE verifier), verifies the ID token and its nonce, and
// starts a session for the user its claim names.
func (a *Authenticator) oidcCallback(w http.ResponseWriter, r *http.Request) {
	o := a.oidc
	if o == nil || a.sessions == nil {
		httpx.WriteError(w, r, a.log, errOIDCDisabled)
		return
	}
	ctx, now := r.Context(), a.now()
	if !a.throttle.allow(httpx.ClientAddr(r), now) {
		httpx.WriteError(w, r, a.log, errThrottled)
		return
	}
	a.setFlowCookie(w, "") // one use, whatever happens next
	q := r.URL.Query()
	c, err := r.Cookie(oidcFlowCookie)
	if err != nil {
		httpx.WriteError(w, r, a.log, errOIDCState)
		return
	}
	f, ok := o.open(c.Value, now)
	if !ok || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 ||
		!o.used.claim(f.State, time.Unix(f.Expires, 0), now) {
		httpx.WriteError(w, r, a.log, errOIDCState)
		return
	}
	if e := q.Get("error"); e != "" {
		a.log.InfoContext(ctx, "authn: the identity provider refused a sign-in", "error", safeName(e),
			"description", safeName(q.Get("error_description")))
		httpx.WriteError(w, r, a.log, httpx.NewProblem(http.StatusUnauthorized, "oidc_refused",
			"the identity provider did not sign you in ("+safeName(e)+")"))
		return
	}
	name, mfa, err := o.identify(ctx, q.Get("code"), f)
	if err != nil {
		a.log.WarnContext(ctx, "authn: oidc sign-in failed", "err", err)
		httpx.WriteError(w, r, a.log, errOIDCFailed)
		return
	}
	a.finishOIDC(w, r, name, mfa, f.ReturnTo)
}

// identify exchanges code for tokens and returns the username the verified ID token names
// (empty when it names none) and whether the provider says a second factor was used.
func (o *oidcSignIn) identify(ctx context.Context, code string, f oidcFlow) (string, bool, error) {
	if code == "" {
		return "", false, errors.New("the callback has no code")
	}
	ctx = oidc.ClientContext(ctx, o.client)
	tok, err := o.oauth.Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return "", false, fmt.Errorf("exchange the code: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", false, errors.New("the token response has no id_token")
	}
	idt, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		return "", false, fmt.Errorf("verify the ID token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		return "", false, errors.New("the ID token's nonce is not this sign-in's")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return "", false, fmt.Errorf("read the ID token's claims: %w", err)
	}
	name, _ := claims[o.claim].(string)
	if o.claim == "email" && claims["email_verified"] == false {
		name = "" // an address the provider has not verified names no one
	}
	return strings.TrimSpace(name), amrHasMFA(claims["amr"]), nil
}

// amrHasMFA reports whether an amr claim (RFC 8176) lists a second factor.
func amrHasMFA(v any) bool {
	var methods []any
	switch v := v.(type) {
	case []any:
		methods = v
	case string: // off spec, but some providers send one method as a string
		methods = []any{v}
	}
	for _, m := range methods {
		if s, _ := m.(string); s == "mfa" || s == "otp" || s == "hwk" {
			return true
		}
	}
	return false
}

// finishOIDC starts a session for the user a verified ID token named, or refuses as a failed
// password sign-in does (the same problem, and a denied event).
func (a *Authenticator) finishOIDC(w http.ResponseWriter, r *http.Request, name string, mfa bool, returnTo string) {
	ctx, m := r.Context(), meta(r)
	unknown := func(message string) {
		ref := directory.Ref{Kind: directory.KindUser, Name: safeName(name)}
		a.refuse(r, delegation.Actor{Kind: delegation.ActorUser, Name: ref.Name}, ref, "oidc_no_user", message)
		httpx.WriteError(w, r, a.log, badCredentials)
	}
	if name == "" || len(name) > 256 {
		unknown("the ID token has no usable " + a.oidc.claim + " claim")
		return
	}
	// By name only: a claim shaped like an internal ID must not reach a user by that ID.
	u, err := a.users.User(ctx, directory.Ref{Kind: directory.KindUser, Name: name})
	if errors.Is(err, directory.ErrNotFound) {
		unknown("no user is named by the " + a.oidc.claim + " claim")
		return
	}
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	actor := delegation.Actor{Kind: delegation.ActorUser, ID: u.ID, Name: u.Username}
	if u.Status != directory.StatusActive {
		a.refuse(r, actor, u.Ref(), "not_active", "oidc")
		httpx.WriteError(w, r, a.log, badCredentials)
		return
	}
	uc, err := a.sessions.UserCredential(ctx, u.ID)
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	// A second factor at the provider counts as one here. Without it, a user enrolled in TOTP
	// gets a full session whose step-up asks for a code; a holder of rights who has not enrolled
	// is restricted to enrolling, as at a password sign-in. A temporary password (MustChange)
	// does not restrict: this sign-in did not use it.
	restricted := ""
	if !mfa && a.needsMFA(u.ID, uc) {
		restricted = credential.RestrictEnrolMFA
	}
	id, s, err := a.newSession(ctx, u, mfa, restricted, m.ClientAddr, m.UserAgent)
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	how := "oidc"
	if mfa {
		how += " with a second factor at the provider"
	}
	if restricted != "" {
		how += "; restricted to " + strings.ReplaceAll(restricted, "_", " ")
	}
	if _, err := a.rec.RecordAuth(ctx, actor, m, change.ActionSignIn, u.Ref(), audit.Applied, "", how); err != nil {
		a.log.ErrorContext(ctx, "authn: record sign-in", "err", err)
	}
	a.setCookie(w, id, s.Expires)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, localPath(returnTo), http.StatusSeeOther)
}

// setFlowCookie writes the flow cookie, scoped to the callback (an empty value clears it).
func (a *Authenticator) setFlowCookie(w http.ResponseWriter, value string) {
	c := &http.Cookie{Name: oidcFlowCookie, Value: value, Path: oidcCallbackPath, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: a.cfg.SecureCookie, MaxAge: int(oidcFlowTTL / time.Second)}
	if value == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// seal encodes f as PAYLOAD.MAC, both base64url.
func (o *oidcSignIn) seal(f oidcFlow) string {
	b, _ := json.Marshal(f) // strings and a number: cannot fail
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + o.mac(p)
}

// open returns the flow a cookie value carries when its MAC is right and it has not expired.
func (o *oidcSignIn) open(v string, now time.Time) (oidcFlow, bool) {
	var f oidcFlow
	p, mac, ok := strings.Cut(v, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(o.mac(p))) {
		return f, false
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil || json.Unmarshal(b, &f) != nil || f.State == "" || !now.Before(time.Unix(f.Expires, 0)) {
		return oidcFlow{}, false
	}
	return f, true
}

func (o *oidcSignIn) mac(payload string) string {
	m := hmac.New(sha256.New, o.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// usedStates remembers the states this process has seen at the callback until their flows
// expire, so that a replayed callback is refused here and not only by the provider.
type usedStates struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// claim records state as used until expires, reporting false when it already was. When the
// set is full of live states it records nothing (the provider's single-use code still holds).
func (u *usedStates) claim(state string, expires, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.seen == nil {
		u.seen = map[string]time.Time{}
	}
	if _, ok := u.seen[state]; ok {
		return false
	}
	if len(u.seen) >= 1024 {
		for s, exp := range u.seen {
			if !now.Before(exp) {
				delete(u.seen, s)
			}
		}
	}
	if len(u.seen) < maxUsedStates {
		u.seen[state] = expires
	}
	return true
}

// localPath returns p when it is a path on this server ("/..." but not "//..." or anything a
// browser would read as another origin), and "/" otherwise.
func localPath(p string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || len(p) > maxReturnTo ||
		strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return "/"
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return p
}

// randomToken is 256 random bits, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
