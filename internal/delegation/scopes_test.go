package delegation_test

import (
	"testing"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// TestScopes checks every kind of scope, and exclusions, through the pipeline: what an
// assignment covers is allowed, what it does not is denied with not_authorized.
func TestScopes(t *testing.T) {
	const notAuth = delegation.ReasonNotAuthorized
	helpdesk := func(scope delegation.ScopeInput, opts ...func(*delegation.AssignmentInput)) []delegation.AssignmentInput {
		return []delegation.AssignmentInput{asg(delegation.RoleHelpdesk, "user:helen", scope, opts...)}
	}
	setPhone := func(user string) func(*world) change.Op {
		return opFn(update(user, map[string]any{"phone": "+1 555 0199"}))
	}
	owner := []delegation.AssignmentInput{
		asg(delegation.RoleGroupOwner, "user:gina", rel(delegation.RelOwnedGroups)),
		asg(delegation.RoleAuditor, "user:gina", subtree("corp")),
	}
	rows := []row{
		// An OU and everything below it.
		{name: "ou subtree: in the OU", grants: helpdesk(subtree("corp/sales")), actor: "helen", op: setPhone("sam")},
		{name: "ou subtree: below the OU", grants: helpdesk(subtree("corp/sales")), actor: "helen", op: setPhone("sue")},
		{name: "ou subtree: elsewhere in the tree", grants: helpdesk(subtree("corp/sales")), actor: "helen", op: setPhone("eve"), want: notAuth},
		{name: "ou subtree: another tree", grants: helpdesk(subtree("corp/sales")), actor: "helen", op: setPhone("xena"), want: notAuth},
		{name: "ou subtree: the OU itself", grants: helpdesk(subtree("corp/sales")), actor: "helen",
			action: delegation.DirectoryRead, kind: directory.KindOU, target: "corp/sales"},
		{name: "ou subtree: an OU below", grants: helpdesk(subtree("corp/sales")), actor: "helen",
			action: delegation.DirectoryRead, kind: directory.KindOU, target: "corp/sales/vip"},
		{name: "ou subtree: the parent OU", grants: helpdesk(subtree("corp/sales")), actor: "helen",
			action: delegation.DirectoryRead, kind: directory.KindOU, target: "corp", want: notAuth},
		{name: "ou subtree: groups and service accounts in it", grants: helpdesk(subtree("corp/sales")), actor: "helen",
			action: delegation.DirectoryRead, kind: directory.KindServiceAccount, target: "sales-bot"},
		{name: "ou subtree: service accounts elsewhere", grants: helpdesk(subtree("corp/sales")), actor: "helen",
			action: delegation.DirectoryRead, kind: directory.KindServiceAccount, target: "ci-bot", want: notAuth},

		// One OU only.
		{name: "ou only: in the OU", grants: helpdesk(ouOnly("corp/sales")), actor: "helen", op: setPhone("sam")},
		{name: "ou only: below the OU", grants: helpdesk(ouOnly("corp/sales")), actor: "helen", op: setPhone("sue"), want: notAuth},
		{name: "ou only: an OU below", grants: helpdesk(ouOnly("corp/sales")), actor: "helen",
			action: delegation.DirectoryRead, kind: directory.KindOU, target: "corp/sales/vip", want: notAuth},

		// Listed groups: the groups themselves and their members, transitively.
		{name: "groups: a direct member", grants: helpdesk(groups("crm-users")), actor: "helen", op: setPhone("sam")},
		{name: "groups: a member of a nested group", grants: helpdesk(groups("crm-users")), actor: "helen", op: setPhone("sue")},
		{name: "groups: not a member", grants: helpdesk(groups("crm-users")), actor: "helen", op: setPhone("mia"), want: notAuth},
		{name: "groups: the group itself", grants: helpdesk(groups("crm-users")), actor: "helen",
			action: delegation.DirectoryRead, kind: directory.KindGroup, target: "crm-users"},
		{name: "groups: a nested group", grants: helpdesk(groups("crm-users")), actor: "helen",
			action: delegation.DirectoryRead, kind: directory.KindGroup, target: "crm-power"},
		{name: "groups: another group", grants: helpdesk(groups("crm-users")), actor: "helen",
			action: delegation.DirectoryRead, kind: directory.KindGroup, target: "project", want: notAuth},
		{name: "groups: a member added later", grants: helpdesk(groups("crm-users")), setup: adminDoes(addMember("crm-power", "user:mia")),
			actor: "helen", op: setPhone("mia")},
		{name: "groups: a member removed", grants: helpdesk(groups("crm-users")), setup: adminDoes(removeMember("crm-users", "user:sam")),
			actor: "helen", op: setPhone("sam"), want: notAuth},

		// A SCIM filter over users' attributes, wherever they are.
		{name: "filter: a match", grants: helpdesk(where(`department eq "Sales"`)), actor: "helen", op: setPhone("sam")},
		{name: "filter: a match in another tree", grants: helpdesk(where(`department eq "sales"`)), actor: "helen", op: setPhone("xena")},
		{name: "filter: no match", grants: helpdesk(where(`department eq "Sales"`)), actor: "helen", op: setPhone("eve"), want: notAuth},
		{name: "filter: on the OU path", grants: helpdesk(where(`ou sw "corp/sales/"`)), actor: "helen", op: setPhone("sue")},
		{name: "filter: on the manager", grants: helpdesk(where(`manager eq "mia"`)), actor: "helen", op: setPhone("sam")},
		{name: "filter: selects users only", grants: helpdesk(where(`department eq "Sales"`)), actor: "helen",
			action: delegation.DirectoryRead, kind: directory.KindGroup, target: "crm-users", want: notAuth},

		// Relations to the actor.
		{name: "relation self: oneself", grants: helpdesk(rel(delegation.RelSelf)), actor: "helen", op: setPhone("helen")},
		{name: "relation self: someone else", grants: helpdesk(rel(delegation.RelSelf)), actor: "helen", op: setPhone("sam"), want: notAuth},
		{name: "relation direct_reports: a report",
			grants: []delegation.AssignmentInput{asg(delegation.RoleManager, "user:mia", rel(delegation.RelDirectReports))},
			actor:  "mia", op: opFn(update("sam", map[string]any{"title": "Account executive"}))},
		{name: "relation direct_reports: not a report",
			grants: []delegation.AssignmentInput{asg(delegation.RoleManager, "user:mia", rel(delegation.RelDirectReports))},
			actor:  "mia", op: opFn(update("rita", map[string]any{"title": "Account executive"})), want: notAuth},
		{name: "relation direct_reports: held through a group",
			grants: []delegation.AssignmentInput{asg(delegation.RoleManager, "group:crm-users", rel(delegation.RelDirectReports))},
			setup:  adminDoes(update("rita", map[string]any{"manager": "sue"})),
			actor:  "sue", op: opFn(update("rita", map[string]any{"title": "Account executive"}))},
		{name: "relation owned_groups: an owned group", grants: owner, actor: "gina", op: opFn(addMember("project", "user:sam"))},
		{name: "relation owned_groups: a group owned by someone else", grants: owner, actor: "gina",
			op: opFn(addMember("crm-users", "user:eve")), want: notAuth},
		{name: "relation owned_service_accounts: an owned one",
			grants: []delegation.AssignmentInput{asg(delegation.RoleSAOwner, "user:oscar", rel(delegation.RelOwnedServiceAccounts))},
			actor:  "oscar", action: delegation.SAIssueKey, kind: directory.KindServiceAccount, target: "ci-bot"},
		{name: "relation owned_service_accounts: someone else's",
			grants: []delegation.AssignmentInput{asg(delegation.RoleSAOwner, "user:oscar", rel(delegation.RelOwnedServiceAccounts))},
			actor:  "oscar", action: delegation.SAIssueKey, kind: directory.KindServiceAccount, target: "sales-bot", want: notAuth},

		// Exclusions carve an OU subtree or a group's members out of any scope.
		{name: "exclude OU: outside the exclusion", grants: helpdesk(subtree("corp"), excludeOU("corp/sales/vip")), actor: "helen", op: setPhone("sam")},
		{name: "exclude OU: inside it", grants: helpdesk(subtree("corp"), excludeOU("corp/sales/vip")), actor: "helen", op: setPhone("sue"), want: notAuth},
		{name: "exclude OU: from a filter scope", grants: helpdesk(where(`department eq "Sales"`), excludeOU("ext")), actor: "helen",
			op: setPhone("xena"), want: notAuth},
		{name: "exclude group: not a member", grants: helpdesk(subtree("corp"), excludeGroup("crm-power")), actor: "helen", op: setPhone("sam")},
		{name: "exclude group: a member", grants: helpdesk(subtree("corp"), excludeGroup("crm-power")), actor: "helen", op: setPhone("sue"), want: notAuth},
		{name: "exclude group: a nested member", grants: helpdesk(subtree("corp"), excludeGroup("crm-users")), actor: "helen", op: setPhone("sue"), want: notAuth},
		{name: "exclude group: the group itself", grants: helpdesk(subtree("corp"), excludeGroup("crm-users")), actor: "helen",
			action: delegation.DirectoryRead, kind: directory.KindGroup, target: "crm-users", want: notAuth},
	}
	runRows(t, rows)
}
