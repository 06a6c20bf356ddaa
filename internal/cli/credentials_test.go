package cli_test

import (
	"testing"
)

func TestCredentialCommands(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	var tokenID string
	s.run(t, []cliCase{
		{name: "user", args: []string{"user", "create", "sally", "--ou", "/", "--email", "sally@example.com"}},
		{name: "reset", args: []string{"user", "reset-password", "sally"}, out: []string{"Temporary password for sally", "must be changed"}},
		{name: "reset json", args: []string{"user", "reset-password", "sally", "-o", "json"},
			json: fields(map[string]string{"user": "sally", "must_change": "true"})},
		{name: "reset by a link", args: []string{"user", "reset-password", "sally", "--deliver", "email"},
			out: []string{"A one-time reset link for sally went to their own email address"}},
		{name: "reset by a link to no manager", args: []string{"user", "reset-password", "sally", "--deliver", "manager"}, code: 1,
			errOut: "no manager"},
		{name: "token", args: []string{"user", "token", "sally", "--name", "laptop", "-o", "json"},
			json: func(t *testing.T, s *server, v map[string]any) { tokenID = get(v, "id") }},
		{name: "tokens", args: []string{"user", "tokens", "sally"}, out: []string{"ID", "laptop", "true"}},
		{name: "verify by totp without an authenticator", args: []string{"user", "verify", "sally", "--channel", "totp"}, code: 1,
			errOut: "no authenticator"},
		{name: "verify by email", args: []string{"user", "verify", "sally"}, out: []string{"a code was sent"}},
		{name: "unlock a user who is not locked", args: []string{"user", "unlock", "sally"}, code: 1, errOut: "not locked"},
	})
	s.run(t, []cliCase{
		{name: "revoke", args: []string{"user", "revoke-token", "sally", tokenID}, out: []string{"revoked token " + tokenID}},
		{name: "revoked", args: []string{"user", "tokens", "sally", "-o", "json"}, json: func(t *testing.T, s *server, v map[string]any) {
			items, _ := v["items"].([]any)
			if len(items) != 1 || get(items[0].(map[string]any), "active") != "false" {
				t.Errorf("tokens after the revocation: %v", v)
			}
		}},
	})
}
