package directory

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors of the directory. Callers test them with errors.Is; transports map them to
// status codes in one place (internal/httpx).
var (
	// ErrNotFound means the referenced object does not exist (or is not visible to the caller).
	ErrNotFound = errors.New("not found")
	// ErrConflict means the change contradicts the current state: a duplicate unique value,
	// a non-empty OU, a membership cycle, a reference still in use.
	ErrConflict = errors.New("conflict")
	// ErrStale means an If-Match version no longer matches the object's version.
	ErrStale = errors.New("version mismatch")
	// ErrInvalid means the input is malformed; the error is, or wraps, a FieldErrors.
	ErrInvalid = errors.New("invalid input")
)

// FieldError names one invalid field and why.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// FieldErrors is a list of field-level validation failures. It matches ErrInvalid with errors.Is.
type FieldErrors []FieldError

// Error joins the field messages into one line.
func (fe FieldErrors) Error() string {
	parts := make([]string, len(fe))
	for i, e := range fe {
		parts[i] = e.Field + ": " + e.Message
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Is makes errors.Is(fe, ErrInvalid) true.
func (fe FieldErrors) Is(target error) bool { return target == ErrInvalid }

// Add appends a failure for field.
func (fe *FieldErrors) Add(field, format string, args ...any) {
	*fe = append(*fe, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err returns fe as an error, or nil when it is empty.
func (fe FieldErrors) Err() error {
	if len(fe) == 0 {
		return nil
	}
	return fe
}

// Invalid returns a FieldErrors holding one failure.
func Invalid(field, format string, args ...any) error {
	var fe FieldErrors
	fe.Add(field, format, args...)
	return fe
}

// ConflictError explains a conflict; it matches ErrConflict (or ErrStale) with errors.Is.
type ConflictError struct {
	Field   string // the field whose value collides, when there is one
	Message string
	Stale   bool // true for a version mismatch
}

func (e *ConflictError) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Is makes errors.Is match ErrConflict, and ErrStale for a version mismatch.
func (e *ConflictError) Is(target error) bool {
	return target == ErrConflict || (e.Stale && target == ErrStale)
}

// Conflict returns a ConflictError about field.
func Conflict(field, format string, args ...any) error {
	return &ConflictError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// StaleVersion is the error for an If-Match that no longer holds.
func StaleVersion(want, have int64) error {
	return &ConflictError{Field: "version", Stale: true,
		Message: fmt.Sprintf("the object changed: expected version %d, it is at version %d", want, have)}
}

// NotFound returns an error matching ErrNotFound that names what was looked for.
func NotFound(kind Kind, key string) error {
	return fmt.Errorf("%s %q: %w", kind.Noun(), key, ErrNotFound)
}

// IsFieldError reports whether err is a field error naming field.
func IsFieldError(err error, field string) bool {
	var fe FieldErrors
	if !errors.As(err, &fe) {
		return false
	}
	for _, f := range fe {
		if f.Field == field {
			return true
		}
	}
	return false
}
