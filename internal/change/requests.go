package change

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/approval"
	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// ErrPending is matched by the error Submit returns for an op parked for approval: nothing was
// changed yet, and the *PendingError names the request that holds it.
var ErrPending = errors.New("change: op waits for approval")

// PendingError tells the submitter of a parked op which request holds it.
type PendingError struct {
	Request string
	Event   int64
}

func (e *PendingError) Error() string {
	return fmt.Sprintf("change: op waits for approval in request %s", e.Request)
}

// Is makes errors.Is(err, ErrPending) hold.
func (e *PendingError) Is(target error) bool { return target == ErrPending }

// Request actions, as audit events name the steps of a request.
const (
	ActionRequestApprove  = "request.approve"
	ActionRequestReject   = "request.reject"
	ActionRequestCancel   = "request.cancel"
	ActionRequestExpire   = "request.expire"
	ActionRequestEscalate = "request.escalate"
	ActionRequestReview   = "request.review"
)

// approvalActor is the system actor that expires and escalates requests.
var approvalActor = delegation.SystemActor("approval")

// Notification topics of the outbox.
const topicNotify = "notify"

// Notification is an outbox message telling people about a request: who (user IDs), and why.
type Notification struct {
	Kind    string   `json:"kind"`              // approval_needed, reminder, escalated, decided, break_glass, lifecycle_review
	Request string   `json:"request,omitempty"` // the approval request it is about
	Run     string   `json:"run,omitempty"`     // the HR feed run it is about
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	Body    string   `json:"body,omitempty"` // details, when a subject line is not enough
}

// park writes an allowed op that a policy gates as an open request, with the event that
// records its submission (outcome pending), and tells its first approvers.
func (p *Pipeline) park(ctx context.Context, tx Tx, actor delegation.Actor, meta Meta, op *Op, q *delegation.Question,
	pl *plan, dec delegation.Decision, rt *approval.Routing, now time.Time) (Result, *attempt, error) {
	if strings.TrimSpace(op.Justification) == "" {
		err := directory.Invalid("justification", "is required: this change needs approval (policy %s)", strings.Join(rt.Policies, ", "))
		return Result{}, p.failure(actor, meta, op, q.Target, dec, now, err), err
	}
	// The approval applies the op as it was seen: if the object changes meanwhile, it fails.
	if op.IfVersion == 0 {
		op.IfVersion = pl.checked
	}
	r := newRequest(actor, meta, op, pl.target, rt, now)
	before, after := diff(pl.before, pl.after)
	if pl.relBefore != nil || pl.relAfter != nil {
		before, after = pl.relBefore, pl.relAfter
	}
	meta.RequestID = r.ID
	ev := p.event(actor, meta, op, pl.target, now)
	ev.Outcome, ev.Authority, ev.Before, ev.After = audit.Pending, dec.Authority, before, after
	s := r.Current()
	ev.Message = fmt.Sprintf("waiting for approval (policy %s): stage 1 of %d needs %d of %d approvers",
		strings.Join(rt.Policies, ", "), len(r.Stages), s.Required, len(s.Eligible))
	idx, err := tx.AppendEvent(ctx, ev)
	if err != nil {
		return Result{}, nil, err
	}
	r.Event = idx
	if err := tx.InsertRequest(ctx, r); err != nil {
		return Result{}, nil, err
	}
	if err := notify(ctx, tx, idx, Notification{Kind: "approval_needed", Request: r.ID, To: r.Inbox(),
		Subject: "Approval needed: " + describe(r)}); err != nil {
		return Result{}, nil, err
	}
	return Result{Outcome: audit.Pending, Event: idx, Target: pl.target, Request: r.ID}, nil, nil
}

// newRequest builds the request for an op the gate routed.
func newRequest(actor delegation.Actor, meta Meta, op *Op, target directory.Ref, rt *approval.Routing, now time.Time) *approval.Request {
	raw, _ := json.Marshal(op) // an Op always encodes
	return &approval.Request{ID: directory.NewID(), State: approval.Open, Action: op.Action, Target: target,
		Requester: actor, Justification: op.Justification, Op: raw,
		Origin:   approval.Origin{Transport: meta.Transport, ClientAddr: meta.ClientAddr, UserAgent: meta.UserAgent},
		Policies: rt.Policies, Stages: rt.Stages, Excluded: rt.Excluded, Created: now, Expires: rt.Expires, Version: 1}
}

