package store

import (
	"context"
	"time"

	"github.com/deputy-iam/deputy/internal/directory"
)

const saCols = `s.id, s.name, s.description, s.ou_id, o.path, s.status, s.protected, s.version, s.created_at, s.updated_at, s.orphaned`

const saFrom = `FROM service_accounts s JOIN ous o ON o.id = s.ou_id`

func scanSA(r rowScanner, extra ...any) (directory.ServiceAccount, error) {
	var (
		s                directory.ServiceAccount
		created, updated int64
	)
	dest := []any{&s.ID, &s.Name, &s.Description, &s.OUID, &s.OUPath, &s.Status, &s.Protected, &s.Version, &created, &updated, &s.Orphaned}
	if err := r.Scan(append(dest, extra...)...); err != nil {
		return s, err
	}
	if s.OUPath == "" {
		s.OUPath = directory.RootPath
	}
	s.Created, s.Updated = fromMicros(created), fromMicros(updated)
	return s, nil
}

// ServiceAccount returns the service account with ref's ID or name, with its owners.
func (c *conn) ServiceAccount(ctx context.Context, ref directory.Ref) (directory.ServiceAccount, error) {
	var row rowScanner
	if ref.ID != "" {
		row = c.queryRow(ctx, "SELECT "+saCols+" "+saFrom+" WHERE s.id = ?", ref.ID)
	} else {
		row = c.queryRow(ctx, "SELECT "+saCols+" "+saFrom+" WHERE s.name_key = ?", directory.CanonicalKey(ref.Name))
	}
	s, err := scanSA(row)
	if err != nil {
		return s, notFound(err, directory.KindServiceAccount, ref.Key())
	}
	owners, err := c.owners(ctx, "sa_owners", "sa_id", []string{s.ID})
	s.Owners = owners[s.ID]
	return s, err
}

// ListServiceAccounts lists service accounts in name order, with their owners.
func (c *conn) ListServiceAccounts(ctx context.Context, q directory.ListQuery) (directory.Page[directory.ServiceAccount], error) {
	spec := listSpec{cols: saCols + ", s.name_key", from: saFrom, sortKey: "s.name_key", tieKey: "s.id", fields: saFields}
	page, err := list(ctx, c, spec, q, func(r rowScanner) (directory.ServiceAccount, cursor, error) {
		var key string
		s, err := scanSA(r, &key)
		return s, cursor{Key: key, Tie: s.ID}, err
	})
	if err != nil || len(page.Items) == 0 {
		return page, err
	}
	ids := make([]string, len(page.Items))
	for i, s := range page.Items {
		ids[i] = s.ID
	}
	owners, err := c.owners(ctx, "sa_owners", "sa_id", ids)
	for i := range page.Items {
		page.Items[i].Owners = owners[page.Items[i].ID]
	}
	return page, err
}

func (t *tx) InsertServiceAccount(ctx context.Context, s *directory.ServiceAccount) error {
	_, err := t.exec(ctx, `INSERT INTO service_accounts (id, name, name_key, description, ou_id, status, protected,
		orphaned, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.Name, directory.CanonicalKey(s.Name), s.Description, s.OUID, string(s.Status), boolInt(s.Protected),
		boolInt(s.Orphaned), s.Version, micros(s.Created), micros(s.Updated))
	if err != nil {
		return mapWriteError(err, "service account")
	}
	return t.setOwners(ctx, "sa_owners", "sa_id", s.ID, s.Owners)
}

func (t *tx) UpdateServiceAccount(ctx context.Context, s *directory.ServiceAccount) error {
	res, err := t.exec(ctx, `UPDATE service_accounts SET name = ?, name_key = ?, description = ?, ou_id = ?, status = ?,
		protected = ?, orphaned = ?, version = version + 1, updated_at = ? WHERE id = ? AND version = ?`,
		s.Name, directory.CanonicalKey(s.Name), s.Description, s.OUID, string(s.Status), boolInt(s.Protected),
		boolInt(s.Orphaned), micros(s.Updated), s.ID, s.Version)
	if err := t.checkUpdated(ctx, res, err, "service_accounts", directory.KindServiceAccount, s.ID, s.Version, "service account"); err != nil {
		return err
	}
	s.Version++
	return t.setOwners(ctx, "sa_owners", "sa_id", s.ID, s.Owners)
}

// DeleteServiceAccount removes the service account, its memberships (each group moved to its
// next version) and its tokens.
func (t *tx) DeleteServiceAccount(ctx context.Context, id string, now time.Time) error {
	return t.deleteObject(ctx, id, now, "service account",
		"DELETE FROM group_members WHERE member_id = ?",
		"DELETE FROM api_tokens WHERE owner_id = ?",
		"DELETE FROM sa_owners WHERE sa_id = ?",
		"DELETE FROM service_accounts WHERE id = ?")
}
