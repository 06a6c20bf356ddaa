package delegation

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/deputy-iam/deputy/internal/directory"
)

// holdings is a Facts over a fixed map of user ID to tier-0 assignment ID.
type holdings map[string]string

func (h holdings) Tier0Assignment(_ context.Context, userID string) (string, error) {
	if id, ok := h[userID]; ok {
		if id == "broken" {
			return "", errors.New("disk on fire")
		}
		return id, nil
	}
	return "", directory.NotFound(directory.KindUser, userID)
}

func TestTier0(t *testing.T) {
	store := holdings{"admin": "a1", "flaky": "broken"}
	authz := NewTier0(store, slog.New(slog.DiscardHandler))
	user := func(id string) Actor { return Actor{Kind: ActorUser, ID: id, Name: id} }
	userRef := func(id string) directory.Ref { return directory.Ref{Kind: directory.KindUser, ID: id, Name: id} }
	cases := []struct {
		name   string
		q      Question
		allow  bool
		rule   string
		reason string
	}{
		{"admin creates", Question{Actor: user("admin"), Action: UserCreate, Target: directory.Ref{Kind: directory.KindUser}}, true, RoleTier0, ""},
		{"admin reads", Question{Actor: user("admin"), Action: AuditRead}, true, RoleTier0, ""},
		{"user reads self", Question{Actor: user("bob"), Action: DirectoryRead, Target: userRef("bob")}, true, "self", ""},
		{"user issues own token", Question{Actor: user("bob"), Action: UserIssueToken, Target: userRef("bob")}, true, "self", ""},
		{"user updates self", Question{Actor: user("bob"), Action: UserUpdate, Target: userRef("bob")}, false, "", ReasonNotAuthorized},
		{"user issues another's token", Question{Actor: user("bob"), Action: UserIssueToken, Target: userRef("carol")}, false, "", ReasonNotAuthorized},
		{"user reads another", Question{Actor: user("bob"), Action: DirectoryRead, Target: userRef("carol")}, false, "", ReasonNotAuthorized},
		{"user lists", Question{Actor: user("bob"), Action: DirectoryRead, Target: directory.Ref{Kind: directory.KindUser}}, false, "", ReasonNotAuthorized},
		{"system actor", Question{Actor: SystemActor("lifecycle"), Action: UserCreate}, false, "", ReasonNotAuthorized},
		{"store failure denies", Question{Actor: user("flaky"), Action: UserCreate}, false, "", ReasonNotAuthorized},
		{"facts override the store", Question{Actor: user("bob"), Action: UserCreate, Facts: holdings{"bob": "a9"}}, true, RoleTier0, ""},
		{"facts that deny win", Question{Actor: user("admin"), Action: UserCreate, Facts: holdings{}}, false, "", ReasonNotAuthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := authz.Decide(context.Background(), &c.q)
			if d.Allow != c.allow || d.Authority.Rule != c.rule || d.Reason != c.reason {
				t.Errorf("Decide = %+v; want allow %v rule %q reason %q", d, c.allow, c.rule, c.reason)
			}
			if !d.Allow && d.Message == "" {
				t.Error("a denial without a message")
			}
		})
	}
}
