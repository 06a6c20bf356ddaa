package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/directory"
)

const groupCols = `g.id, g.name, g.description, g.ou_id, o.path, g.protected, g.version, g.created_at, g.updated_at`

const groupFrom = `FROM groups g JOIN ous o ON o.id = g.ou_id`

func scanGroup(r rowScanner, extra ...any) (directory.Group, error) {
	var (
		g                directory.Group
		created, updated int64
	)
	dest := []any{&g.ID, &g.Name, &g.Description, &g.OUID, &g.OUPath, &g.Protected, &g.Version, &created, &updated}
	if err := r.Scan(append(dest, extra...)...); err != nil {
		return g, err
	}
	if g.OUPath == "" {
		g.OUPath = directory.RootPath
	}
	g.Created, g.Updated = fromMicros(created), fromMicros(updated)
	return g, nil
}

// Group returns the group with ref's ID or name, with its owners.
func (c *conn) Group(ctx context.Context, ref directory.Ref) (directory.Group, error) {
	var row rowScanner
	if ref.ID != "" {
		row = c.queryRow(ctx, "SELECT "+groupCols+" "+groupFrom+" WHERE g.id = ?", ref.ID)
	} else {
		row = c.queryRow(ctx, "SELECT "+groupCols+" "+groupFrom+" WHERE g.name_key = ?", directory.CanonicalKey(ref.Name))
	}
	g, err := scanGroup(row)
	if err != nil {
		return g, notFound(err, directory.KindGroup, ref.Key())
	}
	owners, err := c.owners(ctx, "group_owners", "group_id", []string{g.ID})
	g.Owners = owners[g.ID]
	return g, err
}

// ListGroups lists groups in name order, with their owners.
func (c *conn) ListGroups(ctx context.Context, q directory.ListQuery) (directory.Page[directory.Group], error) {
	spec := listSpec{cols: groupCols + ", g.name_key", from: groupFrom, sortKey: "g.name_key", tieKey: "g.id", fields: groupFields}
	page, err := list(ctx, c, spec, q, func(r rowScanner) (directory.Group, cursor, error) {
		var key string
		g, err := scanGroup(r, &key)
		return g, cursor{Key: key, Tie: g.ID}, err
	})
	if err != nil || len(page.Items) == 0 {
		return page, err
	}
	ids := make([]string, len(page.Items))
	for i, g := range page.Items {
		ids[i] = g.ID
	}
	owners, err := c.owners(ctx, "group_owners", "group_id", ids)
	for i := range page.Items {
		page.Items[i].Owners = owners[page.Items[i].ID]
	}
	return page, err
}

// owners reads the owners of the objects ids from an owner table, keyed by object ID.
func (c *conn) owners(ctx context.Context, table, key string, ids []string) (map[string][]directory.Ref, error) {
	q := fmt.Sprintf(`SELECT x.%s, u.id, u.username FROM %s x JOIN users u ON u.id = x.user_id
		WHERE x.%s IN (%s) ORDER BY u.username_key`, key, table, key, placeholders(len(ids)))
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	var (
		rows *sql.Rows
		err  error
	)
	if len(ids) == 1 {
		rows, err = c.query(ctx, q, args...) // the single-object read is hot: keep it prepared
	} else {
		rows, err = c.rawQuery(ctx, q, args...)
	}
	if err != nil {
		return nil, fmt.Errorf("store: read owners: %w", err)
	}
	defer rows.Close()
	out := map[string][]directory.Ref{}
	for rows.Next() {
		var obj string
		r := directory.Ref{Kind: directory.KindUser}
		if err := rows.Scan(&obj, &r.ID, &r.Name); err != nil {
			return nil, fmt.Errorf("store: read owners: %w", err)
		}
		out[obj] = append(out[obj], r)
	}
	return out, rows.Err()
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// setOwners replaces the owners of an object.
func (t *tx) setOwners(ctx context.Context, table, key, id string, owners []directory.Ref) error {
	if _, err := t.exec(ctx, "DELETE FROM "+table+" WHERE "+key+" = ?", id); err != nil {
		return fmt.Errorf("store: replace owners: %w", err)
	}
	for _, o := range owners {
		if _, err := t.exec(ctx, "INSERT INTO "+table+" ("+key+", user_id) VALUES (?, ?)", id, o.ID); err != nil {
			return fmt.Errorf("store: add owner %s: %w", o.Name, err)
		}
	}
	return nil
}

func (t *tx) InsertGroup(ctx context.Context, g *directory.Group) error {
	t.forgetGroups()
	_, err := t.exec(ctx, `INSERT INTO groups (id, name, name_key, description, ou_id, protected, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, g.ID, g.Name, directory.CanonicalKey(g.Name), g.Description, g.OUID,
		boolInt(g.Protected), g.Version, micros(g.Created), micros(g.Updated))
	if err != nil {
		return mapWriteError(err, "group")
	}
	return t.setOwners(ctx, "group_owners", "group_id", g.ID, g.Owners)
}

func (t *tx) UpdateGroup(ctx context.Context, g *directory.Group) error {
	t.forgetGroups()
	res, err := t.exec(ctx, `UPDATE groups SET name = ?, name_key = ?, description = ?, ou_id = ?, protected = ?,
		version = version + 1, updated_at = ? WHERE id = ? AND version = ?`,
		g.Name, directory.CanonicalKey(g.Name), g.Description, g.OUID, boolInt(g.Protected), micros(g.Updated), g.ID, g.Version)
	if err := t.checkUpdated(ctx, res, err, "groups", directory.KindGroup, g.ID, g.Version, "group"); err != nil {
		return err
	}
	g.Version++
	return t.setOwners(ctx, "group_owners", "group_id", g.ID, g.Owners)
}

// bumpGroup moves a group to its next version after a membership change.
func (t *tx) bumpGroup(ctx context.Context, g *directory.Group, now time.Time) error {
	res, err := t.exec(ctx, "UPDATE groups SET version = version + 1, updated_at = ? WHERE id = ? AND version = ?",
		micros(now), g.ID, g.Version)
	if err := t.checkUpdated(ctx, res, err, "groups", directory.KindGroup, g.ID, g.Version, "group"); err != nil {
		t.forgetGroups()
		return err
	}
	g.Version++
	if m, ok := t.memo.groups["id:"+g.ID]; ok {
		m.Version, m.Updated = g.Version, fromMicros(micros(now))
		t.rememberGroup(m)
	}
	return nil
}

// DeleteGroup removes the group, its memberships in other groups (each moved to its next
// version) and its own members.
func (t *tx) DeleteGroup(ctx context.Context, id string, now time.Time) error {
	return t.deleteObject(ctx, id, now, "group",
		"DELETE FROM group_members WHERE member_id = ?",
		"DELETE FROM group_members WHERE group_id = ?",
		"DELETE FROM group_owners WHERE group_id = ?",
		"DELETE FROM groups WHERE id = ?")
}
