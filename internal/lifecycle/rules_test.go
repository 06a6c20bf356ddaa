package lifecycle

import (
	"testing"

	"github.com/deputy-iam/deputy/internal/delegation"
)

// TestSetupUpdatesAnOlderRole: a lifecycle role missing actions this version needs is updated.
func TestSetupUpdatesAnOlderRole(t *testing.T) {
	rs := RuleSet{Rules: []Rule{{Name: "all", Groups: []string{"all-staff"}}}}
	if err := rs.Compile(); err != nil {
		t.Fatal(err)
	}
	yes := func(string) bool { return true }
	ops := SetupOps(&rs, Existing{OU: yes, Group: yes, Assignment: yes,
		Role: func(string) ([]delegation.Action, bool) { return []delegation.Action{delegation.UserCreate}, true }})
	if len(ops) != 1 || ops[0].Action != delegation.RoleUpdate {
		t.Fatalf("ops: %+v", ops)
	}
	ops = SetupOps(&rs, Existing{OU: yes, Group: yes, Assignment: yes,
		Role: func(string) ([]delegation.Action, bool) { return RoleActions, true }})
	if len(ops) != 0 {
		t.Fatalf("an up-to-date setup still plans %+v", ops)
	}
}

// TestRuleDays: lead and retention days default when absent and may be zero.
func TestRuleDays(t *testing.T) {
	rs, err := ParseRules([]byte("rules: []\nlead_days: 0\n"))
	if err != nil || rs.Lead() != 0 || rs.Retention() != DefaultRetentionDays {
		t.Fatalf("lead %d retention %d: %v", rs.Lead(), rs.Retention(), err)
	}
	if _, err := ParseRules([]byte("rules: []\nretention_days: -1\n")); err == nil {
		t.Fatal("a negative retention was accepted")
	}
}