func glassReason(rt *approval.Routing) string {
	return fmt.Sprintf("policy %s matched, but no one other than the requester can approve it; a tier-0 admin must review it",
		strings.Join(rt.Policies, ", "))
}

// recordBreakGlass stores the request of a break-glass change, in state unreviewed, and tells
// the tier-0 admins.
func (p *Pipeline) recordBreakGlass(ctx context.Context, tx Tx, r *approval.Request, idx int64, before, after map[string]any) error {
	r.State, r.Event, r.Result, r.Closed = approval.Unreviewed, idx, idx, r.Created
	r.Reason, r.Message = "break_glass", "applied at once: no one other than the requester could approve it"
	if err := tx.InsertRequest(ctx, r); err != nil {
		return err
	}
	return notify(ctx, tx, idx, Notification{Kind: "break_glass", Request: r.ID, To: p.tier0(),
		Subject: "Break-glass change to review: " + describe(r)})
}

// settleReverted closes the review of an unreviewed break-glass change that the event idx has
// just undone: there is nothing left to review.
func (p *Pipeline) settleReverted(ctx context.Context, tx Tx, id string, actor delegation.Actor, idx int64, now time.Time) error {
	r, err := tx.Request(ctx, id)
	if errors.Is(err, directory.ErrNotFound) {
		return nil
	}
	if err != nil || r.State != approval.Unreviewed {
		return err
	}
	r.Close(approval.Reviewed, &approval.Decision{Stage: r.Stage, By: directory.Ref{Kind: directory.Kind(actor.Kind), ID: actor.ID, Name: actor.Name},
		Verdict: approval.VerdictRevert, Comment: fmt.Sprintf("reverted by event %d", idx), At: now, Event: idx}, r.Reason, r.Message, now)
	return tx.UpdateRequest(ctx, &r)
}

func (p *Pipeline) tier0() []string {
	if p.gate == nil {
		return nil
	}
	return p.gate.Tier0()
}

func notify(ctx context.Context, tx Tx, idx int64, n Notification) error {
	if len(n.To) == 0 {
		return nil
	}
	b, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	return tx.Enqueue(ctx, topicNotify, idx, b)
}

func describe(r *approval.Request) string {
	return fmt.Sprintf("%s %s requested by %s", r.Action, r.Target, r.Requester.Name)
}

// Decide records actor's verdict on a request: approve, reject (approvers), cancel (the
// requester), or review (a tier-0 admin, on a break-glass change). The last approval applies
// the op in the same transaction, re-authorized as its requester and at the version it was
// submitted against: if that fails (the requester lost the right, the object changed or is
// gone), the request ends failed with the reason and nothing is applied. A refused verdict is
// recorded as a denied event and returned as a *DeniedError wrapping the approval error.
// Two deciders racing are serialized: the loser sees the state the winner left.
func (p *Pipeline) Decide(ctx context.Context, actor delegation.Actor, meta Meta, id, verdict, comment string) (approval.Request, error) {
	if len(comment) > 2000 {
		return approval.Request{}, directory.Invalid("comment", "is longer than 2000 characters")
	}
	if verdict == approval.VerdictReject && strings.TrimSpace(comment) == "" {
		return approval.Request{}, directory.Invalid("comment", "is required to reject: tell the requester why")
	}
	for attempt := 0; ; attempt++ {
		r, err := p.decideOnce(ctx, actor, meta, id, verdict, strings.TrimSpace(comment))
		if errors.Is(err, directory.ErrStale) && attempt < 3 {
			continue // another decision won the race: judge again on what it left
		}
		return r, err
	}
}

func (p *Pipeline) decideOnce(ctx context.Context, actor delegation.Actor, meta Meta, id, verdict, comment string) (approval.Request, error) {
	var (
		r       approval.Request
		refused error
		sess    delegation.Session
	)
	err := p.store.InTx(ctx, func(tx Tx) error {
		var err error
		if r, err = tx.Request(ctx, id); err != nil {
			return err
		}
		if sess, err = p.authz.Session(ctx, tx); err != nil {
			return err
		}
		now := audit.Timestamp(p.now())
		refused = p.checkVerdict(ctx, tx, &r, actor, verdict, now)
		if refused != nil {
			ev := p.requestEvent(actor, meta, &r, "request."+verdict, now)
			ev.Outcome, ev.Reason, ev.Message = audit.Denied, FailureReason(refused), refused.Error()
			idx, err := tx.AppendEvent(ctx, ev)
			refused = &DeniedError{Reason: ev.Reason, Message: refusalMessage(refused), Event: idx, cause: refused}
			return err
		}
		return p.applyVerdict(ctx, tx, sess, &r, actor, meta, verdict, comment, now)
	})
	if err != nil {
		return r, err
	}
	sess.Commit()
	return r, refused
}

