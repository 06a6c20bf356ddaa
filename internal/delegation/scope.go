package delegation

import (
	"fmt"
	"slices"
	"strings"

	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
)

// Relation is a scope defined by the object's relation to the actor.
type Relation string

// The relations a scope can name.
const (
	RelSelf                 Relation = "self"
	RelDirectReports        Relation = "direct_reports"
	RelOwnedGroups          Relation = "owned_groups"
	RelOwnedServiceAccounts Relation = "owned_service_accounts"
)

var relations = []Relation{RelSelf, RelDirectReports, RelOwnedGroups, RelOwnedServiceAccounts}

// Scope is where an assignment applies. Exactly one kind is set:
//   - OU: the objects in an OU, and with Subtree in every OU below it (an OU scope also covers
//     those OUs themselves);
//   - Groups: the listed groups themselves and their members, transitively;
//   - Filter: the users that match a SCIM filter, evaluated on the user's state before and
//     after a change;
//   - Relation: the actor themselves, their direct reports, the groups or the service accounts
//     they own.
//
// Exclude carves OU subtrees and groups' members out of it. OUs and groups are held by ID, so a
// rename does not change what a scope covers; Names holds their names for display.
type Scope struct {
	OU       string   `json:"ou_id,omitempty"`
	Subtree  bool     `json:"subtree,omitempty"`
	Groups   []string `json:"group_ids,omitempty"`
	Filter   string   `json:"filter,omitempty"`
	Relation Relation `json:"relation,omitempty"`

	ExcludeOUs    []string `json:"exclude_ou_ids,omitempty"`
	ExcludeGroups []string `json:"exclude_group_ids,omitempty"`

	// Names maps the IDs above to the names they had when last read, for display only.
	Names map[string]string `json:"names,omitempty"`

	expr filter.Expr // the parsed Filter
	// byKind caches, for scopes that do not depend on the actor (all but relations), the
	// compiled expression per kind of object. Filled by compile, read-only afterwards.
	byKind map[directory.Kind]filter.Expr
}

// Kind names which kind of scope s is.
func (s *Scope) Kind() string {
	switch {
	case s.OU != "":
		return "ou"
	case len(s.Groups) > 0:
		return "groups"
	case s.Filter != "":
		return "filter"
	case s.Relation != "":
		return "relation"
	}
	return ""
}

// compile parses the filter and compiles the scope's expressions once, before the scope is
// shared.
func (s *Scope) compile() error {
	if s.Filter != "" && s.expr == nil {
		e, err := filter.Parse(s.Filter, scopeFilterSchema)
		if err != nil {
			if _, uerr := filter.Parse(s.Filter, directory.UserSchema); uerr == nil {
				return fmt.Errorf("%w: a scope filter cannot test created, updated or last_sign_in: changes are judged on the attributes they change, which these are not", filter.ErrInvalid)
			}
			return err
		}
		s.expr = e
	}
	if s.byKind == nil && s.Kind() != "relation" {
		s.byKind = map[directory.Kind]filter.Expr{}
		for _, k := range []directory.Kind{directory.KindOU, directory.KindUser, directory.KindGroup, directory.KindServiceAccount} {
			s.byKind[k] = s.build("", k)
		}
	}
	return nil
}

// scopeFilterSchema is what a scope's filter may test: the user attributes a decision sees (the
// target's Fields before and after a change). It is UserSchema without the times the store
// keeps beside them (created, updated, last_sign_in), on which Decide and the lists a scope
// selects (its SQL translation) would disagree.
var scopeFilterSchema = func() filter.Schema {
	out := filter.Schema{}
	for attr, typ := range directory.UserSchema {
		if attr != "created" && attr != "updated" && attr != "last_sign_in" {
			out[attr] = typ
		}
	}
	return out
}()

