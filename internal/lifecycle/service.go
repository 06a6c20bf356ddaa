package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// ServiceStore is what the lifecycle service reads and records.
type ServiceStore interface {
	Store
	Runs(ctx context.Context, limit int) ([]Run, error)
	ResidualAccess(ctx context.Context, now time.Time) ([]Residual, error)
	SettingValue(ctx context.Context, key string) (string, bool, error)
}

// ConfigWriter stores the rule set as an audited configuration document (the pipeline).
type ConfigWriter interface {
	ReplaceDocument(ctx context.Context, actor delegation.Actor, meta change.Meta, key, action string, doc json.RawMessage) error
}

// RulesKey is where the rule set is stored; ActionRulesReplace the audit action of a change.
const (
	RulesKey           = "lifecycle_rules"
	ActionRulesReplace = "lifecycle.rules.replace"
)

// Service is the HR lifecycle: rules, imports, recomputation and the scheduled sweep.
type Service struct {
	Store   ServiceStore
	Applier Applier
	Config  ConfigWriter
	// Location is the HR time zone: "today" is the date there (default UTC).
	Location *time.Location
	Now      func() time.Time
	// Portal is the portal's external address (--base-url), for joiners' activation links.
	Portal string
}

// Today is the current day in the HR time zone, as UTC midnight of that date.
func (s *Service) Today() time.Time {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	loc := s.Location
	if loc == nil {
		loc = time.UTC
	}
	y, m, d := now().In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Rules returns the rule set in force (an empty one until rules are set).
func (s *Service) Rules(ctx context.Context) (*RuleSet, error) {
	doc, ok, err := s.Store.SettingValue(ctx, RulesKey)
	if err != nil {
		return nil, err
	}
	rs := RuleSet{}
	if ok {
		if rs, err = ParseRules([]byte(doc)); err != nil {
			return nil, fmt.Errorf("stored %w", err)
		}
		return &rs, nil
	}
	return &rs, rs.Compile()
}

// SetRules checks and stores a rule set for actor (a tier-0 admin, or system:deputy loading a
// rules file at start); the change is an audit event, and applies to everyone at the next run
// or recompute.
func (s *Service) SetRules(ctx context.Context, actor delegation.Actor, meta change.Meta, rs RuleSet) error {
	if err := rs.Compile(); err != nil {
		return directory.Invalid("rules", "%v", err)
	}
	doc, err := json.Marshal(rs)
	if err != nil {
		return err
	}
	return s.Config.ReplaceDocument(ctx, actor, meta, RulesKey, ActionRulesReplace, doc)
}

// ErrNoRules is returned by Import and Recompute before any rules are set: without them every
// person would be placed in the default OU.
var ErrNoRules = errors.New("lifecycle: no rules are set: set them first (deputy hr rules set FILE, or deputy serve --rules FILE)")

// rulesForRun returns the stored rules, or ErrNoRules.
func (s *Service) rulesForRun(ctx context.Context) (*RuleSet, error) {
	if _, ok, err := s.Store.SettingValue(ctx, RulesKey); err != nil || !ok {
		if err == nil {
			err = ErrNoRules
		}
		return nil, err
	}
	return s.Rules(ctx)
}

// Import applies a feed with the rules in force (see the package function Import).
func (s *Service) Import(ctx context.Context, feed Feed, opt ImportOptions) (*Run, *Plan, error) {
	rs, err := s.rulesForRun(ctx)
	if err != nil {
		return nil, nil, err
	}
	if opt.Today.IsZero() {
		opt.Today = s.Today()
	}
	if opt.Portal == "" {
		opt.Portal = s.Portal
	}
	return Import(ctx, s.Store, s.Applier, rs, feed, opt)
}

// Recompute plans and applies the rules against the directory as it is, without a feed: each
// person with an employee ID is taken as their account describes them. It carries out rule
// changes for everyone, leavers whose end date has passed, and deletions after retention; it is
// also the scheduled sweep, so that this work catches up after any downtime. Accounts disabled
// by hand (not by a leaver run) are left alone.
func (s *Service) Recompute(ctx context.Context, opt ImportOptions) (*Run, *Plan, error) {
	rs, err := s.rulesForRun(ctx)
	if err != nil {
		return nil, nil, err
	}
	cur, err := s.Store.LifecycleCurrent(ctx)
	if err != nil {
		return nil, nil, err
	}
	if opt.Today.IsZero() {
		opt.Today = s.Today()
	}
	if opt.Source == "" {
		opt.Source = "recompute"
	}
	return Import(ctx, s.Store, s.Applier, rs, Feed{People: PeopleOf(cur)}, opt)
}

// PeopleOf describes the accounts as a feed would: the HR fields they carry, their manager's
// employee ID, and "terminated" for a leaver already disabled by a run. Accounts disabled any
// other way are not included.
func PeopleOf(cur *Current) []Person {
	byUser := make(map[string]string, len(cur.Accounts))
	for id, a := range cur.Accounts {
		byUser[a.UserID] = id
	}
	out := make([]Person, 0, len(cur.Accounts))
	for id, a := range cur.Accounts {
		p := Person{EmployeeID: id, GivenName: a.GivenName, FamilyName: a.FamilyName, Email: a.Email, Department: a.Department,
			Title: a.Title, ManagerID: byUser[a.Manager], Location: a.Location, EmploymentType: a.EmploymentType,
			CostCenter: a.Attributes[AttrCostCenter], Status: "active", KeepManager: a.Manager != "" && byUser[a.Manager] == ""}
		if st := a.Attributes[AttrStatus]; st != "" {
			p.Status = st
		}
		p.StartDate, _ = time.Parse(time.DateOnly, a.Attributes[AttrStartDate])
		p.EndDate, _ = time.Parse(time.DateOnly, a.Attributes[AttrEndDate])
		if a.Status != directory.StatusActive {
			if a.Attributes[AttrLeftAt] == "" {
				continue // disabled by hand: not lifecycle's to touch
			}
			p.Status = "terminated"
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Person) int { return strings.Compare(a.EmployeeID, b.EmployeeID) })
	return out
}

// Runs lists the latest runs, newest first.
func (s *Service) Runs(ctx context.Context, limit int) ([]Run, error) {
	return s.Store.Runs(ctx, limit)
}

// Residual is the residual-access report.
func (s *Service) Residual(ctx context.Context) ([]Residual, error) {
	return s.Store.ResidualAccess(ctx, time.Now())
}

// SetupStore answers what already exists, for Setup.
type SetupStore interface {
	OU(ctx context.Context, ref directory.Ref) (directory.OU, error)
	ResolveMember(ctx context.Context, ref directory.Ref) (directory.Ref, error)
	Role(ctx context.Context, name string) (delegation.Role, error)
	Assignments(ctx context.Context, role, holder, after string, limit int) ([]delegation.Assignment, error)
}

// Submitter submits one op (the pipeline).
type Submitter interface {
	Submit(ctx context.Context, actor delegation.Actor, meta change.Meta, op change.Op) (change.Result, error)
}

// Setup submits, as actor (a tier-0 admin), what the rules in force need and do not have yet:
// their OUs and groups, the lifecycle role and system:lifecycle's assignments (SetupOps). It
// stops at the first op that does not apply and returns the results so far.
func (s *Service) Setup(ctx context.Context, actor delegation.Actor, meta change.Meta) ([]change.Result, error) {
	rs, err := s.Rules(ctx)
	if err != nil {
		return nil, err
	}
	ss, ok := s.Store.(SetupStore)
	sub, ok2 := s.Applier.(Submitter)
	if !ok || !ok2 {
		return nil, fmt.Errorf("lifecycle: setup needs a store that reads the directory and a pipeline that submits")
	}
	ops := SetupOps(rs, Existing{
		OU: func(p string) bool {
			_, err := ss.OU(ctx, directory.ParseRef(directory.KindOU, p))
			return err == nil
		},
		Group: func(n string) bool {
			_, err := ss.ResolveMember(ctx, directory.ParseRef(directory.KindGroup, n))
			return err == nil
		},
		Role: func(n string) ([]delegation.Action, bool) {
			r, err := ss.Role(ctx, n)
			return r.Actions, err == nil
		},
		Assignment: func(role string) bool {
			as, err := ss.Assignments(ctx, role, Actor.ID, "", 10)
			return err == nil && len(as) > 0
		},
	})
	var out []change.Result
	for _, op := range ops {
		res, err := sub.Submit(ctx, actor, meta, op)
		if err != nil {
			return out, fmt.Errorf("%s %s: %w", op.Action, op.Target, err)
		}
		out = append(out, res)
	}
	return out, nil
}
