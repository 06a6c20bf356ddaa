// Package authn establishes who is calling: it checks bearer tokens and puts the actor in the
// request context. Sessions, passwords, MFA and OIDC build on it.
package authn

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/httpx"
)

// Users looks up token owners.
type Users interface {
	User(ctx context.Context, ref directory.Ref) (directory.User, error)
}

// touchEvery is how stale a token's last-used time may get before a use records it again;
// recording every request would make every read a write.
const touchEvery = time.Minute

// Authenticator checks API tokens.
type Authenticator struct {
	tokens credential.TokenStore
	users  Users
	log    *slog.Logger
	now    func() time.Time

	// Sign-in with passwords and sessions (WithSessions); nil without.
	sessions SessionStore
	rec      Recorder
	holders  Holders
	policy   credential.PasswordPolicy
	cfg      Config
	throttle *throttle

	// Sign-in with an OpenID provider (WithOIDC); nil without.
	oidc *oidcSignIn
}

// New returns an authenticator over the token store and the directory.
func New(tokens credential.TokenStore, users Users, log *slog.Logger) *Authenticator {
	return &Authenticator{tokens: tokens, users: users, log: log, now: time.Now}
}

// Authenticate resolves a presented token to its actor. The owner must be an active user:
// a disabled or locked user's tokens stop working at once. Every failure is
// credential.ErrBadToken, whatever the cause, so a caller cannot probe which part was wrong.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (delegation.Actor, error) {
	id, secret, err := credential.ParseToken(token)
	if err != nil {
		return delegation.Actor{}, credential.ErrBadToken
	}
	t, err := a.tokens.Token(ctx, id)
	if err != nil {
		if !errors.Is(err, directory.ErrNotFound) {
			return delegation.Actor{}, err
		}
		return delegation.Actor{}, credential.ErrBadToken
	}
	now := a.now()
	if !t.Matches(secret) || !t.Active(now) {
		return delegation.Actor{}, credential.ErrBadToken
	}
	if t.OwnerKind == string(directory.KindServiceAccount) {
		return a.serviceAccount(ctx, t, now)
	}
	if t.OwnerKind != string(directory.KindUser) {
		return delegation.Actor{}, credential.ErrBadToken
	}
	u, err := a.users.User(ctx, directory.Ref{Kind: directory.KindUser, ID: t.OwnerID})
	if err != nil {
		if !errors.Is(err, directory.ErrNotFound) {
			return delegation.Actor{}, err
		}
		return delegation.Actor{}, credential.ErrBadToken
	}
	if u.Status != directory.StatusActive {
		return delegation.Actor{}, credential.ErrBadToken
	}
	if now.Sub(t.LastUsed) > touchEvery {
		if err := a.tokens.TouchToken(ctx, t.ID, now); err != nil {
			a.log.WarnContext(ctx, "authn: record token use", "token_id", t.ID, "err", err)
		}
	}
	return delegation.Actor{Kind: delegation.ActorUser, ID: u.ID, Name: u.Username}, nil
}

// serviceAccount resolves a service account's key to the account as the actor: it must be
// active, like a user.
func (a *Authenticator) serviceAccount(ctx context.Context, t credential.Token, now time.Time) (delegation.Actor, error) {
	sas, ok := a.users.(ServiceAccounts)
	if !ok {
		return delegation.Actor{}, credential.ErrBadToken
	}
	sa, err := sas.ServiceAccount(ctx, directory.Ref{Kind: directory.KindServiceAccount, ID: t.OwnerID})
	if err != nil {
		if !errors.Is(err, directory.ErrNotFound) {
			return delegation.Actor{}, err
		}
		return delegation.Actor{}, credential.ErrBadToken
	}
	if sa.Status != directory.StatusActive {
		return delegation.Actor{}, credential.ErrBadToken
	}
	if now.Sub(t.LastUsed) > touchEvery {
		if err := a.tokens.TouchToken(ctx, t.ID, now); err != nil {
			a.log.WarnContext(ctx, "authn: record key use", "token_id", t.ID, "err", err)
		}
	}
	return delegation.Actor{Kind: delegation.ActorServiceAccount, ID: sa.ID, Name: sa.Name}, nil
}

// ServiceAccounts looks up the service accounts that own API keys (the directory reader).
type ServiceAccounts interface {
	ServiceAccount(ctx context.Context, ref directory.Ref) (directory.ServiceAccount, error)
}

type actorKey struct{}

// WithActor returns ctx carrying actor.
func WithActor(ctx context.Context, actor delegation.Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the authenticated actor of a request context.
func ActorFrom(ctx context.Context) (delegation.Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(delegation.Actor)
	return a, ok
}

// Require authenticates every request by its bearer token and answers 401 without one.
func (a *Authenticator) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		var err error = credential.ErrBadToken
		var actor delegation.Actor
		ctx := r.Context()
		switch c, cerr := r.Cookie(SessionCookie); {
		case ok && strings.EqualFold(scheme, "Bearer"):
			actor, err = a.Authenticate(ctx, strings.TrimSpace(token))
		case cerr == nil && c.Value != "":
			var s *credential.Session
			if actor, s, err = a.authenticateSession(r, c); err == nil {
				ctx = context.WithValue(ctx, sessionKey{}, s)
			}
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="deputy"`)
			httpx.WriteError(w, r, a.log, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithActor(ctx, actor)))
	})
}
