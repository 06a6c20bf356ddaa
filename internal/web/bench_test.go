package web_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/app"
	"github.com/deputy-iam/deputy/internal/config"
	"github.com/deputy-iam/deputy/internal/directory"
)

// BenchmarkPortalPages100k renders the portal's main pages for a tier-0 admin over a
// directory of 100,000 people (the demo organisation, seeded through the pipeline first: about
// a minute), one request at a time on a kept-alive connection, and reports each page's median
// and 99th percentile. Target: every page under 50 ms.
func BenchmarkPortalPages100k(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	cfg := config.Config{DataDir: dir, SigningKey: filepath.Join(dir, "audit-signing.key"), Addr: "127.0.0.1:0",
		LogLevel: "error", LogFormat: "text", ShutdownTimeout: 5 * time.Second, MFA: "optional"}
	a, err := app.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	boot, err := a.Init(ctx, "admin")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.SeedDemo(ctx, boot.Admin, 100000); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	api := func(method, path, token string, body any) map[string]any {
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(string(raw)))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode >= 300 {
			b.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, out)
		}
		return out
	}
	// signIn makes a person holding role over ou and returns a browser signed in as them.
	signIn := func(username, role, ou string) *http.Client {
		api("POST", "/api/v1/users", boot.Token, map[string]any{"username": username, "ou": "/"})
		api("POST", "/api/v1/assignments", boot.Token, map[string]any{"role": role, "holder": map[string]any{"user": username},
			"scope": map[string]any{"ou": ou}, "justification": "benchmark"})
		temp := api("POST", "/api/v1/users/"+username+"/reset-password", boot.Token, nil)["temporary_password"].(string)
		jar, _ := cookiejar.New(nil)
		client := &http.Client{Jar: jar, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		post := func(path, body, csrf string) map[string]any {
			req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if csrf != "" {
				req.Header.Set("X-CSRF-Token", csrf)
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&out)
			return out
		}
		s := post("/api/v1/auth/sign-in", `{"username":"`+username+`","password":"`+temp+`"}`, "")
		post("/api/v1/me/password", `{"current_password":"`+temp+`","new_password":"a benchmark passphrase of some length"}`, s["csrf_token"].(string))
		return client
	}
	page, err := a.Store.ListUsers(ctx, directoryQuery())
	if err != nil || len(page.Items) == 0 {
		b.Fatalf("users: %v", err)
	}
	someone := page.Items[len(page.Items)/2].Username
	groups, err := a.Store.ListGroups(ctx, directoryQuery())
	if err != nil || len(groups.Items) == 0 {
		b.Fatalf("groups: %v", err)
	}
	group := groups.Items[len(groups.Items)/2].Name
	client := signIn("viewer", "tier0-admin", "/")
	// A helpdesk agent over one OU: their home, people and audit pages read through their scope
	// (the audit trail and the week's changes are scanned event by event).
	someoneOU := page.Items[len(page.Items)/2].OUPath
	desk := signIn("desk", "helpdesk", someoneOU)
	pages := []struct {
		name, path string
		as         *http.Client
	}{
		{"home", "/", client}, {"users", "/users", client}, {"users_search", "/users?q=" + someone[:3], client}, {"user_page", "/users/" + someone, client},
		{"groups", "/groups", client}, {"group_page", "/groups/" + group, client}, {"ous", "/ous", client}, {"service_accounts", "/service-accounts", client},
		{"delegation", "/delegation", client}, {"who_can", "/delegation/who-can?type=user&id=" + someone + "&action=user.reset_password", client},
		{"requests", "/requests", client}, {"audit", "/audit", client}, {"audit_event", "/audit/1000", client},
		{"desk_home", "/", desk}, {"desk_users", "/users", desk}, {"desk_user_page", "/users/" + someone, desk},
		{"desk_audit", "/audit", desk},
	}
	b.ResetTimer()
	for _, pg := range pages {
		p := pg.path
		var lat []time.Duration
		for i := 0; i < max(b.N, 100)+5; i++ {
			start := time.Now()
			resp, err := pg.as.Get(srv.URL + p)
			if err != nil {
				b.Fatal(err)
			}
			var sink [4096]byte
			for {
				if _, err := resp.Body.Read(sink[:]); err != nil {
					break
				}
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("%s: %d", p, resp.StatusCode)
			}
			if i >= 5 {
				lat = append(lat, time.Since(start))
			}
		}
		slices.Sort(lat)
		name := pg.name
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, name+"_p50_ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, name+"_p99_ms")
	}
}

func directoryQuery() directory.ListQuery { return directory.ListQuery{Limit: 500} }
