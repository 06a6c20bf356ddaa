package change

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

func (pl *planner) groupCreate(ctx context.Context) (*plan, error) {
	in := *pl.op.Group
	if err := in.Normalize(); err != nil {
		return nil, err
	}
	ou, err := pl.ou(ctx, "ou", in.OU)
	if err != nil {
		return nil, err
	}
	owners, err := pl.owners(ctx, in.Owners)
	if err != nil {
		return nil, err
	}
	g := directory.Group{ID: directory.NewID(), Name: in.Name, Description: in.Description, OUID: ou.ID,
		OUPath: ou.DisplayPath(), Owners: owners, Protected: in.Protected, Version: 1, Created: pl.now, Updated: pl.now}
	return &plan{target: g.Ref(), after: g.Fields(), version: 1,
		write: func(ctx context.Context) error { return pl.tx.InsertGroup(ctx, &g) }}, nil
}

// currentGroup loads the op's target group and checks its version.
func (pl *planner) currentGroup(ctx context.Context) (directory.Group, error) {
	g, err := pl.tx.Group(ctx, pl.op.Target)
	if err != nil {
		return g, err
	}
	return g, pl.checkVersion(g.Version)
}

func (pl *planner) groupUpdate(ctx context.Context) (*plan, error) {
	cur, err := pl.currentGroup(ctx)
	if err != nil {
		return nil, err
	}
	in, touched, err := directory.PatchGroupInput(cur.Input(), pl.op.Patch)
	if err != nil {
		return nil, err
	}
	if err := in.Normalize(); err != nil {
		return nil, err
	}
	next := cur
	next.Name, next.Description, next.Protected, next.Updated = in.Name, in.Description, in.Protected, pl.now
	if next.Owners, err = pl.owners(ctx, in.Owners); err != nil {
		return nil, err
	}
	return &plan{target: cur.Ref(), before: cur.Fields(), after: next.Fields(), touched: touched,
		version: cur.Version + 1,
		write:   func(ctx context.Context) error { return pl.tx.UpdateGroup(ctx, &next) }}, nil
}

func (pl *planner) groupMove(ctx context.Context) (*plan, error) {
	cur, err := pl.currentGroup(ctx)
	if err != nil {
		return nil, err
	}
	return pl.relocate(ctx, &cur, cur.OUID, cur.Version, func(to directory.OU) (map[string]any, func(context.Context) error) {
		next := cur
		next.OUID, next.OUPath, next.Updated = to.ID, to.DisplayPath(), pl.now
		return next.Fields(), func(ctx context.Context) error { return pl.tx.UpdateGroup(ctx, &next) }
	})
}

func (pl *planner) groupDelete(ctx context.Context) (*plan, error) {
	cur, err := pl.currentGroup(ctx)
	if err != nil {
		return nil, err
	}
	before, err := pl.withRelations(ctx, cur.ID, cur.Fields())
	if err != nil {
		return nil, err
	}
	return &plan{target: cur.Ref(), before: before,
		write: func(ctx context.Context) error { return pl.tx.DeleteGroup(ctx, cur.ID, pl.now) }}, nil
}

// member resolves the op's member reference; an unknown member is a field error.
func (pl *planner) member(ctx context.Context) (directory.Ref, error) {
	ref, err := directory.ParseMemberRef(pl.op.Member)
	if err != nil {
		return ref, err
	}
	m, err := pl.tx.ResolveMember(ctx, ref)
	if errors.Is(err, directory.ErrNotFound) {
		return m, directory.Invalid("member", "there is no user, group or service account %q", pl.op.Member)
	}
	return m, err
}

// memberObject resolves the op's member; a member written as "user:NAME" is read once, with the
// attributes the authorizer needs (bulk imports add users by that form), otherwise obj is nil.
func (pl *planner) memberObject(ctx context.Context) (directory.Ref, *delegation.Object, error) {
	ref, err := directory.ParseMemberRef(pl.op.Member)
	if err != nil {
		return ref, nil, err
	}
	if ref.Kind != directory.KindUser {
		m, err := pl.member(ctx)
		return m, nil, err
	}
	u, err := pl.tx.User(ctx, ref)
	if errors.Is(err, directory.ErrNotFound) {
		return ref, nil, directory.Invalid("member", "there is no user, group or service account %q", pl.op.Member)
	}
	if err != nil {
		return ref, nil, err
	}
	return u.Ref(), &delegation.Object{Ref: u.Ref(), Fields: u.Fields()}, nil
}

// provenanceValue is a membership's provenance as an audit event records it.
func provenanceValue(p directory.Provenance) map[string]any {
	v := map[string]any{"source": p.Source, "by": map[string]string{"type": string(p.By.Kind), "id": p.By.ID, "name": p.By.Name},
		"at": p.At.UTC().Format(time.RFC3339Nano)}
	if p.SourceID != "" {
		v["source_id"] = p.SourceID
	}
	return v
}

func memberValue(m directory.Ref) map[string]any {
	return map[string]any{"member": map[string]string{"type": string(m.Kind), "id": m.ID, "name": m.Name}}
}

