package delegation_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/store/storetest"
)

// TestValidity checks which assignments grant anything: expired, not yet valid, revoked,
// disabled holders' and non-activated eligible ones grant nothing; activation works for at most
// max_activation; a group's assignment applies to its members, transitively.
func TestValidity(t *testing.T) {
	helpdesk := func(holder string, opts ...func(*delegation.AssignmentInput)) func(w *world) {
		return func(w *world) { w.grant(asg(delegation.RoleHelpdesk, holder, subtree("corp"), opts...)) }
	}
	window := func(holder string, from, until time.Duration) func(w *world) {
		return func(w *world) {
			now := w.clk.Peek()
			var f, u time.Time
			if from != 0 {
				f = now.Add(from)
			}
			if until != 0 {
				u = now.Add(until)
			}
			helpdesk(holder, validity(f, u))(w)
		}
	}
	advance := func(d time.Duration) func(w *world) { return func(w *world) { w.clk.Advance(d) } }
	disable := func(user string) func(w *world) {
		return adminDoes(change.Op{Action: delegation.UserDisable, Target: directory.ParseRef(directory.KindUser, user)})
	}
	rows := []row{
		{name: "active", setup: helpdesk("user:helen"), actor: "helen", op: setPhone("sam")},
		{name: "valid until later", setup: window("user:helen", 0, time.Hour), actor: "helen", op: setPhone("sam")},
		{name: "expired", setup: both(window("user:helen", 0, time.Hour), advance(time.Hour)), actor: "helen", op: setPhone("sam"), want: notAuth},
		{name: "not yet valid", setup: window("user:helen", time.Hour, 0), actor: "helen", op: setPhone("sam"), want: notAuth},
		{name: "valid from now on", setup: both(window("user:helen", time.Hour, 2*time.Hour), advance(time.Hour)), actor: "helen", op: setPhone("sam")},
		{name: "revoked", setup: both(helpdesk("user:helen"), func(w *world) {
			w.do(change.Op{Action: delegation.RoleRevoke, Target: assignmentRef(w.assignmentOf(directory.ParseRef(directory.KindUser, "helen"), delegation.RoleHelpdesk))})
		}), actor: "helen", op: setPhone("sam"), want: notAuth},
		{name: "a disabled holder", setup: both(helpdesk("user:helen"), disable("helen")), actor: "helen", op: setPhone("sam"), want: inactive},
		{name: "re-enabled", setup: both(helpdesk("user:helen"), disable("helen"),
			adminDoes(change.Op{Action: delegation.UserEnable, Target: directory.ParseRef(directory.KindUser, "helen")})),
			actor: "helen", op: setPhone("sam")},

		// Group holders: every member, transitively, while they are members.
		{name: "group: a member", setup: helpdesk("group:it-helpdesk"), actor: "ivan", op: setPhone("sam")},
		{name: "group: a member of a nested group", setup: both(helpdesk("group:it-helpdesk"), adminDoes(addMember("hd-sub", "user:oscar"))),
			actor: "oscar", op: setPhone("sam")},
		{name: "group: a member who left", setup: both(helpdesk("group:it-helpdesk"), adminDoes(removeMember("it-helpdesk", "user:ivan"))),
			actor: "ivan", op: setPhone("sam"), want: notAuth},
		{name: "group: a nested group taken out", setup: both(helpdesk("group:it-helpdesk"), adminDoes(addMember("hd-sub", "user:oscar")),
			adminDoes(removeMember("it-helpdesk", "group:hd-sub"))), actor: "oscar", op: setPhone("sam"), want: notAuth},
		{name: "group: a disabled member", setup: both(helpdesk("group:it-helpdesk"), disable("ivan")), actor: "ivan", op: setPhone("sam"), want: inactive},
		{name: "group: a deleted group", setup: both(helpdesk("group:it-helpdesk"),
			adminDoes(change.Op{Action: delegation.GroupDelete, Target: directory.ParseRef(directory.KindGroup, "it-helpdesk")})),
			actor: "ivan", op: setPhone("sam"), want: notAuth},
		{name: "group: not a member", setup: helpdesk("group:it-helpdesk"), actor: "eve", op: setPhone("sam"), want: notAuth},

		// Eligible assignments grant only while activated, by their holder, for at most
		// max_activation (and never beyond the assignment's own end).
		{name: "eligible: not activated", setup: helpdesk("user:helen", eligible("2h")), actor: "helen", op: setPhone("sam"), want: notAuth},
		{name: "eligible: activated", setup: both(helpdesk("user:helen", eligible("2h")), activate("helen", delegation.RoleHelpdesk, "1h")),
			actor: "helen", op: setPhone("sam")},
		{name: "eligible: activated for the maximum", setup: both(helpdesk("user:helen", eligible("2h")), activate("helen", delegation.RoleHelpdesk, ""),
			advance(2*time.Hour-time.Minute)), actor: "helen", op: setPhone("sam")},
		{name: "eligible: the activation lapsed", setup: both(helpdesk("user:helen", eligible("2h")), activate("helen", delegation.RoleHelpdesk, "1h"),
			advance(time.Hour)), actor: "helen", op: setPhone("sam"), want: notAuth},
		{name: "eligible: the activation ends with the assignment", setup: both(func(w *world) {
			until := w.clk.Peek().Add(30 * time.Minute)
			w.grant(asg(delegation.RoleHelpdesk, "user:helen", subtree("corp"), eligible("2h"), validity(time.Time{}, until)))
		}, activate("helen", delegation.RoleHelpdesk, "1h"), advance(30*time.Minute)), actor: "helen", op: setPhone("sam"), want: notAuth},
		{name: "eligible: activating for longer than the maximum",
			setup: both(helpdesk("user:helen", eligible("2h")), activationFails("helen", "helen", "3h", directory.ErrInvalid)),
			actor: "helen", op: setPhone("sam"), want: notAuth},
		{name: "eligible: activated by someone else",
			setup: both(helpdesk("user:helen", eligible("2h")), activationFails("eve", "helen", "1h", change.ErrDenied)),
			actor: "helen", op: setPhone("sam"), want: notAuth},
		{name: "eligible: activating an active assignment", setup: both(helpdesk("user:helen"), activationFails("helen", "helen", "", directory.ErrConflict)),
			actor: "helen", op: setPhone("sam")},
		{name: "eligible: a disabled holder", setup: both(helpdesk("user:helen", eligible("2h")), activate("helen", delegation.RoleHelpdesk, "1h"), disable("helen")),
			actor: "helen", op: setPhone("sam"), want: inactive},
	}
	runRows(t, rows)
}

