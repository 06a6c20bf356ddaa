package approval

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// State is where a request stands. Open is the only state that changes again, except that an
// Unreviewed break-glass change becomes Reviewed once another tier-0 admin has looked at it.
type State string

// Request states.
const (
	Open       State = "open"       // waiting for approvals
	Applied    State = "applied"    // approved and applied
	Rejected   State = "rejected"   // an approver said no
	Cancelled  State = "cancelled"  // the requester withdrew it
	Expired    State = "expired"    // nobody finished approving it in time
	Failed     State = "failed"     // approved, but applying it failed (nothing was applied)
	Unreviewed State = "unreviewed" // applied as break-glass: no other approver existed
	Reviewed   State = "reviewed"   // a break-glass change another tier-0 admin has reviewed
)

// Errors of deciding a request. The API maps ErrNotApprover and ErrSeparation to 403 and
// ErrClosed and ErrAlreadyDecided to 409.
var (
	ErrClosed         = errors.New("approval: request is closed")
	ErrNotApprover    = errors.New("approval: not an approver of this request")
	ErrSeparation     = errors.New("approval: separation of duties")
	ErrAlreadyDecided = errors.New("approval: already decided")
)

// Request is an op parked until its stages are approved.
type Request struct {
	ID            string            `json:"id"`
	State         State             `json:"state"`
	Action        delegation.Action `json:"action"`
	Target        directory.Ref     `json:"target"`
	Requester     delegation.Actor  `json:"requester"`
	Justification string            `json:"justification"`
	// Op is the parked change.Op, as JSON (this package does not know ops).
	Op json.RawMessage `json:"op"`
	// Origin is how the op arrived (transport, client), for the event of the applied change.
	Origin   Origin      `json:"origin"`
	Policies []string    `json:"policies"`
	Stages   []StagePlan `json:"stages"`
	Stage    int         `json:"stage"` // the stage waiting for approvals
	// Excluded may never approve: the requester, the target and the member a change is about.
	Excluded  []string   `json:"excluded,omitempty"`
	Decisions []Decision `json:"decisions,omitempty"`
	Created   time.Time  `json:"created"`
	Expires   time.Time  `json:"expires"`
	Closed    time.Time  `json:"closed,omitzero"`
	// Event is the audit event that recorded the submission; Result the event that recorded the
	// applied (or failed) change.
	Event   int64  `json:"event"`
	Result  int64  `json:"result_event,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	Version int64  `json:"version"`
}

// Origin is how a parked op arrived.
type Origin struct {
	Transport  string `json:"transport,omitempty"`
	ClientAddr string `json:"client_addr,omitempty"`
	UserAgent  string `json:"user_agent,omitempty"`
}

// StagePlan is a stage as a request holds it: the policy's rules, the approvers they named at
// submission (the inbox), and its deadline.
type StagePlan struct {
	Policy    string     `json:"policy"`
	Name      string     `json:"name,omitempty"`
	Required  int        `json:"required"`
	Approvers []Approver `json:"approvers"`
	Escalate  []Approver `json:"escalate_to,omitempty"`
	Timeout   Duration   `json:"timeout,omitzero"`
	// Tier0Fallback adds the tier-0 admins: no one else could approve the stage.
	Tier0Fallback bool      `json:"tier0_fallback,omitempty"`
	Eligible      []string  `json:"eligible"`
	Due           time.Time `json:"due,omitzero"`
	Escalated     bool      `json:"escalated,omitempty"`
	Reminded      bool      `json:"reminded,omitempty"`
}

// Decision is one approver's answer (or the requester's cancel, or the system's expiry).
type Decision struct {
	Stage   int           `json:"stage"`
	By      directory.Ref `json:"by"`
	Verdict string        `json:"verdict"` // approve, reject, cancel, expire, review
	Comment string        `json:"comment,omitempty"`
	At      time.Time     `json:"at"`
	Event   int64         `json:"event,omitempty"`
}

// Verdicts.
const (
	VerdictApprove = "approve"
	VerdictReject  = "reject"
	VerdictCancel  = "cancel"
	VerdictExpire  = "expire"
	VerdictReview  = "review"
	VerdictRevert  = "revert" // a break-glass change undone, which settles its review
)

// Closed reports whether the request can no longer change (a break-glass change waiting for
// review is closed to approvals but still open to its review).
func (r *Request) IsClosed() bool { return r.State != Open }

// Current returns the stage waiting for approvals.
func (r *Request) Current() *StagePlan {
	if r.Stage < len(r.Stages) {
		return &r.Stages[r.Stage]
	}
	return nil
}

// Approvals counts the approvals the stage has.
func (r *Request) Approvals(stage int) int {
	n := 0
	for _, d := range r.Decisions {
		if d.Stage == stage && d.Verdict == VerdictApprove {
			n++
		}
	}
	return n
}

// CheckDecider checks that user (with eligible, the current stage's approvers as resolved now)
// may approve or reject r at now: the request is open and not expired, user is not excluded
// (requester, target), has not already decided any stage of it, and is an approver now.
func (r *Request) CheckDecider(user string, eligible []string, now time.Time) error {
	if r.State != Open {
		return fmt.Errorf("%w: it is %s", ErrClosed, r.State)
	}
	if !now.Before(r.Expires) {
		return fmt.Errorf("%w: it expired at %s", ErrClosed, r.Expires.UTC().Format(time.RFC3339))
	}
	if r.Requester.ID == user {
		return fmt.Errorf("%w: you requested this change, so someone else must approve it", ErrSeparation)
	}
	if slices.Contains(r.Excluded, user) {
		return fmt.Errorf("%w: the change is about you, so someone else must approve it", ErrSeparation)
	}
	for _, d := range r.Decisions {
		if d.By.ID == user && (d.Verdict == VerdictApprove || d.Verdict == VerdictReject) {
			return fmt.Errorf("%w: you already decided on this request (stage %d); one person counts once", ErrAlreadyDecided, d.Stage+1)
		}
	}
	if !slices.Contains(eligible, user) {
		return fmt.Errorf("%w: you are not (or no longer) one of its approvers", ErrNotApprover)
	}
	return nil
}

// Approve adds an approval to the current stage and reports whether it completed the last
// stage. A completed stage that is not the last opens the next, its deadline from now.
func (r *Request) Approve(by directory.Ref, comment string, now time.Time) (done bool) {
	r.Decisions = append(r.Decisions, Decision{Stage: r.Stage, By: by, Verdict: VerdictApprove, Comment: comment, At: now})
	if r.Approvals(r.Stage) < r.Stages[r.Stage].Required {
		return false
	}
	r.Stage++
	if r.Stage == len(r.Stages) {
		return true
	}
	if s := &r.Stages[r.Stage]; s.Timeout.D > 0 {
		s.Due = now.Add(s.Timeout.D)
	}
	return false
}

// Close ends the request in state with a decision (reject, cancel, expire) or none.
func (r *Request) Close(state State, d *Decision, reason, message string, now time.Time) {
	if d != nil {
		r.Decisions = append(r.Decisions, *d)
	}
	r.State, r.Reason, r.Message, r.Closed = state, reason, message, now
}

// Due returns when the scheduler must next look at an open request: its expiry, or the current
// stage's timeout (or the reminder before it) when sooner. A closed request is never due.
func (r *Request) Due() (time.Time, bool) {
	if r.State != Open {
		return time.Time{}, false
	}
	due := r.Expires
	if s := r.Current(); s != nil && !s.Due.IsZero() && !s.Escalated {
		at := s.Due
		if !s.Reminded {
			at = s.Due.Add(-ReminderLead(s.Timeout.D))
		}
		if at.Before(due) {
			due = at
		}
	}
	return due, true
}

// ReminderLead is how long before a stage times out its approvers are reminded: a quarter of
// the timeout, at most a day.
func ReminderLead(timeout time.Duration) time.Duration {
	return min(timeout/4, 24*time.Hour)
}

// Inbox returns the users who may act on the current stage now, as resolved when the stage
// opened or escalated, minus those who already decided.
func (r *Request) Inbox() []string {
	s := r.Current()
	if r.State != Open || s == nil {
		return nil
	}
	var out []string
	for _, u := range s.Eligible {
		if !slices.ContainsFunc(r.Decisions, func(d Decision) bool { return d.By.ID == u }) {
			out = append(out, u)
		}
	}
	return out
}

// Query selects requests: waiting for Approver, or submitted by Requester, or all; optionally
// in one State; in submission order after the ID After.
type Query struct {
	Approver  string
	Requester string
	State     State
	After     string
	Limit     int
}
