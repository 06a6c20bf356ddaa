package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServiceAccountKeys: an owner holding sa-owner over owned_service_accounts issues, lists,
// rotates and revokes the keys of their account; others are refused; the reports list keys and,
// once the owner is disabled, the orphaned account; the secrets are in no event.
func TestServiceAccountKeys(t *testing.T) {
	e := newEnv(t)
	e.newUser("boss", nil)
	e.newUser("owner", map[string]any{"manager": "boss"})
	e.newUser("plain", nil)
	e.tokenFor("owner")
	e.tokenFor("plain")
	e.must(http.StatusCreated, "POST", "/api/v1/assignments", map[string]any{"role": "sa-owner", "holder": map[string]any{"user": "owner"},
		"scope": map[string]any{"relation": "owned_service_accounts"}, "justification": "owners rotate their keys"})
	e.must(http.StatusCreated, "POST", "/api/v1/service-accounts", map[string]any{"name": "ci-bot", "ou": "/", "owners": []string{"owner"}})
	keys := "/api/v1/service-accounts/ci-bot/keys"
	var secrets []string
	keyOf := func(t *testing.T, r *response) map[string]any {
		m := r.JSON(t)
		key := str(m, "key")
		if !strings.HasPrefix(key, "dpy_"+str(m, "id")+"_") || str(m, "service_account") != "ci-bot" || r.Header.Get("ETag") != "" ||
			r.Header.Get("Deputy-Audit-Event") == "" {
			t.Errorf("issued key %s (headers %v)", r.Body, r.Header)
		}
		secrets = append(secrets, key)
		return m
	}
	listed := func(want ...string) func(t *testing.T, e *env, r *response) {
		return func(t *testing.T, e *env, r *response) {
			var got []string
			for _, it := range r.Items(t) {
				got = append(got, str(it, "name")+":"+str(it, "active"))
				if _, ok := it["key"]; ok || strings.Contains(string(r.Body), "hash") {
					t.Errorf("a listed key shows more than it may: %s", r.Body)
				}
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("keys %v, want %v", got, want)
			}
		}
	}
	e.run(t, []scenario{
		{name: "owner issues", req: request{Method: "POST", Path: keys, As: "owner", Body: map[string]any{"name": "deploy"}},
			status: http.StatusCreated, save: "k1", check: func(t *testing.T, e *env, r *response) {
				m := keyOf(t, r)
				exp, err := time.Parse(time.RFC3339, str(m, "expires"))
				if want := time.Now().Add(90 * 24 * time.Hour); err != nil || exp.Sub(want).Abs() > time.Minute {
					t.Errorf("expires %s, want about %v", str(m, "expires"), want)
				}
			}},
		{name: "plain may not", req: request{Method: "POST", Path: keys, As: "plain", Body: map[string]any{"name": "x"}},
			status: http.StatusForbidden, code: "not_authorized"},
		{name: "above the maximum", req: request{Method: "POST", Path: keys, As: "owner", Body: map[string]any{"name": "x", "expires_in_days": 367}},
			status: http.StatusUnprocessableEntity, field: "expires_in_days"},
		{name: "unknown field", req: request{Method: "POST", Path: keys, As: "owner", Body: map[string]any{"name": "x", "secret": "mine"}},
			status: http.StatusUnprocessableEntity, field: "secret"},
		{name: "plain may not list", req: request{Method: "GET", Path: keys, As: "plain"}, status: http.StatusForbidden},
		{name: "list", req: request{Method: "GET", Path: keys, As: "owner"}, status: http.StatusOK, check: listed("deploy:true")},
		{name: "rotate", req: request{Method: "POST", Path: keys, As: "owner",
			Body: map[string]any{"name": "deploy-2", "rotate_from": "{k1}", "overlap_hours": 1}},
			status: http.StatusCreated, save: "k2", check: func(t *testing.T, e *env, r *response) {
				m := keyOf(t, r)
				exp, err := time.Parse(time.RFC3339Nano, str(m, "rotated.expires"))
				if str(m, "rotated.id") != e.ids["k1"] || err != nil || exp.Sub(time.Now().Add(time.Hour)).Abs() > time.Minute {
					t.Errorf("rotation answer %s", r.Body)
				}
			}},
		{name: "both valid", req: request{Method: "GET", Path: keys, As: "owner"}, status: http.StatusOK,
			check: listed("deploy-2:true", "deploy:true")},
		{name: "revoke", req: request{Method: "DELETE", Path: keys + "/{k2}", As: "owner"}, status: http.StatusNoContent},
		{name: "revoke again", req: request{Method: "DELETE", Path: keys + "/{k2}", As: "owner"}, status: http.StatusConflict},
		{name: "revoke an unknown key", req: request{Method: "DELETE", Path: keys + "/nosuchkey0000000", As: "owner"}, status: http.StatusNotFound},
		{name: "plain may not revoke", req: request{Method: "DELETE", Path: keys + "/{k1}", As: "plain"}, status: http.StatusForbidden},
		{name: "revoked listed", req: request{Method: "GET", Path: keys, As: "owner"}, status: http.StatusOK,
			check: listed("deploy-2:false", "deploy:true")},
		{name: "expiring", req: request{Method: "GET", Path: "/api/v1/reports/keys?expiring_within_days=1"}, status: http.StatusOK,
			check: func(t *testing.T, e *env, r *response) {
				items := r.Items(t)
				if len(items) != 1 || str(items[0], "id") != e.ids["k1"] || str(items[0], "service_account") != "ci-bot" {
					t.Errorf("keys expiring within a day: %s", r.Body)
				}
			}},
		{name: "not rotated", req: request{Method: "GET", Path: "/api/v1/reports/keys?not_rotated_for_days=1&unused_for_days=1"},
			status: http.StatusOK, check: func(t *testing.T, e *env, r *response) {
				if items := r.Items(t); len(items) != 0 {
					t.Errorf("keys issued today reported as old: %s", r.Body)
				}
			}},
		{name: "bad days", req: request{Method: "GET", Path: "/api/v1/reports/keys?unused_for_days=0"},
			status: http.StatusUnprocessableEntity, field: "unused_for_days"},
		{name: "report by a delegate", req: request{Method: "GET", Path: "/api/v1/reports/keys", As: "owner"}, status: http.StatusForbidden},
		{name: "no orphans", req: request{Method: "GET", Path: "/api/v1/reports/orphaned-service-accounts"}, status: http.StatusOK,
			check: func(t *testing.T, e *env, r *response) {
				if items := r.Items(t); len(items) != 0 {
					t.Errorf("orphaned accounts: %s", r.Body)
				}
			}},
		{name: "owner leaves", req: request{Method: "POST", Path: "/api/v1/users/owner/disable"}, status: http.StatusOK},
		{name: "orphans", req: request{Method: "GET", Path: "/api/v1/reports/orphaned-service-accounts"}, status: http.StatusOK,
			check: func(t *testing.T, e *env, r *response) {
				items := r.Items(t)
				if len(items) != 1 || str(items[0], "name") != "ci-bot" || str(items[0], "orphaned") != "true" ||
					strings.Join(namesOfList(items[0]["owners"]), ",") != "boss,owner" {
					t.Errorf("orphaned accounts: %s", r.Body)
				}
			}},
		{name: "orphans by a delegate", req: request{Method: "GET", Path: "/api/v1/reports/orphaned-service-accounts", As: "plain"},
			status: http.StatusForbidden},
		{name: "reviewed", req: request{Method: "PATCH", Path: "/api/v1/service-accounts/ci-bot", Body: map[string]any{"orphaned": false}},
			status: http.StatusOK, check: func(t *testing.T, e *env, r *response) {
				if str(r.JSON(t), "orphaned") != "false" {
					t.Errorf("after the review: %s", r.Body)
				}
			}},
	})
	// A revoked key never authenticates.
	if r := e.do(request{Method: "GET", Path: "/api/v1/me", As: secrets[1]}); r.Status != http.StatusUnauthorized {
		t.Errorf("a revoked key: status %d", r.Status)
	}
	// The audit trail holds no secret.
	r := e.do(request{Method: "GET", Path: "/api/v1/audit/events?limit=1000"})
	for _, s := range secrets {
		if _, raw, _ := strings.Cut(strings.TrimPrefix(s, "dpy_"), "_"); raw == "" || strings.Contains(string(r.Body), raw) {
			t.Errorf("the audit trail holds the key %s", s)
		}
	}
	if !strings.Contains(string(r.Body), "sa.issue_key") || !strings.Contains(string(r.Body), "orphaned_service_accounts") {
		t.Errorf("the audit trail lacks the key issue or the handover")
	}
}

// namesOfList turns a JSON list of strings into strings.
func namesOfList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, len(list))
	for i, x := range list {
		out[i], _ = x.(string)
	}
	return out
}
