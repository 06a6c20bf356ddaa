package credential

import (
	"time"

	"github.com/deputy-iam/deputy/internal/directory"
)

// OwnerServiceAccount is the owner kind of a service account's API keys (Token.OwnerKind).
const OwnerServiceAccount = string(directory.KindServiceAccount)

// AccountKey is a service account's API key as a report lists it: the stored token, whose Hash
// is left empty (a report has no use for it), and the account it belongs to.
type AccountKey struct {
	Token
	Account directory.Ref
}

// KeyQuery selects the active API keys of service accounts (not revoked, not expired at Now)
// for a report. Every condition that is set must hold; with none set, every active key is
// selected.
type KeyQuery struct {
	// Now is the time at which keys must be active; required.
	Now time.Time
	// ExpiringBefore, when set, selects keys with an expiry at or before it.
	ExpiringBefore time.Time
	// UnusedSince, when set, selects keys last used before it, or never used and created
	// before it.
	UnusedSince time.Time
	// CreatedBefore, when set, selects keys created before it: keys that have not been
	// rotated since.
	CreatedBefore time.Time
}
