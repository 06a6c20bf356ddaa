package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
)

const userCols = `u.id, u.username, u.given_name, u.family_name, u.display_name, u.email, u.phone, u.employee_id,
	u.department, u.title, COALESCE(u.manager_id, ''), COALESCE(m.username, ''), u.location, u.employment_type,
	u.status, u.ou_id, o.path, u.attributes, u.protected, u.version, u.created_at, u.updated_at, u.last_sign_in_at`

const userFrom = `FROM users u JOIN ous o ON o.id = u.ou_id LEFT JOIN users m ON m.id = u.manager_id`

// scanUser reads userCols plus any extra destinations (a sort key).
func scanUser(r rowScanner, extra ...any) (directory.User, error) {
	var (
		u                            directory.User
		attrs                        string
		created, updated, lastSignIn int64
	)
	dest := []any{&u.ID, &u.Username, &u.GivenName, &u.FamilyName, &u.DisplayName, &u.Email, &u.Phone,
		&u.EmployeeID, &u.Department, &u.Title, &u.ManagerID, &u.ManagerName, &u.Location, &u.EmploymentType,
		&u.Status, &u.OUID, &u.OUPath, &attrs, &u.Protected, &u.Version, &created, &updated, &lastSignIn}
	if err := r.Scan(append(dest, extra...)...); err != nil {
		return u, err
	}
	if u.OUPath == "" {
		u.OUPath = directory.RootPath
	}
	u.Created, u.Updated, u.LastSignIn = fromMicros(created), fromMicros(updated), fromMicros(lastSignIn)
	if err := json.Unmarshal([]byte(attrs), &u.Attributes); err != nil {
		return u, fmt.Errorf("user %s: attributes: %w", u.ID, err)
	}
	return u, nil
}

// User returns the user with ref's ID or username (case-insensitively).
func (c *conn) User(ctx context.Context, ref directory.Ref) (directory.User, error) {
	var row rowScanner
	if ref.ID != "" {
		row = c.queryRow(ctx, "SELECT "+userCols+" "+userFrom+" WHERE u.id = ?", ref.ID)
	} else {
		row = c.queryRow(ctx, "SELECT "+userCols+" "+userFrom+" WHERE u.username_key = ?", directory.CanonicalKey(ref.Name))
	}
	u, err := scanUser(row)
	if err != nil {
		return u, notFound(err, directory.KindUser, ref.Key())
	}
	return u, nil
}

// ListUsers lists users in username order.
func (c *conn) ListUsers(ctx context.Context, q directory.ListQuery) (directory.Page[directory.User], error) {
	spec := listSpec{cols: userCols + ", u.username_key", from: userFrom, sortKey: "u.username_key", tieKey: "u.id",
		fields: userFields}
	return list(ctx, c, spec, q, func(r rowScanner) (directory.User, cursor, error) {
		var key string
		u, err := scanUser(r, &key)
		return u, cursor{Key: key, Tie: u.ID}, err
	})
}

func userArgs(u *directory.User) ([]any, error) {
	attrs, err := json.Marshal(u.Attributes)
	if err != nil {
		return nil, fmt.Errorf("store: encode attributes: %w", err)
	}
	if u.Attributes == nil {
		attrs = []byte("{}")
	}
	return []any{u.Username, directory.CanonicalKey(u.Username), u.GivenName, u.FamilyName, u.DisplayName,
		u.Email, nullable(directory.CanonicalKey(u.Email)), u.Phone, u.EmployeeID,
		nullable(directory.CanonicalKey(u.EmployeeID)), u.Department, u.Title, nullable(u.ManagerID), u.Location,
		u.EmploymentType, string(u.Status), u.OUID, string(attrs), boolInt(u.Protected)}, nil
}

