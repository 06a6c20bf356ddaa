package delegation

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/directory"
)

// Role is a named set of actions. UserAttributes, when not empty, narrows user.update to those
// attributes ("attributes.KEY" for one custom attribute, "attributes.*" for all of them).
// Built-in roles are defined in code and cannot be changed; copies of them can.
type Role struct {
	Name           string   `json:"name"`
	Description    string   `json:"description,omitempty"`
	Actions        []Action `json:"actions"`
	UserAttributes []string `json:"user_attributes,omitempty"`
	// VerifyIdentity makes user.reset_password need the user's identity verified first: a code
	// sent to their enrolled channel, read out to the delegate.
	VerifyIdentity bool      `json:"verify_identity,omitempty"`
	Builtin        bool      `json:"builtin,omitempty"`
	Version        int64     `json:"version,omitempty"`
	Created        time.Time `json:"created,omitzero"`
	Updated        time.Time `json:"updated,omitzero"`
}

// Allows reports whether the role includes action.
func (r *Role) Allows(a Action) bool { return slices.Contains(r.Actions, a) }

// AllowsAttribute reports whether the role's user.update covers attribute attr.
func (r *Role) AllowsAttribute(attr string) bool {
	if len(r.UserAttributes) == 0 {
		return true
	}
	if slices.Contains(r.UserAttributes, attr) {
		return true
	}
	return strings.HasPrefix(attr, "attributes.") && slices.Contains(r.UserAttributes, "attributes.*")
}

// Covers reports whether r grants everything other grants: its actions, and for user.update
// every attribute other may update.
func (r *Role) Covers(other *Role) bool {
	for _, a := range other.Actions {
		if !r.Allows(a) {
			return false
		}
	}
	if !other.Allows(UserUpdate) || len(r.UserAttributes) == 0 {
		return true
	}
	if len(other.UserAttributes) == 0 {
		return false
	}
	for _, attr := range other.UserAttributes {
		if attr == "attributes.*" && !slices.Contains(r.UserAttributes, attr) || !r.AllowsAttribute(attr) {
			return false
		}
	}
	return true
}

// Built-in role names.
const (
	RoleReader     = "reader"
	RoleAuditor    = "auditor"
	RoleHelpdesk   = "helpdesk"
	RoleManager    = "manager"
	RoleGroupOwner = "group-owner"
	RoleHR         = "hr"
	RoleSAOwner    = "sa-owner"
)

// BuiltinRoles returns the built-in roles, sorted by name. Every role includes directory.read
// for what it covers, so a delegate can see what they administer.
func BuiltinRoles() []Role {
	roles := []Role{
		{Name: RoleTier0, Description: "Everything, everywhere, including protected objects and the delegation configuration",
			Actions: AllActions()},
		{Name: RoleReader, Description: "See the objects in scope (for example everyone, so that group owners can find whom to add)",
			Actions: []Action{DirectoryRead}},
		{Name: RoleAuditor, Description: "Read the directory and the audit trail in scope",
			Actions: []Action{AuditRead, DirectoryRead}},
		{Name: RoleHelpdesk, Description: "Reset passwords, unlock accounts and update contact attributes",
			Actions: []Action{DirectoryRead, UserResetPassword, UserUnlock, UserUpdate}, UserAttributes: []string{"phone", "title"}},
		{Name: RoleManager, Description: "Update a few attributes of the people in scope (usually direct reports)",
			Actions: []Action{DirectoryRead, UserUpdate}, UserAttributes: []string{"location", "phone", "title"}},
		{Name: RoleGroupOwner, Description: "Add and remove members of the groups in scope (usually the groups one owns)",
			Actions: []Action{DirectoryRead, GroupAddMember, GroupRemoveMember}},
		{Name: RoleHR, Description: "Create, update, move, disable and enable people",
			Actions: []Action{DirectoryRead, UserCreate, UserDisable, UserEnable, UserMove, UserUpdate},
			UserAttributes: []string{"department", "display_name", "employee_id", "employment_type", "family_name",
				"given_name", "location", "manager", "title"}},
		{Name: RoleSAOwner, Description: "Issue and revoke keys of the service accounts in scope (usually the ones one owns)",
			Actions: []Action{DirectoryRead, SAIssueKey, SARevokeKey}},
	}
	for i := range roles {
		roles[i].Builtin = true
		slices.Sort(roles[i].Actions)
	}
	slices.SortFunc(roles, func(a, b Role) int { return strings.Compare(a.Name, b.Name) })
	return roles
}

