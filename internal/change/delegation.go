package change

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// rolePatchRules says how a merge patch may touch a role.
var rolePatchRules = directory.PatchRules{
	"description": directory.PatchOK, "actions": directory.PatchOK, "user_attributes": directory.PatchOK, "verify_identity": directory.PatchOK,
	"name":    "roles cannot be renamed; create a new one",
	"copy_of": "applies only when a role is created",
}

// role returns a built-in or custom role.
func (pl *planner) role(ctx context.Context, field, name string) (delegation.Role, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	if r, ok := delegation.BuiltinRole(name); ok {
		return r, nil
	}
	r, err := pl.tx.Role(ctx, name)
	if errors.Is(err, directory.ErrNotFound) {
		return r, directory.Invalid(field, "there is no role %q", name)
	}
	return r, err
}

func (pl *planner) roleCreate(ctx context.Context) (*plan, error) {
	in := *pl.op.Role
	if in.CopyOf != "" {
		src, err := pl.role(ctx, "copy_of", in.CopyOf)
		if err != nil {
			return nil, err
		}
		if len(in.Actions) == 0 {
			in.Actions = slices.Clone(src.Actions)
		}
		if len(in.UserAttributes) == 0 {
			in.UserAttributes = slices.Clone(src.UserAttributes)
		}
		if in.Description == "" {
			in.Description = "Copy of " + src.Name
		}
		if in.VerifyIdentity == nil {
			v := src.VerifyIdentity
			in.VerifyIdentity = &v
		}
	}
	if err := in.Normalize(); err != nil {
		return nil, err
	}
	r := delegation.Role{Name: in.Name, Description: in.Description, Actions: in.Actions, UserAttributes: in.UserAttributes,
		VerifyIdentity: in.VerifyIdentity != nil && *in.VerifyIdentity, Version: 1, Created: pl.now, Updated: pl.now}
	return &plan{target: roleRef(r.Name), version: 1, after: r.Fields(), relAfter: map[string]any{"role": r.Fields()},
		write: func(ctx context.Context) error { return pl.tx.InsertRole(ctx, &r) }}, nil
}

func roleRef(name string) directory.Ref {
	return directory.Ref{Kind: directory.KindRole, ID: name, Name: name}
}

// customRole loads the op's target role, refusing built-in ones.
func (pl *planner) customRole(ctx context.Context) (delegation.Role, error) {
	name := strings.ToLower(pl.op.Target.Key())
	if _, ok := delegation.BuiltinRole(name); ok {
		return delegation.Role{}, directory.Conflict("", "%s is a built-in role and cannot be changed; create a copy (copy_of) instead", name)
	}
	r, err := pl.tx.Role(ctx, name)
	if err != nil {
		return r, err
	}
	return r, pl.checkVersion(r.Version)
}

func (pl *planner) roleUpdate(ctx context.Context) (*plan, error) {
	cur, err := pl.customRole(ctx)
	if err != nil {
		return nil, err
	}
	var in delegation.RoleInput
	verify := cur.VerifyIdentity
	touched, err := directory.ApplyPatch(delegation.RoleInput{Name: cur.Name, Description: cur.Description,
		Actions: cur.Actions, UserAttributes: cur.UserAttributes, VerifyIdentity: &verify}, pl.op.Patch, rolePatchRules, &in)
	if err != nil {
		return nil, err
	}
	// Normalize refuses built-in names, and this role's own name is not one.
	if err := in.Normalize(); err != nil {
		return nil, err
	}
	next := cur
	next.Description, next.Actions, next.UserAttributes, next.Updated = in.Description, in.Actions, in.UserAttributes, pl.now
	next.VerifyIdentity = in.VerifyIdentity != nil && *in.VerifyIdentity
	return &plan{target: roleRef(cur.Name), before: cur.Fields(), after: next.Fields(), touched: touched,
		version: cur.Version + 1, relBefore: map[string]any{"role": cur.Fields()}, relAfter: map[string]any{"role": next.Fields()},
		write: func(ctx context.Context) error { return pl.tx.UpdateRole(ctx, &next) }}, nil
}

