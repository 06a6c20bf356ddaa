package change

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/url"
	"time"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// Credential ops carry secrets (a password, a code). Their inputs are never serialized (json
// "-"): such an op is never parked for approval or written anywhere, and its audit event says
// what happened without the secret. The slow work (hashing, about 25 ms) is done before the
// op's transaction, so that the writer is not held for it.

// PasswordChange is a user's change of their own password.
type PasswordChange struct {
	Current, New string
}

// ResetInput is a delegate's reset: Verification is the code the user read out, when the role
// asks for their identity to be verified first. Deliver, when set, sends a one-time reset link
// instead of making a temporary password: to the user's manager (DeliverManager) or to the
// user's own email address (DeliverEmail); Portal is the portal's address for the link.
type ResetInput struct {
	Verification string
	Deliver      string
	Portal       string
}

// Where a reset link goes.
const (
	DeliverManager = "manager"
	DeliverEmail   = "email"
)

// ResetLinkTTL is how long a reset link sent by a delegate works.
const ResetLinkTTL = 72 * time.Hour

// MFAInput enrols a TOTP authenticator: without a code it starts (a new secret, shown once);
// with one it confirms that the authenticator works and turns it on.
type MFAInput struct {
	Code string
}

// prepared is what Submit computed for a credential op before its transaction.
type prepared struct {
	secret     string // a temporary password to show once
	hash       string // the hash to store
	storedHash string // the hash the current password was checked against
}

// TOTPIssuer names Deputy in authenticator apps.
const TOTPIssuer = "Deputy"

// VerificationTTL is how long a verification code may be used.
const VerificationTTL = 10 * time.Minute

// prepare does the slow part of a credential op before its transaction: it makes and hashes a
// temporary password, or checks a user's current password and hashes the new one.
func (p *Pipeline) prepare(ctx context.Context, actor delegation.Actor, op *Op) error {
	switch op.Action {
	case delegation.UserResetPassword:
		if op.Reset != nil && op.Reset.Deliver != "" {
			return nil // a reset link: no password is made
		}
		temp := credential.NewTemporaryPassword()
		h, err := credential.HashPassword(temp, credential.DefaultArgon2)
		if err != nil {
			return err
		}
		op.prep = &prepared{secret: temp, hash: h}
	case delegation.UserChangePassword:
		if op.Password == nil {
			return directory.Invalid("password", "is required")
		}
		if op.Target.ID != actor.ID && !(op.Target.ID == "" && op.Target.Name == actor.Name) {
			return directory.Invalid("target", "a password is changed by its owner; a delegate resets it")
		}
		uc, err := p.creds.UserCredential(ctx, actor.ID)
		if err != nil {
			return err
		}
		if uc.PasswordHash == "" {
			return directory.Invalid("current_password", "this account has no password to change")
		}
		ok, _, err := credential.VerifyPassword(op.Password.Current, uc.PasswordHash)
		if err != nil || !ok {
			return directory.Invalid("current_password", "is not the current password")
		}
		u, err := p.creds.User(ctx, directory.Ref{Kind: directory.KindUser, ID: actor.ID})
		if err != nil {
			return err
		}
		if err := p.policy.Check(op.Password.New, u.Username, u.GivenName, u.FamilyName, u.Email); err != nil {
			return directory.Invalid("new_password", "%v", err)
		}
		if ok, _, _ := credential.VerifyPassword(op.Password.New, uc.PasswordHash); ok {
			return directory.Invalid("new_password", "is the current password")
		}
		h, err := credential.HashPassword(op.Password.New, credential.DefaultArgon2)
		if err != nil {
			return err
		}
		op.prep = &prepared{hash: h, storedHash: uc.PasswordHash}
	}
	return nil
}

