package authn

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// oidcFixture is the authn fixture (a real SQLite store and pipeline) signing in through a real
// OpenID provider (mockoidc: discovery, authorize, token and JWKS on a loopback listener), with
// the authenticator's routes on an httptest server.
type oidcFixture struct {
	*fixture
	op  *mockoidc.MockOIDC
	srv *httptest.Server
}

func newOIDCFixture(t *testing.T, cfg Config) *oidcFixture {
	t.Helper()
	f := newFixture(t)
	op, err := mockoidc.Run()
	if err != nil {
		t.Fatalf("start the provider: %v", err)
	}
	t.Cleanup(func() { op.Shutdown() })
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	holders, _ := f.pipeline.Authorizer().(Holders)
	f.auth.WithSessions(f.store, f.pipeline, holders, credential.PasswordPolicy{}, cfg)
	oc := op.Config()
	if _, err := f.auth.WithOIDC(context.Background(), OIDCConfig{Issuer: oc.Issuer, ClientID: oc.ClientID,
		ClientSecret: oc.ClientSecret, RedirectURL: srv.URL + oidcCallbackPath}); err != nil {
		t.Fatalf("WithOIDC: %v", err)
	}
	f.auth.Register(mux, f.pipeline)
	mux.Handle("GET /api/v1/me", f.auth.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, _ := ActorFrom(r.Context())
		io.WriteString(w, a.Name)
	})))
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "page "+r.URL.Path) })
	return &oidcFixture{fixture: f, op: op, srv: srv}
}

// browser is an HTTP client with a cookie jar that follows redirects, and the callback URLs it
// was sent to.
type browser struct {
	*http.Client
	t         *testing.T
	callbacks []string
	flows     []string // the flow cookie at each callback
}

func (o *oidcFixture) browser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{Client: &http.Client{Jar: jar}, t: t}
	b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == oidcCallbackPath {
			b.callbacks = append(b.callbacks, req.URL.String())
			b.flows = append(b.flows, b.cookie(o.srv, oidcFlowCookie, oidcCallbackPath))
		}
		return nil
	}
	return b
}

type page struct {
	status int
	url    *url.URL
	body   string
}

func (b *browser) get(u string) page {
	b.t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, url: resp.Request.URL, body: string(body)}
}

// code is the problem code of a problem+json body.
func (p page) code() string {
	var pr struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal([]byte(p.body), &pr)
	return pr.Code
}

// session is the value of the session cookie the browser holds for srv ("" for none).
func (b *browser) cookie(srv *httptest.Server, name, path string) string {
	u, _ := url.Parse(srv.URL + path)
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) session(srv *httptest.Server) string { return b.cookie(srv, SessionCookie, "/") }

// lastSignIn is the newest auth.sign_in event.
func (o *oidcFixture) lastSignIn(t *testing.T) audit.Event {
	t.Helper()
	evs, _, err := o.store.Events(context.Background(), audit.Query{Action: change.ActionSignIn, Limit: 1})
	if err != nil || len(evs) == 0 {
		t.Fatalf("no sign-in event: %v", err)
	}
	return evs[0]
}

func (o *oidcFixture) createUser(t *testing.T, name string) {
	t.Helper()
	o.submit(t, change.Op{Action: delegation.UserCreate, User: &directory.UserInput{Username: name, OU: "/",
		Email: name + "@example.com"}})
}

func mockUser(name string) *mockoidc.MockUser {
	return &mockoidc.MockUser{Subject: "sub-" + name, PreferredUsername: name, Email: name + "@idp.example", EmailVerified: true}
}