func (pl *planner) roleDelete(ctx context.Context) (*plan, error) {
	cur, err := pl.customRole(ctx)
	if err != nil {
		return nil, err
	}
	n, err := pl.tx.RoleAssignments(ctx, cur.Name)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, directory.Conflict("", "role %s has %d assignments; revoke them first", cur.Name, n)
	}
	return &plan{target: roleRef(cur.Name), before: cur.Fields(), relBefore: map[string]any{"role": cur.Fields()},
		write: func(ctx context.Context) error { return pl.tx.DeleteRole(ctx, cur.Name) }}, nil
}

// scopeResolver resolves the OUs and groups of a scope inside the transaction.
type scopeResolver struct {
	ctx context.Context
	pl  *planner
}

func (r scopeResolver) OU(id string) (directory.OU, bool) {
	o, err := r.pl.tx.OU(r.ctx, directory.Ref{Kind: directory.KindOU, ID: id})
	return o, err == nil
}

func (r scopeResolver) OUByPath(path string) (directory.OU, bool) {
	o, err := r.pl.tx.OU(r.ctx, directory.ParseRef(directory.KindOU, path))
	return o, err == nil
}

func (r scopeResolver) Group(key string) (directory.Ref, bool) {
	g, err := r.pl.tx.ResolveMember(r.ctx, directory.ParseRef(directory.KindGroup, key))
	return g, err == nil
}

// object loads a user's, group's or service account's attributes, for the authorizer.
func (pl *planner) object(ctx context.Context, ref directory.Ref) (*delegation.Object, error) {
	var fields map[string]any
	switch ref.Kind {
	case directory.KindUser:
		u, err := pl.tx.User(ctx, ref)
		if err != nil {
			return nil, err
		}
		ref, fields = u.Ref(), u.Fields()
	case directory.KindGroup:
		g, err := pl.tx.Group(ctx, ref)
		if err != nil {
			return nil, err
		}
		ref, fields = g.Ref(), g.Fields()
	case directory.KindServiceAccount:
		s, err := pl.tx.ServiceAccount(ctx, ref)
		if err != nil {
			return nil, err
		}
		ref, fields = s.Ref(), s.Fields()
	default:
		return nil, fmt.Errorf("change: no attributes for a %s", ref.Kind.Noun())
	}
	return &delegation.Object{Ref: ref, Fields: fields}, nil
}

func (pl *planner) roleAssign(ctx context.Context) (*plan, error) {
	in := *pl.op.Assignment
	maxActivation, from, until, err := in.Normalize()
	if err != nil {
		return nil, err
	}
	role, err := pl.role(ctx, "role", in.Role)
	if err != nil {
		return nil, err
	}
	// The assignment's own justification is the op's: the audit event records it.
	pl.op.Justification = in.Justification
	if in.Source != "" && pl.actor.Kind != delegation.ActorSystem {
		return nil, directory.Invalid("source", "is set only by the system actor whose rule makes the grant")
	}
	var holder *delegation.Object
	if in.Holder.System != "" {
		sys := delegation.SystemActor(in.Holder.System)
		holder = &delegation.Object{Ref: directory.Ref{Kind: directory.KindSystem, ID: sys.ID, Name: sys.Name}}
	} else {
		holderRef := directory.ParseRef(directory.KindUser, in.Holder.User)
		if in.Holder.Group != "" {
			holderRef = directory.ParseRef(directory.KindGroup, in.Holder.Group)
		}
		holder, err = pl.object(ctx, holderRef)
		if errors.Is(err, directory.ErrNotFound) {
			return nil, directory.Invalid("holder", "there is no %s %q", holderRef.Kind.Noun(), holderRef.Key())
		}
		if err != nil {
			return nil, err
		}
	}
	ex := delegation.ExcludeInput{}
	if in.Exclude != nil {
		ex = *in.Exclude
	}
	scope, err := delegation.ResolveScope(in.Scope, ex, scopeResolver{ctx: ctx, pl: pl})
	if err != nil {
		return nil, err
	}
	if role.Name == delegation.RoleTier0 {
		root, err := pl.tx.OU(ctx, directory.Ref{Kind: directory.KindOU, Name: directory.RootPath})
		if err != nil {
			return nil, err
		}
		if scope.OU != root.ID || !scope.Subtree || len(scope.ExcludeOUs)+len(scope.ExcludeGroups) > 0 {
			return nil, directory.Invalid("scope", "%s is granted over the whole directory: scope {\"ou\": \"/\"} and no exclusions", delegation.RoleTier0)
		}
	}
	a := delegation.Assignment{ID: directory.NewID(), Role: role.Name, Holder: holder.Ref, Scope: scope,
		CanRedelegate: in.CanRedelegate, Eligible: in.Eligible, MaxActivation: int64(maxActivation / time.Second),
		GrantedBy:     directory.Ref{Kind: directory.Kind(pl.actor.Kind), ID: pl.actor.ID, Name: pl.actor.Name},
		Justification: in.Justification, Source: in.Source, Created: pl.now, Version: 1}
	a.From, a.Until = from, until
	if !until.IsZero() && !until.After(pl.now) {
		return nil, directory.Invalid("until", "is in the past")
	}
	fields := a.Fields()
	return &plan{target: a.Ref(), after: fields, version: 1, relAfter: fields, member: holder,
		write: func(ctx context.Context) error { return pl.tx.InsertAssignment(ctx, &a) }}, nil
}

