// Package audit defines Deputy's audit events: what every attempted change records, the canonical
// encoding the Merkle log hashes, and the read interface for searching the trail.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Outcome is what became of an attempted change.
type Outcome string

// Outcomes of an attempt.
const (
	Applied Outcome = "applied" // the change was made
	Denied  Outcome = "denied"  // authorization refused it; nothing changed
	Failed  Outcome = "failed"  // it was allowed but could not be applied (conflict, stale version); nothing changed
	Pending Outcome = "pending" // it was parked for approval
)

// Transports an attempt can arrive through.
const (
	TransportAPI       = "api"
	TransportCLI       = "cli"
	TransportSCIM      = "scim"
	TransportPortal    = "portal"
	TransportLifecycle = "lifecycle"
	TransportReview    = "review"
	TransportUndo      = "undo"
)

// Principal is who acted: a user, a service account, or a system actor ("system:lifecycle").
type Principal struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Target is the object acted on, with a snapshot of its name at the time and, for an applied
// change, the version it has afterwards.
type Target struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Name    string `json:"name"`
	Version int64  `json:"version,omitempty"`
}

// Authority is what permitted an applied change: the assignments that allowed it, a built-in
// rule ("self", "bootstrap"), an approval request, a lifecycle rule, a review decision.
type Authority struct {
	Assignments    []string `json:"assignments,omitempty"`
	Rule           string   `json:"rule,omitempty"`
	Request        string   `json:"request,omitempty"`
	LifecycleRule  string   `json:"lifecycle_rule,omitempty"`
	ReviewDecision string   `json:"review_decision,omitempty"`
	// Approvals are the events that recorded the approvals of Request.
	Approvals []int64 `json:"approvals,omitempty"`
	// Run is the HR feed run a lifecycle change was part of.
	Run string `json:"run,omitempty"`
}

// Refs lists what an event's authority names by ID, for searching by authority.
func (a Authority) Refs() []string {
	refs := append([]string(nil), a.Assignments...)
	for _, r := range []string{a.Request, a.LifecycleRule, a.ReviewDecision, a.Run} {
		if r != "" {
			refs = append(refs, r)
		}
	}
	return refs
}

// Event is one audit record. Its canonical encoding (Encode) is the leaf of the Merkle log, so
// the set and order of fields is part of Deputy's compatibility contract: fields may be added
// only with omitempty, never renamed or removed. Before and After hold exactly the attributes
// the change altered. No secret (password, token, key, seed) may ever be put into an event.
type Event struct {
	Index         int64          `json:"index"`
	Time          time.Time      `json:"time"`
	Actor         Principal      `json:"actor"`
	OnBehalfOf    *Principal     `json:"on_behalf_of,omitempty"`
	Action        string         `json:"action"`
	Target        Target         `json:"target"`
	Authority     Authority      `json:"authority"`
	Outcome       Outcome        `json:"outcome"`
	Reason        string         `json:"reason,omitempty"`
	Message       string         `json:"message,omitempty"`
	Before        map[string]any `json:"before,omitempty"`
	After         map[string]any `json:"after,omitempty"`
	Justification string         `json:"justification,omitempty"`
	RequestID     string         `json:"request_id,omitempty"`
	Transport     string         `json:"transport"`
	ClientAddr    string         `json:"client_addr,omitempty"`
	UserAgent     string         `json:"user_agent,omitempty"`
	// Reverts is the index of the event this one undoes (transport "undo").
	Reverts *int64 `json:"reverts,omitempty"`
	// Unreviewed marks a change applied as break-glass: an approval policy matched it but no one
	// but its requester could approve, so a tier-0 admin reviews it afterwards.
	Unreviewed bool `json:"unreviewed,omitempty"`
}

// Encode returns the canonical encoding of e: JSON with the struct's field order, map keys
// sorted, times in UTC with microsecond precision. Encoding the same event always gives the
// same bytes, and Decode(Encode(e)) re-encodes to them.
func Encode(e *Event) ([]byte, error) {
	c := *e
	c.Time = Timestamp(c.Time)
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("audit: encode event %d: %w", e.Index, err)
	}
	return b, nil
}

// Decode parses a canonical encoding.
func Decode(b []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("audit: decode event: %w", err)
	}
	return e, nil
}

// Timestamp is the precision events keep: UTC, whole microseconds.
func Timestamp(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Query selects events. Empty fields do not filter. Actor and Target match an ID or a name
// snapshot. Events come newest first; Before continues a previous page (the smallest index it
// returned).
type Query struct {
	Actor     string
	Target    string
	Action    string
	Outcome   Outcome
	Transport string
	Authority string // an assignment ID, approval request, lifecycle rule or review decision
	Since     time.Time
	Until     time.Time
	Before    int64
	Limit     int
}

// Reader searches the audit trail.
type Reader interface {
	// Events returns the events matching q, newest first, and the cursor (an index) for the
	// next page, 0 on the last page.
	Events(ctx context.Context, q Query) ([]Event, int64, error)
	// Event returns the event at index, or an error wrapping directory.ErrNotFound.
	Event(ctx context.Context, index int64) (Event, error)
	// EachEncoded calls fn with the canonical encoding of every event from index from on (at
	// or after since, when set), in index order.
	EachEncoded(ctx context.Context, from int64, since time.Time, fn func(body []byte) error) error
}