func (t *tx) InsertUser(ctx context.Context, u *directory.User) error {
	args, err := userArgs(u)
	if err != nil {
		return err
	}
	args = append(args, u.Version, micros(u.Created), micros(u.Updated), micros(u.LastSignIn), u.ID)
	_, err = t.exec(ctx, `INSERT INTO users (username, username_key, given_name, family_name, display_name, email,
		email_key, phone, employee_id, employee_id_key, department, title, manager_id, location, employment_type,
		status, ou_id, attributes, protected, version, created_at, updated_at, last_sign_in_at, id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	if err != nil {
		return mapWriteError(err, "user")
	}
	t.rememberNewUser(u)
	return nil
}

func (t *tx) UpdateUser(ctx context.Context, u *directory.User) error {
	t.forgetUsers()
	args, err := userArgs(u)
	if err != nil {
		return err
	}
	args = append(args, micros(u.Updated), u.ID, u.Version)
	res, err := t.exec(ctx, `UPDATE users SET username = ?, username_key = ?, given_name = ?, family_name = ?,
		display_name = ?, email = ?, email_key = ?, phone = ?, employee_id = ?, employee_id_key = ?, department = ?,
		title = ?, manager_id = ?, location = ?, employment_type = ?, status = ?, ou_id = ?, attributes = ?,
		protected = ?, version = version + 1, updated_at = ? WHERE id = ? AND version = ?`, args...)
	if err := t.checkUpdated(ctx, res, err, "users", directory.KindUser, u.ID, u.Version, "user"); err != nil {
		return err
	}
	u.Version++
	return nil
}

// DeleteUser removes the user and everything that hangs off it: memberships, ownerships of
// groups and service accounts (each moved to its next version), tokens and assignments. The
// pipeline has refused the delete beforehand when the user still manages others or is the only
// owner of a service account.
func (t *tx) DeleteUser(ctx context.Context, id string, now time.Time) error {
	t.forgetUsers()
	return t.deleteObject(ctx, id, now, "user",
		"DELETE FROM group_members WHERE member_id = ?",
		"DELETE FROM group_owners WHERE user_id = ?",
		"DELETE FROM sa_owners WHERE user_id = ?",
		"DELETE FROM api_tokens WHERE owner_id = ?",
		"DELETE FROM assignments WHERE holder_id = ?",
		"DELETE FROM users WHERE id = ?")
}

// touchRelated moves the groups and service accounts linked to object id (as a member or an
// owner) to their next version: deleting id changes them.
func (t *tx) touchRelated(ctx context.Context, id string, now time.Time) error {
	if _, err := t.exec(ctx, `UPDATE groups SET version = version + 1, updated_at = ? WHERE id IN
		(SELECT group_id FROM group_members WHERE member_id = ? UNION SELECT group_id FROM group_owners WHERE user_id = ?)`,
		micros(now), id, id); err != nil {
		return fmt.Errorf("store: update groups linked to %s: %w", id, err)
	}
	if _, err := t.exec(ctx, `UPDATE service_accounts SET version = version + 1, updated_at = ?
		WHERE id IN (SELECT sa_id FROM sa_owners WHERE user_id = ?)`, micros(now), id); err != nil {
		return fmt.Errorf("store: update service accounts linked to %s: %w", id, err)
	}
	return nil
}

// deleteObject bumps the objects linked to id, then runs the deletes in order.
func (t *tx) deleteObject(ctx context.Context, id string, now time.Time, what string, deletes ...string) error {
	t.forgetGroups()
	if err := t.touchRelated(ctx, id, now); err != nil {
		return err
	}
	for _, q := range deletes {
		if _, err := t.exec(ctx, q, id); err != nil {
			return mapWriteError(err, what)
		}
	}
	return nil
}

// Relations reads the direct memberships of object id and, for a user, what it owns.
func (t *tx) Relations(ctx context.Context, id string) (directory.Relations, error) {
	var rel directory.Relations
	for _, r := range []struct {
		kind directory.Kind
		q    string
		dst  *[]directory.Ref
	}{
		{directory.KindGroup, "SELECT g.id, g.name FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.member_id = ? ORDER BY g.name_key", &rel.MemberOf},
		{directory.KindGroup, "SELECT g.id, g.name FROM group_owners o JOIN groups g ON g.id = o.group_id WHERE o.user_id = ? ORDER BY g.name_key", &rel.OwnsGroups},
		{directory.KindServiceAccount, "SELECT s.id, s.name FROM sa_owners o JOIN service_accounts s ON s.id = o.sa_id WHERE o.user_id = ? ORDER BY s.name_key", &rel.OwnsServiceAccounts},
	} {
		rows, err := t.query(ctx, r.q, id)
		if err != nil {
			return rel, fmt.Errorf("store: read relations of %s: %w", id, err)
		}
		for rows.Next() {
			ref := directory.Ref{Kind: r.kind}
			if err := rows.Scan(&ref.ID, &ref.Name); err != nil {
				rows.Close()
				return rel, fmt.Errorf("store: read relations of %s: %w", id, err)
			}
			*r.dst = append(*r.dst, ref)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return rel, fmt.Errorf("store: read relations of %s: %w", id, err)
		}
	}
	return rel, nil
}

// Reports counts the users whose manager is id.
func (t *tx) Reports(ctx context.Context, id string) (int, error) {
	var n int
	if err := t.queryRow(ctx, "SELECT COUNT(*) FROM users WHERE manager_id = ?", id).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count reports: %w", err)
	}
	return n, nil
}

// SoleOwnerOf lists the service accounts whose only owner is the user id.
func (t *tx) SoleOwnerOf(ctx context.Context, id string) ([]directory.Ref, error) {
	rows, err := t.query(ctx, `SELECT s.id, s.name FROM sa_owners o JOIN service_accounts s ON s.id = o.sa_id
		WHERE o.user_id = ? AND NOT EXISTS (SELECT 1 FROM sa_owners x WHERE x.sa_id = o.sa_id AND x.user_id <> o.user_id)
		ORDER BY s.name_key`, id)
	if err != nil {
		return nil, fmt.Errorf("store: sole ownerships: %w", err)
	}
	defer rows.Close()
	var refs []directory.Ref
	for rows.Next() {
		r := directory.Ref{Kind: directory.KindServiceAccount}
		if err := rows.Scan(&r.ID, &r.Name); err != nil {
			return nil, fmt.Errorf("store: sole ownerships: %w", err)
		}
		refs = append(refs, r)
	}
	return refs, rows.Err()
}

// userFactCols are the user columns authorization reads (no custom attributes, names or
// contact data): what a scope that is not a filter, and the guardrails, look at.
const userFactCols = `u.id, u.username, u.status, u.ou_id, COALESCE(u.manager_id, ''), u.protected`

// EachUserFact calls fn for every user f selects, with only the fields authorization reads (ID,
// username, status, OU ID, manager ID, protection), in no particular order: one query, no sort,
// indexes free for the planner to use, so that a scope is read in time proportional to its
// size. f may hold only structural nodes (filter.OnlyStructural): nothing else is joined.
func (c *conn) EachUserFact(ctx context.Context, f filter.Expr, fn func(directory.User) error) error {
	if !filter.OnlyStructural(f) {
		return fmt.Errorf("store: user facts: the filter tests attributes, which are not read")
	}
	w, args, err := c.where(f, userFields, false)
	if err != nil {
		return err
	}
	rows, err := c.rawQuery(ctx, "SELECT "+userFactCols+" FROM users u WHERE "+w, args...)
	if err != nil {
		return fmt.Errorf("store: user facts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var u directory.User
		if err := rows.Scan(&u.ID, &u.Username, &u.Status, &u.OUID, &u.ManagerID, &u.Protected); err != nil {
			return fmt.Errorf("store: user facts: %w", err)
		}
		if err := fn(u); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: user facts: %w", err)
	}
	return nil
}