func TestOIDCSignIn(t *testing.T) {
	o := newOIDCFixture(t, Config{MFAOptional: true})
	o.createUser(t, "jane")
	o.op.QueueUser(mockUser("jane"))
	b := o.browser(t)
	p := b.get(o.srv.URL + "/api/v1/auth/oidc/start?return_to=/portal/requests?x=1")
	if p.status != 200 || p.url.Host != strings.TrimPrefix(o.srv.URL, "http://") || p.url.RequestURI() != "/portal/requests?x=1" {
		t.Fatalf("after the sign-in: %d at %s: %s", p.status, p.url, p.body)
	}
	if len(b.callbacks) != 1 || b.session(o.srv) == "" {
		t.Fatalf("callbacks %v, session cookie %q", b.callbacks, b.session(o.srv))
	}
	if b.cookie(o.srv, oidcFlowCookie, oidcCallbackPath) != "" {
		t.Error("the flow cookie outlived the callback")
	}
	if me := b.get(o.srv.URL + "/api/v1/me"); me.status != 200 || me.body != "jane" {
		t.Fatalf("GET /api/v1/me on the session: %d %s", me.status, me.body)
	}
	ev := o.lastSignIn(t)
	if ev.Outcome != audit.Applied || ev.Actor.Name != "jane" || ev.Target.Name != "jane" || ev.Message != "oidc" {
		t.Errorf("sign-in event %+v", ev)
	}
	// The session tells a redirected client its CSRF token; without a second factor, MFA is false.
	s := b.get(o.srv.URL + "/api/v1/auth/session")
	var view sessionView
	if err := json.Unmarshal([]byte(s.body), &view); err != nil || s.status != 200 || view.User != "jane" || view.CSRF == "" || view.MFA {
		t.Errorf("GET /api/v1/auth/session: %d %s", s.status, s.body)
	}

	// Replaying the callback: with the flow cookie gone, and with it put back.
	flow := b.callbacks[0]
	if r := b.get(flow); r.status != 400 || r.code() != "oidc_state" {
		t.Errorf("replayed callback: %d %s", r.status, r.body)
	}
	replayer := o.browser(t)
	if r := replayer.get(flow); r.status != 400 || replayer.session(o.srv) != "" {
		t.Errorf("replayed callback in another browser: %d %s", r.status, r.body)
	}
	// Someone who copied the flow cookie too: this process remembers the state; a process that
	// does not (another replica, a restart) is refused by the provider, whose code is single-use.
	cookieURL, _ := url.Parse(o.srv.URL + oidcCallbackPath)
	replayer.Jar.SetCookies(cookieURL, []*http.Cookie{{Name: oidcFlowCookie, Value: b.flows[0], Path: oidcCallbackPath}})
	if r := replayer.get(flow); r.status != 400 || r.code() != "oidc_state" || replayer.session(o.srv) != "" {
		t.Errorf("replayed callback with its flow cookie: %d %s", r.status, r.body)
	}
	o.auth.oidc.used = usedStates{}
	replayer.Jar.SetCookies(cookieURL, []*http.Cookie{{Name: oidcFlowCookie, Value: b.flows[0], Path: oidcCallbackPath}})
	if r := replayer.get(flow); r.status != 401 || r.code() != "oidc_failed" || replayer.session(o.srv) != "" {
		t.Errorf("replayed callback with its flow cookie, state forgotten: %d %s", r.status, r.body)
	}
}

func TestOIDCDefaultReturnAndTamperedReturn(t *testing.T) {
	o := newOIDCFixture(t, Config{MFAOptional: true})
	o.createUser(t, "jane")
	for _, returnTo := range []string{"", "//evil.example/x", "https://evil.example/", "/\\evil.example", "relative"} {
		o.op.QueueUser(mockUser("jane"))
		b := o.browser(t)
		p := b.get(o.srv.URL + "/api/v1/auth/oidc/start?return_to=" + url.QueryEscape(returnTo))
		if p.status != 200 || p.url.Host != strings.TrimPrefix(o.srv.URL, "http://") || p.url.Path != "/" {
			t.Errorf("return_to %q: %d at %s", returnTo, p.status, p.url)
		}
	}
}

func TestOIDCRefusals(t *testing.T) {
	o := newOIDCFixture(t, Config{MFAOptional: true})
	o.createUser(t, "dora")
	o.submit(t, change.Op{Action: delegation.UserDisable, Target: directory.Ref{Kind: directory.KindUser, Name: "dora"}})
	// An ID-shaped claim must not reach a user by ID.
	admin := o.admin.ID
	for _, tc := range []struct {
		name, claim, reason string
	}{
		{"unknown user", "nobody", "oidc_no_user"},
		{"disabled user", "dora", "not_active"},
		{"a user's ID as the claim", admin, "oidc_no_user"},
		{"no claim", "", "oidc_no_user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o.op.QueueUser(mockUser(tc.claim))
			b := o.browser(t)
			p := b.get(o.srv.URL + "/api/v1/auth/oidc/start")
			if p.status != 401 || p.code() != "bad_credentials" || p.url.Path != oidcCallbackPath {
				t.Fatalf("%d at %s: %s", p.status, p.url, p.body)
			}
			if b.session(o.srv) != "" {
				t.Error("a refused sign-in left a session cookie")
			}
			if me := b.get(o.srv.URL + "/api/v1/me"); me.status != 401 {
				t.Errorf("GET /api/v1/me after a refused sign-in: %d", me.status)
			}
			ev := o.lastSignIn(t)
			if ev.Outcome != audit.Denied || ev.Reason != tc.reason {
				t.Errorf("event %+v, want denied %s", ev, tc.reason)
			}
		})
	}
}

