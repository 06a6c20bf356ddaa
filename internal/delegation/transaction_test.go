package delegation_test

import (
	"fmt"
	"testing"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/store"
	"github.com/deputy-iam/deputy/internal/store/storetest"
)

// TestSameTransaction checks that the ops of one batch are judged on the state the earlier ops
// left: an object moved or taken out of a scope is out of it in the same transaction.
func TestSameTransaction(t *testing.T) {
	tests := []struct {
		name   string
		grants []delegation.AssignmentInput
		setup  func(w *world)
		actor  string
		ops    []change.Op
		want   string
	}{
		{name: "a member taken out, then edited",
			grants: grants(asg(delegation.RoleHelpdesk, "user:helen", groups("crm-users")), asg(delegation.RoleGroupOwner, "user:helen", groups("crm-users"))),
			actor:  "helen", ops: []change.Op{removeMember("crm-users", "user:sam"), update("sam", map[string]any{"phone": "+1 555 0199"})}, want: notAuth},
		{name: "a member edited, then taken out",
			grants: grants(asg(delegation.RoleHelpdesk, "user:helen", groups("crm-users")), asg(delegation.RoleGroupOwner, "user:helen", groups("crm-users"))),
			actor:  "helen", ops: []change.Op{update("sam", map[string]any{"phone": "+1 555 0199"}), removeMember("crm-users", "user:sam")}},
		{name: "an OU moved out, then an object in it edited",
			grants: grants(asg(delegation.RoleHR, "user:hank", subtree("corp/sales"))),
			setup:  both(roleCreate("ou-admin", nil, delegation.OUMove), func(w *world) { w.grant(asg("ou-admin", "user:hank", subtree("corp"))) }),
			actor:  "hank", ops: []change.Op{move(directory.KindOU, "corp/sales/vip", "corp/eng"), update("sue", map[string]any{"title": "x"})}, want: notAuth},
		{name: "an OU moved inside, then an object in it edited",
			grants: grants(asg(delegation.RoleHR, "user:hank", subtree("corp/sales"))),
			setup:  both(roleCreate("ou-admin", nil, delegation.OUMove), func(w *world) { w.grant(asg("ou-admin", "user:hank", subtree("corp"))) }),
			actor:  "hank", ops: []change.Op{move(directory.KindOU, "corp/sales/vip", "corp/sales/emea"), update("sue", map[string]any{"title": "x"})}},
		{name: "a user edited out of a filter scope, then edited again",
			grants: grants(asg(delegation.RoleHR, "user:hank", where(`department eq "Sales"`)),
				asg(delegation.RoleHR, "user:hank", where(`title eq "Leaving"`))),
			actor: "hank", ops: []change.Op{update("sam", map[string]any{"title": "Leaving"}), update("sam", map[string]any{"department": "Legal"}),
				update("sam", map[string]any{"location": "Paris"})}},
		{name: "a user edited out of every scope, then edited again",
			grants: grants(asg(delegation.RoleHR, "user:hank", where(`department eq "Sales"`)),
				asg(delegation.RoleHR, "user:hank", where(`title eq "Leaving"`))),
			actor: "hank", ops: []change.Op{update("sam", map[string]any{"title": "Leaving"}), update("sam", map[string]any{"department": "Legal"}),
				update("sam", map[string]any{"title": "Gone"})}, want: notAuth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := standardOrg(t)
			for _, g := range tc.grants {
				w.grant(g)
			}
			if tc.setup != nil {
				tc.setup(w)
			}
			before := w.user("sam").Version + w.user("sue").Version
			_, err := w.p.SubmitBatch(w.ctx, w.actor(tc.actor), w.meta, tc.ops)
			wantReason(t, err, tc.want)
			after := w.user("sam").Version + w.user("sue").Version
			if tc.want != "" && after != before {
				t.Fatalf("a denied batch changed the directory (versions %d -> %d)", before, after)
			}
		})
	}
}

// TestReplicas checks that an engine that learns of changes only from the audit log (another
// replica's, catching up before each decision) decides as the one that made them: every kind of
// event that authorization depends on is folded in from its stored, decoded form.
func TestReplicas(t *testing.T) {
	for _, e := range []struct {
		name string
		open func(t *testing.T) *store.Store
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			a := newWorld(t, e.open(t))
			for _, ou := range []string{"corp", "corp/sales", "ext"} {
				a.mkOU(ou)
			}
			a.mkUser(directory.UserInput{Username: "helen", OU: "corp"})
			a.mkUser(directory.UserInput{Username: "sam", OU: "corp/sales"})
			a.mkGroup(directory.GroupInput{Name: "desk", OU: "corp"}, "user:helen")
			// The other replica: its own engine, loaded now, over the same database.
			engB := delegation.NewEngine(storetest.Logger(t))
			engB.SetClock(a.clk.Now)
			must(t, engB.Load(a.ctx, a.st))
			b := &world{t: t, ctx: a.ctx, st: a.st, p: change.New(a.st, engB, storetest.Logger(t), change.WithClock(a.clk.Now)),
				eng: engB, clk: a.clk, admin: a.admin, meta: a.meta}
			phone := 0
			try := func(step, want string) {
				t.Helper()
				phone++
				_, err := b.submit("helen", update("sam", map[string]any{"phone": fmt.Sprintf("+1 555 01%02d", phone)}))
				t.Logf("after: %s", step) // shown when the check below fails
				wantReason(t, err, want)
			}
			user := func(name string) directory.Ref { return directory.ParseRef(directory.KindUser, name) }
			try("nothing granted", notAuth)
			id := a.grant(asg(delegation.RoleHelpdesk, "group:desk", subtree("corp")))
			try("a grant to helen's group", "")
			a.do(removeMember("desk", "user:helen"))
			try("helen left the group", notAuth)
			a.do(addMember("desk", "user:helen"))
			try("helen is back", "")
			a.do(change.Op{Action: delegation.UserDisable, Target: user("helen")})
			try("helen disabled", inactive)
			a.do(change.Op{Action: delegation.UserEnable, Target: user("helen")})
			try("helen enabled", "")
			a.do(move(directory.KindOU, "corp/sales", "ext"))
			try("sam's OU moved out of corp", notAuth)
			a.do(move(directory.KindOU, "ext/sales", "corp"))
			try("sam's OU moved back", "")
			a.do(update("sam", map[string]any{"protected": true}))
			try("sam protected", protected)
			a.do(update("sam", map[string]any{"protected": false}))
			try("sam unprotected", "")
			a.do(change.Op{Action: delegation.RoleRevoke, Target: assignmentRef(id)})
			try("the grant revoked", notAuth)
			roleCreate("phones", []string{"phone"}, delegation.UserUpdate)(a)
			a.grant(asg("phones", "user:helen", subtree("corp")))
			try("a custom role granted", "")
			a.do(change.Op{Action: delegation.RoleUpdate, Target: directory.Ref{Kind: directory.KindRole, Name: "phones"},
				Patch: patch(map[string]any{"user_attributes": []string{"title"}})})
			try("the custom role narrowed", notAuth)
			a.grant(asg(delegation.RoleHelpdesk, "user:helen", subtree("corp"), eligible("1h")))
			try("an eligible grant", notAuth)
			activate("helen", delegation.RoleHelpdesk, "30m")(a)
			try("activated", "")
			a.do(change.Op{Action: delegation.UserDelete, Target: user("sam")})
			_, err := b.submit("helen", update("sam", map[string]any{"phone": "+1 555 0100"}))
			wantReason(t, err, notAuth) // gone: the holder learns nothing more than a stranger
		})
	}
}
