package directory

import (
	"slices"
	"strings"
	"time"
)

// OU is an organisational unit. The OUs form one tree under the root OU, whose ParentID and
// Path are empty; every other OU's Path is the slash-joined names from below the root
// ("corp/sales"). Names are unique among siblings, case-insensitively.
type OU struct {
	ID        string
	Name      string
	ParentID  string
	Path      string
	Protected bool
	Version   int64
	Created   time.Time
	Updated   time.Time
}

// RootPath is how the root OU is written in references and output.
const RootPath = "/"

// DisplayPath is the OU's path as users see it: "/" for the root.
func (o *OU) DisplayPath() string {
	if o.ParentID == "" {
		return RootPath
	}
	return o.Path
}

// ChildPath is the path of a child named name.
func (o *OU) ChildPath(name string) string {
	if o.Path == "" {
		return name
	}
	return o.Path + "/" + name
}

// Ref returns a resolved reference to o.
func (o *OU) Ref() Ref { return Ref{Kind: KindOU, ID: o.ID, Name: o.DisplayPath()} }

// Fields returns the OU's auditable attributes.
func (o *OU) Fields() map[string]any {
	return map[string]any{"name": o.Name, "path": o.DisplayPath(), "parent": refValue(o.ParentID, o.ParentPath()),
		"protected": o.Protected}
}

// ParentPath is the display path of the OU's parent: "/" for a top-level OU, "" for the root.
func (o *OU) ParentPath() string {
	switch i := strings.LastIndexByte(o.Path, '/'); {
	case o.ParentID == "":
		return ""
	case i < 0:
		return RootPath
	default:
		return o.Path[:i]
	}
}

// OUInput is an OU as a client writes it.
type OUInput struct {
	Name      string `json:"name"`
	Parent    string `json:"parent,omitempty"`
	Protected bool   `json:"protected,omitempty"`
}

var ouPatchRules = PatchRules{
	"name": PatchOK, "protected": PatchOK,
	"parent": "is changed with the move action, not by an update",
}

// Normalize validates the OU input. An empty parent means the root OU.
func (in *OUInput) Normalize() error {
	var fe FieldErrors
	in.Name = checkObjectName(&fe, "name", in.Name, true)
	in.Parent = strings.Trim(cleanText(&fe, "parent", in.Parent, 4*maxName), "/")
	return fe.Err()
}

// PatchOUInput applies a merge patch to an OU input.
func PatchOUInput(in OUInput, patch Patch) (OUInput, []string, error) {
	var out OUInput
	touched, err := ApplyPatch(in, patch, ouPatchRules, &out)
	return out, touched, err
}

// Input returns the OU as written, with its parent by ID.
func (o *OU) Input() OUInput {
	return OUInput{Name: o.Name, Parent: o.ParentID, Protected: o.Protected}
}

// Group is a named set of members (users, service accounts and other groups) with owners.
// Name is unique case-insensitively. Owners are users; OwnerNames and OUPath are read-side
// snapshots.
type Group struct {
	ID          string
	Name        string
	Description string
	OUID        string
	OUPath      string
	Owners      []Ref
	Protected   bool
	Version     int64
	Created     time.Time
	Updated     time.Time
}

// Ref returns a resolved reference to g.
func (g *Group) Ref() Ref { return Ref{Kind: KindGroup, ID: g.ID, Name: g.Name} }

// Fields returns the group's auditable attributes.
func (g *Group) Fields() map[string]any {
	return map[string]any{"name": g.Name, "description": g.Description, "ou": refValue(g.OUID, g.OUPath),
		"owners": refList(g.Owners), "protected": g.Protected}
}

// GroupInput is a group as a client writes it.
type GroupInput struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	OU          string   `json:"ou,omitempty"`
	Owners      []string `json:"owners,omitempty"`
	Protected   bool     `json:"protected,omitempty"`
}

var groupPatchRules = PatchRules{
	"name": PatchOK, "description": PatchOK, "owners": PatchOK, "protected": PatchOK,
	"ou":      "is changed with the move action, not by an update",
	"members": "are changed with the member actions, not by an update",
}

// Normalize validates the group input.
func (in *GroupInput) Normalize() error {
	var fe FieldErrors
	in.Name = checkObjectName(&fe, "name", in.Name, false)
	in.Description = cleanText(&fe, "description", in.Description, maxText)
	in.OU = cleanText(&fe, "ou", in.OU, 4*maxName)
	if in.OU == "" {
		fe.Add("ou", "is required: every group lives in an OU")
	}
	in.Owners = normalizeRefList(&fe, "owners", in.Owners)
	return fe.Err()
}

