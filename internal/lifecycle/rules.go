package lifecycle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/filter"
)

// Rule gives the people its filter matches a place and their birthright: the OU they live in,
// the groups they are in and the roles they hold. What a rule gave is taken back when it stops
// matching.
type Rule struct {
	Name string `json:"name"`
	// When is a SCIM filter on the HR attributes (PersonSchema); empty matches everyone.
	When        string           `json:"when,omitempty"`
	OU          string           `json:"ou,omitempty"`
	Groups      []string         `json:"groups,omitempty"`
	Assignments []RuleAssignment `json:"assignments,omitempty"`

	expr filter.Expr
}

// RuleAssignment is a role a rule grants, over a scope as an assignment writes it (most often
// a relation: a manager over their direct_reports).
type RuleAssignment struct {
	Role  string                `json:"role"`
	Scope delegation.ScopeInput `json:"scope"`
}

// Key identifies a granted role and scope, so that the same grant is recognised run after run.
func (a RuleAssignment) Key() string {
	b, _ := json.Marshal(a.Scope)
	return a.Role + " " + string(b)
}

// RuleSet is the whole birthright configuration: the rules in order (the first rule that names
// an OU places a person), the OU for people no rule places, and what happens to access granted
// by hand or request when someone moves.
type RuleSet struct {
	Rules     []Rule `json:"rules"`
	DefaultOU string `json:"default_ou,omitempty"`
	// MoverManualAccess is "keep" (the default: kept, and the new manager is told to review
	// it) or "remove".
	MoverManualAccess string `json:"mover_manual_access,omitempty"`
	// LeadDays is how many days before their start date a joiner's account is created
	// (default 7; 0: on the day).
	LeadDays *int `json:"lead_days,omitempty"`
	// RetentionDays is how long a leaver's disabled account is kept before it is deleted
	// (default 30; 0: at the next run).
	RetentionDays *int `json:"retention_days,omitempty"`
	// Steward, a username, receives what leavers own (groups, service accounts) instead of
	// their manager.
	Steward string `json:"steward,omitempty"`
}

// Defaults of a rule set.
const (
	DefaultRetentionDays = 30
	DefaultLeadDays      = 7
)

// Lead is LeadDays or its default.
func (rs *RuleSet) Lead() int {
	if rs.LeadDays == nil {
		return DefaultLeadDays
	}
	return *rs.LeadDays
}

// Retention is RetentionDays or its default.
func (rs *RuleSet) Retention() int {
	if rs.RetentionDays == nil {
		return DefaultRetentionDays
	}
	return *rs.RetentionDays
}

// PersonSchema is what a rule's filter may test: the HR attributes of a person.
var PersonSchema = filter.Schema{
	"employee_id": filter.String, "given_name": filter.String, "family_name": filter.String, "email": filter.String,
	"department": filter.String, "title": filter.String, "manager_id": filter.String, "location": filter.String,
	"employment_type": filter.String, "status": filter.String, "cost_center": filter.String,
	"start_date": filter.String, "end_date": filter.String,
}

