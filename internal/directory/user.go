package directory

import (
	"maps"
	"time"
)

// Status is the state of a user or service account.
type Status string

// The statuses a user or service account can be in. Locked is set by failed sign-ins, never
// by an update.
const (
	StatusActive   Status = "active"
	StatusDisabled Status = "disabled"
	StatusLocked   Status = "locked"
)

// User is a person in the directory. ID never changes; Username is unique case-insensitively,
// Email and EmployeeID are unique when set. ManagerName and OUPath are read-side snapshots of
// the referenced objects, filled when the user is read or changed.
type User struct {
	ID             string
	Username       string
	GivenName      string
	FamilyName     string
	DisplayName    string
	Email          string
	Phone          string
	EmployeeID     string
	Department     string
	Title          string
	ManagerID      string
	ManagerName    string
	Location       string
	EmploymentType string
	Status         Status
	OUID           string
	OUPath         string
	Attributes     map[string]string
	Protected      bool
	Version        int64
	Created        time.Time
	Updated        time.Time
	LastSignIn     time.Time // zero when the user never signed in
}

// UserInput is a user as a client writes it: references by ID or name. It is the body of
// user.create and the shape a user.update patch applies to.
type UserInput struct {
	Username       string            `json:"username"`
	GivenName      string            `json:"given_name,omitempty"`
	FamilyName     string            `json:"family_name,omitempty"`
	DisplayName    string            `json:"display_name,omitempty"`
	Email          string            `json:"email,omitempty"`
	Phone          string            `json:"phone,omitempty"`
	EmployeeID     string            `json:"employee_id,omitempty"`
	Department     string            `json:"department,omitempty"`
	Title          string            `json:"title,omitempty"`
	Manager        string            `json:"manager,omitempty"`
	Location       string            `json:"location,omitempty"`
	EmploymentType string            `json:"employment_type,omitempty"`
	Status         Status            `json:"status,omitempty"`
	OU             string            `json:"ou,omitempty"`
	Attributes     map[string]string `json:"attributes,omitempty"`
	Protected      bool              `json:"protected,omitempty"`
}

// userPatchRules says how a merge patch may touch each user field.
var userPatchRules = PatchRules{
	"username": PatchOK, "given_name": PatchOK, "family_name": PatchOK, "display_name": PatchOK,
	"email": PatchOK, "phone": PatchOK, "employee_id": PatchOK, "department": PatchOK,
	"title": PatchOK, "manager": PatchOK, "location": PatchOK, "employment_type": PatchOK,
	"attributes": PatchOK, "protected": PatchOK,
	"status": "is changed with the disable and enable actions, not by an update",
	"ou":     "is changed with the move action, not by an update",
	"groups": "are changed through group membership, not by an update",
}

// Normalize validates in and puts its text into canonical form (trimmed, NFC). It fills the
// display name from the given and family names when it is empty and defaults the status to
// active. Every problem is reported, each against its field.
func (in *UserInput) Normalize() error {
	var fe FieldErrors
	in.Username = checkIdentifier(&fe, "username", in.Username)
	in.GivenName = cleanText(&fe, "given_name", in.GivenName, maxName)
	in.FamilyName = cleanText(&fe, "family_name", in.FamilyName, maxName)
	in.DisplayName = cleanText(&fe, "display_name", in.DisplayName, 2*maxName+1)
	in.Email = checkEmail(&fe, "email", in.Email)
	in.Phone = checkPhone(&fe, "phone", in.Phone)
	in.EmployeeID = cleanText(&fe, "employee_id", in.EmployeeID, maxIdentifier)
	in.Department = cleanText(&fe, "department", in.Department, maxName)
	in.Title = cleanText(&fe, "title", in.Title, maxName)
	in.Manager = cleanText(&fe, "manager", in.Manager, maxIdentifier)
	in.Location = cleanText(&fe, "location", in.Location, maxName)
	in.EmploymentType = cleanText(&fe, "employment_type", in.EmploymentType, maxIdentifier)
	in.OU = cleanText(&fe, "ou", in.OU, 4*maxName)
	if in.OU == "" {
		fe.Add("ou", "is required: every user lives in an OU")
	}
	switch in.Status {
	case "":
		in.Status = StatusActive
	case StatusActive, StatusDisabled:
	default:
		fe.Add("status", "must be active or disabled")
	}
	if len(in.Attributes) > maxAttributes {
		fe.Add("attributes", "at most %d custom attributes are allowed", maxAttributes)
	}
	for k, v := range in.Attributes {
		field := "attributes." + k
		if checkAttrKey(&fe, field, k) {
			in.Attributes[k] = cleanText(&fe, field, v, maxText)
		}
	}
	if in.DisplayName == "" {
		in.DisplayName = joinNonEmpty(in.GivenName, in.FamilyName)
	}
	return fe.Err()
}

