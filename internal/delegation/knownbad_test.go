package delegation_test

import (
	"testing"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// TestKeycloak46693 reproduces keycloak#46693: in Keycloak's fine-grained admin permissions, a
// deny on a protected group could be bypassed through manage-group-membership. Here, whoever
// may add members to groups (a group owner, a role with group.add_member) still cannot add
// anyone to a protected group or to a group that holds tier-0, however the right reaches the
// group, and an exclusion is not bypassed by another path either.
func TestKeycloak46693(t *testing.T) {
	sight := asg(delegation.RoleAuditor, "user:gina", subtree("corp"))
	owner := grants(asg(delegation.RoleGroupOwner, "user:gina", rel(delegation.RelOwnedGroups)), sight)
	wide := grants(asg(delegation.RoleGroupOwner, "user:gina", subtree("/")), sight)
	excluded := grants(asg(delegation.RoleGroupOwner, "user:gina", subtree("corp"), excludeGroup("admins")), sight)
	rows := []row{
		{name: "an owned ordinary group (control)", grants: owner, actor: "gina", op: opFn(addMember("project", "user:sam"))},
		{name: "an owned protected group", grants: owner, actor: "gina", op: opFn(addMember("admins", "user:sam")), want: protected},
		{name: "a protected group by OU", grants: wide, actor: "gina", op: opFn(addMember("admins", "user:sam")), want: protected},
		{name: "a protected group's members removed", grants: owner, actor: "gina", op: opFn(removeMember("admins", "user:pat")), want: protected},
		{name: "an owned group holding tier-0", grants: owner, actor: "gina", op: opFn(addMember("t0-group", "user:sam")), want: protected},
		{name: "a group nested in a tier-0 group", grants: owner, actor: "gina", op: opFn(addMember("t0-sub", "user:sam")), want: protected},
		{name: "nesting an owned group into a tier-0 group", grants: owner, actor: "gina", op: opFn(addMember("t0-group", "group:project")), want: protected},
		{name: "a group holding tier-0, by OU", grants: wide, actor: "gina", op: opFn(addMember("t0-group", "user:sam")), want: protected},
		{name: "the deny: a group carved out", grants: excluded, actor: "gina", op: opFn(addMember("admins", "user:sam")), want: notAuth},
		{name: "the deny, bypassed through ownership", grants: append(excluded, owner[0]), actor: "gina",
			op: opFn(addMember("admins", "user:sam")), want: protected},
		{name: "a protected group made unprotected", grants: wide, setup: roleCreate("group-editor", nil, delegation.GroupUpdate),
			actor: "gina", op: func(w *world) change.Op {
				w.grant(asg("group-editor", "user:gina", subtree("/")))
				return updateGroup("admins", map[string]any{"protected": false})
			}, want: protected},
		{name: "taking over a protected group's owner", grants: wide, setup: roleCreate("group-editor", nil, delegation.GroupUpdate, delegation.GroupSetOwner),
			actor: "gina", op: func(w *world) change.Op {
				w.grant(asg("group-editor", "user:gina", subtree("/")))
				return updateGroup("admins", map[string]any{"owners": []string{"eve"}})
			}, want: protected},
		{name: "tier-0 may", actor: "admin", op: opFn(addMember("admins", "user:sam"))},
	}
	runRows(t, rows)
}

// TestFreeIPACVE202010747 reproduces CVE-2020-10747: FreeIPA's user administrators could modify
// administrators. Here a user administrator (hr, or helpdesk) whose scope covers a tier-0 admin
// or a protected user can change nothing of them, whatever the action.
func TestFreeIPACVE202010747(t *testing.T) {
	userAdmin := grants(asg(delegation.RoleHR, "user:hank", subtree("/")), asg(delegation.RoleHelpdesk, "user:hank", subtree("/")))
	userOp := func(a delegation.Action, user string) func(*world) change.Op {
		return opFn(change.Op{Action: a, Target: directory.ParseRef(directory.KindUser, user)})
	}
	rows := []row{
		{name: "an ordinary user (control)", grants: userAdmin, actor: "hank", op: opFn(update("sam", map[string]any{"title": "x"}))},
		{name: "the bootstrap admin's name", grants: userAdmin, actor: "hank", op: opFn(update("admin", map[string]any{"given_name": "x"})), want: protected},
		{name: "the bootstrap admin's phone", grants: userAdmin, actor: "hank", op: setPhone("admin"), want: protected},
		{name: "the bootstrap admin's password", grants: userAdmin, actor: "hank",
			action: delegation.UserResetPassword, kind: directory.KindUser, target: "admin", want: protected},
		{name: "disabling the bootstrap admin", grants: userAdmin, actor: "hank", op: userOp(delegation.UserDisable, "admin"), want: protected},
		{name: "moving a tier-0 admin", grants: userAdmin, actor: "hank", op: opFn(move(directory.KindUser, "root2", "corp/eng")), want: protected},
		{name: "a tier-0 admin's title", grants: userAdmin, actor: "hank", op: opFn(update("root2", map[string]any{"title": "x"})), want: protected},
		{name: "a tier-0 admin's manager", grants: userAdmin, actor: "hank", op: opFn(update("root2", map[string]any{"manager": "mia"})), want: protected},
		{name: "disabling a tier-0 admin", grants: userAdmin, actor: "hank", op: userOp(delegation.UserDisable, "root2"), want: protected},
		{name: "a tier-0 admin through a group", grants: userAdmin, actor: "hank", op: opFn(update("tom", map[string]any{"title": "x"})), want: protected},
		{name: "a just-in-time tier-0 admin", grants: append(userAdmin, asg(delegation.RoleTier0, "user:eve", subtree("/"), eligible("1h"))),
			actor: "hank", op: opFn(update("eve", map[string]any{"title": "x"})), want: protected},
		{name: "a protected user", grants: userAdmin, actor: "hank", op: opFn(update("pat", map[string]any{"title": "x"})), want: protected},
		{name: "making oneself tier-0", grants: grants(asg(delegation.RoleHR, "user:hank", subtree("/"), redelegable)), actor: "hank",
			op: opFn(assign(asg(delegation.RoleTier0, "user:hank", subtree("/")))), want: selfEsc},
		{name: "making someone else tier-0", grants: grants(asg(delegation.RoleHR, "user:hank", subtree("/"), redelegable)), actor: "hank",
			op: opFn(assign(asg(delegation.RoleTier0, "user:sam", subtree("/")))), want: protected},
		{name: "an admin of a part of the directory", grants: grants(asg(delegation.RoleHR, "user:hank", subtree("corp"))), actor: "hank",
			op: opFn(update("root2", map[string]any{"title": "x"})), want: protected},
	}
	runRows(t, rows)
}
