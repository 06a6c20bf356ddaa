// Package lifecycle turns an HR feed into joiner, mover and leaver changes: it parses and
// validates the feed, matches people against birthright rules, and plans per person the ops
// that bring the directory to what the feed and the rules say. Every grant it plans carries its
// provenance (the rule), so that a mover or leaver loses exactly what the rules gave.
package lifecycle

import "time"

// Person is one worker as the HR feed describes them.
type Person struct {
	EmployeeID     string    `json:"employee_id"`
	GivenName      string    `json:"given_name"`
	FamilyName     string    `json:"family_name"`
	Email          string    `json:"email,omitempty"`
	Department     string    `json:"department,omitempty"`
	Title          string    `json:"title,omitempty"`
	ManagerID      string    `json:"manager_id,omitempty"` // the manager's employee_id
	Location       string    `json:"location,omitempty"`
	EmploymentType string    `json:"employment_type,omitempty"`
	StartDate      time.Time `json:"start_date,omitzero"` // a day, UTC midnight
	EndDate        time.Time `json:"end_date,omitzero"`   // a day, UTC midnight; zero when none
	Status         string    `json:"status,omitempty"`    // active, terminated (or another HR status)
	CostCenter     string    `json:"cost_center,omitempty"`
	// Line is the feed line the person came from (1 is the header of a CSV), for messages.
	Line int `json:"-"`
	// KeepManager leaves the account's manager as it is: the person was described from the
	// directory (a recompute) and their manager carries no employee ID.
	KeepManager bool `json:"-"`
}

// Problem is one thing wrong with a feed: the line, the person (when known), the field and why.
type Problem struct {
	Line       int    `json:"line"`
	EmployeeID string `json:"employee_id,omitempty"`
	Field      string `json:"field,omitempty"`
	Message    string `json:"message"`
}

// Feed is a parsed feed: the valid people, in feed order, and the problems of the rows that
// are not valid (a row with any problem is not among People).
type Feed struct {
	People   []Person  `json:"people"`
	Problems []Problem `json:"problems,omitempty"`
}