// PatchUserInput applies an RFC 7396 merge patch to in and returns the result and the
// names of the fields the patch touches. Fields that other actions own (status, ou) and
// read-only fields are refused with a field error.
func PatchUserInput(in UserInput, patch Patch) (UserInput, []string, error) {
	var out UserInput
	touched, err := ApplyPatch(in, patch, userPatchRules, &out)
	return out, touched, err
}

// Input returns the user as a client would write it, with references by ID.
func (u *User) Input() UserInput {
	return UserInput{
		Username: u.Username, GivenName: u.GivenName, FamilyName: u.FamilyName,
		DisplayName: u.DisplayName, Email: u.Email, Phone: u.Phone, EmployeeID: u.EmployeeID,
		Department: u.Department, Title: u.Title, Manager: u.ManagerID, Location: u.Location,
		EmploymentType: u.EmploymentType, Status: u.Status, OU: u.OUID,
		Attributes: maps.Clone(u.Attributes), Protected: u.Protected,
	}
}

// SetInput copies the plain fields of a normalized input onto u. References (manager, OU) are
// resolved by the caller, which sets ManagerID/ManagerName and OUID/OUPath itself.
func (u *User) SetInput(in UserInput) {
	u.Username, u.GivenName, u.FamilyName = in.Username, in.GivenName, in.FamilyName
	u.DisplayName, u.Email, u.Phone, u.EmployeeID = in.DisplayName, in.Email, in.Phone, in.EmployeeID
	u.Department, u.Title, u.Location = in.Department, in.Title, in.Location
	u.EmploymentType, u.Protected = in.EmploymentType, in.Protected
	u.Attributes = maps.Clone(in.Attributes)
	if u.Attributes == nil {
		u.Attributes = map[string]string{}
	}
}

// Fields returns the user's auditable attributes by their API names, references as
// {"id","name"} and custom attributes flattened to "attributes.<key>". Audit events record the
// before and after of exactly these.
func (u *User) Fields() map[string]any {
	f := map[string]any{
		"username": u.Username, "given_name": u.GivenName, "family_name": u.FamilyName,
		"display_name": u.DisplayName, "email": u.Email, "phone": u.Phone,
		"employee_id": u.EmployeeID, "department": u.Department, "title": u.Title,
		"manager": refValue(u.ManagerID, u.ManagerName), "location": u.Location,
		"employment_type": u.EmploymentType, "status": string(u.Status),
		"ou": refValue(u.OUID, u.OUPath), "protected": u.Protected,
	}
	for k, v := range u.Attributes {
		f["attributes."+k] = v
	}
	return f
}

// FactFields renders the attributes authorization reads where no filter scope is involved
// (the ones Reader.ListUserFacts fills): a smaller map than Fields, for many users at once.
func (u *User) FactFields() map[string]any {
	return map[string]any{"username": u.Username, "status": string(u.Status),
		"manager": refValue(u.ManagerID, u.ManagerName), "ou": refValue(u.OUID, u.OUPath), "protected": u.Protected}
}

// Ref returns a resolved reference to u.
func (u *User) Ref() Ref { return Ref{Kind: KindUser, ID: u.ID, Name: u.Username} }

func joinNonEmpty(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + " " + b
}