// ParseRules reads a rule set from YAML or JSON. Unknown fields are errors.
func ParseRules(b []byte) (RuleSet, error) {
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return RuleSet{}, fmt.Errorf("lifecycle rules: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	var rs RuleSet
	if err := dec.Decode(&rs); err != nil {
		return RuleSet{}, fmt.Errorf("lifecycle rules: %w", err)
	}
	return rs, rs.Compile()
}

// Compile checks the rule set and fills its defaults: unique names, filters that parse on
// PersonSchema, non-empty groups and roles.
func (rs *RuleSet) Compile() error {
	if rs.DefaultOU == "" {
		rs.DefaultOU = "/"
	}
	switch rs.MoverManualAccess {
	case "":
		rs.MoverManualAccess = "keep"
	case "keep", "remove":
	default:
		return fmt.Errorf("lifecycle rules: mover_manual_access must be keep or remove")
	}
	if rs.LeadDays == nil {
		d := DefaultLeadDays
		rs.LeadDays = &d
	}
	if rs.RetentionDays == nil {
		d := DefaultRetentionDays
		rs.RetentionDays = &d
	}
	if r := rs.Retention(); r < 0 || r > 3650 {
		return fmt.Errorf("lifecycle rules: retention_days must be 0..3650")
	}
	if l := rs.Lead(); l < 0 || l > 365 {
		return fmt.Errorf("lifecycle rules: lead_days must be 0..365")
	}
	seen := map[string]bool{}
	for i := range rs.Rules {
		r := &rs.Rules[i]
		r.Name = strings.TrimSpace(r.Name)
		if r.Name == "" || len(r.Name) > 100 || strings.ContainsAny(r.Name, ":\n") {
			return fmt.Errorf("lifecycle rules: rule %d: a name is required (at most 100 characters, no colon)", i+1)
		}
		if seen[r.Name] {
			return fmt.Errorf("lifecycle rules: rule %q: the name is used twice", r.Name)
		}
		seen[r.Name] = true
		e, err := filter.Parse(r.When, PersonSchema)
		if err != nil {
			return fmt.Errorf("lifecycle rules: rule %q: when: %w", r.Name, err)
		}
		r.expr = e
		for _, g := range r.Groups {
			if strings.TrimSpace(g) == "" {
				return fmt.Errorf("lifecycle rules: rule %q: an empty group name", r.Name)
			}
		}
		for _, a := range r.Assignments {
			if a.Role == "" {
				return fmt.Errorf("lifecycle rules: rule %q: an assignment without a role", r.Name)
			}
			if a.Role == delegation.RoleTier0 {
				return fmt.Errorf("lifecycle rules: rule %q: %s is never a birthright", r.Name, delegation.RoleTier0)
			}
		}
	}
	return nil
}

// Matches reports whether the rule applies to p.
func (r *Rule) Matches(p *Person) bool { return filter.Match(r.expr, p.get) }

// get is the filter.Getter of a person's HR attributes.
func (p *Person) get(attr string) (any, bool) {
	switch attr {
	case "employee_id":
		return p.EmployeeID, true
	case "given_name":
		return p.GivenName, true
	case "family_name":
		return p.FamilyName, true
	case "email":
		return p.Email, p.Email != ""
	case "department":
		return p.Department, p.Department != ""
	case "title":
		return p.Title, p.Title != ""
	case "manager_id":
		return p.ManagerID, p.ManagerID != ""
	case "location":
		return p.Location, p.Location != ""
	case "employment_type":
		return p.EmploymentType, p.EmploymentType != ""
	case "status":
		return p.Status, p.Status != ""
	case "cost_center":
		return p.CostCenter, p.CostCenter != ""
	case "start_date":
		return isoDay(p.StartDate), !p.StartDate.IsZero()
	case "end_date":
		return isoDay(p.EndDate), !p.EndDate.IsZero()
	}
	return nil, false
}

// Birthright is what the rules give one person, each grant with the rule it comes from.
type Birthright struct {
	OU, OURule  string
	Groups      map[string]string // group name (as the rule writes it) -> rule
	Assignments map[string]Grant  // RuleAssignment.Key -> grant
}

// Grant is a birthright role and scope with its rule.
type Grant struct {
	RuleAssignment
	Rule string
}

// Birthright computes what the rules give p.
func (rs *RuleSet) Birthright(p *Person) Birthright {
	b := Birthright{OU: rs.DefaultOU, Groups: map[string]string{}, Assignments: map[string]Grant{}}
	placed := false
	for i := range rs.Rules {
		r := &rs.Rules[i]
		if !r.Matches(p) {
			continue
		}
		if r.OU != "" && !placed {
			b.OU, b.OURule, placed = r.OU, r.Name, true
		}
		for _, g := range r.Groups {
			if _, ok := b.Groups[strings.ToLower(g)]; !ok {
				b.Groups[strings.ToLower(g)] = r.Name
			}
		}
		for _, a := range r.Assignments {
			if _, ok := b.Assignments[a.Key()]; !ok {
				b.Assignments[a.Key()] = Grant{RuleAssignment: a, Rule: r.Name}
			}
		}
	}
	return b
}

// RuleSource is how an assignment records the rule that granted it.
func RuleSource(rule string) string { return "rule:" + rule }

// Names lists the rules' names, in order.
func (rs *RuleSet) Names() []string {
	out := make([]string, 0, len(rs.Rules))
	for _, r := range rs.Rules {
		out = append(out, r.Name)
	}
	return slices.Clip(out)
}

// isoDay writes a date as an ISO 8601 day ("" for none).
func isoDay(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.DateOnly)
}
