package change

import (
	"context"
	"strings"

	"github.com/deputy-iam/deputy/internal/directory"
)

func (pl *planner) ouCreate(ctx context.Context) (*plan, error) {
	in := *pl.op.OU
	if err := in.Normalize(); err != nil {
		return nil, err
	}
	parent, err := pl.ou(ctx, "parent", in.Parent)
	if err != nil {
		return nil, err
	}
	id := directory.NewID()
	if pl.op.RestoreID != "" {
		if !directory.IsID(pl.op.RestoreID) {
			return nil, directory.Invalid("restore_id", "is not an ID")
		}
		id = pl.op.RestoreID
	}
	o := directory.OU{ID: id, Name: in.Name, ParentID: parent.ID, Path: parent.ChildPath(in.Name),
		Protected: in.Protected, Version: 1, Created: pl.now, Updated: pl.now}
	return &plan{target: o.Ref(), after: o.Fields(), version: 1,
		write: func(ctx context.Context) error { return pl.tx.InsertOU(ctx, &o) }}, nil
}

// currentOU loads the op's target OU, refusing the root: it is the fixed top of the tree.
func (pl *planner) currentOU(ctx context.Context) (directory.OU, error) {
	o, err := pl.tx.OU(ctx, pl.op.Target)
	if err != nil {
		return o, err
	}
	if o.ParentID == "" {
		return o, directory.Conflict("", "the root OU cannot be renamed, moved or deleted")
	}
	return o, pl.checkVersion(o.Version)
}

func (pl *planner) ouUpdate(ctx context.Context) (*plan, error) {
	cur, err := pl.currentOU(ctx)
	if err != nil {
		return nil, err
	}
	in, touched, err := directory.PatchOUInput(cur.Input(), pl.op.Patch)
	if err != nil {
		return nil, err
	}
	if err := in.Normalize(); err != nil {
		return nil, err
	}
	next := cur
	next.Name, next.Protected, next.Updated = in.Name, in.Protected, pl.now
	next.Path = parentPath(cur.Path) + in.Name
	return &plan{target: cur.Ref(), before: cur.Fields(), after: next.Fields(), touched: touched,
		version: cur.Version + 1,
		write:   func(ctx context.Context) error { return pl.tx.UpdateOU(ctx, &next, cur.Path) }}, nil
}

func (pl *planner) ouMove(ctx context.Context) (*plan, error) {
	cur, err := pl.currentOU(ctx)
	if err != nil {
		return nil, err
	}
	to, err := pl.ou(ctx, "to", pl.op.To)
	if err != nil {
		return nil, err
	}
	switch {
	case to.ID == cur.ParentID:
		return nil, errUnchanged("OU %s is already under %s", cur.Path, to.DisplayPath())
	case to.ID == cur.ID || strings.HasPrefix(to.Path, cur.Path+"/"):
		return nil, directory.Conflict("to", "OU %s cannot move into itself or its own subtree (%s)", cur.Path, to.DisplayPath())
	}
	next := cur
	next.ParentID, next.Path, next.Updated = to.ID, to.ChildPath(cur.Name), pl.now
	return &plan{target: cur.Ref(), before: cur.Fields(), after: next.Fields(), touched: []string{"parent"},
		version: cur.Version + 1,
		write:   func(ctx context.Context) error { return pl.tx.UpdateOU(ctx, &next, cur.Path) }}, nil
}

func (pl *planner) ouDelete(ctx context.Context) (*plan, error) {
	cur, err := pl.currentOU(ctx)
	if err != nil {
		return nil, err
	}
	n, err := pl.tx.OUContents(ctx, cur.ID)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, directory.Conflict("", "OU %s is not empty: it holds %d objects; move or delete them first", cur.Path, n)
	}
	return &plan{target: cur.Ref(), before: cur.Fields(),
		write: func(ctx context.Context) error { return pl.tx.DeleteOU(ctx, cur.ID) }}, nil
}

// parentPath is the path of an OU's parent with a trailing slash, or "" under the root.
func parentPath(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i+1]
	}
	return ""
}
