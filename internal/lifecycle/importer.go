package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// Store is what an import reads and records.
type Store interface {
	LifecycleCurrent(ctx context.Context) (*Current, error)
	SaveRun(ctx context.Context, r *Run) error
}

// Applier applies batches of ops, each all or nothing (the change pipeline).
type Applier interface {
	SubmitEach(ctx context.Context, actor delegation.Actor, meta change.Meta, batches [][]change.Op) ([]change.BatchResult, error)
}

// Actor is the system actor lifecycle ops run as.
var Actor = delegation.SystemActor("lifecycle")

// ImportOptions say how a feed is imported.
type ImportOptions struct {
	DryRun          bool
	SkipInvalid     bool    // apply the valid rows of a feed that has bad ones
	AllowMassChange bool    // apply a feed that disables or deletes more than Threshold of active users
	Threshold       float64 // default 0.05
	Today           time.Time
	Source, SHA256  string
	// By is who asked for the run (a tier-0 admin through the API or CLI); the run's ops are
	// system:lifecycle's, on their behalf. Nil for the scheduled sweep.
	By *delegation.Actor
	// QuietWhenIdle records no run when there is nothing to do (the scheduled sweep).
	QuietWhenIdle bool
	// PeoplePerTx is how many people's changes share a transaction (each still all or
	// nothing); default 500.
	PeoplePerTx int
	// Portal is the portal's external address, for joiners' activation links.
	Portal string
}

// ErrStopped is returned (wrapped, with the reason) when a run applies nothing for safety: bad
// rows without SkipInvalid, or a mass change without AllowMassChange.
var ErrStopped = errors.New("lifecycle: import stopped")

