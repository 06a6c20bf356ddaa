package api

import (
	"time"

	"github.com/deputy-iam/deputy/internal/directory"
)

// The JSON representations of the API (api/openapi.yaml is their contract). Field names are
// snake_case; references are written as names (username, OU path) with the ID beside them.

type ouView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Path      string    `json:"path"`
	Parent    *string   `json:"parent"`
	ParentID  *string   `json:"parent_id"`
	Protected bool      `json:"protected"`
	Version   int64     `json:"version"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
}

func viewOU(o directory.OU) ouView {
	v := ouView{ID: o.ID, Name: o.Name, Path: o.DisplayPath(), Protected: o.Protected, Version: o.Version,
		Created: o.Created, Updated: o.Updated}
	if o.ParentID != "" {
		p, id := o.ParentPath(), o.ParentID
		v.Parent, v.ParentID = &p, &id
	}
	return v
}

type groupRefView struct {
	ID   string   `json:"id"`
	Name string   `json:"name"`
	Via  []string `json:"via,omitempty"`
}

type userView struct {
	ID             string            `json:"id"`
	Username       string            `json:"username"`
	GivenName      string            `json:"given_name"`
	FamilyName     string            `json:"family_name"`
	DisplayName    string            `json:"display_name"`
	Email          string            `json:"email"`
	Phone          string            `json:"phone"`
	EmployeeID     string            `json:"employee_id"`
	Department     string            `json:"department"`
	Title          string            `json:"title"`
	Manager        *string           `json:"manager"`
	ManagerID      *string           `json:"manager_id"`
	Location       string            `json:"location"`
	EmploymentType string            `json:"employment_type"`
	Status         directory.Status  `json:"status"`
	OU             string            `json:"ou"`
	OUID           string            `json:"ou_id"`
	Attributes     map[string]string `json:"attributes"`
	Protected      bool              `json:"protected"`
	Version        int64             `json:"version"`
	Created        time.Time         `json:"created"`
	Updated        time.Time         `json:"updated"`
	LastSignIn     *time.Time        `json:"last_sign_in"`
	Groups         []groupRefView    `json:"groups,omitempty"`
}

// viewUser renders a user; memberships are included on single reads only (nil in lists).
func viewUser(u directory.User, memberships []directory.Membership) userView {
	v := userView{ID: u.ID, Username: u.Username, GivenName: u.GivenName, FamilyName: u.FamilyName,
		DisplayName: u.DisplayName, Email: u.Email, Phone: u.Phone, EmployeeID: u.EmployeeID,
		Department: u.Department, Title: u.Title, Location: u.Location, EmploymentType: u.EmploymentType,
		Status: u.Status, OU: u.OUPath, OUID: u.OUID, Attributes: u.Attributes, Protected: u.Protected,
		Version: u.Version, Created: u.Created, Updated: u.Updated}
	if v.Attributes == nil {
		v.Attributes = map[string]string{}
	}
	if u.ManagerID != "" {
		m, id := u.ManagerName, u.ManagerID
		v.Manager, v.ManagerID = &m, &id
	}
	if !u.LastSignIn.IsZero() {
		t := u.LastSignIn
		v.LastSignIn = &t
	}
	if memberships != nil {
		v.Groups = viewMemberships(memberships)
	}
	return v
}

func viewMemberships(ms []directory.Membership) []groupRefView {
	out := make([]groupRefView, len(ms))
	for i, m := range ms {
		out[i] = groupRefView{ID: m.Group.ID, Name: m.Group.Name}
		for _, via := range m.Via {
			out[i].Via = append(out[i].Via, via.Name)
		}
	}
	return out
}

type groupView struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	Description string         `json:"description"`
	OU          string         `json:"ou"`
	OUID        string         `json:"ou_id"`
	Owners      []string       `json:"owners"`
	Protected   bool           `json:"protected"`
	Version     int64          `json:"version"`
	Created     time.Time      `json:"created"`
	Updated     time.Time      `json:"updated"`
	MemberOf    []groupRefView `json:"member_of,omitempty"`
}

func viewGroup(g directory.Group) groupView {
	return groupView{ID: g.ID, Name: g.Name, Description: g.Description, OU: g.OUPath, OUID: g.OUID,
		Owners: names(g.Owners), Protected: g.Protected, Version: g.Version, Created: g.Created, Updated: g.Updated}
}

type serviceAccountView struct {
	ID          string           `json:"id"`
	Name        string           `json:"name"`
	Description string           `json:"description"`
	OU          string           `json:"ou"`
	OUID        string           `json:"ou_id"`
	Owners      []string         `json:"owners"`
	Status      directory.Status `json:"status"`
	Protected   bool             `json:"protected"`
	Orphaned    bool             `json:"orphaned"`
	Version     int64            `json:"version"`
	Created     time.Time        `json:"created"`
	Updated     time.Time        `json:"updated"`
}

func viewServiceAccount(s directory.ServiceAccount) serviceAccountView {
	return serviceAccountView{ID: s.ID, Name: s.Name, Description: s.Description, OU: s.OUPath, OUID: s.OUID,
		Owners: names(s.Owners), Status: s.Status, Protected: s.Protected, Orphaned: s.Orphaned, Version: s.Version,
		Created: s.Created, Updated: s.Updated}
}

type memberView struct {
	Type     directory.Kind `json:"type"`
	ID       string         `json:"id"`
	Name     string         `json:"name"`
	Source   string         `json:"source"`
	SourceID string         `json:"source_id,omitempty"`
	AddedBy  string         `json:"added_by"`
	AddedAt  time.Time      `json:"added_at"`
}

func viewMember(m directory.Member) memberView {
	return memberView{Type: m.Ref.Kind, ID: m.Ref.ID, Name: m.Ref.Name, Source: m.Provenance.Source,
		SourceID: m.Provenance.SourceID, AddedBy: m.Provenance.By.Name, AddedAt: m.Provenance.At}
}

func names(refs []directory.Ref) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Name
	}
	return out
}

// listView is a page of a list.
type listView[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func viewPage[S, T any](p directory.Page[S], view func(S) T) listView[T] {
	out := listView[T]{Items: make([]T, len(p.Items)), NextCursor: p.Next}
	for i, item := range p.Items {
		out.Items[i] = view(item)
	}
	return out
}