// ScopeInput is a scope as a client writes it: OUs by path or ID, groups by name or ID.
type ScopeInput struct {
	OU       string   `json:"ou,omitempty"`
	Subtree  *bool    `json:"subtree,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	Filter   string   `json:"filter,omitempty"`
	Relation Relation `json:"relation,omitempty"`
}

// ExcludeInput carves parts out of a scope: an OU subtree or a group's members, singly or as
// lists.
type ExcludeInput struct {
	OU     string   `json:"ou,omitempty"`
	OUs    []string `json:"ous,omitempty"`
	Group  string   `json:"group,omitempty"`
	Groups []string `json:"groups,omitempty"`
}

// Resolver finds the OUs and groups a scope names.
type Resolver interface {
	OU(id string) (directory.OU, bool)
	OUByPath(path string) (directory.OU, bool)
	Group(key string) (directory.Ref, bool)
}

// ResolveScope checks a scope as written and resolves its names to IDs. field prefixes the
// field names of errors ("scope", "exclude").
func ResolveScope(in ScopeInput, ex ExcludeInput, res Resolver) (Scope, error) {
	var fe directory.FieldErrors
	s := Scope{Names: map[string]string{}}
	kinds := 0
	if in.OU != "" {
		kinds++
		if o, ok := resolveOU(res, in.OU); ok {
			s.OU, s.Names[o.ID] = o.ID, o.DisplayPath()
		} else {
			fe.Add("scope.ou", "there is no OU %q", in.OU)
		}
		s.Subtree = in.Subtree == nil || *in.Subtree
	} else if in.Subtree != nil {
		fe.Add("scope.subtree", "goes with scope.ou")
	}
	if len(in.Groups) > 0 {
		kinds++
		for _, g := range in.Groups {
			if ref, ok := res.Group(g); ok {
				if !slices.Contains(s.Groups, ref.ID) {
					s.Groups, s.Names[ref.ID] = append(s.Groups, ref.ID), ref.Name
				}
			} else {
				fe.Add("scope.groups", "there is no group %q", g)
			}
		}
	}
	if in.Filter != "" {
		kinds++
		s.Filter = strings.TrimSpace(in.Filter)
		if err := s.compile(); err != nil {
			fe.Add("scope.filter", "%v", err)
		}
	}
	if in.Relation != "" {
		kinds++
		if !slices.Contains(relations, in.Relation) {
			fe.Add("scope.relation", "must be one of self, direct_reports, owned_groups, owned_service_accounts")
		}
		s.Relation = in.Relation
	}
	if kinds != 1 {
		fe.Add("scope", "give exactly one of ou, groups, filter or relation")
	}
	for _, o := range nonEmpty(append([]string{ex.OU}, ex.OUs...)) {
		if ou, ok := resolveOU(res, o); ok {
			s.ExcludeOUs, s.Names[ou.ID] = append(s.ExcludeOUs, ou.ID), ou.DisplayPath()
		} else {
			fe.Add("exclude.ou", "there is no OU %q", o)
		}
	}
	for _, g := range nonEmpty(append([]string{ex.Group}, ex.Groups...)) {
		if ref, ok := res.Group(g); ok {
			s.ExcludeGroups, s.Names[ref.ID] = append(s.ExcludeGroups, ref.ID), ref.Name
		} else {
			fe.Add("exclude.group", "there is no group %q", g)
		}
	}
	slices.Sort(s.Groups)
	slices.Sort(s.ExcludeOUs)
	s.ExcludeOUs = slices.Compact(s.ExcludeOUs)
	slices.Sort(s.ExcludeGroups)
	s.ExcludeGroups = slices.Compact(s.ExcludeGroups)
	return s, fe.Err()
}

func resolveOU(res Resolver, key string) (directory.OU, bool) {
	if directory.IsID(key) {
		return res.OU(strings.ToLower(key))
	}
	return res.OUByPath(strings.Trim(key, "/"))
}

func nonEmpty(ss []string) []string {
	out := ss[:0:0]
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Describe renders the scope in words, for messages.
func (s *Scope) Describe() string {
	name := func(id string) string {
		if n := s.Names[id]; n != "" {
			return n
		}
		return id
	}
	var d string
	switch s.Kind() {
	case "ou":
		d = "OU " + name(s.OU)
		if s.Subtree {
			d += " and below"
		}
	case "groups":
		names := make([]string, len(s.Groups))
		for i, g := range s.Groups {
			names[i] = name(g)
		}
		d = "members of " + strings.Join(names, ", ")
	case "filter":
		d = "objects matching " + s.Filter
	case "relation":
		d = strings.ReplaceAll(string(s.Relation), "_", " ")
	}
	for _, o := range s.ExcludeOUs {
		d += fmt.Sprintf(", except OU %s", name(o))
	}
	for _, g := range s.ExcludeGroups {
		d += fmt.Sprintf(", except members of %s", name(g))
	}
	return d
}
