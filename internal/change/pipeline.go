package change

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/approval"
	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// Meta describes how an op arrived: the transport, the client, and on whose behalf a system
// actor works. It is recorded in the audit event.
type Meta struct {
	Transport  string
	ClientAddr string
	UserAgent  string
	OnBehalfOf *delegation.Actor
	RequestID  string // the approval request the op belongs to
	Reverts    *int64 // the event an undo reverts
	// RevertsRequest is the break-glass request of the event an undo reverts: undoing an
	// unreviewed change settles its review.
	RevertsRequest string
	// Run is the HR feed run a lifecycle op belongs to, recorded in its authority.
	Run string

	inBatch  bool              // part of a SubmitBatch: an op that needs approval cannot wait there
	approved *approval.Request // the request whose approval applies the op: the gate is passed
}

// Result is what became of a submitted op.
type Result struct {
	Outcome audit.Outcome
	Event   int64         // index of the audit event that records the attempt
	Target  directory.Ref // the object acted on, resolved (for a create: the new object)
	Version int64         // the target's version after an applied change
	// Credential is a credential the op created (an API token), to be shown once. Its secret is
	// in no event and no log.
	Credential *Issued
	// Request is the approval request that holds a parked op (Outcome Pending), or that records
	// a break-glass change.
	Request string
}

// Issued is a newly created credential.
type Issued struct {
	ID      string
	Secret  string
	Expires time.Time
	// Rotated, when the op rotated a key, is that key (without its secret) at its new expiry.
	Rotated *Issued
}

// ErrParked is returned for an op of a SubmitBatch that an approval policy gates: a batch
// applies all together or not at all, so it cannot wait for approval; submit such an op alone.
var ErrParked = errors.New("change: op needs approval")

// Observer is told the outcome and duration of every submitted op (for metrics).
type Observer func(action delegation.Action, outcome audit.Outcome, d time.Duration)

// Pipeline is the one path of every change.
type Pipeline struct {
	group    group
	store    Store
	authz    delegation.Authorizer
	gate     *approval.Gate
	creds    Store // reads credentials before a credential op's transaction
	policy   credential.PasswordPolicy
	log      *slog.Logger
	now      func() time.Time
	observer Observer
	// maxKeyDays is the longest lifetime of a service account's API key (WithMaxKeyDays).
	maxKeyDays int
}

// Option configures a Pipeline.
type Option func(*Pipeline)

// WithPasswordPolicy sets the policy new passwords must meet (default: NIST 800-63B minimums).
func WithPasswordPolicy(pp credential.PasswordPolicy) Option {
	return func(p *Pipeline) { p.policy = pp }
}

// WithGate sets the approval gate; without one every allowed op applies at once.
func WithGate(g *approval.Gate) Option { return func(p *Pipeline) { p.gate = g } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(p *Pipeline) { p.now = now } }

// WithObserver sets a function told about every op.
func WithObserver(o Observer) Option { return func(p *Pipeline) { p.observer = o } }