// userResetPassword sets a one-time temporary password that must be changed at the next
// sign-in, ends the user's sessions and clears a lockout. The password is shown once to the
// actor (Result.Credential). When the authorizing role asks for it, the user's identity must
// have been verified: a code sent to them, read out, passed in Reset.Verification.
func (pl *planner) userResetPassword(ctx context.Context) (*plan, error) {
	cur, uc, err := pl.credentialTarget(ctx, true)
	if err != nil {
		return nil, err
	}
	if pl.actor.IsUser(cur.ID) {
		return nil, directory.Invalid("target", "you change your own password, you do not reset it")
	}
	verified := false
	if pl.op.Reset != nil && pl.op.Reset.Verification != "" {
		if err := pl.checkVerification(ctx, cur.ID, uc, pl.op.Reset.Verification); err != nil {
			return nil, err
		}
		verified = true
	}
	if pl.op.Reset != nil && pl.op.Reset.Deliver != "" {
		return pl.resetLink(ctx, cur, verified)
	}
	if pl.op.prep == nil {
		return nil, fmt.Errorf("change: reset of %s was not prepared", cur.Username)
	}
	next := uc
	next.PasswordHash, next.MustChange, next.PasswordChanged = pl.op.prep.hash, true, pl.now
	next.FailedCount, next.FailedSince, next.LockedUntil = 0, time.Time{}, time.Time{}
	fields := cur.Fields()
	had := "none"
	if uc.PasswordHash != "" {
		had = "set"
	}
	return &plan{target: cur.Ref(), before: fields, after: fields, touched: []string{"password"}, version: cur.Version,
		verified:  verified,
		relBefore: map[string]any{"password": had},
		relAfter:  map[string]any{"password": "temporary", "must_change": true, "identity_verified": verified},
		issued:    &Issued{ID: "temporary_password", Secret: pl.op.prep.secret},
		write: func(ctx context.Context) error {
			if err := pl.tx.SaveUserCredential(ctx, &next); err != nil {
				return err
			}
			if err := pl.tx.DeleteSessions(ctx, cur.ID); err != nil {
				return err
			}
			return pl.tx.DeleteVerification(ctx, cur.ID, pl.actor.ID)
		}}, nil
}

// resetLink is a reset delivered as a one-time link instead of a temporary password: to the
// user's active manager, or to the user's own email address (a recovery address). The link's
// code (256 random bits) is stored hashed as the user's recovery code and works for
// ResetLinkTTL; the user chooses the new password at the portal's /activate page (or with
// POST /api/v1/auth/reset-password), which ends their sessions then. Until it is used, nothing
// else changes: the current password keeps working. The delegate never sees the code.
func (pl *planner) resetLink(ctx context.Context, cur directory.User, verified bool) (*plan, error) {
	in := pl.op.Reset
	var to directory.User
	switch in.Deliver {
	case DeliverManager:
		// Whoever holds the link can take the account: a holder of rights (or someone the
		// authorizer cannot vouch for) gets it only at their own address.
		if pl.holds == nil || pl.holds(cur.ID) {
			return nil, directory.Invalid("deliver", "%s holds rights: a reset link goes to their own address (deliver email), not to their manager", cur.Username)
		}
		if cur.ManagerID == "" {
			return nil, directory.Invalid("deliver", "%s has no manager to pass a reset link on", cur.Username)
		}
		m, err := pl.tx.User(ctx, directory.Ref{Kind: directory.KindUser, ID: cur.ManagerID})
		if err != nil {
			return nil, err
		}
		if m.Status != directory.StatusActive {
			return nil, directory.Invalid("deliver", "%s's manager %s is not active", cur.Username, m.Username)
		}
		to = m
	case DeliverEmail:
		if cur.Email == "" {
			return nil, directory.Invalid("deliver", "%s has no email address", cur.Username)
		}
		to = cur
	default:
		return nil, directory.Invalid("deliver", "must be %q or %q (or absent, for a temporary password shown to you)", DeliverManager, DeliverEmail)
	}
	link := newPasswordLink(in.Portal, cur.Username)
	expires := pl.now.Add(ResetLinkTTL)
	body := "A password reset for you was started by " + pl.actor.Name + ". Choose your new password here; the link works once, until " +
		expires.UTC().Format("2006-01-02 15:04 UTC") + ":\n" + link.url
	if in.Deliver == DeliverManager {
		body = "Give " + cur.DisplayName + " this link, in person or by a channel you trust: it lets them choose a new password (asked for by " +
			pl.actor.Name + "), works once, and expires on " + expires.UTC().Format("2006-01-02 15:04 UTC") + ":\n" + link.url
	}
	fields := cur.Fields()
	return &plan{target: cur.Ref(), before: fields, after: fields, touched: []string{"password"}, version: cur.Version,
		verified:  verified,
		relBefore: map[string]any{"password": "unchanged"},
		relAfter:  map[string]any{"reset_link_to": in.Deliver, "recipient": to.Username, "identity_verified": verified},
		note:      "a reset link went to " + map[string]string{DeliverManager: "the manager ", DeliverEmail: "the user's own address, "}[in.Deliver] + to.Username,
		write: func(ctx context.Context) error {
			if err := pl.tx.DeleteVerification(ctx, cur.ID, SelfVerification); err != nil {
				return err
			}
			if err := link.store(ctx, pl.tx, cur.ID, "reset_link", expires, Notification{Kind: "password_reset_link", To: []string{to.ID},
				Subject: "A password reset link for " + cur.DisplayName + " (" + cur.Username + ")", Body: body}); err != nil {
				return err
			}
			return pl.tx.DeleteVerification(ctx, cur.ID, pl.actor.ID)
		}}, nil
}