// refusalMessage is an approval error's message without its package prefix.
func refusalMessage(err error) string {
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(msg, "approval:") {
		if _, r2, ok := strings.Cut(rest, ": "); ok {
			return r2
		}
		return rest
	}
	return msg
}

// checkVerdict checks that actor may give verdict on r now.
func (p *Pipeline) checkVerdict(ctx context.Context, tx Tx, r *approval.Request, actor delegation.Actor, verdict string, now time.Time) error {
	switch verdict {
	case approval.VerdictApprove, approval.VerdictReject:
		if actor.Kind != delegation.ActorUser {
			return fmt.Errorf("%w: only a person can approve", approval.ErrNotApprover)
		}
		if r.State != approval.Open {
			return fmt.Errorf("%w: it is %s", approval.ErrClosed, r.State)
		}
		if r.Requester.ID != actor.ID && p.gate != nil && p.gate.Excludes(r.Excluded, actor.ID) {
			return fmt.Errorf("%w: the change is about you (or a group you are in), so someone else must approve it", approval.ErrSeparation)
		}
		return r.CheckDecider(actor.ID, p.eligibleNow(ctx, tx, r), now)
	case approval.VerdictCancel:
		if r.Requester.ID != actor.ID {
			return fmt.Errorf("%w: only the requester can cancel a request", approval.ErrNotApprover)
		}
		if r.State != approval.Open {
			return fmt.Errorf("%w: it is %s", approval.ErrClosed, r.State)
		}
		return nil
	case approval.VerdictReview:
		if r.State != approval.Unreviewed {
			return fmt.Errorf("%w: it is %s, not an unreviewed break-glass change", approval.ErrClosed, r.State)
		}
		if r.Requester.ID == actor.ID {
			return fmt.Errorf("%w: another tier-0 admin must review your break-glass change", approval.ErrSeparation)
		}
		if p.gate != nil && p.gate.Excludes(r.Excluded, actor.ID) {
			return fmt.Errorf("%w: the change is about you (or a group you are in), so another tier-0 admin must review it", approval.ErrSeparation)
		}
		if p.gate == nil || !p.gate.IsTier0(actor.ID) {
			return fmt.Errorf("%w: only a tier-0 admin reviews break-glass changes", approval.ErrNotApprover)
		}
		return nil
	}
	return directory.Invalid("verdict", "must be approve, reject, cancel or review")
}

// eligibleNow resolves the approvers of r's current stage on the directory as it is now: an
// approver must still hold what made them one.
func (p *Pipeline) eligibleNow(ctx context.Context, tx Tx, r *approval.Request) []string {
	s := r.Current()
	if s == nil || p.gate == nil {
		return nil
	}
	return p.gate.EligibleLazy(s, func() *delegation.Question { return p.requestQuestion(ctx, tx, r) }, r.Excluded, false)
}

// requestQuestion rebuilds the question of a request's op on the current state, for resolving
// its approvers (its target's manager and owners, the scopes that cover it).
func (p *Pipeline) requestQuestion(ctx context.Context, tx Tx, r *approval.Request) *delegation.Question {
	q := &delegation.Question{Actor: r.Requester, Action: r.Action, Target: r.Target}
	var op Op
	if json.Unmarshal(r.Op, &op) != nil {
		return q
	}
	op.IfVersion = 0
	// Planning only reads (an op's writes wait in plan.write), so a failed plan leaves nothing
	// to undo: the target is then read as it is, or not at all when it is gone.
	pl, err := p.plan(ctx, tx, &op, r.Requester, audit.Timestamp(p.now()))
	if err != nil {
		q.Target, q.Before = resolveTarget(ctx, tx, r.Target)
		return q
	}
	q.Target, q.Before, q.After, q.Touched, q.Member = pl.target, pl.before, pl.after, pl.touched, pl.member
	return q
}

