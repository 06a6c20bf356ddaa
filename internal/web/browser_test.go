package web_test

// Browser tests: the portal's journeys in a real headless Chromium, driven by chromedp, against
// a real Deputy (SQLite in a temporary directory) behind httptest. They need a chromium binary
// (the Debian package "chromium"); without one they skip, unless DEPUTY_REQUIRE_INTEGRATION=1,
// where they fail. With DEPUTY_SCREENSHOTS=1 they also write docs/screenshots/*.png:
//
//	DEPUTY_SCREENSHOTS=1 go test ./internal/web -run Browser

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deputy-iam/deputy/internal/app"
	"github.com/deputy-iam/deputy/internal/config"
)

const (
	// requireIntegrationEnv, set to 1, turns a missing browser from a skip into a failure (the
	// project's rule for integration tests; see internal/store/storetest).
	requireIntegrationEnv = "DEPUTY_REQUIRE_INTEGRATION"
	// screenshotsEnv, set to 1, makes the journeys write docs/screenshots/*.png.
	screenshotsEnv = "DEPUTY_SCREENSHOTS"
	// journeyTimeout bounds each test, browser start included.
	journeyTimeout = 60 * time.Second
)

// chromiumPath returns the browser to drive: chromium (or a relative) on PATH, or
// /usr/bin/chromium; "" when there is none.
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	return ""
}

// needChromium returns the browser's path, or skips the test (fails it under
// DEPUTY_REQUIRE_INTEGRATION=1) when there is none.
func needChromium(t *testing.T) string {
	t.Helper()
	p := chromiumPath()
	if p == "" {
		if os.Getenv(requireIntegrationEnv) == "1" {
			t.Fatalf("%s is 1 but no chromium was found on PATH or at /usr/bin/chromium; install it (apt-get install chromium)",
				requireIntegrationEnv)
		}
		t.Skip("browser tests skipped: no chromium on PATH or at /usr/bin/chromium (install the Debian package chromium)")
	}
	return p
}

// journeyEnv is a real Deputy behind a real HTTP server, initialized with the tier-0 admin
// "admin", and the REST client a test sets up with (as the admin, with the admin's API token).
type journeyEnv struct {
	t     *testing.T
	ctx   context.Context
	app   *app.App
	srv   *httptest.Server
	token string
	// chromium is the browser binary.
	chromium string
}

// startJourney starts a test, in parallel with the other journeys: it finds the browser, bounds
// the test by journeyTimeout, and starts Deputy. mfa is the config's MFA setting ("optional"
// spares role holders the TOTP enrolment); policies installs the default approval policies.
func startJourney(t *testing.T, mfa string, policies bool) *journeyEnv {
	t.Helper()
	t.Parallel() // each journey has its own Deputy and its own Chromium
	chromium := needChromium(t)
	ctx, cancel := context.WithTimeout(t.Context(), journeyTimeout)
	t.Cleanup(cancel)
	dir := t.TempDir()
	cfg := config.Config{DataDir: dir, SigningKey: filepath.Join(dir, "audit-signing.key"),
		CheckpointFile: filepath.Join(dir, "audit-checkpoints"), Addr: "127.0.0.1:0",
		LogLevel: "error", LogFormat: "text", ShutdownTimeout: 5 * time.Second, MFA: mfa}
	a, err := app.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open app: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close app: %v", err)
		}
	})
	b, err := a.Init(ctx, "admin")
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	if policies {
		if err := a.PreparePolicies(ctx); err != nil {
			t.Fatalf("policies: %v", err)
		}
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &journeyEnv{t: t, ctx: ctx, app: a, srv: srv, token: b.Token, chromium: chromium}
}

// call sends a JSON request to the REST API as the admin and returns the status and the
// decoded body (nil when empty or not an object).
func (p *journeyEnv) call(method, path string, body any) (int, map[string]any) {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			p.t.Fatalf("encode: %v", err)
		}
		rd = strings.NewReader(string(raw))
	}
	req, err := http.NewRequestWithContext(p.ctx, method, p.srv.URL+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Deputy-Justification", "browser test set-up")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.srv.Client().Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return resp.StatusCode, m
}