// New returns a pipeline writing to store and asking authz.
func New(store Store, authz delegation.Authorizer, log *slog.Logger, opts ...Option) *Pipeline {
	p := &Pipeline{store: store, creds: store, authz: authz, log: log, now: time.Now}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Authorizer returns the pipeline's authorizer, for transports that ask about reads.
func (p *Pipeline) Authorizer() delegation.Authorizer { return p.authz }

// SubmitBatch runs ops for actor in one transaction: each is authorized and audited on its own,
// and they are applied all together or not at all. The first op that is denied or fails stops
// the batch; its attempt is recorded and its error returned, with its result last in the slice.
// The ops before it were rolled back with it: their results say Failed and name its event.
func (p *Pipeline) SubmitBatch(ctx context.Context, actor delegation.Actor, meta Meta, ops []Op) ([]Result, error) {
	for i := range ops {
		if err := ops[i].check(); err != nil {
			return nil, err
		}
	}
	meta.inBatch = true
	return p.runBatch(ctx, actor, meta, ops)
}

// runBatch is SubmitBatch for checked ops.
func (p *Pipeline) runBatch(ctx context.Context, actor delegation.Actor, meta Meta, ops []Op) ([]Result, error) {
	start := p.now()
	var (
		results []Result
		stop    *attempt // the op that stopped the batch, recorded after the rollback
	)
	var sess delegation.Session
	err := p.store.InTx(ctx, func(tx Tx) error {
		results = results[:0]
		var err error
		if sess, err = p.authz.Session(ctx, tx); err != nil {
			return err
		}
		for i := range ops {
			r, a, err := p.apply(ctx, tx, sess, actor, meta, &ops[i])
			if err != nil {
				stop = a
				return err
			}
			results = append(results, r)
		}
		return nil
	})
	if err == nil {
		sess.Commit()
	}
	if err != nil {
		// The transaction rolled back: the ops that had applied before the error did not
		// after all, and the events their results named were never committed.
		for i := range results {
			results[i] = Result{Outcome: audit.Failed, Target: results[i].Target}
		}
	}
	if stop != nil && stop.ev != nil {
		idx, rerr := p.record(ctx, stop.ev, stop.also)
		if rerr != nil {
			return nil, errors.Join(err, rerr)
		}
		for i := range results {
			results[i].Event = idx
		}
		stop.result.Event = idx
		var denied *DeniedError
		if errors.As(err, &denied) {
			denied.Event = idx
		}
		results = append(results, stop.result)
	}
	p.observe(ops, results, err, start)
	if err != nil {
		if stop == nil {
			err = fmt.Errorf("change: %s: %w", ops[0].Action, err)
		}
		return results, err
	}
	return results, nil
}

// attempt is an op that did not apply: the event that records it and the result to report.
type attempt struct {
	ev     *audit.Event
	result Result
	// also is a write that outlasts the op's rollback, made with the event (a wrong
	// verification code counts toward the limit of tries).
	also func(ctx context.Context, tx Tx) error
}

// failedWith is a planning error that leaves one write to make although the op fails.
type failedWith struct {
	err   error
	write func(ctx context.Context, tx Tx) error
}

func (e *failedWith) Error() string { return e.err.Error() }
func (e *failedWith) Unwrap() error { return e.err }

// apply plans, authorizes, gates and writes one op inside tx.
func (p *Pipeline) apply(ctx context.Context, tx Tx, sess delegation.Session, actor delegation.Actor, meta Meta, op *Op) (Result, *attempt, error) {
	now := audit.Timestamp(p.now())
	pl, planErr := p.plan(ctx, tx, op, actor, now)
	q := &delegation.Question{Actor: actor, Action: op.Action, Target: op.Target}
	if pl != nil {
		q.Target, q.Before, q.After, q.Touched, q.Member = pl.target, pl.before, pl.after, pl.touched, pl.member
		q.Verified = pl.verified
	} else {
		q.Target, q.Before = resolveTarget(ctx, tx, op.Target)
		if q.Before == nil {
			q.After = intended(ctx, tx, op)
		}
	}
	// The decision comes first even when planning failed, so that an actor without rights
	// learns nothing about the target (not even whether it exists). It is then made on the
	// target as it is (or, for a create, as its input places it), so that an actor who may act
	// on it learns why the op failed.
	dec := sess.Decide(ctx, q)
	if !dec.Allow && dec.Reason == delegation.ReasonVerification && directory.IsFieldError(planErr, "verification") {
		// Allowed but for the verification, whose code was wrong or stale: say that.
		return Result{}, p.failure(actor, meta, op, q.Target, dec, now, planErr), planErr
	}
	if !dec.Allow {
		ev := p.event(actor, meta, op, q.Target, now)
		ev.Outcome, ev.Reason, ev.Message = audit.Denied, dec.Reason, dec.Message
		return Result{}, &attempt{ev: ev, result: Result{Outcome: audit.Denied, Target: q.Target}},
			&DeniedError{Reason: dec.Reason, Message: dec.Message}
	}
	var breakGlass *approval.Routing
	// A system actor's ops are not gated: what it does follows rules that only tier-0 admins set
	// (changing them is audited), and its own assignments bound it.
	if planErr == nil && p.gate != nil && meta.approved == nil && actor.Kind != delegation.ActorSystem {
		switch rt := p.gate.Route(q, now); {
		case rt == nil:
		case meta.inBatch:
			planErr = fmt.Errorf("%w (policy %s): submit it on its own, not in a batch", ErrParked, rt.Policies[0])
		case rt.BreakGlass:
			breakGlass = rt
		default:
			return p.park(ctx, tx, actor, meta, op, q, pl, dec, rt, now)
		}
	}
	var before, after map[string]any
	unchanged := false
	if planErr == nil {
		before, after = diff(pl.before, pl.after)
		if pl.relBefore != nil || pl.relAfter != nil {
			before, after = pl.relBefore, pl.relAfter
		}
		// An update that sets every field to the value it has is applied as a no-op: nothing
		// is written, the version stays, and the attempt is still recorded.
		unchanged = before == nil && after == nil && pl.before != nil && pl.after != nil
		if unchanged {
			pl.version--
		} else {
			planErr = pl.write(ctx)
		}
	}
	if planErr != nil {
		return Result{}, p.failure(actor, meta, op, q.Target, dec, now, planErr), planErr
	}

	ev := p.event(actor, meta, op, pl.target, now)
	ev.Outcome, ev.Authority = audit.Applied, dec.Authority
	ev.Target.Version = pl.version
	ev.Before, ev.After = before, after
	if unchanged {
		ev.Message = "nothing changed: every field already had the value given"
	} else if pl.note != "" {
		ev.Message = pl.note
	}
	if op.Rule != "" && actor.Kind == delegation.ActorSystem {
		ev.Authority.LifecycleRule = op.Rule
	}
	ev.Authority.Run = meta.Run
	if r := meta.approved; r != nil {
		ev.Authority.Request = r.ID
		for _, d := range r.Decisions {
			if d.Verdict == approval.VerdictApprove {
				ev.Authority.Approvals = append(ev.Authority.Approvals, d.Event)
			}
		}
	}
	var glass *approval.Request
	if breakGlass != nil {
		glass = newRequest(actor, meta, op, q.Target, breakGlass, now)
		ev.Unreviewed, ev.RequestID = true, glass.ID
		ev.Message = "applied as break-glass: " + glassReason(breakGlass)
	}
	idx, err := tx.AppendEvent(ctx, ev)
	if err != nil {
		return Result{}, nil, err
	}
	if glass != nil {
		if err := p.recordBreakGlass(ctx, tx, glass, idx, before, after); err != nil {
			return Result{}, nil, err
		}
	}
	if meta.RevertsRequest != "" {
		if err := p.settleReverted(ctx, tx, meta.RevertsRequest, actor, idx, now); err != nil {
			return Result{}, nil, err
		}
	}
	sess.Record(ev)
	if unchanged {
		return Result{Outcome: audit.Applied, Event: idx, Target: pl.target, Version: pl.version}, nil, nil
	}
	payload, err := json.Marshal(outboxMessage{Index: idx, Action: op.Action, Target: ev.Target})
	if err != nil {
		return Result{}, nil, fmt.Errorf("encode outbox message: %w", err)
	}
	if err := tx.Enqueue(ctx, "directory", idx, payload); err != nil {
		return Result{}, nil, err
	}
	res := Result{Outcome: audit.Applied, Event: idx, Target: pl.target, Version: pl.version, Credential: pl.issued}
	if glass != nil {
		res.Request = glass.ID
	}
	return res, nil, nil
}

// failure records an allowed op that could not be applied, when the cause is the request or
// the state of the directory; infrastructure errors are returned unrecorded (nothing could be
// written then anyway).
func (p *Pipeline) failure(actor delegation.Actor, meta Meta, op *Op, target directory.Ref, dec delegation.Decision, now time.Time, err error) *attempt {
	reason := FailureReason(err)
	if reason == "" {
		return nil
	}
	ev := p.event(actor, meta, op, target, now)
	ev.Outcome, ev.Authority, ev.Reason, ev.Message = audit.Failed, dec.Authority, reason, err.Error()
	a := &attempt{ev: ev, result: Result{Outcome: audit.Failed, Target: target}}
	var fw *failedWith
	if errors.As(err, &fw) {
		a.also = fw.write
	}
	return a
}

// FailureReason is the stable reason code for an error the pipeline returns, or "" for an
// infrastructure error.
func FailureReason(err error) string {
	switch {
	case errors.Is(err, ErrDenied):
		var d *DeniedError
		if errors.As(err, &d) {
			return d.Reason
		}
		return delegation.ReasonNotAuthorized
	case errors.Is(err, directory.ErrStale):
		return "stale_version"
	case errors.Is(err, directory.ErrNotFound):
		return "not_found"
	case errors.Is(err, directory.ErrConflict):
		return "conflict"
	case errors.Is(err, directory.ErrInvalid):
		return "invalid"
	case errors.Is(err, ErrParked):
		return "approval_required"
	case errors.Is(err, approval.ErrSeparation):
		return "separation_of_duties"
	case errors.Is(err, approval.ErrNotApprover):
		return "not_approver"
	case errors.Is(err, approval.ErrClosed):
		return "request_closed"
	case errors.Is(err, approval.ErrAlreadyDecided):
		return "already_decided"
	}
	return ""
}

// record writes the event of an attempt that changed nothing, in a transaction of its own,
// with the attempt's own writes (also) when there are any.
func (p *Pipeline) record(ctx context.Context, ev *audit.Event, also ...func(context.Context, Tx) error) (int64, error) {
	var idx int64
	err := p.store.InTx(ctx, func(tx Tx) error {
		for _, w := range also {
			if w != nil {
				if err := w(ctx, tx); err != nil {
					return err
				}
			}
		}
		var err error
		idx, err = tx.AppendEvent(ctx, ev)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("change: record %s attempt on %s: %w", ev.Outcome, ev.Target.Name, err)
	}
	return idx, nil
}

func (p *Pipeline) event(actor delegation.Actor, meta Meta, op *Op, target directory.Ref, now time.Time) *audit.Event {
	ev := &audit.Event{
		Time: now, Actor: actor.Principal(), Action: string(op.Action),
		Target:        audit.Target{Type: string(target.Kind), ID: target.ID, Name: target.String()},
		Justification: op.Justification, RequestID: meta.RequestID, Transport: meta.Transport, Reverts: meta.Reverts,
		ClientAddr: meta.ClientAddr, UserAgent: meta.UserAgent,
	}
	if meta.OnBehalfOf != nil {
		p := meta.OnBehalfOf.Principal()
		ev.OnBehalfOf = &p
	}
	return ev
}

func (p *Pipeline) observe(ops []Op, results []Result, err error, start time.Time) {
	if p.observer == nil {
		return
	}
	d := p.now().Sub(start) / time.Duration(max(len(ops), 1))
	for i, r := range results {
		p.observer(ops[i].Action, r.Outcome, d)
	}
	if err != nil && len(results) < len(ops) && FailureReason(err) == "" {
		p.observer(ops[len(results)].Action, audit.Failed, d)
	}
}

// outboxMessage is what connectors receive: which object changed, by which event. A connector
// reads the object's state when it delivers, so a late delivery never pushes a stale state.
type outboxMessage struct {
	Index  int64             `json:"index"`
	Action delegation.Action `json:"action"`
	Target audit.Target      `json:"target"`
}

// diff returns what an audit event records of a change: for a create only the after state, for
// a delete only the before state, for an update the attributes that differ, on both sides, an
// unset value as null.
func diff(before, after map[string]any) (map[string]any, map[string]any) {
	switch {
	case before == nil:
		return nil, set(after)
	case after == nil:
		return set(before), nil
	}
	b, a := map[string]any{}, map[string]any{}
	for k := range keysOf(before, after) {
		bv, av := unset(before[k]), unset(after[k])
		if reflect.DeepEqual(bv, av) {
			continue
		}
		b[k], a[k] = bv, av
	}
	if len(a) == 0 {
		return nil, nil
	}
	return b, a
}

// set keeps the attributes that have a value.
func set(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if v = unset(v); v != nil {
			out[k] = v
		}
	}
	return out
}

// unset maps the empty forms of a value (an empty string, an empty list) to nil.
func unset(v any) any {
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil
		}
	case []map[string]string:
		if len(x) == 0 {
			return nil
		}
	}
	return v
}

