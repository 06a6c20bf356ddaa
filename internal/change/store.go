package change

import (
	"context"
	"errors"
	"time"

	"github.com/deputy-iam/deputy/internal/approval"
	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// Store runs write transactions. InTx commits when fn returns nil and rolls back otherwise; a
// committed transaction survives a crash of the process.
type Store interface {
	InTx(ctx context.Context, fn func(tx Tx) error) error
	// UserCredential and User read outside any transaction (a password is checked before the
	// transaction that changes it).
	UserCredential(ctx context.Context, userID string) (credential.UserCredential, error)
	User(ctx context.Context, ref directory.Ref) (directory.User, error)
	// EventsSince reads committed applied events after an index (the authorizer's catch-up
	// before a read decision).
	delegation.Facts
}

// ErrTxBroken marks a failure of the transaction machinery itself (a savepoint that could not
// be set or undone): the transaction must be rolled back.
var ErrTxBroken = errors.New("change: transaction broken")

// Tx is what the pipeline reads and writes inside one transaction. Reads see the transaction's
// own writes. Unique-value collisions come back as errors matching directory.ErrConflict that
// name the field; a version that does not match comes back as directory.ErrStale.
type Tx interface {
	directory.Reader
	delegation.Facts

	InsertOU(ctx context.Context, ou *directory.OU) error
	// UpdateOU writes ou (name, parent, path, protected) at version ou.Version+1 if the stored
	// version is still ou.Version, and rewrites the paths of its descendants when its path changed.
	UpdateOU(ctx context.Context, ou *directory.OU, oldPath string) error
	DeleteOU(ctx context.Context, id string) error
	// OUContents counts the child OUs, users, groups and service accounts directly in an OU.
	OUContents(ctx context.Context, id string) (int, error)

	InsertUser(ctx context.Context, u *directory.User) error
	// UpdateUser writes u at version u.Version+1 if the stored version is still u.Version.
	UpdateUser(ctx context.Context, u *directory.User) error
	// DeleteUser, DeleteGroup and DeleteServiceAccount remove the object and every link to it
	// (memberships, ownerships, tokens, assignments), moving each group and service account
	// that loses a member or an owner to its next version, updated at now.
	DeleteUser(ctx context.Context, id string, now time.Time) error
	// Relations reads the links to an object that deleting it removes.
	Relations(ctx context.Context, id string) (directory.Relations, error)
	// Reports counts the users whose manager is id.
	Reports(ctx context.Context, id string) (int, error)
	// SoleOwnerOf lists the service accounts whose only owner is the user id.
	SoleOwnerOf(ctx context.Context, id string) ([]directory.Ref, error)

	InsertGroup(ctx context.Context, g *directory.Group) error
	// UpdateGroup writes g, owners included, at version g.Version+1 if the stored version is
	// still g.Version.
	UpdateGroup(ctx context.Context, g *directory.Group) error
	DeleteGroup(ctx context.Context, id string, now time.Time) error
	// Membership returns member's direct membership of the group (with its provenance) and
	// whether there is one.
	Membership(ctx context.Context, groupID string, member directory.Ref) (directory.Member, bool, error)
	// AddMember and RemoveMember change g's direct members (adding an existing member is a
	// conflict on "member") and move g to version g.Version+1
	// (with the same check as UpdateGroup), updated at now.
	AddMember(ctx context.Context, g *directory.Group, m directory.Member, now time.Time) error
	RemoveMember(ctx context.Context, g *directory.Group, member directory.Ref, now time.Time) error
	// Contains reports whether group outer contains group inner, directly or through nesting.
	Contains(ctx context.Context, outerID, innerID string) (bool, error)

	InsertServiceAccount(ctx context.Context, s *directory.ServiceAccount) error
	UpdateServiceAccount(ctx context.Context, s *directory.ServiceAccount) error
	DeleteServiceAccount(ctx context.Context, id string, now time.Time) error

	InsertToken(ctx context.Context, t *credential.Token) error
	// UserCredential reads a user's credential state (empty when none); SaveUserCredential
	// writes it.
	UserCredential(ctx context.Context, userID string) (credential.UserCredential, error)
	SaveUserCredential(ctx context.Context, uc *credential.UserCredential) error
	// DeleteSessions ends every session of a user.
	DeleteSessions(ctx context.Context, userID string) error
	// Verification reads the pending identity verification actorID asked for userID
	// (directory.ErrNotFound when none); DeleteVerification removes it.
	Verification(ctx context.Context, userID, actorID string) (credential.Verification, error)
	DeleteVerification(ctx context.Context, userID, actorID string) error
	// CountVerificationTry adds one wrong code to a verification's tries.
	CountVerificationTry(ctx context.Context, userID, actorID string) error
	// InsertVerification stores the first verification of a new user in the transaction.
	InsertVerification(ctx context.Context, v *credential.Verification) error
	// CountTokens counts the API tokens of the user id; DeleteTokens removes them all.
	CountTokens(ctx context.Context, userID string) (int, error)
	DeleteTokens(ctx context.Context, userID string) error
	// Token returns the stored token with key id, or an error wrapping directory.ErrNotFound.
	Token(ctx context.Context, id string) (credential.Token, error)
	// SetTokenExpiry moves a token's expiry; RevokeToken marks it revoked at a time. Both are
	// not-found errors when there is no such token.
	SetTokenExpiry(ctx context.Context, id string, expires time.Time) error
	RevokeToken(ctx context.Context, id string, at time.Time) error
	// LastActiveOwnerOf lists the service accounts the user id owns that have no other active
	// owner.
	LastActiveOwnerOf(ctx context.Context, id string) ([]directory.Ref, error)

	// Tier0Holders counts the active users who hold the tier-0 admin role.
	Tier0Holders(ctx context.Context) (int, error)
	// IsTier0 reports whether the user holds the tier-0 admin role.
	IsTier0(ctx context.Context, userID string) (bool, error)
	// Role returns the custom role called name (built-in roles are not stored), or an error
	// wrapping directory.ErrNotFound.
	Role(ctx context.Context, name string) (delegation.Role, error)
	InsertRole(ctx context.Context, r *delegation.Role) error
	// UpdateRole writes r at version r.Version+1 if the stored version is still r.Version.
	UpdateRole(ctx context.Context, r *delegation.Role) error
	DeleteRole(ctx context.Context, name string) error
	// RoleAssignments counts the assignments of a role.
	RoleAssignments(ctx context.Context, name string) (int, error)

	// Assignment returns the assignment with id, or an error wrapping directory.ErrNotFound.
	Assignment(ctx context.Context, id string) (delegation.Assignment, error)
	InsertAssignment(ctx context.Context, a *delegation.Assignment) error
	// ActivateAssignment writes a's activation end at version a.Version+1 if the stored
	// version is still a.Version.
	ActivateAssignment(ctx context.Context, a *delegation.Assignment) error
	DeleteAssignment(ctx context.Context, id string) error

	// AppendEvent gives e the next index of the audit log, stores its canonical encoding and
	// returns the index. Indexes are dense and follow commit order.
	AppendEvent(ctx context.Context, e *audit.Event) (int64, error)
	// Savepoint runs fn so that, when fn returns an error, the writes fn made are undone and the
	// transaction stays usable. It returns fn's error unchanged; when the savepoint itself
	// fails, it returns an error matching ErrTxBroken, and the transaction must be abandoned.
	Savepoint(ctx context.Context, fn func() error) error

	// Request returns the approval request with id, or an error wrapping directory.ErrNotFound.
	Request(ctx context.Context, id string) (approval.Request, error)
	InsertRequest(ctx context.Context, r *approval.Request) error
	// UpdateRequest writes r at version r.Version+1 if the stored version is still r.Version
	// (directory.ErrStale otherwise), advancing r.Version.
	UpdateRequest(ctx context.Context, r *approval.Request) error
	// DueRequests lists up to limit open requests due at or before now.
	DueRequests(ctx context.Context, now time.Time, limit int) ([]approval.Request, error)
	Policies(ctx context.Context) ([]approval.Policy, error)
	InsertPolicy(ctx context.Context, p *approval.Policy) error
	// UpdatePolicy writes p at version p.Version+1 if the stored version is still p.Version.
	UpdatePolicy(ctx context.Context, p *approval.Policy) error
	DeletePolicy(ctx context.Context, id string) error
	// Setting and SetSetting read and write one-off facts about the installation.
	Setting(ctx context.Context, key string) (string, bool, error)
	SetSetting(ctx context.Context, key, value string) error

	// Enqueue adds a message to the outbox for the connectors.
	Enqueue(ctx context.Context, topic string, eventIndex int64, payload []byte) error
}

// OutboxMessage is one message of the outbox, as its consumers (connectors, the notifier) read
// it. Payload is the JSON the pipeline enqueued with it (an outboxMessage for the directory
// topic, a Notification for the notify topic).
type OutboxMessage struct {
	ID         int64
	Topic      string
	EventIndex int64 // the audit event of the change
	Payload    []byte
	Created    time.Time
	Attempts   int
	Delivered  time.Time // zero while undelivered
}