// PatchGroupInput applies a merge patch to a group input.
func PatchGroupInput(in GroupInput, patch Patch) (GroupInput, []string, error) {
	var out GroupInput
	touched, err := ApplyPatch(in, patch, groupPatchRules, &out)
	return out, touched, err
}

// Input returns the group as written, references by ID.
func (g *Group) Input() GroupInput {
	return GroupInput{Name: g.Name, Description: g.Description, OU: g.OUID, Owners: refIDs(g.Owners), Protected: g.Protected}
}

// ServiceAccount is a non-human identity. It always has at least one owner (a user).
type ServiceAccount struct {
	ID          string
	Name        string
	Description string
	OUID        string
	OUPath      string
	Owners      []Ref
	Status      Status
	Protected   bool
	Version     int64
	Created     time.Time
	Updated     time.Time
	// Orphaned marks an account whose last active owner left or was disabled: it was handed to
	// that owner's manager (when there was an active one) and awaits a review of its owners.
	Orphaned bool
}

// Ref returns a resolved reference to s.
func (s *ServiceAccount) Ref() Ref { return Ref{Kind: KindServiceAccount, ID: s.ID, Name: s.Name} }

// Fields returns the service account's auditable attributes. "orphaned" is there only when set.
func (s *ServiceAccount) Fields() map[string]any {
	f := map[string]any{"name": s.Name, "description": s.Description, "ou": refValue(s.OUID, s.OUPath),
		"owners": refList(s.Owners), "status": string(s.Status), "protected": s.Protected}
	if s.Orphaned {
		f["orphaned"] = true
	}
	return f
}

// ServiceAccountInput is a service account as a client writes it.
type ServiceAccountInput struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	OU          string   `json:"ou,omitempty"`
	Owners      []string `json:"owners"`
	Status      Status   `json:"status,omitempty"`
	Protected   bool     `json:"protected,omitempty"`
	// Orphaned is the review flag (see ServiceAccount.Orphaned); a reviewer clears it.
	Orphaned bool `json:"orphaned,omitempty"`
}

var saPatchRules = PatchRules{
	"name": PatchOK, "description": PatchOK, "owners": PatchOK, "status": PatchOK, "protected": PatchOK, "orphaned": PatchOK,
	"ou": "is changed with the move action, not by an update",
}

// Normalize validates the service-account input; it needs at least one owner.
func (in *ServiceAccountInput) Normalize() error {
	var fe FieldErrors
	in.Name = checkIdentifier(&fe, "name", in.Name)
	in.Description = cleanText(&fe, "description", in.Description, maxText)
	in.OU = cleanText(&fe, "ou", in.OU, 4*maxName)
	if in.OU == "" {
		fe.Add("ou", "is required: every service account lives in an OU")
	}
	in.Owners = normalizeRefList(&fe, "owners", in.Owners)
	if len(in.Owners) == 0 {
		fe.Add("owners", "at least one owner is required: a service account is always someone's responsibility")
	}
	switch in.Status {
	case "":
		in.Status = StatusActive
	case StatusActive, StatusDisabled:
	default:
		fe.Add("status", "must be active or disabled")
	}
	return fe.Err()
}

// PatchServiceAccountInput applies a merge patch to a service-account input.
func PatchServiceAccountInput(in ServiceAccountInput, patch Patch) (ServiceAccountInput, []string, error) {
	var out ServiceAccountInput
	touched, err := ApplyPatch(in, patch, saPatchRules, &out)
	return out, touched, err
}

// Input returns the service account as written, references by ID.
func (s *ServiceAccount) Input() ServiceAccountInput {
	return ServiceAccountInput{Name: s.Name, Description: s.Description, OU: s.OUID,
		Owners: refIDs(s.Owners), Status: s.Status, Protected: s.Protected, Orphaned: s.Orphaned}
}

// normalizeRefList trims, de-duplicates and bounds a list of references.
func normalizeRefList(fe *FieldErrors, field string, refs []string) []string {
	if len(refs) > 100 {
		fe.Add(field, "at most 100 are allowed")
		return refs
	}
	out := make([]string, 0, len(refs))
	for i, r := range refs {
		r = strings.TrimSpace(r)
		if r == "" {
			fe.Add(field, "entry %d is empty", i)
			continue
		}
		if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, r) }) {
			out = append(out, r)
		}
	}
	return out
}

func refIDs(refs []Ref) []string {
	ids := make([]string, len(refs))
	for i, r := range refs {
		ids[i] = r.ID
	}
	return ids
}

func refList(refs []Ref) []map[string]string {
	out := make([]map[string]string, len(refs))
	for i, r := range refs {
		out[i] = map[string]string{"id": r.ID, "name": r.Name}
	}
	slices.SortFunc(out, func(a, b map[string]string) int { return strings.Compare(a["id"], b["id"]) })
	return out
}