func keysOf(ms ...map[string]any) map[string]struct{} {
	keys := map[string]struct{}{}
	for _, m := range ms {
		for k := range m {
			keys[k] = struct{}{}
		}
	}
	return keys
}

// resolveTarget fills in the ID and canonical name of an op's target when planning failed
// before resolving it (a stale version, invalid input), so that the attempt's audit event names
// the object, and returns the target's current attributes, so that the authorizer can judge the
// op on the object as it is. A target that does not exist (or a create's) is returned as given,
// with no attributes.
func resolveTarget(ctx context.Context, tx Tx, ref directory.Ref) (directory.Ref, map[string]any) {
	if ref.Key() == "" {
		return ref, nil // a create: the object does not exist yet
	}
	switch ref.Kind {
	case directory.KindOU:
		if o, err := tx.OU(ctx, ref); err == nil {
			return o.Ref(), o.Fields()
		}
	case directory.KindUser:
		if u, err := tx.User(ctx, ref); err == nil {
			return u.Ref(), u.Fields()
		}
	case directory.KindGroup:
		if g, err := tx.Group(ctx, ref); err == nil {
			return g.Ref(), g.Fields()
		}
	case directory.KindServiceAccount:
		if s, err := tx.ServiceAccount(ctx, ref); err == nil {
			return s.Ref(), s.Fields()
		}
	case directory.KindAssignment:
		if a, err := tx.Assignment(ctx, strings.ToLower(ref.Key())); err == nil {
			return a.Ref(), a.Fields()
		}
	}
	return ref, nil
}