// stopAtCallback makes b stop before following the provider's redirect to the callback.
func (b *browser) stopAtCallback() {
	b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == oidcCallbackPath {
			b.callbacks = append(b.callbacks, req.URL.String())
			return http.ErrUseLastResponse
		}
		return nil
	}
}

func TestOIDCStateChecks(t *testing.T) {
	o := newOIDCFixture(t, Config{MFAOptional: true})
	o.createUser(t, "jane")
	cookieURL, _ := url.Parse(o.srv.URL + oidcCallbackPath)
	for _, tc := range []struct {
		name   string
		tamper func(b *browser, callback string) string // returns the callback URL to visit
	}{
		{"tampered cookie", func(b *browser, cb string) string {
			v := []byte(b.cookie(o.srv, oidcFlowCookie, oidcCallbackPath))
			v[3] ^= 1
			b.Jar.SetCookies(cookieURL, []*http.Cookie{{Name: oidcFlowCookie, Value: string(v), Path: oidcCallbackPath}})
			return cb
		}},
		{"no cookie", func(b *browser, cb string) string {
			b.Jar.SetCookies(cookieURL, []*http.Cookie{{Name: oidcFlowCookie, Value: "", Path: oidcCallbackPath, MaxAge: -1}})
			return cb
		}},
		{"wrong state", func(b *browser, cb string) string {
			u, _ := url.Parse(cb)
			q := u.Query()
			q.Set("state", randomToken())
			u.RawQuery = q.Encode()
			return u.String()
		}},
		{"another browser's cookie", func(b *browser, cb string) string {
			other := o.browser(t)
			other.stopAtCallback()
			other.get(o.srv.URL + "/api/v1/auth/oidc/start")
			v := other.cookie(o.srv, oidcFlowCookie, oidcCallbackPath)
			b.Jar.SetCookies(cookieURL, []*http.Cookie{{Name: oidcFlowCookie, Value: v, Path: oidcCallbackPath}})
			return cb
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o.op.QueueUser(mockUser("jane"))
			o.op.QueueUser(mockUser("jane"))
			b := o.browser(t)
			b.stopAtCallback()
			if p := b.get(o.srv.URL + "/api/v1/auth/oidc/start"); p.status != http.StatusFound || len(b.callbacks) != 1 {
				t.Fatalf("start: %d %v", p.status, b.callbacks)
			}
			b.CheckRedirect = nil
			p := b.get(tc.tamper(b, b.callbacks[0]))
			if p.status != 400 || p.code() != "oidc_state" || b.session(o.srv) != "" {
				t.Errorf("%d %s, session %q", p.status, p.body, b.session(o.srv))
			}
		})
	}
}

// amrUser is a provider user whose ID tokens carry an amr claim.
type amrUser struct {
	mockoidc.MockUser
	amr []string
}

type amrClaims struct {
	*mockoidc.IDTokenClaims
	PreferredUsername string   `json:"preferred_username"`
	AMR               []string `json:"amr"`
}

func (u *amrUser) Claims(_ []string, c *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return &amrClaims{IDTokenClaims: c, PreferredUsername: u.PreferredUsername, AMR: u.amr}, nil
}

func TestOIDCSecondFactor(t *testing.T) {
	o := newOIDCFixture(t, Config{}) // holders of rights must have a second factor
	o.createUser(t, "plain")
	for _, tc := range []struct {
		name, user string
		amr        []string
		mfa        bool
		restricted string
		message    string
	}{
		{"a holder, mfa at the provider", "admin", []string{"pwd", "mfa"}, true, "", "oidc with a second factor at the provider"},
		{"a holder, hardware key", "admin", []string{"hwk"}, true, "", "oidc with a second factor at the provider"},
		{"a holder, password only", "admin", []string{"pwd"}, false, credential.RestrictEnrolMFA, "oidc; restricted to enrol mfa"},
		{"no rights, password only", "plain", []string{"pwd"}, false, "", "oidc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o.op.QueueUser(&amrUser{MockUser: *mockUser(tc.user), amr: tc.amr})
			b := o.browser(t)
			if p := b.get(o.srv.URL + "/api/v1/auth/oidc/start"); p.status != 200 || b.session(o.srv) == "" {
				t.Fatalf("sign-in: %d at %s: %s", p.status, p.url, p.body)
			}
			s := b.get(o.srv.URL + "/api/v1/auth/session")
			var view sessionView
			if err := json.Unmarshal([]byte(s.body), &view); err != nil || s.status != 200 {
				t.Fatalf("GET /api/v1/auth/session: %d %s", s.status, s.body)
			}
			if view.MFA != tc.mfa || view.Restricted != tc.restricted {
				t.Errorf("session mfa %v restricted %q; want %v %q", view.MFA, view.Restricted, tc.mfa, tc.restricted)
			}
			if ev := o.lastSignIn(t); ev.Message != tc.message {
				t.Errorf("event message %q, want %q", ev.Message, tc.message)
			}
		})
	}
}