// activationFails has actor try to activate holder's helpdesk assignment for d, and checks
// that it fails with an error matching want.
func activationFails(actor, holder, d string, want error) func(w *world) {
	return func(w *world) {
		w.t.Helper()
		id := w.assignmentOf(directory.ParseRef(directory.KindUser, holder), delegation.RoleHelpdesk)
		_, err := w.submit(actor, change.Op{Action: delegation.RoleActivate, Target: assignmentRef(id),
			Activation: &delegation.ActivationInput{Duration: d, Justification: "on call"}})
		if !errors.Is(err, want) {
			w.t.Fatalf("%s activates %s's assignment for %s: %v, want %v", actor, holder, d, err, want)
		}
	}
}

// TestDeletedRole checks that a custom role cannot be deleted while assigned, and that an
// assignment whose role is gone (as an engine loaded from such a database would see it)
// grants nothing.
func TestDeletedRole(t *testing.T) {
	w := standardOrg(t)
	roleCreate("phones", []string{"phone"}, delegation.UserUpdate)(w)
	id := w.grant(asg("phones", "user:helen", subtree("corp")))
	wantReason(t, submitErr(w.submit("helen", setPhone("sam")(w))), "")
	del := change.Op{Action: delegation.RoleDelete, Target: directory.Ref{Kind: directory.KindRole, Name: "phones"}}
	if _, err := w.p.Submit(w.ctx, w.admin, w.meta, del); !errors.Is(err, directory.ErrConflict) {
		t.Fatalf("deleting an assigned role: %v, want a conflict", err)
	}
	w.do(change.Op{Action: delegation.RoleRevoke, Target: assignmentRef(id)})
	w.do(del)
	wantReason(t, submitErr(w.submit("helen", setPhone("sam")(w))), notAuth)

	// An engine loaded with an assignment of a role that does not exist.
	helen, sam := w.user("helen"), w.user("sam")
	snap := delegation.Snapshot{
		Assignments: []delegation.Assignment{{ID: "a1", Role: "gone", Holder: helen.Ref(), Scope: delegation.Scope{OU: sam.OUID, Subtree: true}},
			{ID: "a2", Role: delegation.RoleHelpdesk, Holder: helen.Ref(), Scope: delegation.Scope{OU: sam.OUID, Subtree: true}}},
		OUs:     [][2]string{{sam.OUID, ""}},
		Objects: []delegation.SnapshotObject{{ID: helen.ID, Kind: directory.KindUser, Status: directory.StatusActive}},
	}
	eng := delegation.NewEngine(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := eng.Load(context.Background(), loader(snap)); err != nil {
		t.Fatal(err)
	}
	q := &delegation.Question{Actor: storetest.ActorOf(helen), Action: delegation.UserUpdate, Target: sam.Ref(),
		Before: sam.Fields(), After: sam.Fields(), Touched: []string{"department"}}
	wantDecision(t, eng.Decide(context.Background(), q), notAuth) // helpdesk does not cover it, and "gone" is no role
	q.Touched = []string{"phone"}
	d := eng.Decide(context.Background(), q)
	wantDecision(t, d, "")
	if len(d.Authority.Assignments) != 1 || d.Authority.Assignments[0] != "a2" {
		t.Fatalf("authority %+v, want a2 alone", d.Authority)
	}
	for _, g := range eng.Grants(helen.ID) {
		if g.Assignment.ID == "a1" {
			t.Fatalf("an assignment of a deleted role is among the grants: %+v", g)
		}
	}
}

func submitErr(_ change.Result, err error) error { return err }

// loader serves a fixed snapshot.
type loader delegation.Snapshot

func (l loader) AuthzSnapshot(context.Context) (delegation.Snapshot, error) {
	return delegation.Snapshot(l), nil
}

// TestInvalidOps checks what a delegate learns when an op cannot be planned (invalid input, a
// conflict): why, when they may act on the target as it is; nothing, when they may not.
func TestInvalidOps(t *testing.T) {
	w := standardOrg(t)
	w.grant(asg(delegation.RoleHelpdesk, "user:helen", subtree("corp/sales")))
	w.grant(asg(delegation.RoleHR, "user:hank", subtree("corp/sales")))
	create := func(ou string, protected bool) change.Op {
		return change.Op{Action: delegation.UserCreate, User: &directory.UserInput{Username: "new", OU: ou, Email: "not an address",
			Protected: protected}}
	}
	tests := []struct {
		name  string
		actor string
		op    change.Op
		want  error
		deny  string
	}{
		{"invalid input in scope", "helen", update("sam", map[string]any{"phone": "call me"}), directory.ErrInvalid, ""},
		{"invalid input out of scope", "helen", update("eve", map[string]any{"phone": "call me"}), change.ErrDenied, notAuth},
		{"a stale version in scope", "helen", func() change.Op {
			op := update("sam", map[string]any{"phone": "+1 555 0101"})
			op.IfVersion = 99
			return op
		}(), directory.ErrStale, ""},
		{"a missing object", "helen", update("nobody", map[string]any{"phone": "+1 555 0101"}), change.ErrDenied, notAuth},
		{"a missing object, for tier-0", "admin", update("nobody", map[string]any{"phone": "+1 555 0101"}), directory.ErrNotFound, ""},
		{"a field no role may patch", "helen", update("sam", map[string]any{"ou": "corp"}), directory.ErrInvalid, ""},
		{"a protected object", "helen", update("pat", map[string]any{"phone": "call me"}), change.ErrDenied, protected},
		{"a create in scope", "hank", create("corp/sales", false), directory.ErrInvalid, ""},
		{"a create out of scope", "hank", create("corp/eng", false), change.ErrDenied, notAuth},
		{"a create in an OU that is not there", "hank", create("corp/nowhere", false), change.ErrDenied, notAuth},
		{"a protected create", "hank", create("corp/sales", true), change.ErrDenied, protected},
		{"a create by tier-0", "admin", create("corp/nowhere", false), directory.ErrInvalid, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.submit(tc.actor, tc.op)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if tc.deny != "" {
				wantReason(t, err, tc.deny)
			}
		})
	}
}