// intended returns the attributes of the object a create that could not be planned would have
// made, as far as its input says (its place resolved, its attributes as written), for the
// authorizer; nil for any other op, or when the input names no OU that exists.
func intended(ctx context.Context, tx Tx, op *Op) map[string]any {
	place := func(key string) (directory.OU, bool) {
		o, err := tx.OU(ctx, directory.ParseRef(directory.KindOU, key))
		return o, err == nil
	}
	switch {
	case op.Action == delegation.UserCreate && op.User != nil:
		if ou, ok := place(op.User.OU); ok {
			u := directory.User{OUID: ou.ID, OUPath: ou.DisplayPath(), Status: op.User.Status}
			u.SetInput(*op.User)
			return u.Fields()
		}
	case op.Action == delegation.GroupCreate && op.Group != nil:
		if ou, ok := place(op.Group.OU); ok {
			g := directory.Group{Name: op.Group.Name, Description: op.Group.Description, OUID: ou.ID, OUPath: ou.DisplayPath(),
				Protected: op.Group.Protected}
			return g.Fields()
		}
	case op.Action == delegation.SACreate && op.Service != nil:
		if ou, ok := place(op.Service.OU); ok {
			sa := directory.ServiceAccount{Name: op.Service.Name, Description: op.Service.Description, OUID: ou.ID,
				OUPath: ou.DisplayPath(), Status: op.Service.Status, Protected: op.Service.Protected}
			return sa.Fields()
		}
	case op.Action == delegation.OUCreate && op.OU != nil:
		if parent, ok := place(strings.Trim(op.OU.Parent, "/")); ok {
			o := directory.OU{Name: op.OU.Name, ParentID: parent.ID, Path: parent.ChildPath(op.OU.Name), Protected: op.OU.Protected}
			return o.Fields()
		}
	}
	return nil
}

