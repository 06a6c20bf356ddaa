package change

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// ErrInitialized is returned by Bootstrap on a directory that already has its root.
var ErrInitialized = errors.New("change: the directory is already initialized")

// BootstrapActor is the system actor that creates the root OU and the first tier-0 admin.
var bootstrapActor = delegation.SystemActor("bootstrap")

// Bootstrapped is what Bootstrap created: the first admin and their API token, shown once.
type Bootstrapped struct {
	Admin directory.User
	Token string
}

// Bootstrap initializes an empty directory in one transaction: the root OU, the first tier-0
// admin (a protected user in the root OU), their tier-0 assignment and an API token. It is the
// one change no authorizer can allow (nobody holds any right yet), so it is allowed only while
// the directory has no root, and every step is audited with the authority rule "bootstrap".
func (p *Pipeline) Bootstrap(ctx context.Context, meta Meta, admin string) (Bootstrapped, error) {
	in := directory.UserInput{Username: admin, DisplayName: "Tier-0 administrator", OU: directory.RootPath, Protected: true}
	if err := in.Normalize(); err != nil {
		return Bootstrapped{}, err
	}
	now := audit.Timestamp(p.now())
	var out Bootstrapped
	err := p.store.InTx(ctx, func(tx Tx) error {
		if _, err := tx.OU(ctx, directory.Ref{Kind: directory.KindOU}); err == nil {
			return ErrInitialized
		} else if !errors.Is(err, directory.ErrNotFound) {
			return err
		}
		root := directory.OU{ID: directory.NewID(), Name: "root", Protected: true, Version: 1, Created: now, Updated: now}
		u := directory.User{ID: directory.NewID(), OUID: root.ID, OUPath: directory.RootPath, Status: directory.StatusActive,
			Version: 1, Created: now, Updated: now}
		u.SetInput(in)
		a := delegation.Assignment{ID: directory.NewID(), Role: delegation.RoleTier0, Holder: u.Ref(),
			Scope:         delegation.Scope{OU: root.ID, Subtree: true, Names: map[string]string{root.ID: directory.RootPath}},
			GrantedBy:     directory.Ref{Kind: "system", ID: bootstrapActor.ID, Name: bootstrapActor.Name},
			Justification: "first administrator, created by deputy init", Created: now, Version: 1}
		tok, secret := credential.NewToken(string(directory.KindUser), u.ID, "bootstrap", now, DefaultTokenDays*24*time.Hour)
		steps := []struct {
			action string
			target directory.Ref
			after  map[string]any
			write  func() error
		}{
			{string(delegation.OUCreate), root.Ref(), root.Fields(), func() error { return tx.InsertOU(ctx, &root) }},
			{string(delegation.UserCreate), u.Ref(), u.Fields(), func() error { return tx.InsertUser(ctx, &u) }},
			{string(delegation.RoleAssign), a.Ref(), a.Fields(), func() error { return tx.InsertAssignment(ctx, &a) }},
			{string(delegation.UserIssueToken), u.Ref(), map[string]any{"token": map[string]any{"id": tok.ID, "name": tok.Name,
				"expires": tok.Expires.UTC().Format(time.RFC3339)}}, func() error { return tx.InsertToken(ctx, &tok) }},
		}
		for _, s := range steps {
			if err := s.write(); err != nil {
				return fmt.Errorf("%s: %w", s.action, err)
			}
			ev := &audit.Event{Time: now, Actor: bootstrapActor.Principal(), Action: s.action,
				Target:    audit.Target{Type: string(s.target.Kind), ID: s.target.ID, Name: s.target.String(), Version: 1},
				Authority: audit.Authority{Rule: "bootstrap"}, Outcome: audit.Applied, After: set(s.after),
				Transport: meta.Transport, ClientAddr: meta.ClientAddr, UserAgent: meta.UserAgent}
			idx, err := tx.AppendEvent(ctx, ev)
			if err != nil {
				return err
			}
			// Like every applied change, each step is announced to the connectors, so that
			// they provision the root and the first admin too.
			payload, err := json.Marshal(outboxMessage{Index: idx, Action: delegation.Action(s.action), Target: ev.Target})
			if err != nil {
				return fmt.Errorf("%s: encode outbox message: %w", s.action, err)
			}
			if err := tx.Enqueue(ctx, "directory", idx, payload); err != nil {
				return err
			}
		}
		out = Bootstrapped{Admin: u, Token: secret}
		return nil
	})
	if err != nil {
		return Bootstrapped{}, fmt.Errorf("change: bootstrap: %w", err)
	}
	return out, nil
}
