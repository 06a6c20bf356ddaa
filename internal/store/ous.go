package store

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/deputy-iam/deputy/internal/directory"
)

const ouCols = `o.id, o.name, COALESCE(o.parent_id, ''), o.path, o.protected, o.version, o.created_at, o.updated_at`

func scanOU(r rowScanner) (directory.OU, error) {
	var (
		o                directory.OU
		created, updated int64
	)
	err := r.Scan(&o.ID, &o.Name, &o.ParentID, &o.Path, &o.Protected, &o.Version, &created, &updated)
	o.Created, o.Updated = fromMicros(created), fromMicros(updated)
	return o, err
}

// OU returns the OU with ref's ID or path; the root is the empty path (or "/").
func (c *conn) OU(ctx context.Context, ref directory.Ref) (directory.OU, error) {
	var row rowScanner
	if ref.ID != "" {
		row = c.queryRow(ctx, "SELECT "+ouCols+" FROM ous o WHERE o.id = ?", ref.ID)
	} else {
		row = c.queryRow(ctx, "SELECT "+ouCols+" FROM ous o WHERE o.path_key = ?",
			directory.CanonicalKey(strings.Trim(ref.Name, "/")))
	}
	o, err := scanOU(row)
	if err != nil {
		return o, notFound(err, directory.KindOU, ref.Key())
	}
	return o, nil
}

// ListOUs lists OUs in path order.
func (c *conn) ListOUs(ctx context.Context, q directory.ListQuery) (directory.Page[directory.OU], error) {
	spec := listSpec{cols: ouCols + ", o.path_key", from: "FROM ous o LEFT JOIN ous p ON p.id = o.parent_id",
		sortKey: "o.path_key", tieKey: "o.id", fields: ouFields}
	return list(ctx, c, spec, q, func(r rowScanner) (directory.OU, cursor, error) {
		var (
			o                directory.OU
			created, updated int64
			key              string
		)
		err := r.Scan(&o.ID, &o.Name, &o.ParentID, &o.Path, &o.Protected, &o.Version, &created, &updated, &key)
		o.Created, o.Updated = fromMicros(created), fromMicros(updated)
		return o, cursor{Key: key, Tie: o.ID}, err
	})
}

func (t *tx) InsertOU(ctx context.Context, o *directory.OU) error {
	t.forgetOUs()
	_, err := t.exec(ctx, `INSERT INTO ous (id, name, parent_id, path, path_key, protected, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		o.ID, o.Name, nullable(o.ParentID), o.Path, directory.CanonicalKey(o.Path), boolInt(o.Protected), o.Version,
		micros(o.Created), micros(o.Updated))
	return mapWriteError(err, "OU")
}

// UpdateOU writes o and, when its path changed, rewrites the paths of all its descendants.
func (t *tx) UpdateOU(ctx context.Context, o *directory.OU, oldPath string) error {
	t.forgetOUs()
	res, err := t.exec(ctx, `UPDATE ous SET name = ?, parent_id = ?, path = ?, path_key = ?, protected = ?,
		version = version + 1, updated_at = ? WHERE id = ? AND version = ?`,
		o.Name, nullable(o.ParentID), o.Path, directory.CanonicalKey(o.Path), boolInt(o.Protected), micros(o.Updated),
		o.ID, o.Version)
	if err := t.checkUpdated(ctx, res, err, "ous", directory.KindOU, o.ID, o.Version, "OU"); err != nil {
		return err
	}
	o.Version++
	if o.Path == oldPath {
		return nil
	}
	oldKey, newKey := directory.CanonicalKey(oldPath), directory.CanonicalKey(o.Path)
	_, err = t.exec(ctx, `UPDATE ous SET path = ? || substr(path, ?), path_key = ? || substr(path_key, ?)
		WHERE path_key LIKE ? ESCAPE '\'`,
		o.Path, utf8.RuneCountInString(oldPath)+1, newKey, utf8.RuneCountInString(oldKey)+1, escapeLike(oldKey)+"/%")
	return mapWriteError(err, "OU")
}

func (t *tx) DeleteOU(ctx context.Context, id string) error {
	t.forgetOUs()
	_, err := t.exec(ctx, "DELETE FROM ous WHERE id = ?", id)
	return mapWriteError(err, "OU")
}

// OUContents counts the objects directly inside the OU.
func (t *tx) OUContents(ctx context.Context, id string) (int, error) {
	var n int
	err := t.queryRow(ctx, `SELECT (SELECT COUNT(*) FROM ous WHERE parent_id = ?) + (SELECT COUNT(*) FROM users WHERE ou_id = ?)
		+ (SELECT COUNT(*) FROM groups WHERE ou_id = ?) + (SELECT COUNT(*) FROM service_accounts WHERE ou_id = ?)`,
		id, id, id, id).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count OU contents: %w", err)
	}
	return n, nil
}