// applyVerdict changes r by verdict, records the step, and applies the op on the last approval.
func (p *Pipeline) applyVerdict(ctx context.Context, tx Tx, sess delegation.Session, r *approval.Request, actor delegation.Actor,
	meta Meta, verdict, comment string, now time.Time) error {
	by := directory.Ref{Kind: directory.Kind(actor.Kind), ID: actor.ID, Name: actor.Name}
	ev := p.requestEvent(actor, meta, r, "request."+verdict, now)
	ev.Outcome, ev.Message = audit.Applied, comment
	stage := r.Stage
	done := false
	switch verdict {
	case approval.VerdictApprove:
		ev.Authority.Rule = "approver"
		done = r.Approve(by, comment, now)
	case approval.VerdictReject:
		ev.Authority.Rule = "approver"
		r.Close(approval.Rejected, &approval.Decision{Stage: stage, By: by, Verdict: verdict, Comment: comment, At: now}, "rejected", comment, now)
	case approval.VerdictCancel:
		ev.Authority.Rule = "requester"
		r.Close(approval.Cancelled, &approval.Decision{Stage: stage, By: by, Verdict: verdict, Comment: comment, At: now}, "cancelled", comment, now)
	case approval.VerdictReview:
		ev.Authority.Rule = "tier0"
		r.Close(approval.Reviewed, &approval.Decision{Stage: stage, By: by, Verdict: verdict, Comment: comment, At: now}, r.Reason, r.Message, now)
	}
	idx, err := tx.AppendEvent(ctx, ev)
	if err != nil {
		return err
	}
	r.Decisions[len(r.Decisions)-1].Event = idx
	switch {
	case done:
		if err := p.applyApproved(ctx, tx, sess, r, now); err != nil {
			return err
		}
	case verdict == approval.VerdictApprove && r.Stage != stage:
		// The next stage opens: resolve its approvers now and tell them.
		s := r.Current()
		s.Eligible = p.gate.EligibleLazy(s, func() *delegation.Question { return p.requestQuestion(ctx, tx, r) }, r.Excluded, s.Escalated)
		if err := notify(ctx, tx, idx, Notification{Kind: "approval_needed", Request: r.ID, To: r.Inbox(),
			Subject: "Approval needed: " + describe(r)}); err != nil {
			return err
		}
	case verdict == approval.VerdictReject:
		if err := notify(ctx, tx, idx, Notification{Kind: "decided", Request: r.ID, To: []string{r.Requester.ID},
			Subject: "Rejected: " + describe(r)}); err != nil {
			return err
		}
	}
	return tx.UpdateRequest(ctx, r)
}

// applyApproved applies a fully approved request's op as its requester, in a savepoint: if it
// is denied or fails now, its writes are undone, the attempt is recorded, and the request ends
// failed with the reason.
func (p *Pipeline) applyApproved(ctx context.Context, tx Tx, sess delegation.Session, r *approval.Request, now time.Time) error {
	var op Op
	if err := json.Unmarshal(r.Op, &op); err != nil {
		return fmt.Errorf("change: request %s: decode op: %w", r.ID, err)
	}
	meta := Meta{Transport: r.Origin.Transport, ClientAddr: r.Origin.ClientAddr, UserAgent: r.Origin.UserAgent,
		RequestID: r.ID, approved: r}
	if op.Action == delegation.GroupAddMember && op.Provenance == nil {
		// The membership exists because this request was approved: a leaver's or a review's
		// removal can say so.
		op.Provenance = &directory.Provenance{Source: "request", SourceID: r.ID,
			By: directory.Ref{Kind: directory.Kind(r.Requester.Kind), ID: r.Requester.ID, Name: r.Requester.Name}, At: now}
	}
	var (
		res   Result
		a     *attempt
		opErr error
	)
	err := tx.Savepoint(ctx, func() error {
		res, a, opErr = p.apply(ctx, tx, sess, r.Requester, meta, &op)
		return opErr
	})
	switch {
	case errors.Is(err, ErrTxBroken):
		return err
	case opErr == nil:
		r.Close(approval.Applied, nil, "", "", now)
		r.Result = res.Event
	case a == nil || a.ev == nil:
		return opErr
	default:
		idx, err := tx.AppendEvent(ctx, a.ev)
		if err != nil {
			return err
		}
		r.Close(approval.Failed, nil, a.ev.Reason, "approved, but applying it failed: "+a.ev.Message, now)
		r.Result = idx
	}
	return notify(ctx, tx, r.Result, Notification{Kind: "decided", Request: r.ID, To: []string{r.Requester.ID},
		Subject: fmt.Sprintf("%s: %s", strings.ToUpper(string(r.State[:1]))+string(r.State[1:]), describe(r))})
}

