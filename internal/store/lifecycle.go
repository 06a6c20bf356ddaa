package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/lifecycle"
)

// LifecycleCurrent reads what planning an HR feed needs, in a handful of whole-table queries:
// every user with an employee ID (with their memberships, assignments, owned objects and report
// counts), every username taken, and the number of active users.
func (c *conn) LifecycleCurrent(ctx context.Context) (*lifecycle.Current, error) {
	cur := &lifecycle.Current{Accounts: map[string]*lifecycle.Account{}, Usernames: map[string]bool{}}
	byID := map[string]*lifecycle.Account{}
	rows, err := c.rawQuery(ctx, `SELECT u.id, u.username, u.employee_id, u.status, o.path, COALESCE(u.manager_id, ''), u.given_name,
		u.family_name, u.display_name, u.email, u.department, u.title, u.location, u.employment_type, u.attributes, u.protected
		FROM users u JOIN ous o ON o.id = u.ou_id`)
	if err != nil {
		return nil, fmt.Errorf("store: lifecycle users: %w", err)
	}
	for rows.Next() {
		var (
			a             lifecycle.Account
			status, attrs string
			path          string
			protected     bool
		)
		if err := rows.Scan(&a.UserID, &a.Username, &a.EmployeeID, &status, &path, &a.Manager, &a.GivenName, &a.FamilyName,
			&a.DisplayName, &a.Email, &a.Department, &a.Title, &a.Location, &a.EmploymentType, &attrs, &protected); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: lifecycle users: %w", err)
		}
		cur.Usernames[strings.ToLower(a.Username)] = true
		a.Status, a.Protected = directory.Status(status), protected
		if a.Status == directory.StatusActive {
			cur.ActiveUsers++
		}
		if a.EmployeeID == "" {
			continue
		}
		a.OU = path
		if path == "" {
			a.OU = directory.RootPath
		}
		if err := json.Unmarshal([]byte(attrs), &a.Attributes); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: lifecycle user %s: attributes: %w", a.Username, err)
		}
		acc := a
		cur.Accounts[a.EmployeeID] = &acc
		byID[a.UserID] = &acc
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: lifecycle users: %w", err)
	}
	if err := c.eachRow(ctx, `SELECT gm.member_id, g.id, g.name, gm.source, gm.source_id FROM group_members gm
		JOIN groups g ON g.id = gm.group_id WHERE gm.member_type = 'user'`, func(r rowScanner) error {
		var (
			user string
			h    lifecycle.Held
		)
		if err := r.Scan(&user, &h.Group.ID, &h.Group.Name, &h.Source, &h.SourceID); err != nil {
			return err
		}
		if a := byID[user]; a != nil {
			h.Group.Kind = directory.KindGroup
			a.Groups = append(a.Groups, h)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("store: lifecycle memberships: %w", err)
	}
	if err := c.eachRow(ctx, `SELECT id, role, holder_id, source, granted_by FROM assignments WHERE holder_kind = 'user'`,
		func(r rowScanner) error {
			var (
				user string
				h    lifecycle.HeldAssignment
			)
			if err := r.Scan(&h.ID, &h.Role, &user, &h.Source, &h.GrantedBy); err != nil {
				return err
			}
			if a := byID[user]; a != nil {
				a.Assignments = append(a.Assignments, h)
			}
			return nil
		}); err != nil {
		return nil, fmt.Errorf("store: lifecycle assignments: %w", err)
	}
	if err := c.owned(ctx, byID, "group_owners", "group_id", "groups", directory.KindGroup); err != nil {
		return nil, err
	}
	if err := c.owned(ctx, byID, "sa_owners", "sa_id", "service_accounts", directory.KindServiceAccount); err != nil {
		return nil, err
	}
	if err := c.eachRow(ctx, `SELECT owner_id, COUNT(*) FROM api_tokens WHERE owner_kind = 'user' GROUP BY owner_id`,
		func(r rowScanner) error {
			var (
				id string
				n  int
			)
			if err := r.Scan(&id, &n); err != nil {
				return err
			}
			if a := byID[id]; a != nil {
				a.Tokens = n
			}
			return nil
		}); err != nil {
		return nil, fmt.Errorf("store: lifecycle tokens: %w", err)
	}
	if err := c.eachRow(ctx, `SELECT manager_id, COUNT(*) FROM users WHERE manager_id IS NOT NULL GROUP BY manager_id`,
		func(r rowScanner) error {
			var (
				id string
				n  int
			)
			if err := r.Scan(&id, &n); err != nil {
				return err
			}
			if a := byID[id]; a != nil {
				a.Reports = n
			}
			return nil
		}); err != nil {
		return nil, fmt.Errorf("store: lifecycle reports: %w", err)
	}
	return cur, nil
}

// owned adds to the accounts the objects of one kind they own, each with all its owners.
func (c *conn) owned(ctx context.Context, byID map[string]*lifecycle.Account, table, col, objects string, kind directory.Kind) error {
	owners := map[string][]string{}
	names := map[string]string{}
	err := c.eachRow(ctx, "SELECT o."+col+", o.user_id, x.name FROM "+table+" o JOIN "+objects+" x ON x.id = o."+col,
		func(r rowScanner) error {
			var obj, user, name string
			if err := r.Scan(&obj, &user, &name); err != nil {
				return err
			}
			owners[obj] = append(owners[obj], user)
			names[obj] = name
			return nil
		})
	if err != nil {
		return fmt.Errorf("store: lifecycle %s: %w", table, err)
	}
	for obj, us := range owners {
		for _, u := range us {
			a := byID[u]
			if a == nil {
				continue
			}
			o := lifecycle.Owned{Ref: directory.Ref{Kind: kind, ID: obj, Name: names[obj]}, Owners: us}
			if kind == directory.KindGroup {
				a.OwnsGroups = append(a.OwnsGroups, o)
			} else {
				a.OwnsServiceAccounts = append(a.OwnsServiceAccounts, o)
			}
		}
	}
	return nil
}

// eachRow runs a query and calls fn for every row.
func (c *conn) eachRow(ctx context.Context, q string, fn func(r rowScanner) error, args ...any) error {
	rows, err := c.rawQuery(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ResidualAccess lists every disabled user (or one whose HR record says they left) that still
// holds something: a direct membership, an assignment, an owned group or service account, or an
// API token that has not expired.
func (c *conn) ResidualAccess(ctx context.Context, now time.Time) ([]lifecycle.Residual, error) {
	out := map[string]*lifecycle.Residual{}
	var order []string
	add := func(id, username, employeeID, status, what string) {
		r := out[id]
		if r == nil {
			r = &lifecycle.Residual{UserID: id, Username: username, EmployeeID: employeeID, Status: status}
			out[id] = r
			order = append(order, id)
		}
		r.Holds = append(r.Holds, what)
	}
	departed := `(u.status <> 'active' OR ` + c.d.jsonText("u.attributes", lifecycle.AttrLeftAt) + ` <> '')`
	queries := []struct{ sql, prefix string }{
		{`SELECT u.id, u.username, u.employee_id, u.status, g.name FROM users u JOIN group_members gm ON gm.member_id = u.id
			JOIN groups g ON g.id = gm.group_id WHERE ` + departed, "member of group "},
		{`SELECT u.id, u.username, u.employee_id, u.status, a.role || ' (' || a.id || ')' FROM users u
			JOIN assignments a ON a.holder_id = u.id WHERE ` + departed, "holds role "},
		{`SELECT u.id, u.username, u.employee_id, u.status, g.name FROM users u JOIN group_owners o ON o.user_id = u.id
			JOIN groups g ON g.id = o.group_id WHERE ` + departed, "owns group "},
		{`SELECT u.id, u.username, u.employee_id, u.status, s.name FROM users u JOIN sa_owners o ON o.user_id = u.id
			JOIN service_accounts s ON s.id = o.sa_id WHERE ` + departed, "owns service account "},
		{`SELECT u.id, u.username, u.employee_id, u.status, t.name FROM users u JOIN api_tokens t ON t.owner_id = u.id
			WHERE ` + departed + ` AND (t.expires_at = 0 OR t.expires_at > ?)`, "has API token "},
	}
	for _, q := range queries {
		var args []any
		if strings.Contains(q.sql, "?") {
			args = append(args, micros(now))
		}
		err := c.eachRow(ctx, q.sql, func(r rowScanner) error {
			var id, username, employeeID, status, what string
			if err := r.Scan(&id, &username, &employeeID, &status, &what); err != nil {
				return err
			}
			add(id, username, employeeID, status, q.prefix+what)
			return nil
		}, args...)
		if err != nil {
			return nil, fmt.Errorf("store: residual access: %w", err)
		}
	}
	res := make([]lifecycle.Residual, 0, len(order))
	for _, id := range order {
		res = append(res, *out[id])
	}
	return res, nil
}

// Setting reads a one-off fact outside a transaction (see tx.Setting).
func (c *conn) SettingValue(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := c.queryRow(ctx, "SELECT value FROM settings WHERE key = ?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("store: read setting %s: %w", key, err)
	}
	return v, true, nil
}

// SaveRun records an HR feed run (its state and summary), outside the pipeline: bookkeeping
// beside the audit events its ops wrote.
func (s *Store) SaveRun(ctx context.Context, r *lifecycle.Run) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("store: encode run: %w", err)
	}
	return s.writer(ctx, func(c *conn) error {
		res, err := c.exec(ctx, "UPDATE lifecycle_runs SET finished_at = ?, state = ?, doc = ? WHERE id = ?",
			micros(r.Finished), r.State, string(doc), r.ID)
		if err != nil {
			return fmt.Errorf("store: save run: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		if _, err := c.exec(ctx, "INSERT INTO lifecycle_runs (id, started_at, finished_at, state, doc) VALUES (?, ?, ?, ?, ?)",
			r.ID, micros(r.Started), micros(r.Finished), r.State, string(doc)); err != nil {
			return fmt.Errorf("store: save run: %w", err)
		}
		return nil
	})
}

// Runs lists the latest HR feed runs, newest first.
func (c *conn) Runs(ctx context.Context, limit int) ([]lifecycle.Run, error) {
	var out []lifecycle.Run
	err := c.eachRow(ctx, fmt.Sprintf("SELECT doc FROM lifecycle_runs ORDER BY started_at DESC, id DESC LIMIT %d", clampLimit(limit)),
		func(r rowScanner) error {
			var doc string
			if err := r.Scan(&doc); err != nil {
				return err
			}
			var run lifecycle.Run
			if err := json.Unmarshal([]byte(doc), &run); err != nil {
				return err
			}
			out = append(out, run)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("store: list runs: %w", err)
	}
	return out, nil
}
