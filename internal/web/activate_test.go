package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/deputy-iam/deputy/internal/config"
)

var activationLink = regexp.MustCompile(`https://portal\.example\.com(/activate\?user=[^"\s]+)`)

// TestPortalActivation: a joiner from the HR feed gets no password; their manager gets an
// activation link through the outbox, and the joiner sets their first password with it, once.
func TestPortalActivation(t *testing.T) {
	p := newPortalWith(t, func(c *config.Config) { c.BaseURL = "https://portal.example.com" }, nil)
	p.api("PUT", "/api/v1/lifecycle/rules", map[string]any{"default_ou": "corp",
		"rules": []any{map[string]any{"name": "sales", "when": `department eq "Sales"`, "ou": "corp/sales"}}})
	p.api("POST", "/api/v1/hr/setup", nil)
	feed := "employee_id,given_name,family_name,email,department,title,manager_id,location,employment_type,start_date,end_date,status,cost_center\r\n" +
		"E1,Maria,Lopez,maria@example.com,Sales,Head of Sales,,Berlin,employee,2020-01-06,,active,CC-1\r\n" +
		"E2,Jonas,Berg,jonas@example.com,Sales,Account Executive,E1,Berlin,employee,2026-11-02,,active,CC-1\r\n"
	req, _ := http.NewRequest("POST", p.srv.URL+"/api/v1/hr/imports", strings.NewReader(feed))
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("import: %d", resp.StatusCode)
	}
	msgs, err := p.app.Store.Outbox(context.Background(), "notify", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var link string
	for _, m := range msgs {
		payload := string(m.Payload)
		if strings.Contains(payload, "account_activation") && strings.Contains(payload, "jonas") {
			if mm := activationLink.FindStringSubmatch(payload); mm != nil {
				link = strings.ReplaceAll(mm[1], `\u0026`, "&")
			}
		}
	}
	if link == "" {
		t.Fatalf("no activation link for the joiner in the outbox (%d messages)", len(msgs))
	}
	// The account's creation records that the link went out (never the code).
	events, _ := p.api("GET", "/api/v1/audit/events?action=user.create&target=jonas.berg", nil)["items"].([]any)
	if len(events) != 1 || !strings.Contains(events[0].(map[string]any)["message"].(string), "an activation link went to the manager maria.lopez") ||
		strings.Contains(fmt.Sprint(events[0]), strings.SplitN(link, "code=", 2)[1]) {
		t.Fatalf("the joiner's creation event: %v", events)
	}
	jar, _ := cookiejar.New(nil)
	jonas := &person{p: p, c: &http.Client{Jar: jar}}
	if code, page := jonas.get(link); code != 200 || !strings.Contains(page, "Choose the password") {
		t.Fatalf("the activation page: %d\n%s", code, page)
	}
	u, _ := url.Parse(link)
	form := url.Values{"user": {u.Query().Get("user")}, "code": {u.Query().Get("code")},
		"new_password": {"my own first passphrase"}, "confirm": {"my own first passphrase"}}
	if body := jonas.post("/activate", form, false); !strings.Contains(body, "Sign in") {
		t.Fatalf("activation:\n%s", body)
	}
	if body := jonas.post("/sign-in", url.Values{"username": {u.Query().Get("user")}, "password": {"my own first passphrase"}}, false); !strings.Contains(body, "Hello, ") {
		t.Fatalf("the joiner's first sign-in:\n%s", body)
	}
	// The link works once.
	form.Set("new_password", "another first passphrase")
	form.Set("confirm", "another first passphrase")
	if body := jonas.post("/activate", form, false); !strings.Contains(body, "expired or was used already") {
		t.Fatalf("a second use of the link:\n%s", body)
	}
}