// Check asks the authorizer whether actor may perform a read action on target, whose
// attributes are fields (nil when the target is not one object). A denial is
// recorded in the audit trail like a denied change, and returned as a *DeniedError naming its
// event; an allowed read is not recorded.
func (p *Pipeline) Check(ctx context.Context, actor delegation.Actor, meta Meta, action delegation.Action, target directory.Ref,
	fields map[string]any) error {
	if err := p.authz.CatchUp(ctx, p.store); err != nil {
		return err
	}
	dec := p.authz.Decide(ctx, &delegation.Question{Actor: actor, Action: action, Target: target, Before: fields})
	if dec.Allow {
		return nil
	}
	return p.Refuse(ctx, actor, meta, Op{Action: action, Target: target}, dec.Reason, dec.Message)
}

// Refuse records an attempt the caller's transport refuses before it reaches the authorizer,
// for a rule of its own (forcing an undo needs a tier-0 admin), as a denied event, and returns
// the denial naming it.
func (p *Pipeline) Refuse(ctx context.Context, actor delegation.Actor, meta Meta, op Op, reason, message string) error {
	ev := p.event(actor, meta, &op, op.Target, audit.Timestamp(p.now()))
	ev.Outcome, ev.Reason, ev.Message = audit.Denied, reason, message
	idx, err := p.record(ctx, ev)
	if err != nil {
		return err
	}
	return &DeniedError{Reason: reason, Message: message, Event: idx}
}