// Import plans a feed against the directory and, unless it is a dry run or unsafe, applies it
// person by person as system:lifecycle. The run is recorded (with its plan's totals) whatever
// happens; its ID is the authority of every op. Re-running the same feed changes nothing, and
// re-running an interrupted one finishes it: the plan is always the difference between the feed
// and the directory as it is.
func Import(ctx context.Context, st Store, ap Applier, rules *RuleSet, feed Feed, opt ImportOptions) (*Run, *Plan, error) {
	if opt.Threshold == 0 {
		opt.Threshold = 0.05
	}
	if opt.PeoplePerTx <= 0 {
		opt.PeoplePerTx = 500
	}
	if opt.Today.IsZero() {
		y, m, d := time.Now().UTC().Date()
		opt.Today = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	bad := map[int]bool{}
	for _, pr := range feed.Problems {
		bad[pr.Line] = true
	}
	run := &Run{ID: directory.NewID(), Source: opt.Source, SHA256: opt.SHA256, Started: time.Now().UTC(), State: RunPlanned,
		DryRun: opt.DryRun, Rows: len(feed.People) + len(bad), Invalid: len(bad)}
	if opt.By != nil {
		run.By = opt.By.Name
	}
	cur, err := st.LifecycleCurrent(ctx)
	if err != nil {
		return nil, nil, err
	}
	if rules.Steward != "" && !cur.Usernames[strings.ToLower(rules.Steward)] {
		return nil, nil, fmt.Errorf("lifecycle rules: the steward %q is not a user", rules.Steward)
	}
	plan := MakePlan(feed.People, rules, cur, Options{Today: opt.Today, Actor: Actor, Portal: opt.Portal})
	run.Totals, run.Ops = plan.Totals, plan.Ops
	stop := ""
	switch {
	case len(feed.Problems) > 0 && !opt.SkipInvalid:
		stop = fmt.Sprintf("%d invalid rows: nothing applied (fix them, or --skip-invalid to apply the valid rows)", len(bad))
	case !opt.AllowMassChange && plan.Active > 0 && float64(plan.Disables) > opt.Threshold*float64(plan.Active):
		stop = fmt.Sprintf("the feed disables or deletes %d of %d active users (more than %.0f%%): nothing applied (--allow-mass-change to apply it)",
			plan.Disables, plan.Active, opt.Threshold*100)
	}
	if opt.QuietWhenIdle && stop == "" && plan.Ops == 0 && len(feed.Problems) == 0 {
		return run, plan, nil // nothing to do, and nothing worth a record (the scheduled sweep)
	}
	if stop != "" || opt.DryRun {
		run.Stopped, run.Finished = stop, time.Now().UTC()
		if err := st.SaveRun(ctx, run); err != nil {
			return nil, nil, err
		}
		if stop != "" && !opt.DryRun { // a dry run shows its plan, and what would stop it
			return run, plan, fmt.Errorf("%w: %s", ErrStopped, stop)
		}
		return run, plan, nil
	}
	run.State = RunApplying
	if err := st.SaveRun(ctx, run); err != nil {
		return nil, nil, err
	}
	meta := change.Meta{Transport: audit.TransportLifecycle, Run: run.ID, OnBehalfOf: opt.By}
	var (
		batches [][]change.Op
		who     []*PersonPlan
	)
	flush := func() error {
		if len(batches) == 0 {
			return nil
		}
		res, err := ap.SubmitEach(ctx, Actor, meta, batches)
		if err != nil {
			return err
		}
		for i, r := range res {
			if r.Err == nil {
				run.Applied++
				continue
			}
			f := Failure{EmployeeID: who[i].EmployeeID, Username: who[i].Username, Reason: change.FailureReason(r.Err),
				Message: r.Err.Error(), Event: r.Event}
			run.Failed = append(run.Failed, f)
		}
		batches, who = batches[:0], who[:0]
		return nil
	}
	// A person's ops can name people planned before them (a manager), so batches go in plan
	// order and a later batch never overtakes an earlier one.
	for i := range plan.People {
		pp := &plan.People[i]
		if len(pp.Ops) == 0 {
			continue
		}
		ops := make([]change.Op, len(pp.Ops))
		for j, o := range pp.Ops {
			ops[j] = o.Op
		}
		batches, who = append(batches, ops), append(who, pp)
		if len(batches) >= opt.PeoplePerTx {
			if err := flush(); err != nil {
				return run, plan, err
			}
		}
	}
	if err := flush(); err != nil {
		return run, plan, err
	}
	notifyReviews(ctx, ap, cur, plan, run)
	run.State, run.Finished = RunDone, time.Now().UTC()
	if err := st.SaveRun(ctx, run); err != nil {
		return nil, nil, err
	}
	return run, plan, nil
}

// ActivationDays is how long after a joiner's start date (or after the run's day, when later)
// their activation link works.
const ActivationDays = 7

// Notifier sends a notification through the outbox (the pipeline).
type Notifier interface {
	Notify(ctx context.Context, n change.Notification) error
}

// notifyReviews tells each applied person's manager what the run left for them to review (access
// kept after a move, ownership that came to them), when the applier can notify.
func notifyReviews(ctx context.Context, ap Applier, cur *Current, plan *Plan, run *Run) {
	n, ok := ap.(Notifier)
	if !ok {
		return
	}
	failed := map[string]bool{}
	for _, f := range run.Failed {
		failed[f.EmployeeID] = true
	}
	byUsername := map[string]string{}
	for _, a := range cur.Accounts {
		byUsername[a.Username] = a.UserID
	}
	for _, pp := range plan.People {
		if len(pp.Notes) == 0 || failed[pp.EmployeeID] || pp.Manager == "" || byUsername[pp.Manager] == "" {
			continue
		}
		_ = n.Notify(ctx, change.Notification{Kind: "lifecycle_review", Run: run.ID, To: []string{byUsername[pp.Manager]},
			Subject: fmt.Sprintf("Review after the HR change of %s (%s)", pp.Username, pp.Kind),
			Body:    "To review:\n- " + strings.Join(pp.Notes, "\n- ")})
	}
}