// must is call that fails the test unless the status is want.
func (p *journeyEnv) must(want int, method, path string, body any) map[string]any {
	p.t.Helper()
	status, m := p.call(method, path, body)
	if status != want {
		p.t.Fatalf("%s %s: status %d, want %d: %v", method, path, status, want, m)
	}
	return m
}

// newUser creates a user in ou with the given extra attributes.
func (p *journeyEnv) newUser(username, ou string, extra map[string]any) {
	p.t.Helper()
	body := map[string]any{"username": username, "ou": ou, "display_name": strings.ToUpper(username[:1]) + username[1:]}
	for k, v := range extra {
		body[k] = v
	}
	p.must(http.StatusCreated, "POST", "/api/v1/users", body)
}

// assign gives holder (a user, or a group as "group:name") role over the OU path ou, and
// returns the assignment's ID.
func (p *journeyEnv) assign(role, holder, ou string) string {
	p.t.Helper()
	h := map[string]any{"user": holder}
	if g, ok := strings.CutPrefix(holder, "group:"); ok {
		h = map[string]any{"group": g}
	}
	out := p.must(http.StatusCreated, "POST", "/api/v1/assignments", map[string]any{"role": role, "holder": h,
		"scope": map[string]any{"ou": ou}, "justification": "browser test set-up"})
	id, _ := out["id"].(string)
	return id
}

// tempPassword has the admin reset username's password and returns the temporary one. The
// admin's own comes from the server's database (as deputy recover-password does): nobody may
// reset their own. So does everyone's where second factors are required: the admin's token
// has none, and a reset needs one.
func (p *journeyEnv) tempPassword(username string) string {
	p.t.Helper()
	if username == "admin" || p.app.Config.MFA == "required" {
		temp, err := p.app.TemporaryPassword(p.ctx, username)
		if err != nil {
			p.t.Fatalf("the admin's temporary password: %v", err)
		}
		return temp
	}
	out := p.must(http.StatusOK, "POST", "/api/v1/users/"+username+"/reset-password", nil)
	temp, _ := out["temporary_password"].(string)
	if temp == "" {
		p.t.Fatalf("reset %s: no temporary password in %v", username, out)
	}
	return temp
}