// BuiltinRole returns the built-in role called name.
func BuiltinRole(name string) (Role, bool) {
	for _, r := range BuiltinRoles() {
		if r.Name == name {
			return r, true
		}
	}
	return Role{}, false
}

// RoleInput is a role as a client writes it. CopyOf starts the role from another one's actions
// and attributes, which Actions and UserAttributes then replace when given.
type RoleInput struct {
	Name           string   `json:"name"`
	Description    string   `json:"description,omitempty"`
	Actions        []Action `json:"actions,omitempty"`
	UserAttributes []string `json:"user_attributes,omitempty"`
	VerifyIdentity *bool    `json:"verify_identity,omitempty"`
	CopyOf         string   `json:"copy_of,omitempty"`
}

// userAttributeNames are the user attributes user.update can change.
var userAttributeNames = []string{"display_name", "email", "employee_id", "employment_type", "family_name", "given_name",
	"department", "location", "manager", "phone", "protected", "title", "username", "attributes.*"}

// Normalize validates a role: a lower-case name that is not a built-in one, known actions
// (deduplicated, sorted), and user attributes that exist, only with user.update.
func (in *RoleInput) Normalize() error {
	var fe directory.FieldErrors
	in.Name = strings.ToLower(strings.TrimSpace(in.Name))
	if !validRoleName(in.Name) {
		fe.Add("name", "a role name is 1 to 64 characters: a-z, 0-9 and -, starting with a letter")
	} else if _, ok := BuiltinRole(in.Name); ok {
		fe.Add("name", "%q is a built-in role; give the copy another name", in.Name)
	}
	in.Description = strings.TrimSpace(in.Description)
	if len(in.Description) > 1024 {
		fe.Add("description", "is longer than 1024 characters")
	}
	if len(in.Actions) == 0 {
		fe.Add("actions", "a role needs at least one action")
	}
	for _, a := range in.Actions {
		if !a.Known() {
			fe.Add("actions", "unknown action %q", a)
		}
	}
	slices.Sort(in.Actions)
	in.Actions = slices.Compact(in.Actions)
	for _, attr := range in.UserAttributes {
		if !slices.Contains(userAttributeNames, attr) && !(strings.HasPrefix(attr, "attributes.") && len(attr) > len("attributes.")) {
			fe.Add("user_attributes", "unknown user attribute %q", attr)
		}
	}
	if len(in.UserAttributes) > 0 && !slices.Contains(in.Actions, UserUpdate) {
		fe.Add("user_attributes", "narrows user.update, which the role does not include")
	}
	slices.Sort(in.UserAttributes)
	in.UserAttributes = slices.Compact(in.UserAttributes)
	return fe.Err()
}

func validRoleName(s string) bool {
	if s == "" || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// Fields returns the role as an audit record holds it.
func (r *Role) Fields() map[string]any {
	f := map[string]any{"name": r.Name, "actions": actionStrings(r.Actions)}
	if r.Description != "" {
		f["description"] = r.Description
	}
	if len(r.UserAttributes) > 0 {
		f["user_attributes"] = slices.Clone(r.UserAttributes)
	}
	if r.VerifyIdentity {
		f["verify_identity"] = true
	}
	return f
}

func actionStrings(as []Action) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = string(a)
	}
	return out
}

// String names the role for messages.
func (r *Role) String() string { return fmt.Sprintf("role %s", r.Name) }
