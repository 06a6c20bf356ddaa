package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/app"
	"github.com/deputy-iam/deputy/internal/config"
)

// portal is a real Deputy behind an HTTP server, with the admin's API token for set-up.
type portal struct {
	t     *testing.T
	srv   *httptest.Server
	token string
	app   *app.App
	dir   string // the data directory
}

// newPortal serves a fresh installation on SQLite, second factors optional.
func newPortal(t *testing.T) *portal {
	t.Helper()
	return newPortalWith(t, nil, nil)
}

// newPortalWith is newPortal with its configuration changed by configure, and ready run after
// init, before the server starts (each may be nil).
func newPortalWith(t *testing.T, configure func(*config.Config), ready func(a *app.App, dir string)) *portal {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Config{DataDir: dir, SigningKey: filepath.Join(dir, "audit-signing.key"), Addr: "127.0.0.1:0",
		LogLevel: "error", LogFormat: "text", ShutdownTimeout: 5 * time.Second, MFA: "optional"}
	if configure != nil {
		configure(&cfg)
	}
	a, err := app.Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err := a.Init(context.Background(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	if ready != nil {
		ready(a, dir)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &portal{t: t, srv: srv, token: b.Token, app: a, dir: dir}
}

// api calls the REST API as the admin.
func (p *portal) api(method, path string, body any) map[string]any {
	p.t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, p.srv.URL+path, strings.NewReader(string(raw)))
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode >= 300 {
		p.t.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, out)
	}
	return out
}

// person is a browser signed in to the portal as a user whose password was set for the test.
type person struct {
	p *portal
	c *http.Client
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func (p *portal) signedIn(username string) *person {
	p.t.Helper()
	temp := p.api("POST", "/api/v1/users/"+username+"/reset-password", nil)["temporary_password"].(string)
	jar, _ := cookiejar.New(nil)
	who := &person{p: p, c: &http.Client{Jar: jar}}
	body := who.post("/sign-in", url.Values{"username": {username}, "password": {temp}}, false)
	if !strings.Contains(body, "Change your password") {
		p.t.Fatalf("a temporary password's sign-in did not ask for a change:\n%s", body)
	}
	body = who.post("/password", url.Values{"current_password": {temp}, "new_password": {"a new and quite long passphrase"},
		"confirm": {"a new and quite long passphrase"}}, true)
	body = who.post("/sign-in", url.Values{"username": {username}, "password": {"a new and quite long passphrase"}}, false)
	if !strings.Contains(body, "Hello, "+username) {
		p.t.Fatalf("sign-in with the new password:\n%s", body)
	}
	return who
}

func (w *person) get(path string) (int, string) {
	w.p.t.Helper()
	resp, err := w.c.Get(w.p.srv.URL + path)
	if err != nil {
		w.p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// post sends a form (with the CSRF token of the home page when csrf is set) and returns the
// page it ends on.
func (w *person) post(path string, form url.Values, csrf bool) string {
	w.p.t.Helper()
	if csrf {
		_, home := w.get("/password")
		if m := csrfField.FindStringSubmatch(home); m != nil {
			form.Set("csrf_token", m[1])
		}
	}
	resp, err := w.c.PostForm(w.p.srv.URL+path, form)
	if err != nil {
		w.p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestPortalPages: the portal shows people within what one may see, a person's page offers only
// the actions one may take, and a form without the session's CSRF token is refused.
func TestPortalPages(t *testing.T) {
	p := newPortal(t)
	p.api("POST", "/api/v1/ous", map[string]any{"name": "sales"})
	p.api("POST", "/api/v1/ous", map[string]any{"name": "finance"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "hank", "ou": "/"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "sally", "ou": "sales", "display_name": "Sally Sales"})
	p.api("POST", "/api/v1/users", map[string]any{"username": "fred", "ou": "finance"})
	p.api("POST", "/api/v1/assignments", map[string]any{"role": "helpdesk", "holder": map[string]any{"user": "hank"},
		"scope": map[string]any{"ou": "sales"}, "justification": "desk"})
	hank := p.signedIn("hank")
	if code, _ := hank.get("/"); code != 200 {
		t.Fatalf("home: %d", code)
	}
	_, people := hank.get("/users")
	if !strings.Contains(people, ">sally<") || strings.Contains(people, ">fred<") {
		t.Fatalf("people:\n%s", people)
	}
	if code, _ := hank.get("/users/fred"); code != 404 {
		t.Fatalf("fred's page for hank: %d", code)
	}
	_, sally := hank.get("/users/sally")
	if !strings.Contains(sally, "Reset password") || strings.Contains(sally, ">Disable<") {
		t.Fatalf("sally's page offers:\n%s", sally)
	}
	// Without the token, a form post is refused.
	resp, err := hank.c.PostForm(p.srv.URL+"/users/sally/unlock", url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("a post without the CSRF token: %d", resp.StatusCode)
	}
	// Without a session, pages send to sign in.
	anon := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// Every page forbids script and framing.
	resp, err = anon.Get(p.srv.URL + "/sign-in")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("the sign-in page's Content-Security-Policy: %q", csp)
	}
	resp, err = anon.Get(p.srv.URL + "/users")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/sign-in") {
		t.Fatalf("without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}
