package lifecycle

import "time"

// Residual is a departed (disabled, or marked as left) identity that still holds something: what
// the leaver report lists, and what must be empty after every run.
type Residual struct {
	UserID     string   `json:"user_id"`
	Username   string   `json:"username"`
	EmployeeID string   `json:"employee_id,omitempty"`
	Status     string   `json:"status"`
	Holds      []string `json:"holds"`
}

// Run states.
const (
	RunPlanned  = "planned"  // a dry run, or a run stopped before applying (bad rows, mass change)
	RunApplying = "applying" // ops are being applied (a run that stays here was interrupted)
	RunDone     = "done"     // every person was applied or failed on their own
)

// Run is one import of an HR feed: what it read, what it planned and what became of it.
type Run struct {
	ID       string         `json:"id"`
	Source   string         `json:"source"`       // a file name, or "api"
	By       string         `json:"by,omitempty"` // who asked for it (none for the schedule)
	SHA256   string         `json:"sha256,omitempty"`
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished,omitzero"`
	State    string         `json:"state"`
	DryRun   bool           `json:"dry_run,omitempty"`
	Rows     int            `json:"rows"`
	Invalid  int            `json:"invalid"`
	Totals   map[string]int `json:"totals,omitempty"`
	Ops      int            `json:"ops"`
	Applied  int            `json:"applied"` // people whose ops applied
	Failed   []Failure      `json:"failed,omitempty"`
	// Stopped says why a run applied nothing (for a dry run: why applying it would stop).
	Stopped string `json:"stopped,omitempty"`
}

// Failure is a person whose ops did not apply, and why.
type Failure struct {
	EmployeeID string `json:"employee_id"`
	Username   string `json:"username,omitempty"`
	Reason     string `json:"reason"`
	Message    string `json:"message"`
	Event      int64  `json:"event,omitempty"`
}
