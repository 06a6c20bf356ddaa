// Package directory holds Deputy's identity objects (OUs, users, groups and service accounts),
// their invariants and the read interface the transports use. It does no I/O of its own.
package directory

import (
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// Kind names a type of directory object.
type Kind string

// The kinds of directory object.
const (
	KindOU             Kind = "ou"
	KindUser           Kind = "user"
	KindGroup          Kind = "group"
	KindServiceAccount Kind = "service_account"
	KindToken          Kind = "token"
	KindRole           Kind = "role"
	KindAssignment     Kind = "assignment"
	KindRequest        Kind = "request"         // an approval request
	KindPolicy         Kind = "approval_policy" // an approval policy
	KindSystem         Kind = "system"          // a system actor, as the holder of an assignment
	KindConfig         Kind = "configuration"   // a configuration document (the lifecycle rules)
)

// Noun is the kind in words, for messages.
func (k Kind) Noun() string {
	switch k {
	case KindOU:
		return "OU"
	case KindServiceAccount:
		return "service account"
	case KindToken:
		return "API token"
	case KindRequest:
		return "approval request"
	case KindPolicy:
		return "approval policy"
	}
	return string(k)
}

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindOU, KindUser, KindGroup, KindServiceAccount, KindToken, KindRole, KindAssignment, KindRequest, KindPolicy:
		return true
	}
	return false
}

// Ref points at an object by ID or by name (a username, group or service-account name, or an OU
// path such as "corp/sales"). Exactly one of ID and Name is set on input; a resolved Ref holds both.
type Ref struct {
	Kind Kind   `json:"type"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// String renders the ref for messages: its name when known, else its ID.
func (r Ref) String() string {
	if r.Name != "" {
		return r.Name
	}
	return r.ID
}

// Key is what the ref was looked up by.
func (r Ref) Key() string {
	if r.ID != "" {
		return r.ID
	}
	return r.Name
}

// ParseRef interprets key as an ID when it has the shape of one, otherwise as a name.
// Names can never have the shape of an ID (validation refuses it), so this is unambiguous.
func ParseRef(kind Kind, key string) Ref {
	if IsID(key) {
		return Ref{Kind: kind, ID: strings.ToLower(key)}
	}
	if kind == KindOU {
		// Paths are written with or without surrounding slashes; the root is "/".
		if key = strings.Trim(key, "/"); key == "" {
			key = RootPath
		}
	}
	return Ref{Kind: kind, Name: key}
}

// memberPrefixes are the type prefixes a member reference may carry ("group:admins").
var memberPrefixes = map[string]Kind{
	"user:": KindUser, "group:": KindGroup, "sa:": KindServiceAccount, "service_account:": KindServiceAccount,
}

// ParseMemberRef parses a group member reference: an ID, a name, or a name with a type prefix
// ("user:ada", "group:sales-all", "sa:ci-bot"). Without a prefix the kind is left empty and the
// store resolves it across users, groups and service accounts, refusing an ambiguous name.
func ParseMemberRef(s string) (Ref, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Ref{}, Invalid("member", "is required")
	}
	for prefix, kind := range memberPrefixes {
		if strings.HasPrefix(strings.ToLower(s), prefix) {
			rest := s[len(prefix):]
			if rest == "" {
				return Ref{}, Invalid("member", "names no object after %q", prefix)
			}
			return ParseRef(kind, rest), nil
		}
	}
	return ParseRef("", s), nil
}

// NewID returns a new immutable object ID: a UUIDv7, so IDs sort by creation time and keep
// index inserts local.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only when the system's randomness source does; nothing can continue then.
		panic(fmt.Sprintf("directory: generate id: %v", err))
	}
	return id.String()
}

// IsID reports whether s has the shape of an object ID (a UUID in canonical form).
func IsID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}
