package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/directory"
)

const memberFrom = `FROM group_members gm
	LEFT JOIN users mu ON gm.member_type = 'user' AND mu.id = gm.member_id
	LEFT JOIN groups mg ON gm.member_type = 'group' AND mg.id = gm.member_id
	LEFT JOIN service_accounts ms ON gm.member_type = 'service_account' AND ms.id = gm.member_id`

// Members lists the direct members of a group, in name order, with their provenance.
func (c *conn) Members(ctx context.Context, group directory.Ref, q directory.ListQuery) (directory.Page[directory.Member], error) {
	g, err := c.Group(ctx, group)
	if err != nil {
		return directory.Page[directory.Member]{}, err
	}
	spec := listSpec{
		cols: `gm.member_type, gm.member_id, COALESCE(mu.username, mg.name, ms.name, ''), gm.source, gm.source_id,
			gm.added_by_type, gm.added_by_id, gm.added_by_name, gm.added_at, ` + memberNameKey,
		from: memberFrom, where: "gm.group_id = ?", args: []any{g.ID},
		sortKey: memberNameKey, tieKey: "gm.member_id", fields: memberFields,
	}
	return list(ctx, c, spec, q, func(r rowScanner) (directory.Member, cursor, error) {
		var (
			m       directory.Member
			kind    string
			byKind  string
			addedAt int64
			key     string
		)
		err := r.Scan(&kind, &m.Ref.ID, &m.Ref.Name, &m.Provenance.Source, &m.Provenance.SourceID,
			&byKind, &m.Provenance.By.ID, &m.Provenance.By.Name, &addedAt, &key)
		m.Ref.Kind, m.Provenance.By.Kind = directory.Kind(kind), directory.Kind(byKind)
		m.Provenance.At = fromMicros(addedAt)
		return m, cursor{Key: key, Tie: m.Ref.ID}, err
	})
}

// Membership returns member's direct membership of the group with its provenance, and whether
// there is one.
func (t *tx) Membership(ctx context.Context, groupID string, member directory.Ref) (directory.Member, bool, error) {
	m := directory.Member{Ref: member}
	var (
		byKind  string
		addedAt int64
	)
	err := t.queryRow(ctx, `SELECT source, source_id, added_by_type, added_by_id, added_by_name, added_at
		FROM group_members WHERE group_id = ? AND member_id = ?`, groupID, member.ID).
		Scan(&m.Provenance.Source, &m.Provenance.SourceID, &byKind, &m.Provenance.By.ID, &m.Provenance.By.Name, &addedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return directory.Member{}, false, nil
	}
	if err != nil {
		return directory.Member{}, false, fmt.Errorf("store: read membership: %w", err)
	}
	m.Provenance.By.Kind, m.Provenance.At = directory.Kind(byKind), fromMicros(addedAt)
	return m, true, nil
}

