package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// browser is a client with a cookie jar, as a portal user's browser.
type browser struct {
	t    *testing.T
	e    *env
	c    *http.Client
	csrf string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, e: e, c: &http.Client{Jar: jar}}
}

// do sends a JSON request with the session cookie (and the CSRF token once known).
func (b *browser) do(method, path string, body any, header ...string) *response {
	b.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = strings.NewReader(string(raw))
	}
	req, _ := http.NewRequest(method, b.e.srv.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if b.csrf != "" {
		req.Header.Set("X-CSRF-Token", b.csrf)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// signIn signs in and keeps the CSRF token; it returns the answer.
func (b *browser) signIn(user, password, code string) *response {
	b.t.Helper()
	r := b.do("POST", "/api/v1/auth/sign-in", map[string]string{"username": user, "password": password, "totp": code})
	if r.Status == 200 {
		b.csrf, _ = r.JSON(b.t)["csrf_token"].(string)
	}
	return r
}

// setPassword gives username a password of their own: the admin resets it, they sign in with
// the temporary one (a session that may only change it) and change it.
// setPassword has the admin reset a user's password and the user change it; header, when
// given, goes with the reset (a step-up code).
func (e *env) setPassword(username, password string, header ...map[string]string) {
	e.t.Helper()
	req := request{Method: "POST", Path: "/api/v1/users/" + username + "/reset-password"}
	if len(header) > 0 {
		req.Header = header[0]
	}
	r := e.do(req)
	if r.Status != 200 {
		e.t.Fatalf("reset %s's password: %d %s", username, r.Status, r.Body)
	}
	temp, _ := r.JSON(e.t)["temporary_password"].(string)
	b := e.browser()
	r = b.signIn(username, temp, "")
	if r.Status != 200 || r.JSON(e.t)["restricted"] != "change_password" {
		e.t.Fatalf("sign-in with the temporary password: %d %s", r.Status, r.Body)
	}
	if r := b.do("GET", "/api/v1/users", nil); r.Status != 403 || r.Problem(e.t).Code != "password_change_required" {
		e.t.Fatalf("a restricted session reads users: %d %s", r.Status, r.Body)
	}
	if r := b.do("POST", "/api/v1/me/password", map[string]string{"current_password": temp, "new_password": password}); r.Status != 200 {
		e.t.Fatalf("change the temporary password: %d %s", r.Status, r.Body)
	}
}

func TestSignIn(t *testing.T) {
	e := newEnv(t)
	e.newUser("ursula", map[string]any{"email": "ursula@example.com"})
	e.setPassword("ursula", "correct horse battery staple")
	b := e.browser()
	if r := b.signIn("ursula", "correct horse battery staple", ""); r.Status != 200 || r.JSON(t)["restricted"] != nil {
		t.Fatalf("sign-in: %d %s", r.Status, r.Body)
	}
	if r := b.do("GET", "/api/v1/me", nil); r.Status != 200 || r.JSON(t)["last_sign_in"] == nil {
		t.Fatalf("me, with the last sign-in: %d %s", r.Status, r.Body)
	}
	// A state-changing request without the CSRF token is refused.
	token := b.csrf
	b.csrf = ""
	if r := b.do("POST", "/api/v1/users/ursula/tokens", map[string]any{"name": "x"}); r.Status != 403 || r.Problem(t).Code != "csrf" {
		t.Fatalf("without the CSRF token: %d %s", r.Status, r.Body)
	}
	b.csrf = token
	if r := b.do("POST", "/api/v1/users/ursula/tokens", map[string]any{"name": "x"}); r.Status != 201 {
		t.Fatalf("with it: %d %s", r.Status, r.Body)
	}
	// Disabling the user ends their sessions at once: a session not used while the user was
	// disabled does not come back when they are enabled again.
	other := e.browser()
	if r := other.signIn("ursula", "correct horse battery staple", ""); r.Status != 200 {
		t.Fatalf("a second sign-in: %d %s", r.Status, r.Body)
	}
	e.must(200, "POST", "/api/v1/users/ursula/disable", nil)
	if r := b.do("GET", "/api/v1/me", nil); r.Status != 401 {
		t.Fatalf("a disabled user's session: %d %s", r.Status, r.Body)
	}
	e.must(200, "POST", "/api/v1/users/ursula/enable", nil)
	if r := other.do("GET", "/api/v1/me", nil); r.Status != 401 {
		t.Fatalf("the session of a user disabled and enabled again: %d %s", r.Status, r.Body)
	}
	// Signing out ends it too, and the old cookie does not come back to life.
	b2 := e.browser()
	b2.signIn("ursula", "correct horse battery staple", "")
	if r := b2.do("POST", "/api/v1/auth/sign-out", nil); r.Status != 204 {
		t.Fatalf("sign out: %d %s", r.Status, r.Body)
	}
	if r := b2.do("GET", "/api/v1/me", nil); r.Status != 401 {
		t.Fatalf("after sign-out: %d", r.Status)
	}
	// Session fixation: a session ID planted before sign-in is not the one sign-in gives, and
	// is worth nothing.
	b3 := e.browser()
	planted := &http.Cookie{Name: "deputy_session", Value: strings.Repeat("ab", 32), Path: "/"}
	u, _ := url.Parse(e.srv.URL)
	b3.c.Jar.SetCookies(u, []*http.Cookie{planted})
	b3.signIn("ursula", "correct horse battery staple", "")
	for _, c := range b3.c.Jar.Cookies(u) {
		if c.Name == "deputy_session" && c.Value == planted.Value {
			t.Fatal("sign-in kept the planted session ID")
		}
	}
	b4 := e.browser()
	b4.c.Jar.SetCookies(u, []*http.Cookie{planted})
	if r := b4.do("GET", "/api/v1/me", nil); r.Status != 401 {
		t.Fatalf("the planted ID: %d", r.Status)
	}
	// Sign-ins and failures are audit events.
	evs := e.events(url.Values{"action": {"auth.sign_in"}, "target": {"ursula"}})
	if len(evs) < 2 {
		t.Fatalf("sign-in events: %v", evs)
	}
}

// TestBruteForce: ten wrong passwords lock the account (the right one is refused then, and the
// answer is the same as for a wrong one or a user who does not exist); an unlock opens it.
func TestBruteForce(t *testing.T) {
	e := newEnv(t)
	e.newUser("victor", nil)
	e.setPassword("victor", "a long and secret phrase")
	b := e.browser()
	var wrong *response
	for i := range 10 {
		wrong = b.do("POST", "/api/v1/auth/sign-in", map[string]string{"username": "victor", "password": "guess" + string(rune('a'+i))},
			"X-Forwarded-For", "203.0.113."+string(rune('1'+i%9)))
		if wrong.Status != 401 {
			t.Fatalf("guess %d: %d %s", i, wrong.Status, wrong.Body)
		}
	}
	right := b.do("POST", "/api/v1/auth/sign-in", map[string]string{"username": "victor", "password": "a long and secret phrase"})
	nobody := b.do("POST", "/api/v1/auth/sign-in", map[string]string{"username": "nobody-at-all", "password": "whatever it is"})
	for _, r := range []*response{right, nobody} {
		if r.Status != wrong.Status || string(r.Body) != string(wrong.Body) {
			t.Fatalf("answers differ: %d %s / %d %s", r.Status, r.Body, wrong.Status, wrong.Body)
		}
	}
	// Timing: a user who does not exist costs a password hash too. Measured interleaved, so
	// that load from other tests falls on both alike; the faster of two each (the throttle
	// allows this address few more attempts).
	var known, unknown []time.Duration
	for range 2 {
		for _, who := range []string{"victor", "nobody-at-all"} {
			start := time.Now()
			e.browser().do("POST", "/api/v1/auth/sign-in", map[string]string{"username": who, "password": "not it at all"})
			if who == "victor" {
				known = append(known, time.Since(start))
			} else {
				unknown = append(unknown, time.Since(start))
			}
		}
	}
	slices.Sort(known)
	slices.Sort(unknown)
	if k, u := known[0], unknown[0]; u < k/4 || k < u/4 {
		t.Fatalf("sign-in timing tells users apart: known %s, unknown %s", k, u)
	}
	e.must(200, "POST", "/api/v1/users/victor/unlock", nil)
	if r := e.browser().signIn("victor", "a long and secret phrase", ""); r.Status != 200 {
		t.Fatalf("after the unlock: %d %s", r.Status, r.Body)
	}
}

// TestMFA: a holder of a role must enrol an authenticator before their session may do
// anything; then sign-in asks for the code, and a step-up refreshes it.
func TestMFA(t *testing.T) {
	e := newEnvConfig(t, nil)
	e.newUser("helga", nil)
	// A takeover action needs the caller's own fresh second factor: the admin (a token from
	// init, no authenticator) enrols one first.
	if r := e.do(request{Method: "POST", Path: "/api/v1/users/helga/reset-password"}); r.Status != 403 || r.Problem(t).Code != "mfa_enrolment_required" {
		t.Fatalf("a reset by an admin without an authenticator: %d %s", r.Status, r.Body)
	}
	// Three admin codes follow (steps now-1, now, now+1 of the ±1-step window): start them
	// early in a step so that none falls out of the window before it is used.
	if left := 30 - time.Now().Unix()%30; left < 5 {
		time.Sleep(time.Duration(left) * time.Second)
	}
	t0 := time.Now()
	r := e.do(request{Method: "POST", Path: "/api/v1/me/mfa"})
	au, err := url.Parse(r.JSON(t)["otpauth_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	adminSecret := au.Query().Get("secret")
	code, _ := totp.GenerateCode(adminSecret, t0.Add(-30*time.Second))
	if r := e.do(request{Method: "POST", Path: "/api/v1/me/mfa/confirm", Body: map[string]string{"code": code}}); r.Status != 204 {
		t.Fatalf("admin confirm: %d %s", r.Status, r.Body)
	}
	if r := e.do(request{Method: "POST", Path: "/api/v1/users/helga/reset-password"}); r.Status != 403 || r.Problem(t).Code != "step_up_required" {
		t.Fatalf("a reset without a code: %d %s", r.Status, r.Body)
	}
	code, _ = totp.GenerateCode(adminSecret, t0)
	e.setPassword("helga", "another long secret phrase", map[string]string{"Deputy-TOTP": code})
	e.must(201, "POST", "/api/v1/assignments", map[string]any{"role": "reader", "holder": map[string]any{"user": "helga"},
		"scope": map[string]any{"ou": "/"}, "justification": "reads"})
	b := e.browser()
	r = b.signIn("helga", "another long secret phrase", "")
	if r.Status != 200 || r.JSON(t)["restricted"] != "enrol_mfa" {
		t.Fatalf("a holder's first sign-in: %d %s", r.Status, r.Body)
	}
	if r := b.do("GET", "/api/v1/users", nil); r.Status != 403 || r.Problem(t).Code != "mfa_enrolment_required" {
		t.Fatalf("before enrolling: %d %s", r.Status, r.Body)
	}
	r = b.do("POST", "/api/v1/me/mfa", nil)
	if r.Status != 200 {
		t.Fatalf("enrol: %d %s", r.Status, r.Body)
	}
	u, err := url.Parse(r.JSON(t)["otpauth_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	secret := u.Query().Get("secret")
	code, _ = totp.GenerateCode(secret, time.Now())
	r = b.do("POST", "/api/v1/me/mfa/confirm", map[string]string{"code": code})
	if r.Status != 200 {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	b.csrf, _ = r.JSON(t)["csrf_token"].(string)
	if r := b.do("GET", "/api/v1/users", nil); r.Status != 200 {
		t.Fatalf("after enrolling: %d %s", r.Status, r.Body)
	}
	b2 := e.browser()
	if r := b2.signIn("helga", "another long secret phrase", ""); r.Status != 401 || r.Problem(t).Code != "mfa_required" {
		t.Fatalf("without a code: %d %s", r.Status, r.Body)
	}
	if r := b2.signIn("helga", "another long secret phrase", "000000"); r.Status != 401 {
		t.Fatalf("with a wrong code: %d %s", r.Status, r.Body)
	}
	// The code just used cannot be used again (replay); the next step's can.
	next, _ := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	if r := b2.signIn("helga", "another long secret phrase", next); r.Status != 200 {
		t.Fatalf("with the next code: %d %s", r.Status, r.Body)
	}
	// A lost authenticator: the admin removes it; helga's sessions end, and she enrols anew.
	code, _ = totp.GenerateCode(adminSecret, t0.Add(30*time.Second))
	if r := e.do(request{Method: "POST", Path: "/api/v1/users/helga/reset-mfa", Header: map[string]string{"Deputy-TOTP": code}}); r.Status != 204 {
		t.Fatalf("reset-mfa: %d %s", r.Status, r.Body)
	}
	if r := b2.do("GET", "/api/v1/me", nil); r.Status != 401 {
		t.Fatalf("a session after the reset: %d", r.Status)
	}
	if r := e.browser().signIn("helga", "another long secret phrase", ""); r.Status != 200 || r.JSON(t)["restricted"] != "enrol_mfa" {
		t.Fatalf("sign-in after the reset: %d %s", r.Status, r.Body)
	}
	// The admin's code was just used: a replay is refused.
	if r := e.do(request{Method: "POST", Path: "/api/v1/users/helga/reset-mfa", Header: map[string]string{"Deputy-TOTP": code}}); r.Status != 403 || r.Problem(t).Code != "step_up_required" {
		t.Fatalf("a replayed step-up code: %d %s", r.Status, r.Body)
	}
}

// TestDelegatedReset: a helpdesk agent resets a user's password (shown once, to be changed at
// the next sign-in); not the password of someone who holds more than they do; and with a role
// that asks for it, only after the user read out a code.
func TestDelegatedReset(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/api/v1/ous", map[string]any{"name": "sales"})
	e.newUser("hank", nil)
	e.newUser("sally", map[string]any{"ou": "sales", "email": "sally@example.com"})
	e.newUser("rita", map[string]any{"ou": "sales"})
	e.tokenFor("hank")
	e.must(201, "POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "hank"},
		"scope": map[string]any{"ou": "sales"}, "justification": "desk"})
	e.must(201, "POST", "/api/v1/assignments", map[string]any{"role": "hr", "holder": map[string]any{"user": "rita"},
		"scope": map[string]any{"ou": "/"}, "justification": "hr"})
	r := e.do(request{Method: "POST", Path: "/api/v1/users/sally/reset-password", As: "hank"})
	if r.Status != 200 || r.JSON(t)["temporary_password"] == "" {
		t.Fatalf("reset: %d %s", r.Status, r.Body)
	}
	temp := r.JSON(t)["temporary_password"].(string)
	if strings.Contains(string(e.do(request{Method: "GET", Path: "/api/v1/audit/export"}).Body), temp) {
		t.Fatal("the temporary password is in the audit log")
	}
	if r := e.browser().signIn("sally", temp, ""); r.Status != 200 || r.JSON(t)["restricted"] != "change_password" {
		t.Fatalf("sign-in with the temporary password: %d %s", r.Status, r.Body)
	}
	if r := e.do(request{Method: "POST", Path: "/api/v1/users/rita/reset-password", As: "hank"}); r.Status != 403 || r.Problem(t).Code != "escalation" {
		t.Fatalf("a reset upwards: %d %s", r.Status, r.Body)
	}
	// A copy of helpdesk that asks for verification.
	if out := e.must(201, "POST", "/api/v1/roles", map[string]any{"name": "careful-desk", "copy_of": "helpdesk", "verify_identity": true}); out["verify_identity"] != true {
		t.Fatalf("the role as created: %v", out)
	}
	e.newUser("vera", nil)
	e.tokenFor("vera")
	e.must(201, "POST", "/api/v1/assignments", map[string]any{"role": "careful-desk", "holder": map[string]any{"user": "vera"},
		"scope": map[string]any{"ou": "sales"}, "justification": "desk"})
	if r := e.do(request{Method: "POST", Path: "/api/v1/users/sally/reset-password", As: "vera"}); r.Status != 403 ||
		r.Problem(t).Code != "verification_required" {
		t.Fatalf("a reset without verification: %d %s", r.Status, r.Body)
	}
	// Who can reset sally's password: vera too, after the identity check.
	who := e.do(request{Method: "GET", Path: "/api/v1/authz/who-can?action=user.reset_password&target=sally"})
	if !slices.ContainsFunc(who.Items(t), func(it map[string]any) bool {
		return it["actor"].(map[string]any)["name"] == "vera" && it["verification_required"] == true
	}) {
		t.Fatalf("who-can does not list vera as able after verification: %s", who.Body)
	}
	if r := e.do(request{Method: "POST", Path: "/api/v1/users/sally/verification", As: "vera", Body: map[string]string{"channel": "email"}}); r.Status != 200 {
		t.Fatalf("send a code: %d %s", r.Status, r.Body)
	}
	if r := e.do(request{Method: "POST", Path: "/api/v1/users/sally/reset-password", As: "vera",
		Body: map[string]string{"verification": "000000"}}); r.Status != 422 {
		t.Fatalf("a wrong code: %d %s", r.Status, r.Body)
	}
	code := e.outboxCode(t, "identity_verification")
	if r := e.do(request{Method: "POST", Path: "/api/v1/users/sally/reset-password", As: "vera",
		Body: map[string]string{"verification": code}}); r.Status != 200 {
		t.Fatalf("a verified reset: %d %s", r.Status, r.Body)
	}
	// Wrong codes count, although each reset fails: after five, even the right code is refused.
	if r := e.do(request{Method: "POST", Path: "/api/v1/users/sally/verification", As: "vera", Body: map[string]string{"channel": "email"}}); r.Status != 200 {
		t.Fatalf("send a second code: %d %s", r.Status, r.Body)
	}
	code = e.outboxCode(t, "identity_verification")
	for i := 0; i < 5; i++ {
		if r := e.do(request{Method: "POST", Path: "/api/v1/users/sally/reset-password", As: "vera",
			Body: map[string]string{"verification": "wrong"}}); r.Status != 422 {
			t.Fatalf("wrong code %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	if r := e.do(request{Method: "POST", Path: "/api/v1/users/sally/reset-password", As: "vera",
		Body: map[string]string{"verification": code}}); r.Status != 422 || !strings.Contains(string(r.Body), "too many wrong codes") {
		t.Fatalf("the right code after five wrong ones: %d %s", r.Status, r.Body)
	}
}

// TestForgottenPassword: the answer never says whether an account exists; the code from the
// recovery email sets a new password.
func TestForgottenPassword(t *testing.T) {
	e := newEnv(t)
	e.newUser("fiona", map[string]any{"email": "fiona@example.com"})
	e.setPassword("fiona", "the first long password")
	b := e.browser()
	known := b.do("POST", "/api/v1/auth/forgot-password", map[string]string{"username": "fiona"})
	unknown := b.do("POST", "/api/v1/auth/forgot-password", map[string]string{"username": "nobody-here"})
	if known.Status != 202 || unknown.Status != 202 || string(known.Body) != string(unknown.Body) {
		t.Fatalf("answers differ: %d %s / %d %s", known.Status, known.Body, unknown.Status, unknown.Body)
	}
	code := e.outboxCode(t, "password_recovery")
	if r := b.do("POST", "/api/v1/auth/reset-password", map[string]string{"username": "fiona", "code": "999999",
		"new_password": "a brand new long password"}); r.Status != 400 {
		t.Fatalf("a wrong code: %d %s", r.Status, r.Body)
	}
	if r := b.do("POST", "/api/v1/auth/reset-password", map[string]string{"username": "fiona", "code": code,
		"new_password": "password1234"}); r.Status != 422 {
		t.Fatalf("a common password: %d %s", r.Status, r.Body)
	}
	if r := b.do("POST", "/api/v1/auth/reset-password", map[string]string{"username": "fiona", "code": code,
		"new_password": "a brand new long password"}); r.Status != 204 {
		t.Fatalf("reset: %d %s", r.Status, r.Body)
	}
	if r := e.browser().signIn("fiona", "a brand new long password", ""); r.Status != 200 {
		t.Fatalf("sign-in with the new password: %d %s", r.Status, r.Body)
	}
}

// outboxCode reads the six-digit code of the newest notification of kind.
func (e *env) outboxCode(t *testing.T, kind string) string {
	t.Helper()
	body := e.outboxBody(t, kind)
	i := strings.Index(body, "code is ")
	if i < 0 {
		t.Fatalf("no code in the %s notification: %q", kind, body)
	}
	return body[i+8 : i+14]
}

// outboxBody returns the body of the latest notification of kind.
func (e *env) outboxBody(t *testing.T, kind string) string {
	t.Helper()
	msgs, err := e.app.Store.Outbox(t.Context(), "notify", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		var n struct{ Kind, Body string }
		if json.Unmarshal(msgs[i].Payload, &n) == nil && n.Kind == kind {
			return n.Body
		}
	}
	t.Fatalf("no %s notification", kind)
	return ""
}

// TestThrottle: one address cannot keep guessing fast, whichever accounts it tries.
func TestThrottle(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	codes := map[int]int{}
	for i := range 25 {
		r := b.do("POST", "/api/v1/auth/sign-in", map[string]string{"username": "user" + string(rune('a'+i)), "password": "nope nope nope"})
		codes[r.Status]++
	}
	if codes[429] == 0 || codes[401] == 0 {
		t.Fatalf("answers: %v", codes)
	}
}

// TestResetLink: a delegate's reset can go as a one-time link instead of a temporary password:
// to the user's manager (never for a holder of rights) or to the user's own address. The link
// sets the password once; the delegate and the audit trail never see its code.
func TestResetLink(t *testing.T) {
	e := newEnv(t)
	e.newUser("mia", nil)
	e.newUser("sam", map[string]any{"manager": "mia", "email": "sam@example.com"})
	e.newUser("nemo", nil)
	r := e.do(request{Method: "POST", Path: "/api/v1/users/sam/reset-password", Body: map[string]string{"deliver": "manager"}})
	if r.Status != 200 || r.JSON(t)["delivered_to"] != "manager" || r.JSON(t)["temporary_password"] != nil {
		t.Fatalf("a reset link to the manager: %d %s", r.Status, r.Body)
	}
	link := e.outboxLink(t, "password_reset_link")
	u, err := url.Parse(link)
	if err != nil || u.Path != "/activate" || u.Query().Get("user") != "sam" || len(u.Query().Get("code")) != 64 {
		t.Fatalf("the link: %q (%v)", link, err)
	}
	code := u.Query().Get("code")
	if strings.Contains(string(e.do(request{Method: "GET", Path: "/api/v1/audit/export"}).Body), code) {
		t.Fatal("the link's code is in the audit log")
	}
	if r := e.browser().do("POST", "/api/v1/auth/reset-password", map[string]string{"username": "sam", "code": code,
		"new_password": "a chosen long passphrase here"}); r.Status != 204 {
		t.Fatalf("the link sets the password: %d %s", r.Status, r.Body)
	}
	if r := e.browser().signIn("sam", "a chosen long passphrase here", ""); r.Status != 200 {
		t.Fatalf("sign-in with the new password: %d %s", r.Status, r.Body)
	}
	if r := e.browser().do("POST", "/api/v1/auth/reset-password", map[string]string{"username": "sam", "code": code,
		"new_password": "another long passphrase here"}); r.Status == 204 {
		t.Fatal("the link worked twice")
	}
	// To the user's own address.
	if r := e.do(request{Method: "POST", Path: "/api/v1/users/sam/reset-password", Body: map[string]string{"deliver": "email"}}); r.Status != 200 {
		t.Fatalf("a reset link to the user's address: %d %s", r.Status, r.Body)
	}
	// Refused: no address, no manager, an unknown way, and a holder of rights to their manager.
	for _, c := range []struct{ user, deliver string }{{"nemo", "email"}, {"nemo", "manager"}, {"sam", "pigeon"}} {
		if r := e.do(request{Method: "POST", Path: "/api/v1/users/" + c.user + "/reset-password", Body: map[string]string{"deliver": c.deliver}}); r.Status != 422 {
			t.Errorf("deliver %s for %s: %d %s", c.deliver, c.user, r.Status, r.Body)
		}
	}
	e.must(201, "POST", "/api/v1/assignments", map[string]any{"role": "reader", "holder": map[string]any{"user": "sam"},
		"scope": map[string]any{"ou": "/"}, "justification": "reads"})
	if r := e.do(request{Method: "POST", Path: "/api/v1/users/sam/reset-password", Body: map[string]string{"deliver": "manager"}}); r.Status != 422 ||
		!strings.Contains(string(r.Body), "holds rights") {
		t.Fatalf("a holder's link to their manager: %d %s", r.Status, r.Body)
	}
}

// outboxLink returns the link that ends the latest notification of kind.
func (e *env) outboxLink(t *testing.T, kind string) string {
	t.Helper()
	body := e.outboxBody(t, kind)
	return body[strings.LastIndex(body, "\n")+1:]
}
