package change

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/deputy-iam/deputy/internal/approval"
	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// Approval policies decide who must approve what, so changing them is a tier-0 admin's
// business. Each change is recorded as an audit event (approval_policy.create, .update,
// .delete, .replace) in the transaction that makes it, and the gate takes the new set at once.

// Policy actions, as audit events name them.
const (
	ActionPolicyCreate  = "approval_policy.create"
	ActionPolicyUpdate  = "approval_policy.update"
	ActionPolicyDelete  = "approval_policy.delete"
	ActionPolicyReplace = "approval_policy.replace"
)

// settingDefaults marks that the shipped default policies were installed once.
const settingDefaults = "approval_defaults"

// CreatePolicy adds a policy after the others.
func (p *Pipeline) CreatePolicy(ctx context.Context, actor delegation.Actor, meta Meta, in approval.Policy) (approval.Policy, error) {
	in.ID, in.Version = directory.NewID(), 1
	return in, p.policyChange(ctx, actor, meta, ActionPolicyCreate, in.Name, func(tx Tx) (before, after any, err error) {
		if err := p.resolvePolicy(ctx, tx, &in); err != nil {
			return nil, nil, err
		}
		return nil, in, tx.InsertPolicy(ctx, &in)
	})
}

// UpdatePolicy replaces the policy id with in, if it is still at version ifVersion (0: any).
func (p *Pipeline) UpdatePolicy(ctx context.Context, actor delegation.Actor, meta Meta, id string, ifVersion int64, in approval.Policy) (approval.Policy, error) {
	err := p.policyChange(ctx, actor, meta, ActionPolicyUpdate, in.Name, func(tx Tx) (before, after any, err error) {
		cur, err := findPolicy(ctx, tx, id)
		if err != nil {
			return nil, nil, err
		}
		if ifVersion != 0 && ifVersion != cur.Version {
			return nil, nil, directory.StaleVersion(ifVersion, cur.Version)
		}
		in.ID, in.Version = cur.ID, cur.Version
		if err := p.resolvePolicy(ctx, tx, &in); err != nil {
			return nil, nil, err
		}
		if err := tx.UpdatePolicy(ctx, &in); err != nil {
			return nil, nil, err
		}
		in.Version++
		return cur, in, nil
	})
	return in, err
}

// DeletePolicy removes the policy id. Open requests it gated keep their stages.
func (p *Pipeline) DeletePolicy(ctx context.Context, actor delegation.Actor, meta Meta, id string) error {
	return p.policyChange(ctx, actor, meta, ActionPolicyDelete, id, func(tx Tx) (before, after any, err error) {
		cur, err := findPolicy(ctx, tx, id)
		if err != nil {
			return nil, nil, err
		}
		return cur, nil, tx.DeletePolicy(ctx, cur.ID)
	})
}

// ReplacePolicies makes ps the whole policy set (a policy file loaded at start), recording one
// event when it differs from the stored set and nothing when it is the same.
func (p *Pipeline) ReplacePolicies(ctx context.Context, actor delegation.Actor, meta Meta, ps []approval.Policy) error {
	return p.policyChange(ctx, actor, meta, ActionPolicyReplace, "all", func(tx Tx) (before, after any, err error) {
		cur, err := tx.Policies(ctx)
		if err != nil {
			return nil, nil, err
		}
		byName := map[string]approval.Policy{}
		for _, c := range cur {
			byName[c.Name] = c
		}
		for i := range ps {
			if err := ps[i].Normalize(); err != nil {
				return nil, nil, fmt.Errorf("policy %q: %w", ps[i].Name, err)
			}
			if err := p.resolvePolicy(ctx, tx, &ps[i]); err != nil {
				return nil, nil, fmt.Errorf("policy %q: %w", ps[i].Name, err)
			}
			if c, ok := byName[ps[i].Name]; ok {
				ps[i].ID, ps[i].Version = c.ID, c.Version
			}
		}
		if samePolicies(cur, ps) {
			return nil, nil, errPoliciesSame
		}
		for _, c := range cur {
			if err := tx.DeletePolicy(ctx, c.ID); err != nil {
				return nil, nil, err
			}
		}
		for i := range ps {
			if ps[i].ID == "" {
				ps[i].ID = directory.NewID()
			}
			ps[i].Version++
			if err := tx.InsertPolicy(ctx, &ps[i]); err != nil {
				return nil, nil, err
			}
		}
		return cur, ps, tx.SetSetting(ctx, settingDefaults, "replaced")
	})
}

