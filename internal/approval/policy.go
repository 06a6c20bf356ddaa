// Package approval holds approval policies (which ops need whose approval), the requests that
// park gated ops, and their state machine. It decides nothing about rights: the delegation
// engine says who holds what, and the change pipeline applies an approved op, re-authorized.
package approval

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// ErrInvalid marks a policy that cannot be saved; the message names the field.
var ErrInvalid = directory.ErrInvalid

// Policy says that an op whose action is one of Actions and whose target matches When waits
// for the approvals of its Stages, in order, before it applies, and expires after Expiry.
type Policy struct {
	ID          string              `json:"id,omitempty"`
	Name        string              `json:"name"`
	Description string              `json:"description,omitempty"`
	Actions     []delegation.Action `json:"actions"`
	When        Predicate           `json:"when,omitzero"`
	Stages      []Stage             `json:"stages"`
	Expiry      Duration            `json:"expiry,omitzero"`
	Disabled    bool                `json:"disabled,omitempty"`
	Version     int64               `json:"version,omitempty"`
}

// Predicate selects the targets a policy applies to. Every field that is set must hold.
type Predicate struct {
	// OU is an OU path: the target lies in it or below it.
	OU string `json:"ou,omitempty"`
	// Group is a group's name: the target is that group or one of its members, transitively.
	Group string `json:"group,omitempty"`
	// Filter is a SCIM filter on the target's attributes (before or after the change).
	Filter string `json:"filter,omitempty"`
	// Protected, when set, requires the target to be protected (or not).
	Protected *bool `json:"target.protected,omitempty"`
	// HoldsAssignments, when set, requires the target (for a membership change: the group) to
	// hold a role assignment, directly or through a group it is in (or not).
	HoldsAssignments *bool `json:"target.holds_assignments,omitempty"`
	// Roles, for role.assign, role.revoke and role.activate, requires the assignment's role to
	// be one of these.
	Roles []string `json:"roles,omitempty"`

	// OUID and GroupID are OU and Group resolved when the policy is saved.
	OUID    string `json:"ou_id,omitempty"`
	GroupID string `json:"group_id,omitempty"`
}

// Empty reports whether p matches every target.
func (p Predicate) Empty() bool {
	return p.OU == "" && p.Group == "" && p.Filter == "" && p.Protected == nil && p.HoldsAssignments == nil && len(p.Roles) == 0
}

// Stage is one round of approvals: Required distinct approvers out of those Approvers names.
// When Timeout passes without them, the Escalate approvers may approve too.
type Stage struct {
	Name      string     `json:"name,omitempty"`
	Approvers []Approver `json:"approvers"`
	Required  int        `json:"required,omitempty"`
	Timeout   Duration   `json:"timeout,omitzero"`
	Escalate  []Approver `json:"escalate_to,omitempty"`
}

// Approver kinds.
const (
	// ApproverManager is the manager of the target user (for a membership change: of the member).
	ApproverManager = "target.manager"
	// ApproverOwners are the owners of the target group or service account (for a membership
	// change: of the group).
	ApproverOwners = "group.owners"
	// ApproverRole are the holders of a role whose assignment's scope covers the target.
	ApproverRole = "role"
	// ApproverUser is one named user.
	ApproverUser = "user"
	// ApproverGroup are the members of a named group, transitively.
	ApproverGroup = "group"
	// ApproverAuthorized are those who may perform the op themselves.
	ApproverAuthorized = "authorized"
)

// Approver names who may approve a stage.
type Approver struct {
	Kind  string `json:"kind"`
	Role  string `json:"role,omitempty"`
	User  string `json:"user,omitempty"`
	Group string `json:"group,omitempty"`
	// ID is User or Group resolved when the policy is saved.
	ID string `json:"id,omitempty"`
}

// String names the rule for messages.
func (a Approver) String() string {
	switch a.Kind {
	case ApproverRole:
		return "holders of role " + a.Role
	case ApproverUser:
		return "user " + a.User
	case ApproverGroup:
		return "members of group " + a.Group
	}
	return a.Kind
}

// Policy limits.
const (
	DefaultExpiry = 7 * 24 * time.Hour
	MaxExpiry     = 90 * 24 * time.Hour
	maxStages     = 5
	maxRequired   = 10
)