// checkVerification checks the code a delegate entered for a user: the code Deputy sent (by
// email) for this delegate, unexpired and tried fewer than five times, or the user's current
// TOTP code when the verification is by authenticator.
func (pl *planner) checkVerification(ctx context.Context, userID string, uc credential.UserCredential, code string) error {
	v, err := pl.tx.Verification(ctx, userID, pl.actor.ID)
	if err != nil {
		return directory.Invalid("verification", "ask for a verification code first (POST .../verification)")
	}
	switch {
	case !pl.now.Before(v.Expires):
		return directory.Invalid("verification", "the code has expired: ask for a new one")
	case v.Attempts >= 5:
		return directory.Invalid("verification", "too many wrong codes: ask for a new one")
	}
	ok := false
	switch v.Channel {
	case "totp":
		_, ok = credential.MatchTOTP(code, uc.TOTPSecret, pl.now, uint64(uc.TOTPLastStep))
	default:
		ok = subtle.ConstantTimeCompare([]byte(credential.HashSessionID(code)), []byte(v.CodeHash)) == 1
	}
	if !ok {
		// The try counts, although the reset fails and its transaction rolls back.
		return &failedWith{err: directory.Invalid("verification", "the code is not right"),
			write: func(ctx context.Context, tx Tx) error { return tx.CountVerificationTry(ctx, v.UserID, v.ActorID) }}
	}
	return nil
}

// credentialTarget reads the op's target user and their credential state, checking the
// target's version first when versioned (the ops a delegate takes on someone else).
func (pl *planner) credentialTarget(ctx context.Context, versioned bool) (directory.User, credential.UserCredential, error) {
	cur, err := pl.tx.User(ctx, pl.op.Target)
	if err != nil {
		return cur, credential.UserCredential{}, err
	}
	if versioned {
		if err := pl.checkVersion(cur.Version); err != nil {
			return cur, credential.UserCredential{}, err
		}
	}
	uc, err := pl.tx.UserCredential(ctx, cur.ID)
	return cur, uc, err
}

// userUnlock clears the lockout that failed sign-ins set.
func (pl *planner) userUnlock(ctx context.Context) (*plan, error) {
	cur, uc, err := pl.credentialTarget(ctx, true)
	if err != nil {
		return nil, err
	}
	if uc.FailedCount == 0 && uc.LockedUntil.IsZero() {
		return nil, errUnchanged("user %s is not locked out", cur.Username)
	}
	next := uc
	next.FailedCount, next.FailedSince, next.LockedUntil = 0, time.Time{}, time.Time{}
	fields := cur.Fields()
	return &plan{target: cur.Ref(), before: fields, after: fields, touched: []string{"lockout"}, version: cur.Version,
		relBefore: map[string]any{"failed_sign_ins": uc.FailedCount, "locked": uc.Locked(pl.now)},
		relAfter:  map[string]any{"failed_sign_ins": 0, "locked": false},
		write:     func(ctx context.Context) error { return pl.tx.SaveUserCredential(ctx, &next) }}, nil
}