// Ask answers a question on the committed state, caught up with the log, without recording it
// (the authorization queries of the API).
func (p *Pipeline) Ask(ctx context.Context, q *delegation.Question) (delegation.Decision, error) {
	if err := p.authz.CatchUp(ctx, p.store); err != nil {
		return delegation.Decision{}, err
	}
	return p.authz.Decide(ctx, q), nil
}

// errPreview rolls back a preview's transaction.
var errPreview = errors.New("change: preview")

// Preview plans op for actor and asks the authorizer about it, in a transaction that is rolled
// back: nothing is written and nothing recorded. It returns the decision and the question (the
// op resolved against the directory), or the error that planning the op met.
func (p *Pipeline) Preview(ctx context.Context, actor delegation.Actor, op Op) (delegation.Decision, *delegation.Question, error) {
	if err := op.check(); err != nil {
		return delegation.Decision{}, nil, err
	}
	var (
		dec delegation.Decision
		q   *delegation.Question
	)
	err := p.store.InTx(ctx, func(tx Tx) error {
		sess, err := p.authz.Session(ctx, tx)
		if err != nil {
			return err
		}
		pl, err := p.plan(ctx, tx, &op, actor, audit.Timestamp(p.now()))
		if err != nil {
			return err
		}
		q = &delegation.Question{Actor: actor, Action: op.Action, Target: pl.target, Before: pl.before, After: pl.after,
			Touched: pl.touched, Member: pl.member}
		dec = sess.Decide(ctx, q)
		return errPreview
	})
	if errors.Is(err, errPreview) {
		return dec, q, nil
	}
	return delegation.Decision{}, nil, err
}

// CatchUp brings the authorizer up to date with what other writers committed.
func (p *Pipeline) CatchUp(ctx context.Context) error { return p.authz.CatchUp(ctx, p.store) }