func (t *tx) AddMember(ctx context.Context, g *directory.Group, m directory.Member, now time.Time) error {
	p := m.Provenance
	_, err := t.exec(ctx, `INSERT INTO group_members (group_id, member_type, member_id, source, source_id,
		added_by_type, added_by_id, added_by_name, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		g.ID, string(m.Ref.Kind), m.Ref.ID, p.Source, p.SourceID, string(p.By.Kind), p.By.ID, p.By.Name, micros(p.At))
	if err != nil {
		return mapWriteError(err, "membership")
	}
	return t.bumpGroup(ctx, g, now)
}

func (t *tx) RemoveMember(ctx context.Context, g *directory.Group, member directory.Ref, now time.Time) error {
	if _, err := t.exec(ctx, "DELETE FROM group_members WHERE group_id = ? AND member_id = ?", g.ID, member.ID); err != nil {
		return mapWriteError(err, "membership")
	}
	return t.bumpGroup(ctx, g, now)
}

// Contains reports whether group outerID contains group innerID, directly or through nesting.
// On PostgreSQL it first takes the nesting lock, so two transactions cannot each close half of
// a cycle unseen by the other.
func (t *tx) Contains(ctx context.Context, outerID, innerID string) (bool, error) {
	if err := t.lock(ctx, lockNesting); err != nil {
		return false, err
	}
	var n int
	err := t.queryRow(ctx, `WITH RECURSIVE inner_groups(id) AS (
			SELECT member_id FROM group_members WHERE group_id = ? AND member_type = 'group'
			UNION
			SELECT gm.member_id FROM group_members gm JOIN inner_groups i ON gm.group_id = i.id WHERE gm.member_type = 'group'
		) SELECT COUNT(*) FROM inner_groups WHERE id = ?`, outerID, innerID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: check nesting: %w", err)
	}
	return n > 0, nil
}

// Memberships lists the groups member belongs to, directly and through nesting, each with
// the chain of groups it comes through.
func (c *conn) Memberships(ctx context.Context, member directory.Ref) ([]directory.Membership, error) {
	rows, err := c.query(ctx, `WITH RECURSIVE up(group_id, via) AS (
			SELECT group_id, member_id FROM group_members WHERE member_id = ?
			UNION
			SELECT gm.group_id, gm.member_id FROM group_members gm JOIN up ON gm.member_id = up.group_id
		) SELECT up.group_id, g.name, up.via FROM up JOIN groups g ON g.id = up.group_id ORDER BY g.name_key`, member.ID)
	if err != nil {
		return nil, fmt.Errorf("store: read memberships: %w", err)
	}
	defer rows.Close()
	type edge struct{ name, via string }
	var (
		order []string
		edges = map[string]edge{}
	)
	for rows.Next() {
		var id string
		var e edge
		if err := rows.Scan(&id, &e.name, &e.via); err != nil {
			return nil, fmt.Errorf("store: read memberships: %w", err)
		}
		if _, ok := edges[id]; ok {
			if e.via == member.ID {
				edges[id] = e // a group reached both directly and through nesting counts as direct
			}
			continue
		}
		order = append(order, id)
		edges[id] = e
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read memberships: %w", err)
	}
	out := make([]directory.Membership, 0, len(order))
	for _, id := range order {
		m := directory.Membership{Group: directory.Ref{Kind: directory.KindGroup, ID: id, Name: edges[id].name}}
		// Walk down to the direct group; nesting is acyclic, the bound only guards bad data.
		for via := edges[id].via; via != member.ID && len(m.Via) < 64; via = edges[via].via {
			e, ok := edges[via]
			if !ok {
				break
			}
			m.Via = append([]directory.Ref{{Kind: directory.KindGroup, ID: via, Name: e.name}}, m.Via...)
		}
		out = append(out, m)
	}
	return out, nil
}

// ResolveMember finds a user, group or service account by ref. With no kind, an ID or name is
// looked up in all three, and a name that more than one kind uses is refused as ambiguous.
func (c *conn) ResolveMember(ctx context.Context, ref directory.Ref) (directory.Ref, error) {
	kinds := []directory.Kind{directory.KindUser, directory.KindGroup, directory.KindServiceAccount}
	if ref.Kind != "" {
		kinds = []directory.Kind{ref.Kind}
	}
	var found []directory.Ref
	for _, k := range kinds {
		r := ref
		r.Kind = k
		got, err := c.resolve(ctx, r)
		if errors.Is(err, directory.ErrNotFound) {
			continue
		}
		if err != nil {
			return directory.Ref{}, err
		}
		found = append(found, got)
	}
	switch len(found) {
	case 0:
		return directory.Ref{}, directory.NotFound(ref.Kind, ref.Key())
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, f := range found {
		names[i] = strings.ReplaceAll(string(f.Kind), "service_account", "sa") + ":" + f.Name
	}
	return directory.Ref{}, directory.Conflict("member", "%q names more than one object; write one of %s",
		ref.Key(), strings.Join(names, ", "))
}

// memberLookups read just the ID and name of a possible member, by ID or by folded name.
var memberLookups = map[directory.Kind][2]string{
	directory.KindUser:           {"SELECT id, username FROM users WHERE id = ?", "SELECT id, username FROM users WHERE username_key = ?"},
	directory.KindGroup:          {"SELECT id, name FROM groups WHERE id = ?", "SELECT id, name FROM groups WHERE name_key = ?"},
	directory.KindServiceAccount: {"SELECT id, name FROM service_accounts WHERE id = ?", "SELECT id, name FROM service_accounts WHERE name_key = ?"},
}

func (c *conn) resolve(ctx context.Context, ref directory.Ref) (directory.Ref, error) {
	q, ok := memberLookups[ref.Kind]
	if !ok {
		return directory.Ref{}, directory.Invalid("member", "a member is a user, group or service account, not a %s", ref.Kind.Noun())
	}
	out := directory.Ref{Kind: ref.Kind}
	var err error
	if ref.ID != "" {
		err = c.queryRow(ctx, q[0], ref.ID).Scan(&out.ID, &out.Name)
	} else {
		err = c.queryRow(ctx, q[1], directory.CanonicalKey(ref.Name)).Scan(&out.ID, &out.Name)
	}
	if err != nil {
		return out, notFound(err, ref.Kind, ref.Key())
	}
	return out, nil
}

// DirectMemberships lists the groups member is a direct member of, with the provenance of each
// membership, by group name.
func (c *conn) DirectMemberships(ctx context.Context, member directory.Ref) ([]directory.DirectMembership, error) {
	var out []directory.DirectMembership
	err := c.eachRow(ctx, `SELECT g.id, g.name, gm.source, gm.source_id, gm.added_by_type, gm.added_by_id, gm.added_by_name, gm.added_at
		FROM group_members gm JOIN groups g ON g.id = gm.group_id WHERE gm.member_id = ? ORDER BY g.name_key`, func(r rowScanner) error {
		var (
			m      directory.DirectMembership
			byKind string
			at     int64
		)
		if err := r.Scan(&m.Group.ID, &m.Group.Name, &m.Provenance.Source, &m.Provenance.SourceID, &byKind, &m.Provenance.By.ID,
			&m.Provenance.By.Name, &at); err != nil {
			return err
		}
		m.Group.Kind, m.Provenance.By.Kind, m.Provenance.At = directory.KindGroup, directory.Kind(byKind), fromMicros(at)
		out = append(out, m)
		return nil
	}, member.ID)
	if err != nil {
		return nil, fmt.Errorf("store: memberships of %s: %w", member.Key(), err)
	}
	return out, nil
}