// userChangePassword stores a user's new password (checked and hashed by prepare), if the
// password it was checked against is still the stored one.
func (pl *planner) userChangePassword(ctx context.Context) (*plan, error) {
	cur, uc, err := pl.credentialTarget(ctx, false)
	if err != nil {
		return nil, err
	}
	if !pl.actor.IsUser(cur.ID) || pl.op.prep == nil {
		return nil, directory.Invalid("target", "a password is changed by its owner; a delegate resets it")
	}
	if uc.PasswordHash != pl.op.prep.storedHash {
		return nil, directory.StaleVersion(1, 2) // changed meanwhile: check again
	}
	next := uc
	next.PasswordHash, next.MustChange, next.PasswordChanged = pl.op.prep.hash, false, pl.now
	fields := cur.Fields()
	return &plan{target: cur.Ref(), before: fields, after: fields, touched: []string{"password"}, version: cur.Version,
		relBefore: map[string]any{"password": "set", "must_change": uc.MustChange},
		relAfter:  map[string]any{"password": "changed", "must_change": false},
		write: func(ctx context.Context) error {
			if err := pl.tx.SaveUserCredential(ctx, &next); err != nil {
				return err
			}
			// Every other session ends; the caller's own is replaced by a new one.
			return pl.tx.DeleteSessions(ctx, cur.ID)
		}}, nil
}

// userEnrolMFA starts (no code: a new secret, shown once as an otpauth URL) or confirms (a
// code from the authenticator) a user's TOTP enrolment. Only the user enrols themselves.
func (pl *planner) userEnrolMFA(ctx context.Context) (*plan, error) {
	cur, uc, err := pl.credentialTarget(ctx, false)
	if err != nil {
		return nil, err
	}
	if !pl.actor.IsUser(cur.ID) {
		return nil, directory.Invalid("target", "an authenticator is enrolled by its owner")
	}
	fields := cur.Fields()
	next := uc
	code := ""
	if pl.op.MFA != nil {
		code = pl.op.MFA.Code
	}
	if code == "" {
		if uc.TOTPEnabled {
			return nil, directory.Conflict("mfa", "an authenticator is enrolled already; a tier-0 admin removes it if it is lost")
		}
		secret, url, err := credential.NewTOTP(TOTPIssuer, cur.Username)
		if err != nil {
			return nil, err
		}
		next.TOTPSecret, next.TOTPEnabled, next.TOTPLastStep = secret, false, 0
		return &plan{target: cur.Ref(), before: fields, after: fields, touched: []string{"mfa"}, version: cur.Version,
			relAfter: map[string]any{"mfa": "totp enrolment started"},
			issued:   &Issued{ID: "totp", Secret: url},
			write:    func(ctx context.Context) error { return pl.tx.SaveUserCredential(ctx, &next) }}, nil
	}
	if uc.TOTPSecret == "" || uc.TOTPEnabled {
		return nil, directory.Conflict("mfa", "there is no enrolment to confirm")
	}
	step, ok := credential.MatchTOTP(code, uc.TOTPSecret, pl.now, uint64(uc.TOTPLastStep))
	if !ok {
		return nil, directory.Invalid("code", "does not match the authenticator: check its clock and try the next code")
	}
	next.TOTPEnabled, next.TOTPLastStep = true, int64(step)
	return &plan{target: cur.Ref(), before: fields, after: fields, touched: []string{"mfa"}, version: cur.Version,
		relBefore: map[string]any{"mfa": "none"}, relAfter: map[string]any{"mfa": "totp"},
		write: func(ctx context.Context) error { return pl.tx.SaveUserCredential(ctx, &next) }}, nil
}

// Sign-in actions, as audit events name them. A sign-in is not a change of the directory, but
// every attempt, allowed or not, is evidence.
const (
	ActionSignIn         = "auth.sign_in"
	ActionSignOut        = "auth.sign_out"
	ActionSignOutAll     = "auth.sign_out_everywhere"
	ActionStepUp         = "auth.step_up"
	ActionForgotPassword = "auth.forgot_password"
	ActionResetForgotten = "auth.reset_forgotten_password"
	ActionVerifyIdentity = "user.verify_identity"
)

