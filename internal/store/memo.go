package store

import (
	"context"
	"slices"
	"strings"

	"github.com/deputy-iam/deputy/internal/directory"
)

// A write transaction remembers the OUs and groups it has read, because a batch of ops reads the
// same few again and again (every user created into corp/sales reads that OU; every member added
// to sales-all reads that group). The memo is exact: nothing else writes while the
// transaction runs (SQLite has one writer; on PostgreSQL every writer holds the audit lock from
// its start), and the transaction's own writes update or drop what they change.
type memo struct {
	ous    map[string]directory.OU    // by "id:" + ID and "path:" + folded path
	groups map[string]directory.Group // by "id:" + ID and "name:" + folded name
}

func ouKey(ref directory.Ref) string {
	if ref.ID != "" {
		return "id:" + ref.ID
	}
	return "path:" + directory.CanonicalKey(strings.Trim(ref.Name, "/"))
}

func groupKey(ref directory.Ref) string {
	if ref.ID != "" {
		return "id:" + ref.ID
	}
	return "name:" + directory.CanonicalKey(ref.Name)
}

// OU reads an OU through the transaction's memo.
func (t *tx) OU(ctx context.Context, ref directory.Ref) (directory.OU, error) {
	if o, ok := t.memo.ous[ouKey(ref)]; ok {
		return o, nil
	}
	o, err := t.conn.OU(ctx, ref)
	if err != nil {
		return o, err
	}
	if t.memo.ous == nil {
		t.memo.ous = map[string]directory.OU{}
	}
	t.memo.ous["id:"+o.ID] = o
	t.memo.ous[ouKey(directory.Ref{Name: o.Path})] = o
	return o, nil
}

// Group reads a group through the transaction's memo.
func (t *tx) Group(ctx context.Context, ref directory.Ref) (directory.Group, error) {
	if g, ok := t.memo.groups[groupKey(ref)]; ok {
		g.Owners = slices.Clone(g.Owners)
		return g, nil
	}
	g, err := t.conn.Group(ctx, ref)
	if err != nil {
		return g, err
	}
	t.rememberGroup(g)
	g.Owners = slices.Clone(g.Owners)
	return g, nil
}

func (t *tx) rememberGroup(g directory.Group) {
	if t.memo.groups == nil {
		t.memo.groups = map[string]directory.Group{}
	}
	t.memo.groups["id:"+g.ID] = g
	t.memo.groups[groupKey(directory.Ref{Name: g.Name})] = g
}

// forgetOUs drops the remembered OUs (after any OU write: a move rewrites many paths).
func (t *tx) forgetOUs() { t.memo.ous = nil }

// forgetGroups drops the remembered groups (after a write that changes groups other than by a
// version bump the caller records itself).
func (t *tx) forgetGroups() { t.memo.groups = nil }