// currentAssignment loads the op's target assignment and checks its version.
func (pl *planner) currentAssignment(ctx context.Context) (delegation.Assignment, error) {
	a, err := pl.tx.Assignment(ctx, strings.ToLower(pl.op.Target.Key()))
	if err != nil {
		return a, err
	}
	return a, pl.checkVersion(a.Version)
}

func (pl *planner) roleRevoke(ctx context.Context) (*plan, error) {
	cur, err := pl.currentAssignment(ctx)
	if err != nil {
		return nil, err
	}
	if cur.Role == delegation.RoleTier0 && cur.Holder.Kind == directory.KindUser {
		if err := pl.guardLastTier0(ctx, cur.Holder.ID); err != nil {
			return nil, err
		}
	}
	fields := cur.Fields()
	return &plan{target: cur.Ref(), before: fields, relBefore: fields,
		write: func(ctx context.Context) error { return pl.tx.DeleteAssignment(ctx, cur.ID) }}, nil
}

// guardLastTier0 refuses to take tier-0 away from the last active user holding it.
func (pl *planner) guardLastTier0(ctx context.Context, userID string) error {
	u, err := pl.tx.User(ctx, directory.Ref{Kind: directory.KindUser, ID: userID})
	if err != nil || u.Status != directory.StatusActive {
		return nil // a missing or inactive holder is not one of the active admins
	}
	n, err := pl.tx.Tier0Holders(ctx)
	if err != nil {
		return err
	}
	if n <= 1 {
		return directory.Conflict("", "%s is the last active tier-0 admin; grant the role to someone else first", u.Username)
	}
	return nil
}

func (pl *planner) roleActivate(ctx context.Context) (*plan, error) {
	cur, err := pl.currentAssignment(ctx)
	if err != nil {
		return nil, err
	}
	in := *pl.op.Activation
	var fe directory.FieldErrors
	if strings.TrimSpace(in.Justification) == "" {
		fe.Add("justification", "is required: say why you need this right now")
	}
	d := time.Duration(cur.MaxActivation) * time.Second
	if in.Duration != "" {
		var perr error
		if d, perr = time.ParseDuration(in.Duration); perr != nil || d <= 0 {
			fe.Add("duration", "is a duration such as 2h or 30m")
		} else if d > time.Duration(cur.MaxActivation)*time.Second {
			fe.Add("duration", "is longer than this assignment's maximum activation (%s)", time.Duration(cur.MaxActivation)*time.Second)
		}
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	switch {
	case !cur.Eligible:
		return nil, directory.Conflict("", "assignment %s is not eligible: it is always active and needs no activation", cur.ID)
	case !cur.Valid(pl.now):
		return nil, directory.Conflict("", "assignment %s is not valid now", cur.ID)
	}
	next := cur
	next.ActiveUntil = pl.now.Add(d)
	if !cur.Until.IsZero() && next.ActiveUntil.After(cur.Until) {
		next.ActiveUntil = cur.Until
	}
	pl.op.Justification = strings.TrimSpace(in.Justification)
	// The records show the assignment at the version the write gives it; the write itself
	// checks the version it is at now.
	recorded := next
	recorded.Version = cur.Version + 1
	return &plan{target: cur.Ref(), before: cur.Fields(), after: recorded.Fields(), version: cur.Version + 1,
		relBefore: cur.Fields(), relAfter: recorded.Fields(),
		write: func(ctx context.Context) error { return pl.tx.ActivateAssignment(ctx, &next) }}, nil
}