func TestOIDCMethodsAndDisabled(t *testing.T) {
	o := newOIDCFixture(t, Config{MFAOptional: true})
	b := o.browser(t)
	if p := b.get(o.srv.URL + "/api/v1/auth/methods"); p.status != 200 || strings.TrimSpace(p.body) != `{"oidc":true,"password":true}` {
		t.Errorf("methods with OIDC: %d %s", p.status, p.body)
	}

	f := newFixture(t)
	f.auth.WithSessions(f.store, f.pipeline, nil, credential.PasswordPolicy{}, Config{MFAOptional: true})
	mux := http.NewServeMux()
	f.auth.Register(mux, f.pipeline)
	for path, want := range map[string]string{
		"/api/v1/auth/methods":    `{"oidc":false,"password":true}`,
		"/api/v1/auth/oidc/start": "oidc_disabled",
		oidcCallbackPath:          "oidc_disabled",
	} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if !strings.Contains(w.Body.String(), want) || (want == "oidc_disabled" && w.Code != 404) {
			t.Errorf("GET %s without OIDC: %d %s", path, w.Code, w.Body)
		}
	}
	if _, err := f.auth.WithOIDC(context.Background(), OIDCConfig{Issuer: o.srv.URL + "/nowhere", ClientID: "x",
		RedirectURL: o.srv.URL + oidcCallbackPath}); err == nil {
		t.Error("WithOIDC with an issuer that has no discovery document succeeded")
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                                     "/",
		"/":                                    "/",
		"/portal?x=1#y":                        "/portal?x=1#y",
		"//evil.example":                       "/",
		"/\\evil.example":                      "/",
		"/\t/evil.example":                     "/",
		"https://evil/":                        "/",
		"portal":                               "/",
		"/%2F%2Fevil":                          "/%2F%2Fevil",
		"/" + strings.Repeat("a", maxReturnTo): "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAMRHasMFA(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want bool
	}{
		{nil, false}, {[]any{"pwd"}, false}, {[]any{"pwd", "otp"}, true}, {[]any{"mfa"}, true}, {"hwk", true}, {[]any{1}, false},
	} {
		if got := amrHasMFA(tc.v); got != tc.want {
			t.Errorf("amrHasMFA(%v) = %v", tc.v, got)
		}
	}
}

// TestOIDCNonceAndVerifier signs flow cookies that carry the right state but another nonce or
// PKCE verifier: the ID token's nonce and the provider's PKCE check refuse them.
func TestOIDCNonceAndVerifier(t *testing.T) {
	o := newOIDCFixture(t, Config{MFAOptional: true})
	o.createUser(t, "jane")
	cookieURL, _ := url.Parse(o.srv.URL + oidcCallbackPath)
	for name, change := range map[string]func(f *oidcFlow){
		"another nonce":    func(f *oidcFlow) { f.Nonce = randomToken() },
		"another verifier": func(f *oidcFlow) { f.Verifier = randomToken() },
	} {
		t.Run(name, func(t *testing.T) {
			o.op.QueueUser(mockUser("jane"))
			b := o.browser(t)
			b.stopAtCallback()
			b.get(o.srv.URL + "/api/v1/auth/oidc/start")
			f, ok := o.auth.oidc.open(b.cookie(o.srv, oidcFlowCookie, oidcCallbackPath), o.auth.now())
			if !ok || len(b.callbacks) != 1 {
				t.Fatalf("no flow cookie after start")
			}
			change(&f)
			b.Jar.SetCookies(cookieURL, []*http.Cookie{{Name: oidcFlowCookie, Value: o.auth.oidc.seal(f), Path: oidcCallbackPath}})
			b.CheckRedirect = nil
			if p := b.get(b.callbacks[0]); p.status != 401 || p.code() != "oidc_failed" || b.session(o.srv) != "" {
				t.Errorf("%d %s", p.status, p.body)
			}
		})
	}
}
