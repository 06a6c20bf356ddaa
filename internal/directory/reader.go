package directory

import (
	"context"
	"time"

	"github.com/deputy-iam/deputy/internal/filter"
)

// Provenance says why a grant (here: a group membership) exists, so that whatever granted it can
// later remove exactly it. Source is "manual", "rule", "request" or "bootstrap"; SourceID names the
// rule or request when there is one.
type Provenance struct {
	Source   string    `json:"source"`
	SourceID string    `json:"source_id,omitempty"`
	By       Ref       `json:"by"`
	At       time.Time `json:"at"`
}

// Member is one direct member of a group with the provenance of its membership.
type Member struct {
	Ref        Ref
	Provenance Provenance
}

// Membership is one group a user or service account belongs to: directly (Via empty) or
// through nesting, Via naming the chain of groups from the direct one outwards.
type Membership struct {
	Group Ref
	Via   []Ref
}

// Relations are the objects that point at an object: the groups it is a direct member of and,
// for a user, the groups and service accounts it owns. Deleting the object removes these links.
type Relations struct {
	MemberOf            []Ref
	OwnsGroups          []Ref
	OwnsServiceAccounts []Ref
}

// Fields renders the relations for an audit record (only those that exist).
func (r Relations) Fields() map[string]any {
	f := map[string]any{}
	for k, refs := range map[string][]Ref{"member_of": r.MemberOf, "owns_groups": r.OwnsGroups,
		"owns_service_accounts": r.OwnsServiceAccounts} {
		if len(refs) > 0 {
			f[k] = refList(refs)
		}
	}
	return f
}

// ListQuery selects a page of objects. Filter is checked against the kind's schema; Cursor is
// the opaque value a previous page returned; Limit is clamped to [1, MaxLimit].
type ListQuery struct {
	Filter filter.Expr
	Cursor string
	Limit  int
}

// Page size bounds. MaxLimit bounds what a client may ask for; StreamLimit is the largest page
// Deputy reads internally when it streams a whole list.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
	StreamLimit  = 10000
)

// Page is one page of a list. Next is empty on the last page.
type Page[T any] struct {
	Items []T
	Next  string
}

// Reader reads the directory. Lookups by Ref accept an ID or a name and return an error wrapping
// ErrNotFound when nothing matches; they never return a zero object with a nil error.
type Reader interface {
	OU(ctx context.Context, ref Ref) (OU, error)
	ListOUs(ctx context.Context, q ListQuery) (Page[OU], error)
	User(ctx context.Context, ref Ref) (User, error)
	ListUsers(ctx context.Context, q ListQuery) (Page[User], error)
	// EachUserFact calls fn for every user f selects, in no particular order, with only ID,
	// username, status, OU ID, manager ID and protection set: enough to judge scopes that are
	// not attribute filters, for far less than a list in name order costs (the query may use
	// an index on the filter, and nothing is sorted). f may hold only structural nodes
	// (filter.OnlyStructural). An error from fn stops the scan and is returned.
	EachUserFact(ctx context.Context, f filter.Expr, fn func(User) error) error
	// UserMemberships lists the groups an object (user, service account or group) belongs to,
	// directly and through nesting.
	Memberships(ctx context.Context, member Ref) ([]Membership, error)
	Group(ctx context.Context, ref Ref) (Group, error)
	ListGroups(ctx context.Context, q ListQuery) (Page[Group], error)
	Members(ctx context.Context, group Ref, q ListQuery) (Page[Member], error)
	ServiceAccount(ctx context.Context, ref Ref) (ServiceAccount, error)
	ListServiceAccounts(ctx context.Context, q ListQuery) (Page[ServiceAccount], error)
	// ResolveMember finds a group member candidate by a ref whose Kind may be empty (any kind);
	// an ambiguous name is an ErrConflict that tells how to disambiguate.
	ResolveMember(ctx context.Context, ref Ref) (Ref, error)
	// Count counts the objects of kind (OU, user, group, service account) the query's filter
	// selects.
	Count(ctx context.Context, kind Kind, q ListQuery) (int, error)
}

// Filter schemas: the attributes each kind's list can be filtered on.
var (
	OUSchema = filter.Schema{"id": filter.String, "name": filter.String, "path": filter.String,
		"parent": filter.String, "protected": filter.Bool, "created": filter.Time, "updated": filter.Time}
	UserSchema = filter.Schema{
		"id": filter.String, "username": filter.String, "given_name": filter.String,
		"family_name": filter.String, "display_name": filter.String, "email": filter.String,
		"phone": filter.String, "employee_id": filter.String, "department": filter.String,
		"title": filter.String, "manager": filter.String, "location": filter.String,
		"employment_type": filter.String, "status": filter.String, "ou": filter.String,
		"protected": filter.Bool, "created": filter.Time, "updated": filter.Time,
		"last_sign_in": filter.Time, "attributes.": filter.String,
	}
	GroupSchema = filter.Schema{"id": filter.String, "name": filter.String, "description": filter.String,
		"ou": filter.String, "protected": filter.Bool, "created": filter.Time, "updated": filter.Time}
	ServiceAccountSchema = filter.Schema{"id": filter.String, "name": filter.String,
		"description": filter.String, "ou": filter.String, "status": filter.String,
		"protected": filter.Bool, "created": filter.Time, "updated": filter.Time}
	MemberSchema = filter.Schema{"id": filter.String, "name": filter.String, "type": filter.String,
		"source": filter.String}
)

// Get returns the user's value for a filter attribute (see UserSchema); "manager" is the
// manager's username and "ou" the OU path.
func (u *User) Get(attr string) (any, bool) {
	switch attr {
	case "id":
		return u.ID, true
	case "username":
		return u.Username, true
	case "given_name":
		return u.GivenName, true
	case "family_name":
		return u.FamilyName, true
	case "display_name":
		return u.DisplayName, true
	case "email":
		return u.Email, true
	case "phone":
		return u.Phone, true
	case "employee_id":
		return u.EmployeeID, true
	case "department":
		return u.Department, true
	case "title":
		return u.Title, true
	case "manager":
		return u.ManagerName, true
	case "location":
		return u.Location, true
	case "employment_type":
		return u.EmploymentType, true
	case "status":
		return string(u.Status), true
	case "ou":
		return u.OUPath, true
	case "protected":
		return u.Protected, true
	case "created":
		return u.Created, true
	case "updated":
		return u.Updated, true
	case "last_sign_in":
		return u.LastSignIn, true
	}
	if len(attr) > len("attributes.") && attr[:len("attributes.")] == "attributes." {
		v, ok := u.Attributes[attr[len("attributes."):]]
		return v, ok
	}
	return nil, false
}

// DirectMembership is a group an object is a direct member of, and why.
type DirectMembership struct {
	Group      Ref
	Provenance Provenance
}
