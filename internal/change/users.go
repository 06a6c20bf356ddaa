package change

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/directory"
)

// maxManagerDepth bounds the walk up a management chain when checking for cycles.
const maxManagerDepth = 256

func (pl *planner) userCreate(ctx context.Context) (*plan, error) {
	in := *pl.op.User
	in.Attributes = maps.Clone(in.Attributes)
	if err := in.Normalize(); err != nil {
		return nil, err
	}
	ou, err := pl.ou(ctx, "ou", in.OU)
	if err != nil {
		return nil, err
	}
	u := directory.User{ID: directory.NewID(), Status: in.Status, OUID: ou.ID, OUPath: ou.DisplayPath(),
		Version: 1, Created: pl.now, Updated: pl.now}
	u.SetInput(in)
	var manager *directory.User
	if in.Manager != "" {
		// A new user manages nobody yet, so no cycle is possible. The manager is read through
		// the transaction's memo: a bulk import names the same managers again and again.
		m, err := pl.tx.User(ctx, directory.ParseRef(directory.KindUser, in.Manager))
		if errors.Is(err, directory.ErrNotFound) {
			return nil, directory.Invalid("manager", "there is no user %q", in.Manager)
		}
		if err != nil {
			return nil, err
		}
		u.ManagerID, u.ManagerName, manager = m.ID, m.Username, &m
	}
	p := &plan{target: u.Ref(), after: u.Fields(), version: 1,
		write: func(ctx context.Context) error { return pl.tx.InsertUser(ctx, &u) }}
	pl.welcome(&u, manager, p)
	return p, nil
}

func (pl *planner) userUpdate(ctx context.Context) (*plan, error) {
	cur, err := pl.tx.User(ctx, pl.op.Target)
	if err != nil {
		return nil, err
	}
	if err := pl.checkVersion(cur.Version); err != nil {
		return nil, err
	}
	in, touched, err := directory.PatchUserInput(cur.Input(), pl.op.Patch)
	if err != nil {
		return nil, err
	}
	touched = expandAttributes(touched, pl.op.Patch["attributes"], cur.Attributes)
	if err := in.Normalize(); err != nil {
		return nil, err
	}
	next := cur
	next.SetInput(in)
	if in.Manager != cur.ManagerID {
		if err := pl.setManager(ctx, &next, in.Manager); err != nil {
			return nil, err
		}
	}
	next.Updated = pl.now
	return &plan{target: cur.Ref(), before: cur.Fields(), after: next.Fields(), touched: touched,
		version: cur.Version + 1,
		write:   func(ctx context.Context) error { return pl.tx.UpdateUser(ctx, &next) }}, nil
}

// setManager points u at the manager key names (or at nobody), refusing a management cycle.
func (pl *planner) setManager(ctx context.Context, u *directory.User, key string) error {
	if key == "" {
		u.ManagerID, u.ManagerName = "", ""
		return nil
	}
	m, err := pl.user(ctx, "manager", key)
	if err != nil {
		return err
	}
	if m.ID == u.ID {
		return directory.Invalid("manager", "a user cannot be their own manager")
	}
	for up, depth := m, 0; up.ManagerID != ""; depth++ {
		if up.ManagerID == u.ID || depth > maxManagerDepth {
			return directory.Conflict("manager", "%s reports (directly or indirectly) to %s, so %s cannot be their manager",
				m.Username, u.Username, m.Username)
		}
		if up, err = pl.tx.User(ctx, directory.Ref{Kind: directory.KindUser, ID: up.ManagerID}); err != nil {
			return err
		}
	}
	u.ManagerID, u.ManagerName = m.ID, m.Username
	return nil
}

func (pl *planner) userMove(ctx context.Context) (*plan, error) {
	cur, err := pl.tx.User(ctx, pl.op.Target)
	if err != nil {
		return nil, err
	}
	if err := pl.checkVersion(cur.Version); err != nil {
		return nil, err
	}
	return pl.relocate(ctx, &cur, cur.OUID, cur.Version, func(to directory.OU) (map[string]any, func(context.Context) error) {
		next := cur
		next.OUID, next.OUPath, next.Updated = to.ID, to.DisplayPath(), pl.now
		return next.Fields(), func(ctx context.Context) error { return pl.tx.UpdateUser(ctx, &next) }
	})
}

func (pl *planner) userSetStatus(ctx context.Context, status directory.Status) (*plan, error) {
	cur, err := pl.tx.User(ctx, pl.op.Target)
	if err != nil {
		return nil, err
	}
	if err := pl.checkVersion(cur.Version); err != nil {
		return nil, err
	}
	switch {
	case cur.Status == status:
		return nil, errUnchanged("user %s is already %s", cur.Username, status)
	case status == directory.StatusActive && cur.Status == directory.StatusLocked:
		return nil, errUnchanged("user %s is locked after failed sign-ins; unlocking is a separate action", cur.Username)
	case status == directory.StatusDisabled:
		if err := pl.guardLastAdmin(ctx, cur, "disable"); err != nil {
			return nil, err
		}
	}
	next := cur
	next.Status, next.Updated = status, pl.now
	p := &plan{target: cur.Ref(), before: cur.Fields(), after: next.Fields(), touched: []string{"status"},
		version: cur.Version + 1,
		write:   func(ctx context.Context) error { return pl.tx.UpdateUser(ctx, &next) }}
	if status != directory.StatusDisabled {
		return p, nil
	}
	// A disabled user's sessions end with it: enabling them again later must not bring back
	// a browser left signed in.
	write := p.write
	p.write = func(ctx context.Context) error {
		if err := write(ctx); err != nil {
			return err
		}
		return pl.tx.DeleteSessions(ctx, cur.ID)
	}
	h, err := pl.planHandover(ctx, cur)
	if err != nil {
		return nil, err
	}
	return pl.withHandover(p, h), nil
}

// guardLastAdmin refuses to disable or delete the actor's own account, or the last active
// tier-0 admin: either would leave the directory without anyone able to administer it.
func (pl *planner) guardLastAdmin(ctx context.Context, u directory.User, verb string) error {
	if pl.actor.IsUser(u.ID) {
		return directory.Conflict("", "you cannot %s your own account", verb)
	}
	tier0, err := pl.tx.IsTier0(ctx, u.ID)
	if err != nil || !tier0 || u.Status != directory.StatusActive {
		return err
	}
	n, err := pl.tx.Tier0Holders(ctx)
	if err != nil {
		return err
	}
	if n <= 1 {
		return directory.Conflict("", "%s is the last active tier-0 admin; grant the role to someone else first", u.Username)
	}
	return nil
}

func (pl *planner) userDelete(ctx context.Context) (*plan, error) {
	cur, err := pl.tx.User(ctx, pl.op.Target)
	if err != nil {
		return nil, err
	}
	if err := pl.checkVersion(cur.Version); err != nil {
		return nil, err
	}
	if err := pl.guardLastAdmin(ctx, cur, "delete"); err != nil {
		return nil, err
	}
	if n, err := pl.tx.Reports(ctx, cur.ID); err != nil {
		return nil, err
	} else if n > 0 {
		return nil, directory.Conflict("", "%s is the manager of %d users; give them another manager first", cur.Username, n)
	}
	// The accounts the user is the last active owner of go to their manager; without an active
	// manager, an account the user is the only owner of would be left with none.
	h, err := pl.planHandover(ctx, cur)
	if err != nil {
		return nil, err
	}
	if owned, err := pl.tx.SoleOwnerOf(ctx, cur.ID); err != nil {
		return nil, err
	} else if len(owned) > 0 && (h == nil || h.successor == nil) {
		return nil, directory.Conflict("", "%s is the only owner of service account %s and has no active manager to hand it to; add another owner first",
			cur.Username, owned[0].Name)
	}
	before, err := pl.withRelations(ctx, cur.ID, cur.Fields())
	if err != nil {
		return nil, err
	}
	return pl.withHandover(&plan{target: cur.Ref(), before: before,
		write: func(ctx context.Context) error { return pl.tx.DeleteUser(ctx, cur.ID, pl.now) }}, h), nil
}

func (pl *planner) userIssueToken(ctx context.Context) (*plan, error) {
	cur, err := pl.tx.User(ctx, pl.op.Target)
	if err != nil {
		return nil, err
	}
	in := *pl.op.Token
	var fe directory.FieldErrors
	if in.Name == "" {
		fe.Add("name", "is required: say what the token is for")
	} else if len(in.Name) > 64 {
		fe.Add("name", "is longer than 64 characters")
	}
	switch {
	case in.ExpiresInDays == 0:
		in.ExpiresInDays = DefaultTokenDays
	case in.ExpiresInDays < 0 || in.ExpiresInDays > MaxTokenDays:
		fe.Add("expires_in_days", "must be between 1 and %d", MaxTokenDays)
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	if cur.Status != directory.StatusActive {
		return nil, directory.Conflict("status", "user %s is %s; tokens are issued only to active users", cur.Username, cur.Status)
	}
	tok, secret := credential.NewToken(string(directory.KindUser), cur.ID, in.Name, pl.now,
		time.Duration(in.ExpiresInDays)*24*time.Hour)
	fields := cur.Fields()
	return &plan{target: cur.Ref(), before: fields, after: fields, version: cur.Version,
		issued: &Issued{ID: tok.ID, Secret: secret, Expires: tok.Expires},
		relAfter: map[string]any{"token": map[string]any{"id": tok.ID, "name": tok.Name,
			"expires": tok.Expires.UTC().Format(time.RFC3339)}},
		write: func(ctx context.Context) error { return pl.tx.InsertToken(ctx, &tok) }}, nil
}

// expandAttributes replaces "attributes" among the touched fields by "attributes.KEY" for each
// custom attribute the patch sets or clears, so that a role narrowed to some of them can be
// checked. A patch that sets attributes to null clears (touches) every current one.
func expandAttributes(touched []string, raw json.RawMessage, current map[string]string) []string {
	i := slices.Index(touched, "attributes")
	if i < 0 {
		return touched
	}
	out := slices.Delete(slices.Clone(touched), i, i+1)
	var patch map[string]json.RawMessage
	if err := json.Unmarshal(raw, &patch); err != nil || patch == nil {
		for k := range current {
			out = append(out, "attributes."+k)
		}
	}
	for k := range patch {
		out = append(out, "attributes."+k)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// userRevokeTokens deletes every API token of a user (a leaver's, or a compromised account's).
// Disabling a user only suspends its tokens; this ends them.
func (pl *planner) userRevokeTokens(ctx context.Context) (*plan, error) {
	cur, err := pl.tx.User(ctx, pl.op.Target)
	if err != nil {
		return nil, err
	}
	if err := pl.checkVersion(cur.Version); err != nil {
		return nil, err
	}
	if id := pl.op.KeyID; id != "" {
		// One token: it must be this user's, and not revoked yet.
		tok, err := pl.tx.Token(ctx, id)
		if err != nil || tok.OwnerKind != string(directory.KindUser) || tok.OwnerID != cur.ID {
			return nil, directory.NotFound(directory.KindToken, id)
		}
		if !tok.Revoked.IsZero() {
			return nil, errUnchanged("token %s is revoked already", id)
		}
		fields := cur.Fields()
		return &plan{target: cur.Ref(), before: fields, after: fields, touched: []string{"tokens"}, version: cur.Version,
			relBefore: map[string]any{"token": map[string]any{"id": tok.ID, "name": tok.Name}},
			relAfter:  map[string]any{"token": map[string]any{"id": tok.ID, "name": tok.Name, "revoked": true}},
			write:     func(ctx context.Context) error { return pl.tx.RevokeToken(ctx, tok.ID, pl.now) }}, nil
	}
	n, err := pl.tx.CountTokens(ctx, cur.ID)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, errUnchanged("user %s has no API tokens", cur.Username)
	}
	fields := cur.Fields()
	return &plan{target: cur.Ref(), before: fields, after: fields, touched: []string{"tokens"}, version: cur.Version,
		relBefore: map[string]any{"tokens": n}, relAfter: map[string]any{"tokens": 0},
		write: func(ctx context.Context) error { return pl.tx.DeleteTokens(ctx, cur.ID) }}, nil
}
