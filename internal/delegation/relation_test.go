package delegation_test

import (
	"testing"

	"github.com/deputy-iam/deputy/internal/delegation"
)

// TestTakeoverOfRelationHolders checks guardrail 1 for rights held over a relation (a manager's
// reports, an owner's groups): they are judged on the objects they reach now. Holding one that
// reaches nothing is holding nothing; holding one over objects the actor covers with a role that
// covers it is no more than the actor holds; anything else is an escalation.
func TestTakeoverOfRelationHolders(t *testing.T) {
	helpdesk := asg(delegation.RoleHelpdesk, "user:helen", subtree("corp"))
	wider := func(w *world) { // a role that covers the manager role, over corp
		roleCreate("contacts", []string{"location", "phone", "title"}, delegation.DirectoryRead, delegation.UserUpdate)(w)
		w.grant(asg("contacts", "user:helen", subtree("corp")))
	}
	managers := asg(delegation.RoleManager, "user:mia", rel(delegation.RelDirectReports))
	owners := asg(delegation.RoleGroupOwner, "group:eng-all", rel(delegation.RelOwnedGroups))
	rows := []row{
		{name: "an owner of nothing", grants: grants(helpdesk, owners), actor: "helen", op: setPhone("eve")},
		{name: "an owner of groups", grants: grants(helpdesk, owners), actor: "helen", op: setPhone("gina"), want: escalation},
		{name: "a manager, with a role that does not cover the manager's", grants: grants(helpdesk, managers), actor: "helen",
			op: setPhone("mia"), want: escalation},
		{name: "a manager whose reports the actor covers with a covering role", grants: grants(managers), setup: wider,
			actor: "helen", op: setPhone("mia")},
		{name: "a manager with a report outside the actor's scope", grants: grants(managers),
			setup: both(wider, adminDoes(update("xena", map[string]any{"manager": "mia"}))),
			actor: "helen", op: setPhone("mia"), want: escalation},
		{name: "a manager of no one", grants: grants(helpdesk, asg(delegation.RoleManager, "user:hank", rel(delegation.RelDirectReports))),
			actor: "helen", op: setPhone("hank")},
	}
	runRows(t, rows)
}
