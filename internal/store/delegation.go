package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

const roleCols = `name, description, actions, user_attributes, version, created_at, updated_at, verify_identity`

func scanRole(r rowScanner) (delegation.Role, error) {
	var (
		role             delegation.Role
		actions, attrs   string
		created, updated int64
	)
	if err := r.Scan(&role.Name, &role.Description, &actions, &attrs, &role.Version, &created, &updated, &role.VerifyIdentity); err != nil {
		return role, err
	}
	role.Created, role.Updated = fromMicros(created), fromMicros(updated)
	if err := json.Unmarshal([]byte(actions), &role.Actions); err != nil {
		return role, fmt.Errorf("role %s: actions: %w", role.Name, err)
	}
	if err := json.Unmarshal([]byte(attrs), &role.UserAttributes); err != nil {
		return role, fmt.Errorf("role %s: user attributes: %w", role.Name, err)
	}
	return role, nil
}

// Role returns the custom role called name (built-in roles are not stored).
func (c *conn) Role(ctx context.Context, name string) (delegation.Role, error) {
	r, err := scanRole(c.queryRow(ctx, "SELECT "+roleCols+" FROM roles WHERE name = ?", name))
	if err != nil {
		return r, notFound(err, directory.KindRole, name)
	}
	return r, nil
}