// setPassword gives username a password of their own without a browser: the admin resets it,
// and the user signs in with the temporary one over the JSON API and changes it.
func (p *journeyEnv) setPassword(username, password string) {
	p.t.Helper()
	temp := p.tempPassword(username)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	post := func(path, csrf string, body map[string]string) (int, map[string]any) {
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(p.ctx, "POST", p.srv.URL+path, strings.NewReader(string(raw)))
		req.Header.Set("Content-Type", "application/json")
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		resp, err := c.Do(req)
		if err != nil {
			p.t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	status, out := post("/api/v1/auth/sign-in", "", map[string]string{"username": username, "password": temp})
	csrf, _ := out["csrf_token"].(string)
	if status != http.StatusOK || csrf == "" {
		p.t.Fatalf("%s signs in with the temporary password: %d %v", username, status, out)
	}
	if status, out := post("/api/v1/me/password", csrf, map[string]string{"current_password": temp, "new_password": password}); status != http.StatusOK {
		p.t.Fatalf("%s changes the temporary password: %d %v", username, status, out)
	}
}

// outboxCode reads the six-digit code of the newest notification of kind from the outbox.
func (p *journeyEnv) outboxCode(kind string) string {
	p.t.Helper()
	msgs, err := p.app.Store.Outbox(p.ctx, "notify", 0, 1000)
	if err != nil {
		p.t.Fatal(err)
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		var n struct{ Kind, Body string }
		if json.Unmarshal(msgs[i].Payload, &n) == nil && n.Kind == kind {
			if j := strings.Index(n.Body, "code is "); j >= 0 && len(n.Body) >= j+14 {
				return n.Body[j+8 : j+14]
			}
		}
	}
	p.t.Fatalf("no %s notification in the outbox", kind)
	return ""
}

// headless is one headless Chromium process; each person of a journey gets a tab of their own in
// it (a separate browser context: own cookies).
type headless struct {
	p      *journeyEnv
	ctx    context.Context
	width  int
	height int
	mobile bool
}

// browser starts a headless Chromium with a window of width x height; it stops when the test
// ends. mobile emulates a phone (touch, mobile viewport).
func (p *journeyEnv) browser(width, height int, mobile bool) *headless {
	p.t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(p.chromium),
		chromedp.WindowSize(width, height), chromedp.DisableGPU)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run sandboxed as root
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(p.ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	p.t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(bctx); err != nil { // starts the browser and its first tab
		p.t.Fatalf("start %s: %v", p.chromium, err)
	}
	return &headless{p: p, ctx: bctx, width: width, height: height, mobile: mobile}
}

// browserTab is one person's browser tab.
type browserTab struct {
	p   *journeyEnv
	t   *testing.T
	ctx context.Context
	who string
}

// tab opens a tab in a fresh browser context, for who (a name for failure messages).
func (c *headless) tab(who string) *browserTab {
	t := c.p.t
	t.Helper()
	ctx, cancel := chromedp.NewContext(c.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	var opts []chromedp.EmulateViewportOption
	if c.mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(c.width), int64(c.height), opts...)); err != nil {
		t.Fatalf("%s: open a tab: %v", who, err)
	}
	return &browserTab{p: c.p, t: t, ctx: ctx, who: who}
}

// open loads path and returns the HTTP status of the page it ends on (after redirects).
func (b *browserTab) open(path string) int64 {
	b.t.Helper()
	resp, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(b.p.srv.URL+path))
	if err != nil {
		b.t.Fatalf("%s opens %s: %v", b.who, path, err)
	}
	b.checkLabels()
	return resp.Status
}

// fill types value into the input with the given id.
func (b *browserTab) fill(id, value string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.SendKeys(chromedp.ID(id), value)); err != nil {
		b.t.Fatalf("%s fills #%s: %v", b.who, id, err)
	}
}

// click clicks the element that css selects, waits for the page it leads to, and returns that
// page's HTTP status.
func (b *browserTab) click(css string) int64 {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS(css)))
	if err != nil {
		b.t.Fatalf("%s clicks %s: %v", b.who, css, err)
	}
	b.checkLabels()
	return resp.Status
}

// evalJS evaluates a JavaScript expression in the page.
func evalJS[T any](b *browserTab, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("%s: evaluate %s: %v", b.who, js, err)
	}
	return v
}

// path is the path (and query) of the page the tab shows.
func (b *browserTab) path() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatalf("%s: location: %v", b.who, err)
	}
	u, err := url.Parse(loc)
	if err != nil {
		b.t.Fatal(err)
	}
	return u.RequestURI()
}

