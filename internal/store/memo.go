package store

import (
	"context"
	"maps"
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
	users  map[string]directory.User  // by "id:" + ID and "name:" + folded username
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

// User reads a user through the transaction's memo (a bulk import reads each new user once per
// group it joins). Any user or OU write forgets every remembered user: a rename changes other
// users' manager names, an OU move their paths.
func (t *tx) User(ctx context.Context, ref directory.Ref) (directory.User, error) {
	key := groupKey(ref)
	if u, ok := t.memo.users[key]; ok {
		u.Attributes = maps.Clone(u.Attributes)
		return u, nil
	}
	u, err := t.conn.User(ctx, ref)
	if err != nil {
		return u, err
	}
	if t.memo.users == nil {
		t.memo.users = map[string]directory.User{}
	}
	t.memo.users["id:"+u.ID] = u
	t.memo.users[groupKey(directory.Ref{Name: u.Username})] = u
	u.Attributes = maps.Clone(u.Attributes)
	return u, nil
}

// rememberNewUser puts a user the transaction just inserted into the memo, as a read would
// return it (a bulk import adds each new user to groups right after creating them). Only a
// user whose read-side names are filled in (its OU's path, its manager's username) qualifies.
func (t *tx) rememberNewUser(u *directory.User) {
	if u.OUPath == "" || u.ManagerID != "" && u.ManagerName == "" {
		return
	}
	if t.memo.users == nil {
		t.memo.users = map[string]directory.User{}
	}
	m := *u
	m.Attributes = maps.Clone(u.Attributes)
	if m.Attributes == nil {
		m.Attributes = map[string]string{} // as stored: {}
	}
	t.memo.users["id:"+m.ID] = m
	t.memo.users[groupKey(directory.Ref{Name: m.Username})] = m
}

// forgetUsers drops the remembered users.
func (t *tx) forgetUsers() { t.memo.users = nil }

// forgetOUs drops the remembered OUs and users (after any OU write: a move rewrites many paths).
func (t *tx) forgetOUs() { t.memo.ous, t.memo.users = nil, nil }

// forgetGroups drops the remembered groups (after a write that changes groups other than by a
// version bump the caller records itself).
func (t *tx) forgetGroups() { t.memo.groups = nil }