// WelcomeInput asks user.create to give the new account its way in: a one-time activation
// code (256 random bits, stored hashed as the account's recovery code, valid until Expires) in
// a link to Portal + "/activate", sent through the outbox to the account's manager, who passes
// it on (the joiner cannot read their work mail yet). The create's audit event says it was
// sent, never the code.
type WelcomeInput struct {
	Portal  string    `json:"portal,omitempty"`
	Expires time.Time `json:"expires"`
}

// welcome adds the activation link pl.op.Welcome asks for to the write of a new user u: the
// verification and the notification to their manager m, in the create's transaction. A user
// without a manager, or whose manager is not active, gets none (the note says so).
func (pl *planner) welcome(u, m *directory.User, p *plan) {
	a := pl.op.Welcome
	if a == nil {
		return
	}
	if m == nil {
		p.note = "no activation link: the account has no manager to pass it on"
		return
	}
	if m.Status != directory.StatusActive {
		p.note = "no activation link: the manager " + m.Username + " is not active"
		return
	}
	link := newPasswordLink(a.Portal, u.Username)
	expires := a.Expires.UTC().Format("2006-01-02 15:04 UTC")
	p.note = "an activation link went to the manager " + m.Username + ", valid until " + expires
	write := p.write
	p.write = func(ctx context.Context) error {
		if err := write(ctx); err != nil {
			return err
		}
		return link.store(ctx, pl.tx, u.ID, "activation", a.Expires, Notification{Kind: "account_activation", To: []string{m.ID},
			Subject: "The account of " + u.DisplayName + " (" + u.Username + ") is ready",
			Body: "Give " + u.DisplayName + " this link, in person or by a channel you trust; it sets their first password, " +
				"works once, and expires on " + expires + ":\n" + link.url})
	}
}

// passwordLink is a one-time link that lets a user choose their password at the portal's
// /activate page: its code (256 random bits) is in the link only, and kept hashed as the
// user's recovery code.
type passwordLink struct{ url, hash string }

func newPasswordLink(portal, username string) passwordLink {
	code, hash := credential.NewSessionID()
	return passwordLink{url: portal + "/activate?user=" + url.QueryEscape(username) + "&code=" + code, hash: hash}
}

// store keeps the link's code for the user, valid until expires (there must be no recovery
// code pending), and sends n, which carries the link, through the outbox.
func (l passwordLink) store(ctx context.Context, tx Tx, userID, channel string, expires time.Time, n Notification) error {
	if err := tx.InsertVerification(ctx, &credential.Verification{UserID: userID, ActorID: SelfVerification, CodeHash: l.hash,
		Channel: channel, Expires: expires}); err != nil {
		return err
	}
	return notify(ctx, tx, 0, n)
}

// RecordAuth writes the audit event of an authentication step (a sign-in, its failure, a
// sign-out, a step-up, a verification sent) about user target, in a transaction of its own,
// and returns its index. The event never holds a secret.
func (p *Pipeline) RecordAuth(ctx context.Context, actor delegation.Actor, meta Meta, action string, target directory.Ref,
	outcome audit.Outcome, reason, message string) (int64, error) {
	ev := p.event(actor, meta, &Op{Action: delegation.Action(action)}, target, audit.Timestamp(p.now()))
	ev.Outcome, ev.Reason, ev.Message = outcome, reason, message
	if outcome == audit.Applied {
		ev.Authority.Rule = "self"
	}
	return p.record(ctx, ev)
}