// text is the visible text of the first element css selects, "" when there is none.
func (b *browserTab) text(css string) string {
	b.t.Helper()
	return evalJS[string](b, fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText.trim()`, css))
}

// fact is the value of the user page's fact named dt ("Status" -> "active").
func (b *browserTab) fact(dt string) string {
	b.t.Helper()
	return evalJS[string](b, fmt.Sprintf(`(() => { for (const d of document.querySelectorAll("dl.facts dt"))
		if (d.innerText.trim() === %q) return d.nextElementSibling.innerText.trim(); return "" })()`, dt))
}

// rows are the cells' texts of the rows of the main table.
func (b *browserTab) rows() [][]string {
	b.t.Helper()
	return evalJS[[][]string](b, `[...document.querySelectorAll("main table tbody tr")].map(r => [...r.cells].map(c => c.innerText.trim()))`)
}

// expect fails the test unless the page's main text contains every one of want.
func (b *browserTab) expect(want ...string) {
	b.t.Helper()
	main := b.text("main")
	for _, w := range want {
		if !strings.Contains(main, w) {
			b.t.Fatalf("%s on %s: the page does not say %q; it says:\n%s", b.who, b.path(), w, main)
		}
	}
}

// checkLabels fails the test when an input of the page has no label[for] naming it.
func (b *browserTab) checkLabels() {
	b.t.Helper()
	bare := evalJS[[]string](b, `[...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
		.filter(i => !i.id || !document.querySelector('label[for="' + CSS.escape(i.id) + '"]'))
		.map(i => i.name || i.outerHTML)`)
	if len(bare) > 0 {
		b.t.Errorf("%s on %s: inputs without a label: %v", b.who, b.path(), bare)
	}
}

// trySignIn fills in the sign-in page and returns the HTTP status of the page it leads to.
func (b *browserTab) trySignIn(username, password string) int64 {
	b.t.Helper()
	b.open("/sign-in")
	b.fill("username", username)
	b.fill("password", password)
	return b.click(`form[action="/sign-in"] button[type=submit]`)
}

// signIn signs in and returns the path it lands on.
func (b *browserTab) signIn(username, password string) string {
	b.t.Helper()
	if status := b.trySignIn(username, password); status != http.StatusOK {
		b.t.Fatalf("%s signs in: status %d: %s", b.who, status, b.text("main"))
	}
	return b.path()
}

// screenshot saves the whole page as docs/screenshots/name when DEPUTY_SCREENSHOTS=1.
func (b *browserTab) screenshot(name string) {
	b.t.Helper()
	if os.Getenv(screenshotsEnv) != "1" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("wrote docs/screenshots/%s (%d KB)", name, len(png)/1024)
}

// overflow returns how wide the page is when it is wider than the viewport, and the elements
// that reach past the viewport's right edge (outside any scrolling box); 0 and nil when it fits.
func (b *browserTab) overflow() (int, []string) {
	b.t.Helper()
	type result struct {
		Width    int      `json:"width"`
		Elements []string `json:"elements"`
	}
	r := evalJS[result](b, `(() => {
		const vw = document.documentElement.clientWidth, width = document.documentElement.scrollWidth;
		if (width <= vw) return {width: 0, elements: []};
		const clipped = e => { for (let a = e.parentElement; a && a !== document.body; a = a.parentElement)
			if (getComputedStyle(a).overflowX !== "visible") return true; return false; };
		const out = [...document.querySelectorAll("body *")]
			.filter(e => e.getBoundingClientRect().right > vw + 0.5 && !clipped(e)).slice(0, 8).map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
				(e.className ? "." + String(e.className).split(" ").join(".") : "") + " " + Math.round(e.getBoundingClientRect().right) + "px");
		return {width, elements: out};
	})()`)
	return r.Width, r.Elements
}

// TestBrowserHelpdeskReset: a helpdesk agent over OU sales sees the Sales user and not the
// Finance one (whose page answers as if it did not exist), resets the Sales user's password,
// and gets the temporary password; the Sales user signs in with it and must change it first.
func TestBrowserHelpdeskReset(t *testing.T) {
	p := startJourney(t, "optional", false)
	p.must(http.StatusCreated, "POST", "/api/v1/ous", map[string]any{"name": "sales"})
	p.must(http.StatusCreated, "POST", "/api/v1/ous", map[string]any{"name": "finance"})
	p.newUser("hank", "/", map[string]any{"title": "Service desk"})
	p.newUser("sally", "sales", map[string]any{"email": "sally@example.com", "department": "Sales", "title": "Account manager"})
	p.newUser("frank", "finance", map[string]any{"department": "Finance"})
	p.must(http.StatusCreated, "POST", "/api/v1/groups", map[string]any{"name": "sales-team", "ou": "sales"})
	p.must(http.StatusCreated, "POST", "/api/v1/groups/sales-team/members", map[string]any{"member": "user:sally"})
	p.assign("helpdesk", "hank", "sales")
	p.setPassword("hank", "blue harbour lantern seven")

	c := p.browser(1280, 900, false)
	hank := c.tab("hank")
	hank.open("/sign-in")
	hank.screenshot("sign-in.png")
	if got := hank.signIn("hank", "blue harbour lantern seven"); got != "/" {
		t.Fatalf("hank lands on %s, want /", got)
	}
	hank.expect("Hello, hank", "helpdesk")

	hank.click(`nav a[href="/users"]`)
	var names []string
	for _, r := range hank.rows() {
		names = append(names, r[0])
	}
	if !slices.Contains(names, "sally") || slices.Contains(names, "frank") {
		t.Fatalf("hank's People: %v, want sally and not frank", names)
	}
	hank.screenshot("people.png")
	if status := hank.open("/users/frank"); status != http.StatusNotFound {
		t.Fatalf("hank opens frank's page: status %d, want 404", status)
	}
	hank.expect("There is no such thing, or you may not see it")

	hank.open("/users")
	hank.click(`main table a[href="/users/sally"]`)
	hank.expect("Account manager", "sales-team", "Reset password")
	if got := hank.fact("Status"); got != "active" {
		t.Fatalf("sally's status: %q", got)
	}
	hank.screenshot("user.png")
	if status := hank.click(`form[action="/users/sally/reset-password"] button[type=submit]`); status != http.StatusOK {
		t.Fatalf("reset: status %d: %s", status, hank.text("main"))
	}
	hank.expect("Temporary password for sally", "It works once")
	temp := hank.text(".secret code")
	if len(temp) < 12 {
		t.Fatalf("temporary password %q", temp)
	}

	sally := c.tab("sally")
	if got := sally.signIn("sally", temp); got != "/password" {
		t.Fatalf("sally with the temporary password lands on %s, want /password", got)
	}
	sally.expect("Your password was reset: choose your own")
	if sally.open("/users"); sally.path() != "/password" {
		t.Fatalf("a session that must change its password reaches %s", sally.path())
	}
	sally.fill("current_password", temp)
	sally.fill("new_password", "quiet meadow copper kettle")
	sally.fill("confirm", "quiet meadow copper kettle")
	sally.click(`form[action="/password"] button[type=submit]`)
	sally.expect("Password changed")
	if got := sally.signIn("sally", "quiet meadow copper kettle"); got != "/" {
		t.Fatalf("sally with her new password lands on %s", got)
	}
}

// TestBrowserApproval: a manager asks to add a report to a privileged group (one that holds a
// role assignment); the group's owner approves on the portal; the audit trail shows the parked
// change, the approval and the applied change, linked to the request.
func TestBrowserApproval(t *testing.T) {
	p := startJourney(t, "optional", true)
	p.newUser("maria", "/", map[string]any{"title": "Payroll manager"})
	p.newUser("rob", "/", map[string]any{"manager": "maria", "title": "Payroll clerk"})
	p.newUser("olga", "/", map[string]any{"title": "Head of payroll"})
	p.must(http.StatusCreated, "POST", "/api/v1/groups", map[string]any{"name": "payroll", "ou": "/",
		"description": "Runs the payroll; reads everyone's records.", "owners": []string{"olga"}})
	p.assign("reader", "group:payroll", "/")
	p.assign("group-owner", "maria", "/")
	p.setPassword("maria", "amber glacier pocket drum")
	p.setPassword("olga", "silver canyon piano thread")
	p.setPassword("admin", "orange tundra velvet engine")

	c := p.browser(1280, 900, false)
	maria := c.tab("maria")
	maria.signIn("maria", "amber glacier pocket drum")
	maria.open("/groups/payroll")
	maria.fill("member", "rob")
	maria.fill("justification", "Rob joins the payroll team")
	maria.click(`form[action="/groups/payroll/members"] button[type=submit]`)
	reqPath := maria.path()
	if !strings.HasPrefix(reqPath, "/requests/") {
		t.Fatalf("the add lands on %s, want a request page: %s", reqPath, maria.text("main"))
	}
	reqPath, _, _ = strings.Cut(reqPath, "?")
	maria.expect("Sent for approval", "open", "Rob joins the payroll team", "privileged-group-membership")
	if rows := p.must(http.StatusOK, "GET", "/api/v1/groups/payroll/members", nil)["items"].([]any); len(rows) != 0 {
		t.Fatalf("a parked add applied: %v", rows)
	}

	olga := c.tab("olga")
	olga.signIn("olga", "silver canyon piano thread")
	olga.expect("Waiting for you", "from maria")
	olga.screenshot("home.png")
	olga.click(`nav a[href="/requests"]`)
	olga.expect("Rob joins the payroll team")
	olga.click(`main a[href="` + reqPath + `"]`)
	olga.fill("comment-a", "Confirmed with HR")
	olga.click(`form[action="` + reqPath + `/approve"] button[type=submit]`)
	olga.expect("Recorded: approve", "applied", "approve by olga", "Confirmed with HR")
	olga.screenshot("request.png")
	if rows := p.must(http.StatusOK, "GET", "/api/v1/groups/payroll/members", nil)["items"].([]any); len(rows) != 1 {
		t.Fatalf("after the approval, members: %v", rows)
	}

	admin := c.tab("admin")
	admin.signIn("admin", "orange tundra velvet engine")
	admin.open("/audit")
	checkApprovalChain(t, admin, reqPath)
	admin.screenshot("audit.png")
}

// checkApprovalChain checks the audit page the tab shows, newest first: the applied add (by
// maria, on the authority of the request and of olga's approval), the approval, the parked add;
// and that a row links to the request at reqPath.
func checkApprovalChain(t *testing.T, admin *browserTab, reqPath string) {
	t.Helper()
	var chain []string
	approval, authority := "", ""
	for _, r := range admin.rows() {
		if len(r) != 7 || (r[3] != "group.add_member" && r[3] != "request.approve") {
			continue
		}
		chain = append(chain, r[2]+" "+r[3]+" "+r[5])
		switch {
		case r[3] == "request.approve":
			approval = r[0]
		case r[5] == "applied":
			authority = r[6]
		}
	}
	want := []string{"maria group.add_member applied", "olga request.approve applied", "maria group.add_member pending"}
	if !slices.Equal(chain, want) {
		t.Fatalf("the audit chain: %q, want %q", chain, want)
	}
	if authority != "request approval "+approval {
		t.Fatalf("the applied add's authority: %q, want the request and approval %s", authority, approval)
	}
	links := evalJS[[]string](admin, `[...document.querySelectorAll("main table a")].map(a => a.getAttribute("href"))`)
	if !slices.Contains(links, reqPath) {
		t.Fatalf("no audit row links to %s: %v", reqPath, links)
	}
}

// TestBrowserForgottenPassword: a user who forgot their password asks for a code, reads it from
// the recovery email, sets a new password with it and signs in with that.
func TestBrowserForgottenPassword(t *testing.T) {
	p := startJourney(t, "optional", false)
	p.newUser("fiona", "/", map[string]any{"email": "fiona@example.com"})
	p.setPassword("fiona", "first granite willow marble")

	c := p.browser(1280, 900, false)
	fiona := c.tab("fiona")
	fiona.open("/sign-in")
	fiona.click(`a[href="/forgot-password"]`)
	fiona.fill("username", "fiona")
	fiona.click(`form[action="/forgot-password"] button[type=submit]`)
	fiona.expect("a code is on its way")
	fiona.screenshot("forgot-password.png")
	code := p.outboxCode("password_recovery")
	fiona.fill("code", code)
	fiona.fill("new_password", "second harvest cobalt ladder")
	fiona.fill("confirm", "second harvest cobalt ladder")
	fiona.click(`form[action="/reset-password"] button[type=submit]`)
	if got := fiona.path(); !strings.HasPrefix(got, "/sign-in") {
		t.Fatalf("after the reset fiona is on %s: %s", got, fiona.text("main"))
	}
	fiona.expect("Password changed")
	if status := fiona.trySignIn("fiona", "first granite willow marble"); status != http.StatusUnauthorized {
		t.Fatalf("the old password: status %d, want 401", status)
	}
	if got := fiona.signIn("fiona", "second harvest cobalt ladder"); got != "/" {
		t.Fatalf("fiona with the new password lands on %s: %s", got, fiona.text("main"))
	}
	fiona.expect("Hello, fiona")
}

// TestBrowserLeaver: after a leave (membership removed, assignment revoked, account disabled),
// the leaver's page shows no remaining access.
func TestBrowserLeaver(t *testing.T) {
	p := startJourney(t, "optional", false)
	p.newUser("leo", "/", map[string]any{"title": "Builder"})
	p.must(http.StatusCreated, "POST", "/api/v1/groups", map[string]any{"name": "builders", "ou": "/"})
	p.must(http.StatusCreated, "POST", "/api/v1/groups/builders/members", map[string]any{"member": "user:leo"})
	assignment := p.assign("reader", "leo", "/")
	p.setPassword("admin", "orange tundra velvet engine")

	c := p.browser(1280, 900, false)
	admin := c.tab("admin")
	admin.signIn("admin", "orange tundra velvet engine")
	admin.open("/users/leo")
	admin.expect("builders", "reader")

	// The leave, as the admin does it over the API.
	p.must(http.StatusNoContent, "DELETE", "/api/v1/groups/builders/members/user:leo", nil)
	p.must(http.StatusNoContent, "DELETE", "/api/v1/assignments/"+assignment, nil)
	p.must(http.StatusOK, "POST", "/api/v1/users/leo/disable", nil)

	admin.open("/users/leo")
	if got := admin.fact("Status"); got != "disabled" {
		t.Fatalf("leo's status: %q", got)
	}
	admin.expect("In no group.", "No role assignments.", "Enable")
}

// TestBrowserMobileAndLabels: at 360 px wide the pages do not scroll sideways, and every input
// of the sign-in page has a label.
func TestBrowserMobileAndLabels(t *testing.T) {
	p := startJourney(t, "optional", false)
	p.must(http.StatusCreated, "POST", "/api/v1/ous", map[string]any{"name": "sales"})
	p.newUser("mia", "/", nil)
	p.newUser("sam", "sales", map[string]any{"department": "Sales", "email": "sam.with.a.long.address@example.com"})
	p.assign("helpdesk", "mia", "sales")
	p.setPassword("mia", "purple estuary chalk window")

	c := p.browser(360, 740, true)
	mia := c.tab("mia")
	mia.open("/sign-in")
	bare := evalJS[[]string](mia, `[...document.querySelectorAll("input:not([type=hidden])")]
		.filter(i => !document.querySelector('label[for="' + CSS.escape(i.id) + '"]')).map(i => i.name)`)
	inputs := evalJS[int](mia, `document.querySelectorAll("input:not([type=hidden])").length`)
	if inputs < 3 || len(bare) > 0 {
		t.Fatalf("sign-in: %d inputs, without a label: %v", inputs, bare)
	}
	fits := func(path string) {
		mia.open(path)
		if w := evalJS[int](mia, `document.documentElement.clientWidth`); w != 360 {
			t.Fatalf("the viewport is %d px wide, want 360", w)
		}
		if w, past := mia.overflow(); w > 0 {
			t.Errorf("%s scrolls sideways at 360 px: %d px wide; past the edge: %v", path, w, past)
		}
	}
	fits("/sign-in")
	fits("/forgot-password")
	mia.signIn("mia", "purple estuary chalk window")
	for _, path := range []string{"/", "/users", "/users/sam", "/requests", "/audit"} {
		fits(path)
	}
}
