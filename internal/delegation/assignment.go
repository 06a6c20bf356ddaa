package delegation

import (
	"slices"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/directory"
)

// Assignment is the delegation itself: Role, held by Holder (a user, or every member of a group,
// transitively), over Scope, valid from From until Until (zero: unbounded). An Eligible
// assignment grants nothing until its holder activates it, for at most MaxActivation, which
// sets ActiveUntil. CanRedelegate lets the holder grant a subset of it onward.
type Assignment struct {
	ID            string        `json:"id"`
	Role          string        `json:"role"`
	Holder        directory.Ref `json:"holder"`
	Scope         Scope         `json:"scope"`
	From          time.Time     `json:"from,omitzero"`
	Until         time.Time     `json:"until,omitzero"`
	CanRedelegate bool          `json:"can_redelegate,omitempty"`
	Eligible      bool          `json:"eligible,omitempty"`
	MaxActivation int64         `json:"max_activation_seconds,omitempty"`
	ActiveUntil   time.Time     `json:"active_until,omitzero"`
	GrantedBy     directory.Ref `json:"granted_by"`
	Justification string        `json:"justification,omitempty"`
	// Source is where the assignment came from: "rule:NAME" for a birthright rule's, empty for
	// one granted by hand. Lifecycle removes exactly what its rules gave.
	Source  string    `json:"source,omitempty"`
	Created time.Time `json:"created,omitzero"`
	Version int64     `json:"version,omitempty"`
}

// Valid reports whether the assignment's validity window holds at now.
func (a *Assignment) Valid(now time.Time) bool {
	return (a.From.IsZero() || !now.Before(a.From)) && (a.Until.IsZero() || now.Before(a.Until))
}

// Active reports whether the assignment grants anything at now: valid, and activated when it is
// eligible.
func (a *Assignment) Active(now time.Time) bool {
	return a.Valid(now) && (!a.Eligible || now.Before(a.ActiveUntil))
}

// Ref returns a reference to the assignment for audit records.
func (a *Assignment) Ref() directory.Ref {
	return directory.Ref{Kind: directory.KindAssignment, ID: a.ID, Name: a.Role + " for " + a.Holder.String()}
}

// Fields returns the assignment as an audit record holds it: the whole record, so that the
// record alone can rebuild it.
func (a *Assignment) Fields() map[string]any { return map[string]any{"assignment": *a} }

// Limits on assignments.
const (
	DefaultMaxActivation = 8 * time.Hour
	LongestActivation    = 7 * 24 * time.Hour
)

// HolderInput names the holder of an assignment: exactly one of a user, a group, or a system
// actor by name ("lifecycle" for system:lifecycle, whose assignments bound what HR feeds do).
type HolderInput struct {
	User   string `json:"user,omitempty"`
	Group  string `json:"group,omitempty"`
	System string `json:"system,omitempty"`
}

// SystemActors are the system actors that may hold assignments.
var SystemActors = []string{"lifecycle"}

// AssignmentInput is an assignment as a client writes it.
type AssignmentInput struct {
	Role          string        `json:"role"`
	Holder        HolderInput   `json:"holder"`
	Scope         ScopeInput    `json:"scope"`
	Exclude       *ExcludeInput `json:"exclude,omitempty"`
	From          string        `json:"from,omitempty"`
	Until         string        `json:"until,omitempty"`
	CanRedelegate bool          `json:"can_redelegate,omitempty"`
	Eligible      bool          `json:"eligible,omitempty"`
	MaxActivation string        `json:"max_activation,omitempty"`
	Justification string        `json:"justification,omitempty"`
	// Source, set only by a system actor, records the rule a grant comes from ("rule:NAME").
	Source string `json:"source,omitempty"`
}

// Normalize checks what can be checked without the directory: one holder, a justification, a
// validity window (RFC 3339 times) that ends after it starts, and an activation length only for
// eligible assignments, which only a user may hold (an activation is one person's). It returns
// the activation length and the validity window (zero times where unbounded).
func (in *AssignmentInput) Normalize() (maxActivation time.Duration, from, until time.Time, err error) {
	var fe directory.FieldErrors
	for _, t := range []struct {
		field string
		raw   string
		dst   *time.Time
	}{{"from", in.From, &from}, {"until", in.Until, &until}} {
		if t.raw == "" {
			continue
		}
		v, perr := time.Parse(time.RFC3339, t.raw)
		if perr != nil {
			fe.Add(t.field, "must be an RFC 3339 time such as 2026-12-31T18:00:00Z")
			continue
		}
		*t.dst = v.UTC()
	}
	in.Role = strings.ToLower(strings.TrimSpace(in.Role))
	if in.Role == "" {
		fe.Add("role", "is required")
	}
	in.Holder.User, in.Holder.Group = strings.TrimSpace(in.Holder.User), strings.TrimSpace(in.Holder.Group)
	in.Holder.System = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(in.Holder.System)), "system:")
	given := 0
	for _, h := range []string{in.Holder.User, in.Holder.Group, in.Holder.System} {
		if h != "" {
			given++
		}
	}
	switch {
	case given != 1:
		fe.Add("holder", "give exactly one of user, group or system")
	case in.Holder.System != "" && !slices.Contains(SystemActors, in.Holder.System):
		fe.Add("holder.system", "must be one of %s", strings.Join(SystemActors, ", "))
	case in.Holder.System != "" && in.Role == RoleTier0:
		fe.Add("role", "%s is never granted to a system actor", RoleTier0)
	case in.Holder.System != "" && in.Eligible:
		fe.Add("eligible", "a system actor cannot activate anything: grant it directly")
	}
	in.Source = strings.TrimSpace(in.Source)
	in.Justification = strings.TrimSpace(in.Justification)
	switch {
	case in.Justification == "":
		fe.Add("justification", "is required: say why this right is granted")
	case len(in.Justification) > 2000:
		fe.Add("justification", "is longer than 2000 characters")
	}
	if !from.IsZero() && !until.IsZero() && !until.After(from) {
		fe.Add("until", "must be after from")
	}
	if in.Eligible && in.Holder.Group != "" {
		fe.Add("eligible", "an eligible assignment is held by one user: activating it is that person's act")
	}
	switch {
	case in.MaxActivation != "" && !in.Eligible:
		fe.Add("max_activation", "applies only to eligible assignments")
	case in.Eligible:
		maxActivation = DefaultMaxActivation
		if in.MaxActivation != "" {
			d, perr := time.ParseDuration(in.MaxActivation)
			switch {
			case perr != nil:
				fe.Add("max_activation", "is a duration such as 8h or 30m")
			case d < time.Minute || d > LongestActivation:
				fe.Add("max_activation", "must be between 1m and %s", LongestActivation)
			default:
				maxActivation = d
			}
		}
	}
	return maxActivation, from, until, fe.Err()
}

// ActivationInput asks to activate an eligible assignment.
type ActivationInput struct {
	Duration      string `json:"duration,omitempty"`
	Justification string `json:"justification"`
}