// requestEvent is the audit event of a step of request r.
func (p *Pipeline) requestEvent(actor delegation.Actor, meta Meta, r *approval.Request, action string, now time.Time) *audit.Event {
	meta.RequestID = r.ID
	ev := p.event(actor, meta, &Op{Action: delegation.Action(action)},
		directory.Ref{Kind: directory.KindRequest, ID: r.ID, Name: string(r.Action) + " " + r.Target.String()}, now)
	ev.Authority.Request = r.ID
	return ev
}

// Sweep expires the open requests past their expiry, reminds the approvers of a stage about to
// time out, and escalates a stage that timed out, as the system actor system:approval. It
// returns how many requests it changed. Due times are in the database, so a restarted server
// catches up on what fell due while it was down.
func (p *Pipeline) Sweep(ctx context.Context) (int, error) {
	n := 0
	var sess delegation.Session
	err := p.store.InTx(ctx, func(tx Tx) error {
		n = 0
		now := audit.Timestamp(p.now())
		due, err := tx.DueRequests(ctx, now, 200)
		if err != nil {
			return err
		}
		if sess, err = p.authz.Session(ctx, tx); err != nil {
			return err
		}
		for i := range due {
			if err := p.sweepOne(ctx, tx, &due[i], now); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("change: sweep requests: %w", err)
	}
	sess.Commit()
	return n, nil
}

func (p *Pipeline) sweepOne(ctx context.Context, tx Tx, r *approval.Request, now time.Time) error {
	meta := Meta{Transport: "scheduler"}
	s := r.Current()
	switch {
	case !now.Before(r.Expires):
		ev := p.requestEvent(approvalActor, meta, r, ActionRequestExpire, now)
		ev.Outcome, ev.Authority.Rule, ev.Message = audit.Applied, "expiry", "no one finished approving it before it expired; it can never be applied"
		idx, err := tx.AppendEvent(ctx, ev)
		if err != nil {
			return err
		}
		r.Close(approval.Expired, &approval.Decision{Stage: r.Stage, By: directory.Ref{Kind: "system", ID: approvalActor.ID, Name: approvalActor.Name},
			Verdict: approval.VerdictExpire, At: now, Event: idx}, "expired", ev.Message, now)
		if err := notify(ctx, tx, idx, Notification{Kind: "decided", Request: r.ID, To: []string{r.Requester.ID},
			Subject: "Expired: " + describe(r)}); err != nil {
			return err
		}
	case s != nil && !s.Due.IsZero() && !s.Escalated && !now.Before(s.Due):
		s.Escalated = true
		s.Eligible = p.gate.Eligible(s, p.requestQuestion(ctx, tx, r), r.Excluded, true)
		if len(r.Inbox()) == 0 {
			s.Tier0Fallback = true // the escalation names no one who can act: tier-0 admins can
			s.Eligible = p.gate.Eligible(s, p.requestQuestion(ctx, tx, r), r.Excluded, true)
		}
		ev := p.requestEvent(approvalActor, meta, r, ActionRequestEscalate, now)
		ev.Outcome, ev.Authority.Rule = audit.Applied, "timeout"
		ev.Message = fmt.Sprintf("stage %d timed out after %s: its escalation approvers may approve it too", r.Stage+1, s.Timeout)
		idx, err := tx.AppendEvent(ctx, ev)
		if err != nil {
			return err
		}
		if err := notify(ctx, tx, idx, Notification{Kind: "escalated", Request: r.ID, To: r.Inbox(),
			Subject: "Escalated to you: " + describe(r)}); err != nil {
			return err
		}
	case s != nil && !s.Due.IsZero() && !s.Reminded:
		s.Reminded = true
		if err := notify(ctx, tx, r.Event, Notification{Kind: "reminder", Request: r.ID, To: r.Inbox(),
			Subject: fmt.Sprintf("Reminder: approval due by %s: %s", s.Due.UTC().Format(time.RFC3339), describe(r))}); err != nil {
			return err
		}
	default:
		return nil
	}
	return tx.UpdateRequest(ctx, r)
}

// Notify enqueues a notification on its own (not the outcome of an op: a lifecycle run's
// reviews), in a transaction of its own.
func (p *Pipeline) Notify(ctx context.Context, n Notification) error {
	return p.store.InTx(ctx, func(tx Tx) error { return notify(ctx, tx, 0, n) })
}
