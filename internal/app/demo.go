package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/demo"
	"github.com/deputy-iam/deputy/internal/directory"
)

// SeedDemo fills the directory with the demo organisation, submitted by admin through the
// pipeline like any other change.
func (a *App) SeedDemo(ctx context.Context, admin directory.User, people int) (demo.Stats, error) {
	return demo.Seed(ctx, a.Pipeline, actorOf(admin), change.Meta{Transport: audit.TransportCLI},
		demo.Options{People: people, Seed: 1})
}

// IssueToken issues a new API token for the user, requested by the user themselves, with the
// default lifetime, and returns it.
func (a *App) IssueToken(ctx context.Context, username, name string) (string, error) {
	return a.IssueTokenFor(ctx, username, name, 0)
}

// IssueTokenFor is IssueToken with a lifetime in days (0: the default).
func (a *App) IssueTokenFor(ctx context.Context, username, name string, days int) (string, error) {
	u, err := a.Store.User(ctx, directory.ParseRef(directory.KindUser, username))
	if err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	if u.Status != directory.StatusActive {
		return "", fmt.Errorf("issue token: user %s is %s", u.Username, u.Status)
	}
	res, err := a.Pipeline.Submit(ctx, actorOf(u), change.Meta{Transport: audit.TransportCLI}, change.Op{
		Action: delegation.UserIssueToken, Target: u.Ref(), Token: &change.TokenInput{Name: name, ExpiresInDays: days}})
	if err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	return res.Credential.Secret, nil
}

// actorOf is the user acting as themselves.
func actorOf(u directory.User) delegation.Actor {
	return delegation.Actor{Kind: delegation.ActorUser, ID: u.ID, Name: u.Username}
}

// Initialized reports whether the database has been initialized (it has its root OU).
func (a *App) Initialized(ctx context.Context) (bool, error) {
	_, err := a.Store.OU(ctx, directory.Ref{Kind: directory.KindOU, Name: directory.RootPath})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, directory.ErrNotFound):
		return false, nil
	}
	return false, err
}

// TemporaryPassword sets a one-time temporary password for username from the server's own
// database (see change.Pipeline.LocalPassword).
func (a *App) TemporaryPassword(ctx context.Context, username string) (string, error) {
	return a.Pipeline.LocalPassword(ctx, change.Meta{Transport: audit.TransportCLI}, username)
}
