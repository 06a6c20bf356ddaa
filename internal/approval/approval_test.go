package approval

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

func TestParseFile(t *testing.T) {
	b, err := os.ReadFile("testdata/policies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := ParseFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 {
		t.Fatalf("%d policies", len(ps))
	}
	fm := ps[0]
	if fm.When.OU != "corp/finance" || fm.Expiry.D != 72*time.Hour || len(fm.Stages) != 2 || fm.Stages[0].Timeout.D != 24*time.Hour ||
		fm.Stages[0].Required != 1 || fm.Stages[1].Required != 2 || fm.Stages[0].Escalate[0].Role != "hr" {
		t.Fatalf("finance-moves: %+v", fm)
	}
	if p := ps[1]; p.When.Protected == nil || !*p.When.Protected || p.Expiry.D != DefaultExpiry {
		t.Fatalf("protected: %+v", p)
	}
}

func TestParseFileErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown field", "policies:\n  - name: x\n    actons: [user.move]\n", "unknown field"},
		{"unknown action", "policies:\n  - name: x\n    actions: [user.fly]\n    stages: [{approvers: [{kind: authorized}]}]\n", "user.fly"},
		{"no stages", "policies:\n  - name: x\n    actions: [user.move]\n", "stages"},
		{"bad approver", "policies:\n  - name: x\n    actions: [user.move]\n    stages: [{approvers: [{kind: boss}]}]\n", "kind"},
		{"role without a name", "policies:\n  - name: x\n    actions: [user.move]\n    stages: [{approvers: [{kind: role}]}]\n", "role"},
		{"escalation without a timeout", "policies:\n  - name: x\n    actions: [user.move]\n    stages: [{approvers: [{kind: authorized}], escalate_to: [{kind: authorized}]}]\n", "timeout"},
		{"timeout past the expiry", "policies:\n  - name: x\n    actions: [user.move]\n    expiry: 1d\n    stages: [{approvers: [{kind: authorized}], timeout: 2d}]\n", "shorter"},
		{"bad duration", "policies:\n  - name: x\n    actions: [user.move]\n    expiry: soon\n    stages: [{approvers: [{kind: authorized}]}]\n", "duration"},
		{"too many required", "policies:\n  - name: x\n    actions: [user.move]\n    stages: [{approvers: [{kind: authorized}], required: 11}]\n", "required"},
		{"bad filter", "policies:\n  - name: x\n    actions: [user.move]\n    when: {filter: 'department eq'}\n    stages: [{approvers: [{kind: authorized}]}]\n", "filter"},
		{"a token issue", "policies:\n  - name: x\n    actions: [user.issue_token]\n    stages: [{approvers: [{kind: authorized}]}]\n", "shown once"},
		{"a name twice", "policies:\n  - name: x\n    actions: [user.move]\n    stages: [{approvers: [{kind: authorized}]}]\n  - name: x\n    actions: [user.move]\n    stages: [{approvers: [{kind: authorized}]}]\n", "twice"},
		{"not yaml", "policies: [", "policy file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFile([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestDefaultsAreValid(t *testing.T) {
	for _, p := range Defaults() {
		if err := p.Normalize(); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
	}
}

func TestDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "90m": 90 * time.Minute, "36h": 36 * time.Hour} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("%s: %v, %v", in, got, err)
		}
	}
	if s := (Duration{72 * time.Hour}).String(); s != "3d" {
		t.Errorf("72h prints as %s", s)
	}
	if s := (Duration{90 * time.Minute}).String(); s != "1h30m0s" {
		t.Errorf("90m prints as %s", s)
	}
}

// TestFeasible: stages must be completable by distinct people.
func TestFeasible(t *testing.T) {
	st := func(req int, eligible ...string) StagePlan { return StagePlan{Required: req, Eligible: eligible} }
	for _, tc := range []struct {
		name   string
		stages []StagePlan
		want   bool
	}{
		{"one approver", []StagePlan{st(1, "a")}, true},
		{"nobody", []StagePlan{st(1)}, false},
		{"two of one", []StagePlan{st(2, "a")}, false},
		{"the same person for two stages", []StagePlan{st(1, "a"), st(1, "a")}, false},
		{"a matching exists only if the first stage takes b", []StagePlan{st(1, "a", "b"), st(1, "a")}, true},
		{"two of three, then one of the rest", []StagePlan{st(2, "a", "b", "c"), st(1, "a", "b")}, true},
		{"two of two, then one of them", []StagePlan{st(2, "a", "b"), st(1, "a", "b")}, false},
	} {
		if got := feasible(tc.stages); got != tc.want {
			t.Errorf("%s: feasible = %v", tc.name, got)
		}
	}
}

// TestRequestStateMachine: approvals count per stage, one person once, deadlines follow.
func TestRequestStateMachine(t *testing.T) {
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	r := &Request{ID: "r", State: Open, Requester: delegation.Actor{ID: "req"}, Excluded: []string{"req", "target"},
		Stages: []StagePlan{{Required: 2, Eligible: []string{"a", "b", "c"}, Timeout: Duration{time.Hour}, Due: now.Add(time.Hour)},
			{Required: 1, Eligible: []string{"a", "d"}, Timeout: Duration{4 * time.Hour}}},
		Created: now, Expires: now.Add(48 * time.Hour)}
	by := func(id string) directory.Ref { return directory.Ref{Kind: directory.KindUser, ID: id} }
	for who, want := range map[string]error{"req": ErrSeparation, "target": ErrSeparation, "d": ErrNotApprover} {
		if err := r.CheckDecider(who, r.Stages[0].Eligible, now); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", who, err, want)
		}
	}
	if due, _ := r.Due(); !due.Equal(now.Add(45 * time.Minute)) {
		t.Errorf("first due %s, want the reminder 15 minutes before the timeout", due)
	}
	if r.Approve(by("a"), "", now) || r.Stage != 0 {
		t.Fatal("one of two approvals completed the stage")
	}
	if err := r.CheckDecider("a", r.Stages[0].Eligible, now); !errors.Is(err, ErrAlreadyDecided) {
		t.Errorf("a again: %v", err)
	}
	if got := r.Inbox(); len(got) != 2 || got[0] != "b" || got[1] != "c" {
		t.Errorf("inbox after a: %v", got)
	}
	later := now.Add(10 * time.Minute)
	if r.Approve(by("b"), "", later) || r.Stage != 1 || !r.Stages[1].Due.Equal(later.Add(4*time.Hour)) {
		t.Fatalf("stage 2 did not open with its deadline: %+v", r)
	}
	// a approved stage 1 and counts once: only d can finish.
	if err := r.CheckDecider("a", r.Stages[1].Eligible, later); !errors.Is(err, ErrAlreadyDecided) {
		t.Errorf("a in stage 2: %v", err)
	}
	if !r.Approve(by("d"), "", later) {
		t.Fatal("the last approval did not complete the request")
	}
	r.Close(Applied, nil, "", "", later)
	if _, due := r.Due(); due {
		t.Error("a closed request is still due")
	}
	if err := r.CheckDecider("c", []string{"c"}, later); !errors.Is(err, ErrClosed) {
		t.Errorf("deciding a closed request: %v", err)
	}
	open := &Request{State: Open, Expires: now}
	if err := open.CheckDecider("x", []string{"x"}, now); !errors.Is(err, ErrClosed) {
		t.Errorf("deciding past the expiry: %v", err)
	}
}
