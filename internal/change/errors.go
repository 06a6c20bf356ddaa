package change

import "errors"

// ErrDenied is matched by every DeniedError.
var ErrDenied = errors.New("denied")

// DeniedError is returned when the authorizer refuses an op. Reason is the stable code; Event is
// the index of the audit event that records the denial.
type DeniedError struct {
	Reason  string
	Message string
	Event   int64
	cause   error // the approval error behind a refused verdict, if any
}

// Unwrap returns the approval error behind a refused verdict (approval.ErrClosed, ...).
func (e *DeniedError) Unwrap() error { return e.cause }

func (e *DeniedError) Error() string { return "denied (" + e.Reason + "): " + e.Message }

// Is makes errors.Is(err, ErrDenied) hold.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }
