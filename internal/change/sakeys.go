package change

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/directory"
)

// KeyInput asks for an API key of a service account. With RotateFrom, the new key replaces
// that key of the same account: the old one stays valid OverlapHours more (both work until
// then, so that the key can be swapped where it is used without an outage), then expires.
type KeyInput struct {
	Name          string `json:"name"`
	ExpiresInDays int    `json:"expires_in_days,omitempty"`
	RotateFrom    string `json:"rotate_from,omitempty"`
	OverlapHours  int    `json:"overlap_hours,omitempty"`
}

// Lifetimes of service-account keys.
const (
	// DefaultKeyDays is a key's lifetime when the request names none.
	DefaultKeyDays = 90
	// DefaultMaxKeyDays is the longest lifetime a request may ask for, unless the pipeline
	// was built WithMaxKeyDays.
	DefaultMaxKeyDays = 366
	// DefaultOverlapHours is how long a rotated key stays valid when the request does not say.
	DefaultOverlapHours = 24
	// MaxOverlapHours bounds the overlap of a rotation (7 days).
	MaxOverlapHours = 7 * 24
)

// WithMaxKeyDays sets the longest lifetime, in days, of a service account's API key; a request
// for a longer one fails as invalid. Zero or less keeps DefaultMaxKeyDays.
func WithMaxKeyDays(days int) Option { return func(p *Pipeline) { p.maxKeyDays = days } }

// keyMaxDays is the pipeline's bound on key lifetimes.
func (pl *planner) keyMaxDays() int {
	if pl.maxKeyDays > 0 {
		return pl.maxKeyDays
	}
	return DefaultMaxKeyDays
}

// checkKeyInput validates in, filling in the defaults.
func (pl *planner) checkKeyInput(in *KeyInput) error {
	in.Name, in.RotateFrom = strings.TrimSpace(in.Name), strings.TrimSpace(in.RotateFrom)
	var fe directory.FieldErrors
	if in.Name == "" {
		fe.Add("name", "is required: say what the key is for")
	} else if len(in.Name) > 64 {
		fe.Add("name", "is longer than 64 characters")
	}
	switch maxDays := pl.keyMaxDays(); {
	case in.ExpiresInDays == 0:
		in.ExpiresInDays = min(DefaultKeyDays, maxDays)
	case in.ExpiresInDays < 0 || in.ExpiresInDays > maxDays:
		fe.Add("expires_in_days", "must be between 1 and %d", maxDays)
	}
	switch {
	case in.RotateFrom == "" && in.OverlapHours != 0:
		fe.Add("overlap_hours", "applies only to a rotation: give rotate_from")
	case in.RotateFrom == "":
	case in.OverlapHours == 0:
		in.OverlapHours = DefaultOverlapHours
	case in.OverlapHours < 0 || in.OverlapHours > MaxOverlapHours:
		fe.Add("overlap_hours", "must be between 1 and %d (7 days)", MaxOverlapHours)
	}
	return fe.Err()
}

// accountKey reads the key id of service account s; a key of anyone else is not found.
func (pl *planner) accountKey(ctx context.Context, s directory.ServiceAccount, id string) (credential.Token, error) {
	t, err := pl.tx.Token(ctx, id)
	if err == nil && (t.OwnerKind != credential.OwnerServiceAccount || t.OwnerID != s.ID) {
		err = directory.NotFound(directory.KindToken, id)
	}
	return t, err
}

// keyRecord is how an event records a key: never its secret or hash.
func keyRecord(t credential.Token) map[string]any {
	return map[string]any{"id": t.ID, "name": t.Name, "expires": t.Expires.UTC().Format(time.RFC3339)}
}

// saIssueKey plans sa.issue_key: a new key for an active service account, its secret returned
// once in the result; with rotate_from, the rotated key's expiry moves to the end of the
// overlap (never later than it was), in the same transaction.
func (pl *planner) saIssueKey(ctx context.Context) (*plan, error) {
	cur, err := pl.tx.ServiceAccount(ctx, pl.op.Target)
	if err != nil {
		return nil, err
	}
	in := *pl.op.Key
	if err := pl.checkKeyInput(&in); err != nil {
		return nil, err
	}
	if cur.Status != directory.StatusActive {
		return nil, directory.Conflict("status", "service account %s is %s; keys are issued only to active service accounts",
			cur.Name, cur.Status)
	}
	tok, secret := credential.NewToken(credential.OwnerServiceAccount, cur.ID, in.Name, pl.now,
		time.Duration(in.ExpiresInDays)*24*time.Hour)
	issued := &Issued{ID: tok.ID, Secret: secret, Expires: tok.Expires}
	var relBefore map[string]any
	relAfter := map[string]any{"key": keyRecord(tok)}
	write := func(ctx context.Context) error { return pl.tx.InsertToken(ctx, &tok) }
	if in.RotateFrom != "" {
		old, err := pl.accountKey(ctx, cur, in.RotateFrom)
		switch {
		case errors.Is(err, directory.ErrNotFound):
			return nil, directory.Invalid("rotate_from", "service account %s has no key %q", cur.Name, in.RotateFrom)
		case err != nil:
			return nil, err
		case !old.Active(pl.now):
			return nil, directory.Conflict("rotate_from", "key %s is revoked or expired: there is nothing to rotate; issue a key without rotate_from",
				old.ID)
		}
		until := pl.now.Add(time.Duration(in.OverlapHours) * time.Hour)
		if !old.Expires.IsZero() && old.Expires.Before(until) {
			until = old.Expires
		}
		relBefore = map[string]any{"rotated_key": keyRecord(old)}
		rotated := old
		rotated.Expires = until
		relAfter["rotated_key"] = keyRecord(rotated)
		issued.Rotated = &Issued{ID: old.ID, Expires: until}
		write = func(ctx context.Context) error {
			if err := pl.tx.InsertToken(ctx, &tok); err != nil {
				return err
			}
			return pl.tx.SetTokenExpiry(ctx, old.ID, until)
		}
	}
	fields := cur.Fields()
	return &plan{target: cur.Ref(), before: fields, after: fields, version: cur.Version, issued: issued,
		relBefore: relBefore, relAfter: relAfter, write: write}, nil
}

// saRevokeKey plans sa.revoke_key: the key stops authenticating at once, for good.
func (pl *planner) saRevokeKey(ctx context.Context) (*plan, error) {
	cur, err := pl.tx.ServiceAccount(ctx, pl.op.Target)
	if err != nil {
		return nil, err
	}
	tok, err := pl.accountKey(ctx, cur, strings.TrimSpace(pl.op.KeyID))
	if err != nil {
		return nil, err
	}
	if !tok.Revoked.IsZero() {
		return nil, errUnchanged("key %s of service account %s is already revoked", tok.ID, cur.Name)
	}
	before := keyRecord(tok)
	after := keyRecord(tok)
	after["revoked"] = pl.now.UTC().Format(time.RFC3339)
	fields := cur.Fields()
	return &plan{target: cur.Ref(), before: fields, after: fields, version: cur.Version,
		relBefore: map[string]any{"key": before}, relAfter: map[string]any{"key": after},
		write: func(ctx context.Context) error { return pl.tx.RevokeToken(ctx, tok.ID, pl.now) }}, nil
}

// orphanedAfter is the orphaned flag of a service account after an update whose patch touched
// the fields touched and left the flag at flag: setting the owners is the review an orphaned
// account awaits, so it clears the flag, unless the same patch sets the flag itself.
func orphanedAfter(flag bool, touched []string) bool {
	return flag && (!slices.Contains(touched, "owners") || slices.Contains(touched, "orphaned"))
}

// orphanedKey is the field of a user.disable or user.delete event that records the service
// accounts handed over: [{"id", "name", "new_owner": {"id", "name"}}], new_owner absent when
// the user had no active manager.
const orphanedKey = "orphaned_service_accounts"

// handover is what disabling or deleting a user does to the service accounts of which the user
// is the last active owner: each gets the user's manager, when they have an active one, as an
// owner, and is flagged orphaned so that someone reviews its owners.
type handover struct {
	successor *directory.Ref             // the manager, or nil
	accounts  []directory.ServiceAccount // as they are to be written
	record    []map[string]any           // what the user's event records
}

// planHandover reads what leaving does to the accounts u is the last active owner of; nil when
// it changes nothing.
func (pl *planner) planHandover(ctx context.Context, u directory.User) (*handover, error) {
	refs, err := pl.tx.LastActiveOwnerOf(ctx, u.ID)
	if err != nil || len(refs) == 0 {
		return nil, err
	}
	h := &handover{}
	if u.ManagerID != "" {
		m, err := pl.tx.User(ctx, directory.Ref{Kind: directory.KindUser, ID: u.ManagerID})
		if err != nil && !errors.Is(err, directory.ErrNotFound) {
			return nil, err
		}
		if err == nil && m.Status == directory.StatusActive {
			r := m.Ref()
			h.successor = &r
		}
	}
	for _, ref := range refs {
		s, err := pl.tx.ServiceAccount(ctx, ref)
		if err != nil {
			return nil, err
		}
		rec := map[string]any{"id": s.ID, "name": s.Name}
		added := false
		if h.successor != nil && !slices.ContainsFunc(s.Owners, func(o directory.Ref) bool { return o.ID == h.successor.ID }) {
			s.Owners = append(slices.Clone(s.Owners), *h.successor)
			rec["new_owner"] = map[string]any{"id": h.successor.ID, "name": h.successor.Name}
			added = true
		}
		if s.Orphaned && !added {
			continue // already awaiting review, and nobody to hand it to
		}
		s.Orphaned, s.Updated = true, pl.now
		h.accounts = append(h.accounts, s)
		h.record = append(h.record, rec)
	}
	return h, nil
}

// withHandover adds to p, the plan of disabling or deleting u, the handover of the service
// accounts u is the last active owner of: written first, in the same transaction, and recorded
// in the event's after map under orphaned_service_accounts.
func (pl *planner) withHandover(p *plan, h *handover) *plan {
	if h == nil || len(h.accounts) == 0 {
		return p
	}
	before, after := diff(p.before, p.after)
	if after == nil {
		after = map[string]any{}
	}
	after[orphanedKey] = h.record
	p.relBefore, p.relAfter = before, after
	write := p.write
	p.write = func(ctx context.Context) error {
		for i := range h.accounts {
			if err := pl.tx.UpdateServiceAccount(ctx, &h.accounts[i]); err != nil {
				return err
			}
		}
		return write(ctx)
	}
	return p
}
