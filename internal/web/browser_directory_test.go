package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// keyStatus calls GET /api/v1/me with a service account's key and returns the status.
func (p *journeyEnv) keyStatus(key string) int {
	p.t.Helper()
	req, err := http.NewRequestWithContext(p.ctx, "GET", p.srv.URL+"/api/v1/me", nil)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := p.srv.Client().Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestBrowserDirectoryServiceAccountKey: on a phone-wide screen (360 px), a service account's
// owner finds the account, issues a key and copies its secret from the page that shows it once,
// sees only its ID afterwards, and revokes it, after which it no longer authenticates. An HR
// delegate's directory pages and forms (the OU tree, groups, new person, edit) fit the width
// too, and every page's inputs have labels (checked on every page opened).
func TestBrowserDirectoryServiceAccountKey(t *testing.T) {
	p := startJourney(t, "optional", false)
	p.must(http.StatusCreated, "POST", "/api/v1/ous", map[string]any{"name": "sales"})
	p.must(http.StatusCreated, "POST", "/api/v1/ous", map[string]any{"name": "east-coast-enterprise-accounts", "parent": "sales"})
	p.newUser("olly", "/", nil)
	p.newUser("hilda", "/", nil)
	p.newUser("sam", "sales", map[string]any{"title": "Account manager", "email": "sam.with.a.long.address@example.com"})
	p.must(http.StatusCreated, "POST", "/api/v1/service-accounts", map[string]any{"name": "ci-bot", "ou": "/",
		"owners": []string{"olly"}, "description": "Deploys the shop"})
	p.must(http.StatusCreated, "POST", "/api/v1/groups", map[string]any{"name": "sales-team", "ou": "sales",
		"description": "Everyone who sells", "owners": []string{"sam"}})
	p.must(http.StatusCreated, "POST", "/api/v1/assignments", map[string]any{"role": "sa-owner", "holder": map[string]any{"user": "olly"},
		"scope": map[string]any{"relation": "owned_service_accounts"}, "justification": "owners rotate their keys"})
	p.assign("hr", "hilda", "sales")
	p.setPassword("olly", "violet harbour nickel lamp")
	p.setPassword("hilda", "golden prairie wicker bell")

	c := p.browser(360, 740, true)
	fits := func(b *browserTab) {
		t.Helper()
		if w, past := b.overflow(); w > 0 {
			t.Errorf("%s scrolls sideways at 360 px: %d px wide; past the edge: %v", b.path(), w, past)
		}
	}
	olly := c.tab("olly")
	olly.signIn("olly", "violet harbour nickel lamp")
	olly.click(`nav a[href="/service-accounts"]`)
	fits(olly)
	olly.click(`main table a[href="/service-accounts/ci-bot"]`)
	olly.expect("Deploys the shop", "No keys.", "Issue a key")
	fits(olly)
	olly.fill("key-name", "deploy pipeline")
	if status := olly.click(`form[action="/service-accounts/ci-bot/keys"] button[type=submit]`); status != http.StatusOK {
		t.Fatalf("issue: status %d: %s", status, olly.text("main"))
	}
	olly.expect("New key for ci-bot", "It is shown only on this page")
	fits(olly)
	secret := olly.text(".key-secret code")
	id := olly.text("dl.facts dd code")
	if !strings.HasPrefix(secret, "dpy_"+id+"_") || len(id) < 8 {
		t.Fatalf("the issued key %q (id %q)", secret, id)
	}
	if status := p.keyStatus(secret); status != http.StatusOK {
		t.Fatalf("the new key authenticates: %d", status)
	}

	olly.click(`main a[href="/service-accounts/ci-bot"]`)
	olly.expect(id, "deploy pipeline", "active")
	if strings.Contains(olly.text("main"), secret) {
		t.Fatal("the account's page shows the key's secret again")
	}
	fits(olly)
	olly.click(`form[action="/service-accounts/ci-bot/keys/` + id + `/revoke"] button[type=submit]`)
	olly.expect("Key "+id+" revoked", "revoked")
	if rows := olly.rows(); len(rows) != 1 || len(rows[0]) < 3 || !strings.HasPrefix(rows[0][2], "revoked") {
		t.Fatalf("the keys after the revocation: %v", rows)
	}
	if status := p.keyStatus(secret); status != http.StatusUnauthorized {
		t.Fatalf("the revoked key: status %d, want 401", status)
	}

	hilda := c.tab("hilda")
	hilda.signIn("hilda", "golden prairie wicker bell")
	for _, path := range []string{"/ous", "/groups", "/ous/people?ou=sales", "/users/new?ou=sales", "/groups/new", "/users/sam", "/users/sam/edit"} {
		if status := hilda.open(path); status != http.StatusOK {
			t.Fatalf("hilda opens %s: status %d: %s", path, status, hilda.text("main"))
		}
		fits(hilda)
	}
	hilda.expect("Edit", "Title")
	if err := chromedp.Do(hilda.ctx, chromedp.SetValue(chromedp.ID("f-title"), "Senior account manager")); err != nil {
		t.Fatalf("hilda sets the title: %v", err)
	}
	hilda.click(`form[action="/users/sam/edit"] button[type=submit]`)
	hilda.expect("Saved")
	if got := hilda.fact("Title"); got != "Senior account manager" {
		t.Fatalf("sam's title after the edit: %q", got)
	}
}