// errPoliciesSame ends a policy change that changes nothing, without an event.
var errPoliciesSame = errors.New("change: policies unchanged")

func samePolicies(a, b []approval.Policy) bool {
	strip := func(ps []approval.Policy) string {
		out := make([]approval.Policy, len(ps))
		for i, p := range ps {
			p.Version = 0
			out[i] = p
		}
		j, _ := json.Marshal(out)
		return string(j)
	}
	return strip(a) == strip(b)
}

// InstallDefaultPolicies installs the shipped policies once, on a database that never had
// them (deleting them later does not bring them back), and loads the policies into the gate.
func (p *Pipeline) InstallDefaultPolicies(ctx context.Context) error {
	err := p.policyChange(ctx, delegation.SystemActor("deputy"), Meta{Transport: "startup"}, ActionPolicyReplace, "defaults",
		func(tx Tx) (before, after any, err error) {
			if _, done, err := tx.Setting(ctx, settingDefaults); err != nil || done {
				if err == nil {
					err = errPoliciesSame
				}
				return nil, nil, err
			}
			ps := approval.Defaults()
			for i := range ps {
				if err := ps[i].Normalize(); err != nil {
					return nil, nil, fmt.Errorf("default policy %s: %w", ps[i].Name, err)
				}
				ps[i].ID, ps[i].Version = directory.NewID(), 1
				if err := tx.InsertPolicy(ctx, &ps[i]); err != nil {
					return nil, nil, err
				}
			}
			return nil, ps, tx.SetSetting(ctx, settingDefaults, "installed")
		})
	if err != nil {
		return err
	}
	return p.LoadPolicies(ctx)
}