// Normalize checks p and fills its defaults (one required approval per stage, the default
// expiry). It does not resolve names: the caller does, with a Names.
func (p *Policy) Normalize() error {
	p.Name = strings.TrimSpace(p.Name)
	if p.Name == "" || len(p.Name) > 100 {
		return directory.Invalid("name", "is required (at most 100 characters)")
	}
	if len(p.Actions) == 0 {
		return directory.Invalid("actions", "name at least one action")
	}
	for _, a := range p.Actions {
		if _, ok := a.Kind(); !ok {
			return directory.Invalid("actions", "%q is not an action that changes anything", a)
		}
		if !Gateable(a) {
			return directory.Invalid("actions", "%s cannot wait for approval: the secret it creates is shown once, to whoever submits it", a)
		}
	}
	slices.Sort(p.Actions)
	p.Actions = slices.Compact(p.Actions)
	if len(p.Stages) == 0 || len(p.Stages) > maxStages {
		return directory.Invalid("stages", "name between 1 and %d stages", maxStages)
	}
	for i := range p.Stages {
		s := &p.Stages[i]
		field := fmt.Sprintf("stages[%d]", i)
		if len(s.Approvers) == 0 {
			return directory.Invalid(field+".approvers", "name at least one approver")
		}
		if s.Required == 0 {
			s.Required = 1
		}
		if s.Required < 1 || s.Required > maxRequired {
			return directory.Invalid(field+".required", "must be between 1 and %d", maxRequired)
		}
		if s.Timeout.D < 0 {
			return directory.Invalid(field+".timeout", "must not be negative")
		}
		if len(s.Escalate) > 0 && s.Timeout.D == 0 {
			return directory.Invalid(field+".timeout", "is required when the stage escalates")
		}
		for j, list := range [][]Approver{s.Approvers, s.Escalate} {
			for k := range list {
				name := fmt.Sprintf("%s.approvers[%d]", field, k)
				if j == 1 {
					name = fmt.Sprintf("%s.escalate_to[%d]", field, k)
				}
				if err := list[k].check(name); err != nil {
					return err
				}
			}
		}
	}
	if p.Expiry.D == 0 {
		p.Expiry.D = DefaultExpiry
	}
	if p.Expiry.D < time.Minute || p.Expiry.D > MaxExpiry {
		return directory.Invalid("expiry", "must be between 1m and %s", Duration{MaxExpiry})
	}
	for i := range p.Stages {
		if p.Stages[i].Timeout.D >= p.Expiry.D {
			return directory.Invalid(fmt.Sprintf("stages[%d].timeout", i), "must be shorter than the request's expiry (%s)", p.Expiry)
		}
	}
	if p.When.Filter != "" {
		if err := delegation.CompileScope(&delegation.Scope{Filter: p.When.Filter}); err != nil {
			return directory.Invalid("when.filter", "%v", err)
		}
	}
	return nil
}

func (a *Approver) check(field string) error {
	switch a.Kind {
	case ApproverManager, ApproverOwners, ApproverAuthorized:
	case ApproverRole:
		if a.Role == "" {
			return directory.Invalid(field+".role", "is required for kind role")
		}
	case ApproverUser:
		if a.User == "" {
			return directory.Invalid(field+".user", "is required for kind user")
		}
	case ApproverGroup:
		if a.Group == "" {
			return directory.Invalid(field+".group", "is required for kind group")
		}
	default:
		return directory.Invalid(field+".kind", "must be one of %s, %s, %s, %s, %s, %s", ApproverManager, ApproverOwners,
			ApproverRole, ApproverUser, ApproverGroup, ApproverAuthorized)
	}
	return nil
}

// Gateable reports whether an op of action can be parked: not one that creates a secret shown
// once to its submitter (an approval would apply it where no one sees the secret).
func Gateable(a delegation.Action) bool {
	switch a {
	case delegation.UserIssueToken, delegation.SAIssueKey, delegation.UserResetPassword, delegation.UserChangePassword,
		delegation.UserEnrolMFA:
		return false // their secret (a token, a key, a temporary password) or secret input cannot wait
	case delegation.SARevokeKey, delegation.UserRevokeTokens:
		return false // a revocation must take effect at once: the key or token may have leaked
	}
	return true
}

// GateableActions lists every action a policy may gate.
func GateableActions() []delegation.Action {
	var out []delegation.Action
	for _, a := range delegation.Actions() {
		if Gateable(a) {
			out = append(out, a)
		}
	}
	return out
}

// Matches reports whether the policy gates action.
func (p *Policy) Matches(action delegation.Action) bool {
	return !p.Disabled && slices.Contains(p.Actions, action)
}

// Duration is a time.Duration written as "90m", "72h" or "7d".
type Duration struct{ D time.Duration }

// String writes d in days when it is whole days.
func (d Duration) String() string {
	if d.D > 0 && d.D%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d.D/(24*time.Hour)), 10) + "d"
	}
	return d.D.String()
}

// IsZero reports whether d is unset.
func (d Duration) IsZero() bool { return d.D == 0 }

// MarshalJSON writes d as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads "7d", a Go duration ("72h", "90m").
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`a duration is a string such as "90m", "72h" or "7d"`)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	d.D = v
	return nil
}

// ParseDuration reads "7d" or a Go duration.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("duration %q: days must be a whole number", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf(`duration %q: write it as "90m", "72h" or "7d"`, s)
	}
	return v, nil
}
