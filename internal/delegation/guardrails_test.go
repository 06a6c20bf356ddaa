package delegation_test

import (
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// Reason codes, short.
const (
	notAuth    = delegation.ReasonNotAuthorized
	escalation = delegation.ReasonEscalation
	protected  = delegation.ReasonProtected
	selfEsc    = delegation.ReasonSelfEscalation
	exceeds    = delegation.ReasonExceedsGrant
	inactive   = delegation.ReasonActorInactive
)

func grants(as ...delegation.AssignmentInput) []delegation.AssignmentInput { return as }

func setPhone(user string) func(*world) change.Op {
	return opFn(update(user, map[string]any{"phone": "+1 555 0199"}))
}

// TestGuardrailTakeover is guardrail 1: a takeover action on someone who holds a right the
// actor does not is an escalation; protected objects and tier-0 holders are tier-0's alone.
func TestGuardrailTakeover(t *testing.T) {
	helpdeskCorp := asg(delegation.RoleHelpdesk, "user:helen", subtree("corp"))
	ritaHR := asg(delegation.RoleHR, "user:rita", subtree("corp/sales"))
	inAnHour := func(w *world) func(*delegation.AssignmentInput) {
		return validity(w.clk.Peek().Add(time.Hour), time.Time{})
	}
	rows := []row{
		{name: "phone of someone who holds nothing", grants: grants(helpdeskCorp), actor: "helen", op: setPhone("sam")},
		{name: "phone of someone who holds more", grants: grants(helpdeskCorp, ritaHR), actor: "helen", op: setPhone("rita"), want: escalation},
		{name: "email of someone who holds more",
			setup: both(roleCreate("contact", []string{"email", "phone"}, delegation.UserUpdate, delegation.DirectoryRead),
				func(w *world) { w.grant(asg("contact", "user:helen", subtree("corp"))); w.grant(ritaHR) }),
			actor: "helen", op: opFn(update("rita", map[string]any{"email": "rita@example.com"})), want: escalation},
		{name: "a non-recovery attribute of someone who holds more", grants: grants(helpdeskCorp, ritaHR), actor: "helen",
			op: opFn(update("rita", map[string]any{"title": "Lead"}))},
		{name: "reset the password of someone who holds more", grants: grants(helpdeskCorp, ritaHR), actor: "helen",
			action: delegation.UserResetPassword, kind: directory.KindUser, target: "rita", want: escalation},
		{name: "reset the password of someone who holds nothing", grants: grants(helpdeskCorp), actor: "helen",
			action: delegation.UserResetPassword, kind: directory.KindUser, target: "sam"},
		{name: "someone who holds less", grants: grants(helpdeskCorp, asg(delegation.RoleHelpdesk, "user:sam", subtree("corp/sales"))),
			actor: "helen", op: setPhone("sam")},
		{name: "someone who holds the same role more widely",
			grants: grants(asg(delegation.RoleHelpdesk, "user:helen", subtree("corp/sales")), asg(delegation.RoleHelpdesk, "user:rita", subtree("corp"))),
			actor:  "helen", op: setPhone("rita"), want: escalation},
		{name: "rights held through a nested group", grants: grants(helpdeskCorp, asg(delegation.RoleAuditor, "group:crm-users", subtree("corp"))),
			actor: "helen", op: setPhone("sue"), want: escalation},
		{name: "eligible rights count", grants: grants(helpdeskCorp, asg(delegation.RoleHR, "user:rita", subtree("corp/sales"), eligible("1h"))),
			actor: "helen", op: setPhone("rita"), want: escalation},
		{name: "rights valid later count", grants: grants(helpdeskCorp),
			setup: func(w *world) { w.grant(asg(delegation.RoleHR, "user:rita", subtree("corp/sales"), inAnHour(w))) },
			actor: "helen", op: setPhone("rita"), want: escalation},
		{name: "expired rights do not count", grants: grants(helpdeskCorp),
			setup: func(w *world) {
				w.grant(asg(delegation.RoleHR, "user:rita", subtree("corp/sales"), validity(time.Time{}, w.clk.Peek().Add(time.Hour))))
				w.clk.Advance(2 * time.Hour)
			},
			actor: "helen", op: setPhone("rita")},
		{name: "the manager of someone who holds more",
			grants: grants(asg(delegation.RoleHR, "user:hank", subtree("corp")), asg(delegation.RoleAuditor, "user:rita", subtree("corp/sales"))),
			actor:  "hank", op: opFn(update("rita", map[string]any{"manager": "mia"})), want: escalation},
		{name: "the manager of someone who holds less",
			grants: grants(asg(delegation.RoleHR, "user:hank", subtree("corp")), asg(delegation.RoleHR, "user:rita", subtree("corp/sales"))),
			actor:  "hank", op: opFn(update("rita", map[string]any{"manager": "mia"}))},
		{name: "a token for someone who holds more",
			setup: both(roleCreate("token-issuer", nil, delegation.UserIssueToken, delegation.DirectoryRead),
				func(w *world) { w.grant(asg("token-issuer", "user:helen", subtree("corp"))); w.grant(ritaHR) }),
			actor: "helen", op: opFn(change.Op{Action: delegation.UserIssueToken, Target: directory.ParseRef(directory.KindUser, "rita"),
				Token: &change.TokenInput{Name: "t"}}), want: escalation},
		{name: "a token for someone who holds nothing",
			setup: both(roleCreate("token-issuer", nil, delegation.UserIssueToken, delegation.DirectoryRead),
				func(w *world) { w.grant(asg("token-issuer", "user:helen", subtree("corp"))) }),
			actor: "helen", op: opFn(change.Op{Action: delegation.UserIssueToken, Target: directory.ParseRef(directory.KindUser, "sam"),
				Token: &change.TokenInput{Name: "t"}})},
		{name: "a key for a service account whose group holds more",
			grants: grants(asg(delegation.RoleSAOwner, "user:oscar", rel(delegation.RelOwnedServiceAccounts)),
				asg(delegation.RoleHR, "group:project", subtree("corp"))),
			setup: adminDoes(addMember("project", "sa:ci-bot")),
			actor: "oscar", action: delegation.SAIssueKey, kind: directory.KindServiceAccount, target: "ci-bot", want: escalation},

		// Protected objects and tier-0 holders: tier-0 only, whatever the attribute.
		{name: "a protected user", grants: grants(helpdeskCorp), actor: "helen", op: setPhone("pat"), want: protected},
		{name: "a protected user, any attribute", grants: grants(helpdeskCorp), actor: "helen",
			op: opFn(update("pat", map[string]any{"title": "x"})), want: protected},
		{name: "a tier-0 holder", grants: grants(helpdeskCorp), actor: "helen", op: opFn(update("root2", map[string]any{"title": "x"})), want: protected},
		{name: "a tier-0 holder through a group", grants: grants(helpdeskCorp), actor: "helen", op: setPhone("tom"), want: protected},
		{name: "a tier-0 holder through a nested group", grants: grants(helpdeskCorp), setup: adminDoes(addMember("t0-sub", "user:rita")),
			actor: "helen", op: setPhone("rita"), want: protected},
		{name: "an eligible tier-0 holder", grants: grants(helpdeskCorp, asg(delegation.RoleTier0, "user:eve", subtree("/"), eligible("1h"))),
			actor: "helen", op: setPhone("eve"), want: protected},
		{name: "protecting an object", setup: both(roleCreate("user-admin", nil, delegation.UserUpdate, delegation.DirectoryRead),
			func(w *world) { w.grant(asg("user-admin", "user:hank", subtree("corp"))) }),
			actor: "hank", op: opFn(update("sam", map[string]any{"protected": true})), want: protected},
		{name: "creating a protected user", grants: grants(asg(delegation.RoleHR, "user:hank", subtree("corp"))), actor: "hank",
			op: opFn(change.Op{Action: delegation.UserCreate, User: &directory.UserInput{Username: "new", OU: "corp/sales", Protected: true}}), want: protected},
		{name: "tier-0 may", actor: "admin", op: setPhone("pat")},
		{name: "reading a protected user is no change", grants: grants(asg(delegation.RoleAuditor, "user:hank", subtree("corp"))),
			actor: "hank", action: delegation.DirectoryRead, kind: directory.KindUser, target: "pat"},
		{name: "reading a tier-0 holder is no change", grants: grants(asg(delegation.RoleAuditor, "user:hank", subtree("corp"))),
			actor: "hank", action: delegation.DirectoryRead, kind: directory.KindUser, target: "root2"},
	}
	runRows(t, rows)
}

// TestGuardrailSelfEscalation is guardrail 2: nobody adds themselves (or a group they are in)
// to a group or changes their own assignments; nobody but tier-0 makes themselves an owner or
// someone's manager.
func TestGuardrailSelfEscalation(t *testing.T) {
	owner := grants(asg(delegation.RoleGroupOwner, "user:gina", rel(delegation.RelOwnedGroups)),
		asg(delegation.RoleAuditor, "user:gina", subtree("corp")))
	hr := grants(asg(delegation.RoleHR, "user:hank", subtree("corp"), redelegable))
	groupAdmin := both(roleCreate("group-admin", nil, delegation.GroupUpdate, delegation.GroupSetOwner, delegation.DirectoryRead),
		func(w *world) { w.grant(asg("group-admin", "user:gina", subtree("corp"))) })
	rows := []row{
		{name: "adding oneself to a group", grants: owner, actor: "gina", op: opFn(addMember("project", "user:gina")), want: selfEsc},
		{name: "adding a group one is in", grants: owner, actor: "gina", op: opFn(addMember("project", "group:eng-all")), want: selfEsc},
		{name: "adding a group one is in through nesting", grants: owner, setup: adminDoes(addMember("hd-sub", "user:gina")),
			actor: "gina", op: opFn(addMember("project", "group:it-helpdesk")), want: selfEsc},
		{name: "adding someone else", grants: owner, actor: "gina", op: opFn(addMember("project", "user:oscar"))},
		{name: "tier-0 adding themselves", actor: "admin", op: opFn(addMember("project", "user:admin")), want: selfEsc},
		{name: "granting oneself", grants: hr, actor: "hank",
			op: opFn(assign(asg(delegation.RoleHR, "user:hank", subtree("corp/sales")))), want: selfEsc},
		{name: "granting a group one is in", grants: hr, setup: adminDoes(addMember("crm-power", "user:hank")), actor: "hank",
			op: opFn(assign(asg(delegation.RoleHR, "group:crm-users", subtree("corp/sales")))), want: selfEsc},
		{name: "granting someone else", grants: hr, actor: "hank", op: opFn(assign(asg(delegation.RoleHR, "user:rita", subtree("corp/sales"))))},
		{name: "revoking one's own assignment", grants: hr, actor: "hank", op: func(w *world) change.Op {
			id := w.assignmentOf(directory.ParseRef(directory.KindUser, "hank"), delegation.RoleHR)
			return change.Op{Action: delegation.RoleRevoke, Target: assignmentRef(id)}
		}, want: selfEsc},
		{name: "tier-0 revoking their own assignment", actor: "root2", op: func(w *world) change.Op {
			id := w.assignmentOf(directory.ParseRef(directory.KindUser, "root2"), delegation.RoleTier0)
			return change.Op{Action: delegation.RoleRevoke, Target: assignmentRef(id)}
		}, want: selfEsc},
		{name: "making oneself an owner", setup: groupAdmin, actor: "gina",
			op: opFn(updateGroup("crm-users", map[string]any{"owners": []string{"gina"}})), want: selfEsc},
		{name: "making someone else an owner", setup: groupAdmin, actor: "gina",
			op: opFn(updateGroup("crm-users", map[string]any{"owners": []string{"eve"}}))},
		{name: "tier-0 making themselves an owner", actor: "admin", op: opFn(updateGroup("crm-users", map[string]any{"owners": []string{"admin"}}))},
		{name: "making oneself someone's manager", grants: hr, actor: "hank", op: opFn(update("sam", map[string]any{"manager": "hank"})), want: selfEsc},
		{name: "making someone else their manager", grants: hr, actor: "hank", op: opFn(update("sam", map[string]any{"manager": "rita"}))},
	}
	runRows(t, rows)
}

// TestGuardrailGrantOnlyWhatYouHold is guardrail 3: role.assign needs a redelegatable,
// non-eligible assignment whose role covers the new one's, whose scope contains it and whose
// validity is no shorter.
func TestGuardrailGrantOnlyWhatYouHold(t *testing.T) {
	hr := func(scope delegation.ScopeInput, opts ...func(*delegation.AssignmentInput)) []delegation.AssignmentInput {
		return grants(asg(delegation.RoleHR, "user:hank", scope, append([]func(*delegation.AssignmentInput){redelegable}, opts...)...))
	}
	to := func(role, holder string, scope delegation.ScopeInput, opts ...func(*delegation.AssignmentInput)) func(*world) change.Op {
		return opFn(assign(asg(role, holder, scope, opts...)))
	}
	days := func(n int) func(*world) {
		return func(w *world) {
			w.grant(asg(delegation.RoleHR, "user:hank", subtree("corp"), redelegable, validity(time.Time{}, w.clk.Peek().Add(time.Duration(n)*24*time.Hour))))
		}
	}
	untilDays := func(n int) func(*world) change.Op {
		return func(w *world) change.Op {
			return assign(asg(delegation.RoleHR, "user:eve", subtree("corp/sales"),
				validity(time.Time{}, w.clk.Peek().Add(time.Duration(n)*24*time.Hour))))
		}
	}
	rows := []row{
		{name: "without can_redelegate", grants: grants(asg(delegation.RoleHR, "user:hank", subtree("corp"))), actor: "hank",
			op: to(delegation.RoleHR, "user:eve", subtree("corp/sales")), want: exceeds},
		{name: "a subset", grants: hr(subtree("corp")), actor: "hank", op: to(delegation.RoleHR, "user:eve", subtree("corp/sales"))},
		{name: "the same", grants: hr(subtree("corp")), actor: "hank", op: to(delegation.RoleHR, "user:eve", subtree("corp"), redelegable)},
		{name: "to a group", grants: hr(subtree("corp")), actor: "hank", op: to(delegation.RoleHR, "group:crm-users", subtree("corp/sales"))},
		{name: "a role with more actions", grants: hr(subtree("corp")), actor: "hank",
			op: to(delegation.RoleGroupOwner, "user:eve", subtree("corp/sales")), want: exceeds},
		{name: "a role with more attributes", grants: hr(subtree("corp")), actor: "hank",
			op: to(delegation.RoleHelpdesk, "user:eve", subtree("corp/sales")), want: exceeds},
		{name: "a narrower custom role", grants: hr(subtree("corp")), setup: roleCreate("titles", []string{"title"}, delegation.UserUpdate),
			actor: "hank", op: to("titles", "user:eve", subtree("corp/sales"))},
		{name: "the tier-0 role", grants: hr(subtree("corp")), actor: "hank", op: to(delegation.RoleTier0, "user:eve", subtree("/")), want: protected},
		{name: "a wider scope", grants: hr(subtree("corp/sales")), actor: "hank", op: to(delegation.RoleHR, "user:rita", subtree("corp")), want: exceeds},
		{name: "a scope elsewhere", grants: hr(subtree("corp")), actor: "hank", op: to(delegation.RoleHR, "user:eve", subtree("ext")), want: exceeds},
		{name: "a subtree from one OU only", grants: hr(ouOnly("corp/sales")), actor: "hank", op: to(delegation.RoleHR, "user:rita", subtree("corp/sales")), want: exceeds},
		{name: "one OU from one OU", grants: hr(ouOnly("corp/sales")), actor: "hank", op: to(delegation.RoleHR, "user:rita", ouOnly("corp/sales"))},
		{name: "a filter from an OU scope", grants: hr(subtree("corp/sales")), actor: "hank",
			op: to(delegation.RoleHR, "user:rita", where(`department eq "Sales"`)), want: exceeds},
		{name: "a narrower filter", grants: hr(where(`department eq "Sales"`)), actor: "hank",
			op: to(delegation.RoleHR, "user:rita", where(`department eq "Sales" and title eq "Rep"`))},
		{name: "another filter", grants: hr(where(`department eq "Sales"`)), actor: "hank",
			op: to(delegation.RoleHR, "user:rita", where(`department eq "Sales" or title eq "Rep"`)), want: exceeds},
		{name: "a nested group from a group", grants: hr(groups("crm-users")), actor: "hank", op: to(delegation.RoleHR, "user:sam", groups("crm-power"))},
		{name: "a group from a nested group", grants: hr(groups("crm-power")), actor: "hank", op: to(delegation.RoleHR, "user:sue", groups("crm-users")), want: exceeds},
		{name: "someone else's relation", grants: hr(rel(delegation.RelDirectReports)), setup: adminDoes(update("eve", map[string]any{"manager": "hank"})),
			actor: "hank", op: to(delegation.RoleHR, "user:eve", rel(delegation.RelDirectReports)), want: exceeds},
		{name: "dropping an exclusion", grants: hr(subtree("corp"), excludeOU("corp/sales/vip")), actor: "hank",
			op: to(delegation.RoleHR, "user:eve", subtree("corp/sales")), want: exceeds},
		{name: "keeping an exclusion", grants: hr(subtree("corp"), excludeOU("corp/sales/vip")), actor: "hank",
			op: to(delegation.RoleHR, "user:eve", subtree("corp/sales"), excludeOU("corp/sales/vip"))},
		{name: "beside an exclusion", grants: hr(subtree("corp"), excludeOU("corp/sales/vip")), actor: "hank",
			op: to(delegation.RoleHR, "user:eve", subtree("corp/eng"))},
		{name: "dropping a group exclusion", grants: hr(subtree("corp"), excludeGroup("crm-power")), actor: "hank",
			op: to(delegation.RoleHR, "user:eve", subtree("corp/sales")), want: exceeds},
		{name: "a shorter validity", setup: days(30), actor: "hank", op: untilDays(10)},
		{name: "a longer validity", setup: days(30), actor: "hank", op: untilDays(60), want: exceeds},
		{name: "an unbounded validity", setup: days(30), actor: "hank", op: to(delegation.RoleHR, "user:eve", subtree("corp/sales")), want: exceeds},
		{name: "an eligible assignment, activated", grants: hr(subtree("corp"), eligible("2h")), setup: activate("hank", delegation.RoleHR, "1h"),
			actor: "hank", op: to(delegation.RoleHR, "user:eve", subtree("corp/sales")), want: exceeds},
		{name: "to a tier-0 holder", grants: hr(subtree("corp")), actor: "hank", op: to(delegation.RoleHR, "user:root2", subtree("corp/sales")), want: protected},
		{name: "to a protected user", grants: hr(subtree("corp")), actor: "hank", op: to(delegation.RoleHR, "user:pat", subtree("corp/sales")), want: protected},
		{name: "to someone one cannot see", grants: hr(subtree("corp/sales")), actor: "hank",
			op: to(delegation.RoleHR, "user:eve", subtree("corp/sales/vip")), want: notAuth},
		{name: "revoking what one granted", grants: hr(subtree("corp")),
			setup: func(w *world) {
				if _, err := w.submit("hank", assign(asg(delegation.RoleHR, "user:eve", subtree("corp/sales")))); err != nil {
					w.t.Fatal(err)
				}
			},
			actor: "hank", op: func(w *world) change.Op {
				return change.Op{Action: delegation.RoleRevoke, Target: assignmentRef(w.assignmentOf(directory.ParseRef(directory.KindUser, "eve"), delegation.RoleHR))}
			}},
		{name: "revoking tier-0 one granted, no longer tier-0",
			setup: func(w *world) {
				if _, err := w.submit("root2", assign(asg(delegation.RoleTier0, "user:eve", subtree("/")))); err != nil {
					w.t.Fatal(err)
				}
				w.do(change.Op{Action: delegation.RoleRevoke, Target: assignmentRef(w.assignmentOf(directory.ParseRef(directory.KindUser, "root2"), delegation.RoleTier0))})
			},
			actor: "root2", op: func(w *world) change.Op {
				return change.Op{Action: delegation.RoleRevoke, Target: assignmentRef(w.assignmentOf(directory.ParseRef(directory.KindUser, "eve"), delegation.RoleTier0))}
			}, want: protected},
		{name: "revoking what someone else granted", grants: grants(asg(delegation.RoleHR, "user:hank", subtree("corp"), redelegable),
			asg(delegation.RoleHR, "user:eve", subtree("corp/sales"))),
			actor: "hank", op: func(w *world) change.Op {
				return change.Op{Action: delegation.RoleRevoke, Target: assignmentRef(w.assignmentOf(directory.ParseRef(directory.KindUser, "eve"), delegation.RoleHR))}
			}, want: notAuth},
	}
	runRows(t, rows)
}

// activate has the user called holder activate their assignment of role for d.
func activate(holder, role, d string) func(w *world) {
	return func(w *world) {
		w.t.Helper()
		id := w.assignmentOf(directory.ParseRef(directory.KindUser, holder), role)
		if _, err := w.submit(holder, change.Op{Action: delegation.RoleActivate, Target: assignmentRef(id),
			Activation: &delegation.ActivationInput{Duration: d, Justification: "on call"}}); err != nil {
			w.t.Fatalf("%s activates %s: %v", holder, role, err)
		}
	}
}

// TestGuardrailBothEnds is guardrail 4: a move needs the right at the source and at the
// destination; adding a member needs the right on the group and sight of the member.
func TestGuardrailBothEnds(t *testing.T) {
	hr := func(ous ...string) []delegation.AssignmentInput {
		var out []delegation.AssignmentInput
		for _, ou := range ous {
			out = append(out, asg(delegation.RoleHR, "user:hank", subtree(ou)))
		}
		return out
	}
	ouAdmin := both(roleCreate("ou-admin", nil, delegation.OUMove, delegation.OUCreate, delegation.DirectoryRead),
		func(w *world) { w.grant(asg("ou-admin", "user:hank", subtree("corp/sales"))) })
	mover := both(roleCreate("mover", nil, delegation.GroupMove, delegation.SAMove),
		func(w *world) { w.grant(asg("mover", "user:hank", subtree("corp/sales"))) })
	rows := []row{
		{name: "user: the source only", grants: hr("corp/sales"), actor: "hank", op: opFn(move(directory.KindUser, "sam", "corp/eng")), want: notAuth},
		{name: "user: the destination only", grants: hr("corp/eng"), actor: "hank", op: opFn(move(directory.KindUser, "sam", "corp/eng")), want: notAuth},
		{name: "user: both ends, by two assignments", grants: hr("corp/sales", "corp/eng"), actor: "hank", op: opFn(move(directory.KindUser, "sam", "corp/eng"))},
		{name: "user: inside one scope", grants: hr("corp"), actor: "hank", op: opFn(move(directory.KindUser, "sam", "corp/sales/vip"))},
		{name: "user: out of an exclusion", grants: grants(asg(delegation.RoleHR, "user:hank", subtree("corp"), excludeOU("corp/sales/vip"))),
			actor: "hank", op: opFn(move(directory.KindUser, "sue", "corp/sales")), want: notAuth},
		{name: "user: into an exclusion", grants: grants(asg(delegation.RoleHR, "user:hank", subtree("corp"), excludeOU("corp/sales/vip"))),
			actor: "hank", op: opFn(move(directory.KindUser, "sam", "corp/sales/vip")), want: notAuth},
		{name: "OU: out of the scope", setup: ouAdmin, actor: "hank", op: opFn(move(directory.KindOU, "corp/sales/vip", "ext")), want: notAuth},
		{name: "OU: into the scope", setup: ouAdmin, actor: "hank", op: opFn(move(directory.KindOU, "ext", "corp/sales")), want: notAuth},
		{name: "OU: inside the scope", setup: ouAdmin, actor: "hank", op: opFn(move(directory.KindOU, "corp/sales/vip", "corp/sales/emea"))},
		{name: "group: out of the scope", setup: mover, actor: "hank", op: opFn(move(directory.KindGroup, "crm-users", "corp/eng")), want: notAuth},
		{name: "service account: out of the scope", setup: mover, actor: "hank", op: opFn(move(directory.KindServiceAccount, "sales-bot", "ext")), want: notAuth},
		{name: "service account: inside the scope", setup: mover, actor: "hank", op: opFn(move(directory.KindServiceAccount, "sales-bot", "corp/sales/emea"))},
		{name: "member: without sight of them", grants: grants(asg(delegation.RoleGroupOwner, "user:gina", rel(delegation.RelOwnedGroups))),
			actor: "gina", op: opFn(addMember("project", "user:sam")), want: notAuth},
		{name: "member: seen elsewhere", grants: grants(asg(delegation.RoleGroupOwner, "user:gina", rel(delegation.RelOwnedGroups)),
			asg(delegation.RoleAuditor, "user:gina", subtree("corp/eng"))),
			actor: "gina", op: opFn(addMember("project", "user:sam")), want: notAuth},
		{name: "member: in sight", grants: grants(asg(delegation.RoleGroupOwner, "user:gina", rel(delegation.RelOwnedGroups)),
			asg(delegation.RoleAuditor, "user:gina", subtree("corp/eng"))),
			actor: "gina", op: opFn(addMember("project", "user:oscar"))},
		{name: "member: a right on another group only", grants: grants(asg(delegation.RoleGroupOwner, "user:gina", groups("crm-users")),
			asg(delegation.RoleAuditor, "user:gina", subtree("corp"))),
			actor: "gina", op: opFn(addMember("project", "user:oscar")), want: notAuth},
	}
	runRows(t, rows)
}

// TestGuardrailNesting is guardrail 5: putting someone (or a group) into a group that holds an
// assignment, directly or through its parents, hands them its rights: a takeover judged by
// guardrail 1.
func TestGuardrailNesting(t *testing.T) {
	owner := []delegation.AssignmentInput{asg(delegation.RoleGroupOwner, "user:gina", rel(delegation.RelOwnedGroups)),
		asg(delegation.RoleAuditor, "user:gina", subtree("corp"))}
	hd := asg(delegation.RoleHelpdesk, "group:it-helpdesk", subtree("corp"))
	rows := []row{
		{name: "a member of a group that holds more", grants: append(grants(hd), owner...), actor: "gina",
			op: opFn(addMember("it-helpdesk", "user:oscar")), want: escalation},
		{name: "a group nested into it", grants: append(grants(hd), owner...), actor: "gina",
			op: opFn(addMember("it-helpdesk", "group:project")), want: escalation},
		{name: "a member of a group nested in it", grants: append(grants(hd), owner...), actor: "gina",
			op: opFn(addMember("hd-sub", "user:oscar")), want: escalation},
		{name: "holding those rights already", grants: append(grants(hd, asg(delegation.RoleHelpdesk, "user:gina", subtree("corp"))), owner...),
			actor: "gina", op: opFn(addMember("it-helpdesk", "user:oscar"))},
		{name: "holding them more narrowly", grants: append(grants(hd, asg(delegation.RoleHelpdesk, "user:gina", subtree("corp/eng"))), owner...),
			actor: "gina", op: opFn(addMember("it-helpdesk", "user:oscar")), want: escalation},
		{name: "a group that holds nothing", grants: owner, actor: "gina", op: opFn(addMember("it-helpdesk", "user:oscar"))},
	}
	runRows(t, rows)
}

// TestGuardrailScopeEscape is guardrail 6: a filter scope is checked on the object's state
// before and after the change, so nobody edits an object into or out of their scope.
func TestGuardrailScopeEscape(t *testing.T) {
	sales := grants(asg(delegation.RoleHR, "user:hank", where(`department eq "Sales"`)))
	rows := []row{
		{name: "editing inside the scope", grants: sales, actor: "hank", op: opFn(update("sam", map[string]any{"title": "Lead"}))},
		{name: "editing an object out of it", grants: sales, actor: "hank", op: opFn(update("sam", map[string]any{"department": "Engineering"})), want: notAuth},
		{name: "editing an object into it", grants: sales, actor: "hank", op: opFn(update("eve", map[string]any{"department": "Sales"})), want: notAuth},
		{name: "out of it and back by two assignments",
			grants: append(grants(asg(delegation.RoleHR, "user:hank", where(`department eq "Engineering"`))), sales...),
			actor:  "hank", op: opFn(update("sam", map[string]any{"department": "Engineering"}))},
		{name: "creating an object outside it", grants: sales, actor: "hank",
			op: opFn(change.Op{Action: delegation.UserCreate, User: &directory.UserInput{Username: "new", OU: "corp/sales", Department: "Legal"}}), want: notAuth},
		{name: "creating an object inside it", grants: sales, actor: "hank",
			op: opFn(change.Op{Action: delegation.UserCreate, User: &directory.UserInput{Username: "new", OU: "ext", Department: "Sales"}})},
		{name: "a manager filter, by changing the manager", grants: grants(asg(delegation.RoleHR, "user:hank", where(`manager eq "mia"`))),
			actor: "hank", op: opFn(update("sam", map[string]any{"manager": "rita"})), want: notAuth},
		{name: "a disable that leaves a status filter", grants: grants(asg(delegation.RoleHR, "user:hank", where(`status eq "active"`))),
			actor: "hank", op: opFn(change.Op{Action: delegation.UserDisable, Target: directory.ParseRef(directory.KindUser, "sam")}), want: notAuth},
	}
	runRows(t, rows)
}