// LoadPolicies reads the stored policies into the gate (at start, and after another replica
// changed them).
func (p *Pipeline) LoadPolicies(ctx context.Context) error {
	if p.gate == nil {
		return nil
	}
	var ps []approval.Policy
	err := p.store.InTx(ctx, func(tx Tx) error {
		var err error
		ps, err = tx.Policies(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("change: load approval policies: %w", err)
	}
	return p.gate.Set(ps)
}

// policyChange runs a policy write for actor (a tier-0 admin, or a system actor at start) with
// its audit event, then reloads the gate.
func (p *Pipeline) policyChange(ctx context.Context, actor delegation.Actor, meta Meta, action, name string,
	write func(tx Tx) (before, after any, err error)) error {
	op := Op{Action: delegation.Action(action), Target: directory.Ref{Kind: directory.KindPolicy, Name: name}}
	if actor.Kind != delegation.ActorSystem && (p.gate == nil || !p.gate.IsTier0(actor.ID)) {
		return p.Refuse(ctx, actor, meta, op, delegation.ReasonNotAuthorized, "only a tier-0 admin may change approval policies")
	}
	err := p.store.InTx(ctx, func(tx Tx) error {
		before, after, err := write(tx)
		if err != nil {
			return err
		}
		ev := p.event(actor, meta, &op, op.Target, audit.Timestamp(p.now()))
		ev.Outcome, ev.Authority.Rule = audit.Applied, "tier0"
		if actor.Kind == delegation.ActorSystem {
			ev.Authority.Rule = "configuration"
		}
		ev.Before, ev.After = policyRecord(before), policyRecord(after)
		if pol, ok := after.(approval.Policy); ok {
			ev.Target.ID, ev.Target.Name = pol.ID, pol.Name
		} else if pol, ok := before.(approval.Policy); ok {
			ev.Target.ID, ev.Target.Name = pol.ID, pol.Name
		}
		_, err = tx.AppendEvent(ctx, ev)
		return err
	})
	if errors.Is(err, errPoliciesSame) {
		return nil
	}
	if err != nil {
		return err
	}
	return p.LoadPolicies(ctx)
}

// policyRecord renders policies for an audit event.
func policyRecord(v any) map[string]any {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return nil
	}
	if list, ok := out.([]any); ok {
		return map[string]any{"policies": list}
	}
	return map[string]any{"policy": out}
}

func findPolicy(ctx context.Context, tx Tx, key string) (approval.Policy, error) {
	ps, err := tx.Policies(ctx)
	if err != nil {
		return approval.Policy{}, err
	}
	for _, p := range ps {
		if p.ID == strings.ToLower(key) || p.Name == key {
			return p, nil
		}
	}
	return approval.Policy{}, directory.NotFound(directory.KindPolicy, key)
}

// resolvePolicy checks in and resolves the OU, group, users and roles it names.
func (p *Pipeline) resolvePolicy(ctx context.Context, tx Tx, in *approval.Policy) error {
	if err := in.Normalize(); err != nil {
		return err
	}
	in.When.OUID, in.When.GroupID = "", ""
	if in.When.OU != "" {
		o, err := tx.OU(ctx, directory.ParseRef(directory.KindOU, strings.Trim(in.When.OU, "/")))
		if err != nil {
			return directory.Invalid("when.ou", "there is no OU %q", in.When.OU)
		}
		in.When.OUID, in.When.OU = o.ID, o.DisplayPath()
	}
	if in.When.Group != "" {
		g, err := tx.ResolveMember(ctx, directory.ParseRef(directory.KindGroup, in.When.Group))
		if err != nil {
			return directory.Invalid("when.group", "there is no group %q", in.When.Group)
		}
		in.When.GroupID, in.When.Group = g.ID, g.Name
	}
	for _, r := range in.When.Roles {
		if err := roleExists(ctx, tx, r); err != nil {
			return directory.Invalid("when.roles", "there is no role %q", r)
		}
	}
	for i := range in.Stages {
		for j, list := range [][]approval.Approver{in.Stages[i].Approvers, in.Stages[i].Escalate} {
			for k := range list {
				field := fmt.Sprintf("stages[%d].approvers[%d]", i, k)
				if j == 1 {
					field = fmt.Sprintf("stages[%d].escalate_to[%d]", i, k)
				}
				if err := resolveApprover(ctx, tx, &list[k], field); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func resolveApprover(ctx context.Context, tx Tx, a *approval.Approver, field string) error {
	a.ID = ""
	switch a.Kind {
	case approval.ApproverRole:
		if err := roleExists(ctx, tx, a.Role); err != nil {
			return directory.Invalid(field+".role", "there is no role %q", a.Role)
		}
	case approval.ApproverUser:
		u, err := tx.User(ctx, directory.ParseRef(directory.KindUser, a.User))
		if err != nil {
			return directory.Invalid(field+".user", "there is no user %q", a.User)
		}
		a.ID, a.User = u.ID, u.Username
	case approval.ApproverGroup:
		g, err := tx.ResolveMember(ctx, directory.ParseRef(directory.KindGroup, a.Group))
		if err != nil {
			return directory.Invalid(field+".group", "there is no group %q", a.Group)
		}
		a.ID, a.Group = g.ID, g.Name
	}
	return nil
}

func roleExists(ctx context.Context, tx Tx, name string) error {
	if _, ok := delegation.BuiltinRole(name); ok {
		return nil
	}
	_, err := tx.Role(ctx, name)
	return err
}