func (pl *planner) groupAddMember(ctx context.Context) (*plan, error) {
	g, err := pl.currentGroup(ctx)
	if err != nil {
		return nil, err
	}
	m, obj, err := pl.memberObject(ctx)
	if err != nil {
		return nil, err
	}
	if m.Kind == directory.KindGroup {
		if m.ID == g.ID {
			return nil, directory.Conflict("member", "a group cannot be a member of itself")
		}
		// Nesting m into g closes a cycle when m already contains g.
		cycle, err := pl.tx.Contains(ctx, m.ID, g.ID)
		if err != nil {
			return nil, err
		}
		if cycle {
			return nil, directory.Conflict("member", "group %s already contains %s (directly or through nesting); nesting it would make a cycle",
				m.Name, g.Name)
		}
	}
	if obj == nil {
		if obj, err = pl.object(ctx, m); err != nil {
			return nil, err
		}
	}
	// An existing membership is refused by the store when the write runs (a conflict on
	// "member"), which saves a read on the hot path of bulk imports.
	member := directory.Member{Ref: m, Provenance: directory.Provenance{
		Source: "manual", By: directory.Ref{Kind: directory.Kind(pl.actor.Kind), ID: pl.actor.ID, Name: pl.actor.Name}, At: pl.now}}
	if pl.op.Provenance != nil {
		member.Provenance = *pl.op.Provenance
	}
	fields := g.Fields()
	after := memberValue(m)
	after["provenance"] = member.Provenance.Source
	return &plan{target: g.Ref(), before: fields, after: fields, touched: []string{"members"}, version: g.Version + 1,
		relAfter: after, member: obj,
		write: func(ctx context.Context) error { return pl.tx.AddMember(ctx, &g, member, pl.now) }}, nil
}

func (pl *planner) groupRemoveMember(ctx context.Context) (*plan, error) {
	g, err := pl.currentGroup(ctx)
	if err != nil {
		return nil, err
	}
	m, err := pl.member(ctx)
	if err != nil {
		return nil, err
	}
	cur, in, err := pl.tx.Membership(ctx, g.ID, m)
	if err != nil {
		return nil, err
	} else if !in {
		return nil, fmt.Errorf("%s %s is not a direct member of group %s: %w", m.Kind.Noun(), m.Name, g.Name, directory.ErrNotFound)
	}
	fields := g.Fields()
	// The removal records the membership's provenance, so that undoing it restores it as it was.
	before := memberValue(m)
	before["provenance"] = provenanceValue(cur.Provenance)
	return &plan{target: g.Ref(), before: fields, after: fields, touched: []string{"members"}, version: g.Version + 1,
		relBefore: before,
		write:     func(ctx context.Context) error { return pl.tx.RemoveMember(ctx, &g, m, pl.now) }}, nil
}

func (pl *planner) saCreate(ctx context.Context) (*plan, error) {
	in := *pl.op.Service
	if err := in.Normalize(); err != nil {
		return nil, err
	}
	ou, err := pl.ou(ctx, "ou", in.OU)
	if err != nil {
		return nil, err
	}
	owners, err := pl.owners(ctx, in.Owners)
	if err != nil {
		return nil, err
	}
	s := directory.ServiceAccount{ID: directory.NewID(), Name: in.Name, Description: in.Description, OUID: ou.ID,
		OUPath: ou.DisplayPath(), Owners: owners, Status: in.Status, Protected: in.Protected, Orphaned: in.Orphaned,
		Version: 1, Created: pl.now, Updated: pl.now}
	return &plan{target: s.Ref(), after: s.Fields(), version: 1,
		write: func(ctx context.Context) error { return pl.tx.InsertServiceAccount(ctx, &s) }}, nil
}

func (pl *planner) currentSA(ctx context.Context) (directory.ServiceAccount, error) {
	s, err := pl.tx.ServiceAccount(ctx, pl.op.Target)
	if err != nil {
		return s, err
	}
	return s, pl.checkVersion(s.Version)
}

func (pl *planner) saUpdate(ctx context.Context) (*plan, error) {
	cur, err := pl.currentSA(ctx)
	if err != nil {
		return nil, err
	}
	in, touched, err := directory.PatchServiceAccountInput(cur.Input(), pl.op.Patch)
	if err != nil {
		return nil, err
	}
	if err := in.Normalize(); err != nil {
		return nil, err
	}
	next := cur
	next.Name, next.Description, next.Status, next.Protected, next.Updated = in.Name, in.Description, in.Status, in.Protected, pl.now
	next.Orphaned = orphanedAfter(in.Orphaned, touched)
	if next.Owners, err = pl.owners(ctx, in.Owners); err != nil {
		return nil, err
	}
	return &plan{target: cur.Ref(), before: cur.Fields(), after: next.Fields(), touched: touched,
		version: cur.Version + 1,
		write:   func(ctx context.Context) error { return pl.tx.UpdateServiceAccount(ctx, &next) }}, nil
}

func (pl *planner) saMove(ctx context.Context) (*plan, error) {
	cur, err := pl.currentSA(ctx)
	if err != nil {
		return nil, err
	}
	return pl.relocate(ctx, &cur, cur.OUID, cur.Version, func(to directory.OU) (map[string]any, func(context.Context) error) {
		next := cur
		next.OUID, next.OUPath, next.Updated = to.ID, to.DisplayPath(), pl.now
		return next.Fields(), func(ctx context.Context) error { return pl.tx.UpdateServiceAccount(ctx, &next) }
	})
}

func (pl *planner) saDelete(ctx context.Context) (*plan, error) {
	cur, err := pl.currentSA(ctx)
	if err != nil {
		return nil, err
	}
	before, err := pl.withRelations(ctx, cur.ID, cur.Fields())
	if err != nil {
		return nil, err
	}
	return &plan{target: cur.Ref(), before: before,
		write: func(ctx context.Context) error { return pl.tx.DeleteServiceAccount(ctx, cur.ID, pl.now) }}, nil
}