// ResetForgotten sets a password a user chose after proving, without signing in, that they
// hold their recovery channel (a code sent to their email, and their authenticator when they
// have one): the credential, the end of their sessions and the audit event, in one transaction.
// newHash is the new password's hash (checked against the policy by the caller).
func (p *Pipeline) ResetForgotten(ctx context.Context, meta Meta, user directory.User, newHash string) (int64, error) {
	var idx int64
	err := p.store.InTx(ctx, func(tx Tx) error {
		uc, err := tx.UserCredential(ctx, user.ID)
		if err != nil {
			return err
		}
		now := audit.Timestamp(p.now())
		uc.PasswordHash, uc.MustChange, uc.PasswordChanged = newHash, false, now
		uc.FailedCount, uc.FailedSince, uc.LockedUntil = 0, time.Time{}, time.Time{}
		if err := tx.SaveUserCredential(ctx, &uc); err != nil {
			return err
		}
		if err := tx.DeleteSessions(ctx, user.ID); err != nil {
			return err
		}
		if err := tx.DeleteVerification(ctx, user.ID, SelfVerification); err != nil {
			return err
		}
		actor := delegation.Actor{Kind: delegation.ActorUser, ID: user.ID, Name: user.Username}
		ev := p.event(actor, meta, &Op{Action: ActionResetForgotten}, user.Ref(), now)
		ev.Outcome, ev.Authority.Rule = audit.Applied, "recovery"
		ev.After = map[string]any{"password": "changed", "sessions": "ended"}
		idx, err = tx.AppendEvent(ctx, ev)
		return err
	})
	return idx, err
}

// SelfVerification is the actor ID under which a forgotten-password code is kept (the user
// asked for it themselves).
const SelfVerification = "self"

// LocalPassword sets a one-time temporary password for a user on behalf of whoever runs
// Deputy on its own machine (`deputy recover-password`, the demo's first admin): the one way
// to give the first admin a password, since nobody may reset their own. It is recorded as
// user.reset_password by system:local with the authority rule "local". The password is
// returned once.
func (p *Pipeline) LocalPassword(ctx context.Context, meta Meta, username string) (string, error) {
	temp := credential.NewTemporaryPassword()
	h, err := credential.HashPassword(temp, credential.DefaultArgon2)
	if err != nil {
		return "", err
	}
	err = p.store.InTx(ctx, func(tx Tx) error {
		u, err := tx.User(ctx, directory.ParseRef(directory.KindUser, username))
		if err != nil {
			return err
		}
		if u.Status != directory.StatusActive {
			return directory.Conflict("", "user %s is %s", u.Username, u.Status)
		}
		uc, err := tx.UserCredential(ctx, u.ID)
		if err != nil {
			return err
		}
		uc.PasswordHash, uc.MustChange, uc.PasswordChanged = h, true, audit.Timestamp(p.now())
		uc.FailedCount, uc.FailedSince, uc.LockedUntil = 0, time.Time{}, time.Time{}
		if err := tx.SaveUserCredential(ctx, &uc); err != nil {
			return err
		}
		if err := tx.DeleteSessions(ctx, u.ID); err != nil {
			return err
		}
		ev := p.event(delegation.SystemActor("local"), meta, &Op{Action: delegation.UserResetPassword}, u.Ref(), audit.Timestamp(p.now()))
		ev.Outcome, ev.Authority.Rule = audit.Applied, "local"
		ev.After = map[string]any{"password": "temporary", "must_change": true}
		_, err = tx.AppendEvent(ctx, ev)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("change: temporary password for %s: %w", username, err)
	}
	return temp, nil
}

// userResetMFA removes a user's authenticator (lost or replaced) and ends their sessions: at
// their next sign-in they enrol a new one (holders of rights must). Only someone else resets
// it; a user replaces their own by enrolling again after a reset.
func (pl *planner) userResetMFA(ctx context.Context) (*plan, error) {
	cur, uc, err := pl.credentialTarget(ctx, true)
	if err != nil {
		return nil, err
	}
	if pl.actor.IsUser(cur.ID) {
		return nil, directory.Invalid("target", "someone else resets your authenticator")
	}
	if uc.TOTPSecret == "" {
		return nil, errUnchanged("user %s has no authenticator", cur.Username)
	}
	next := uc
	next.TOTPSecret, next.TOTPEnabled, next.TOTPLastStep = "", false, 0
	fields := cur.Fields()
	return &plan{target: cur.Ref(), before: fields, after: fields, touched: []string{"mfa"}, version: cur.Version,
		relBefore: map[string]any{"mfa": "totp"}, relAfter: map[string]any{"mfa": "none"},
		write: func(ctx context.Context) error {
			if err := pl.tx.SaveUserCredential(ctx, &next); err != nil {
				return err
			}
			return pl.tx.DeleteSessions(ctx, cur.ID)
		}}, nil
}