// Roles lists the custom roles by name.
func (c *conn) Roles(ctx context.Context) ([]delegation.Role, error) {
	rows, err := c.query(ctx, "SELECT "+roleCols+" FROM roles ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("store: list roles: %w", err)
	}
	defer rows.Close()
	var out []delegation.Role
	for rows.Next() {
		r, err := scanRole(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list roles: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func roleArgs(r *delegation.Role) (string, string) {
	actions, _ := json.Marshal(r.Actions)
	attrs, _ := json.Marshal(r.UserAttributes)
	if r.UserAttributes == nil {
		attrs = []byte("[]")
	}
	return string(actions), string(attrs)
}

func (t *tx) InsertRole(ctx context.Context, r *delegation.Role) error {
	actions, attrs := roleArgs(r)
	_, err := t.exec(ctx, "INSERT INTO roles ("+roleCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		r.Name, r.Description, actions, attrs, r.Version, micros(r.Created), micros(r.Updated), boolInt(r.VerifyIdentity))
	return mapWriteError(err, "role")
}

func (t *tx) UpdateRole(ctx context.Context, r *delegation.Role) error {
	actions, attrs := roleArgs(r)
	res, err := t.exec(ctx, `UPDATE roles SET description = ?, actions = ?, user_attributes = ?, verify_identity = ?,
		version = version + 1, updated_at = ? WHERE name = ? AND version = ?`, r.Description, actions, attrs,
		boolInt(r.VerifyIdentity), micros(r.Updated), r.Name, r.Version)
	if err != nil {
		return mapWriteError(err, "role")
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		cur, gerr := t.Role(ctx, r.Name)
		if gerr != nil {
			return gerr
		}
		return directory.StaleVersion(r.Version, cur.Version)
	}
	r.Version++
	return nil
}

func (t *tx) DeleteRole(ctx context.Context, name string) error {
	_, err := t.exec(ctx, "DELETE FROM roles WHERE name = ?", name)
	return mapWriteError(err, "role")
}

// RoleAssignments counts the assignments of a role.
func (c *conn) RoleAssignments(ctx context.Context, name string) (int, error) {
	var n int
	if err := c.queryRow(ctx, "SELECT COUNT(*) FROM assignments WHERE role = ?", name).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count assignments of %s: %w", name, err)
	}
	return n, nil
}

const assignmentCols = `id, role, holder_kind, holder_id, holder_name, scope, valid_from, valid_until, can_redelegate,
	eligible, max_activation, active_until, granted_by, granted_by_name, justification, created_at, version, source`

func scanAssignment(r rowScanner) (delegation.Assignment, error) {
	var (
		a                                  delegation.Assignment
		holderKind, scope                  string
		from, until, active, created, maxA int64
	)
	err := r.Scan(&a.ID, &a.Role, &holderKind, &a.Holder.ID, &a.Holder.Name, &scope, &from, &until, &a.CanRedelegate,
		&a.Eligible, &maxA, &active, &a.GrantedBy.ID, &a.GrantedBy.Name, &a.Justification, &created, &a.Version, &a.Source)
	if err != nil {
		return a, err
	}
	a.Holder.Kind = directory.Kind(holderKind)
	a.GrantedBy.Kind = directory.KindUser
	if len(a.GrantedBy.ID) > 7 && a.GrantedBy.ID[:7] == "system:" {
		a.GrantedBy.Kind = "system"
	}
	a.From, a.Until, a.ActiveUntil, a.Created = fromMicros(from), fromMicros(until), fromMicros(active), fromMicros(created)
	a.MaxActivation = maxA
	if err := json.Unmarshal([]byte(scope), &a.Scope); err != nil {
		return a, fmt.Errorf("assignment %s: scope: %w", a.ID, err)
	}
	return a, nil
}

// Assignment returns the assignment with id.
func (c *conn) Assignment(ctx context.Context, id string) (delegation.Assignment, error) {
	a, err := scanAssignment(c.queryRow(ctx, "SELECT "+assignmentCols+" FROM assignments WHERE id = ?", id))
	if err != nil {
		return a, notFound(err, directory.KindAssignment, id)
	}
	return a, nil
}

// Assignments lists assignments, optionally only those of a role or held by a holder (ID), in
// ID (creation) order after the cursor.
func (c *conn) Assignments(ctx context.Context, role, holder, after string, limit int) ([]delegation.Assignment, error) {
	rows, err := c.query(ctx, `SELECT `+assignmentCols+` FROM assignments WHERE (? = '' OR role = ?)
		AND (? = '' OR holder_id = ?) AND id > ? ORDER BY id LIMIT ?`, role, role, holder, holder, after, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("store: list assignments: %w", err)
	}
	defer rows.Close()
	var out []delegation.Assignment
	for rows.Next() {
		a, err := scanAssignment(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list assignments: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func (t *tx) InsertAssignment(ctx context.Context, a *delegation.Assignment) error {
	scope, err := json.Marshal(a.Scope)
	if err != nil {
		return fmt.Errorf("store: encode scope: %w", err)
	}
	_, err = t.exec(ctx, "INSERT INTO assignments ("+assignmentCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.Role, string(a.Holder.Kind), a.Holder.ID, a.Holder.Name, string(scope), micros(a.From), micros(a.Until),
		boolInt(a.CanRedelegate), boolInt(a.Eligible), a.MaxActivation, micros(a.ActiveUntil), a.GrantedBy.ID,
		a.GrantedBy.Name, a.Justification, micros(a.Created), a.Version, a.Source)
	return mapWriteError(err, "assignment")
}

// ActivateAssignment sets an assignment's activation end, at the next version.
func (t *tx) ActivateAssignment(ctx context.Context, a *delegation.Assignment) error {
	res, err := t.exec(ctx, "UPDATE assignments SET active_until = ?, version = version + 1 WHERE id = ? AND version = ?",
		micros(a.ActiveUntil), a.ID, a.Version)
	if err := t.checkUpdated(ctx, res, err, "assignments", directory.KindAssignment, a.ID, a.Version, "assignment"); err != nil {
		return err
	}
	a.Version++
	return nil
}

func (t *tx) DeleteAssignment(ctx context.Context, id string) error {
	_, err := t.exec(ctx, "DELETE FROM assignments WHERE id = ?", id)
	return mapWriteError(err, "assignment")
}

// EventsSince returns the applied events after index after, in order (the delegation engine's
// catch-up with other writers).
func (c *conn) EventsSince(ctx context.Context, after int64) ([]audit.Event, error) {
	rows, err := c.query(ctx, "SELECT body FROM audit_events WHERE idx > ? AND outcome = 'applied' ORDER BY idx", after)
	if err != nil {
		return nil, fmt.Errorf("store: read events since %d: %w", after, err)
	}
	defer rows.Close()
	var out []audit.Event
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("store: read events since %d: %w", after, err)
		}
		e, err := audit.Decode(body)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// AuthzSnapshot reads what the delegation engine loads, in one read transaction so that the
// tables and the log's last index agree.
func (s *Store) AuthzSnapshot(ctx context.Context) (delegation.Snapshot, error) {
	var snap delegation.Snapshot
	opts := &sql.TxOptions{ReadOnly: true}
	if s.d.name == "postgres" {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return snap, fmt.Errorf("store: snapshot: %w", err)
	}
	defer tx.Rollback()
	c := &conn{d: s.d, db: s.db, tx: tx}
	if snap.Roles, err = c.Roles(ctx); err != nil {
		return snap, err
	}
	for after := ""; ; {
		page, err := c.Assignments(ctx, "", "", after, 1000)
		if err != nil {
			return snap, err
		}
		snap.Assignments = append(snap.Assignments, page...)
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].ID
	}
	pairs := func(q string) ([][2]string, error) {
		rows, err := c.rawQuery(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("store: snapshot: %w", err)
		}
		defer rows.Close()
		var out [][2]string
		for rows.Next() {
			var p [2]string
			if err := rows.Scan(&p[0], &p[1]); err != nil {
				return nil, fmt.Errorf("store: snapshot: %w", err)
			}
			out = append(out, p)
		}
		return out, rows.Err()
	}
	if snap.Memberships, err = pairs("SELECT group_id, member_id FROM group_members"); err != nil {
		return snap, err
	}
	if snap.OUs, err = pairs("SELECT id, COALESCE(parent_id, '') FROM ous"); err != nil {
		return snap, err
	}
	owners := map[string][]string{}
	for _, q := range []string{"SELECT group_id, user_id FROM group_owners", "SELECT sa_id, user_id FROM sa_owners"} {
		ps, err := pairs(q)
		if err != nil {
			return snap, err
		}
		for _, p := range ps {
			owners[p[0]] = append(owners[p[0]], p[1])
		}
	}
	rows, err := c.rawQuery(ctx, `SELECT id, 'user', status, protected, ou_id, COALESCE(manager_id, '') FROM users UNION ALL
		SELECT id, 'group', '', protected, ou_id, '' FROM groups UNION ALL
		SELECT id, 'service_account', status, protected, ou_id, '' FROM service_accounts`)
	if err != nil {
		return snap, fmt.Errorf("store: snapshot: %w", err)
	}
	for rows.Next() {
		var o delegation.SnapshotObject
		if err := rows.Scan(&o.ID, &o.Kind, &o.Status, &o.Protected, &o.OU, &o.Manager); err != nil {
			rows.Close()
			return snap, fmt.Errorf("store: snapshot: %w", err)
		}
		o.Owners = owners[o.ID]
		snap.Objects = append(snap.Objects, o)
	}
	rows.Close()
	if err := c.rawQueryRow(ctx, "SELECT COALESCE(MAX(idx), -1) FROM audit_events").Scan(&snap.LastIndex); err != nil {
		return snap, fmt.Errorf("store: snapshot: %w", err)
	}
	return snap, nil
}
