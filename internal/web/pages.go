package web

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"image/png"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/approval"
	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/authn"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
	"github.com/deputy-iam/deputy/internal/httpx"
	"github.com/pquerna/otp"
)

// meta describes a portal request for the audit record.
func meta(r *http.Request) change.Meta {
	ua := r.UserAgent()
	if len(ua) > 256 {
		ua = ua[:256]
	}
	return change.Meta{Transport: audit.TransportPortal, ClientAddr: httpx.ClientAddr(r), UserAgent: ua}
}

// localPath keeps a "next" address on this site.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	return p
}

func (s *Server) signInPage(w http.ResponseWriter, r *http.Request) {
	c := &ctx{w: w, r: r}
	s.render(c, http.StatusOK, "sign-in", "Sign in", map[string]any{"Next": localPath(r.URL.Query().Get("next")),
		"OIDC": s.Auth.OIDCEnabled()}, nil)
}

// signIn signs in with a password (and a TOTP code when the account has one).
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	c := &ctx{w: w, r: r}
	next := localPath(r.PostFormValue("next"))
	id, sess, err := s.Auth.SignIn(r, r.PostFormValue("username"), r.PostFormValue("password"), r.PostFormValue("totp"))
	if err != nil {
		msg := "The username or password is not right, or the account cannot sign in now."
		switch {
		case err == authn.ErrMFARequired:
			msg = "Enter the code from your authenticator app too."
		case strings.Contains(err.Error(), "too many"):
			msg = "Too many attempts from here: wait a minute."
		}
		s.render(c, http.StatusUnauthorized, "sign-in", "Sign in", map[string]any{"Next": next, "Error": msg,
			"Username": r.PostFormValue("username"), "NeedCode": err == authn.ErrMFARequired, "OIDC": s.Auth.OIDCEnabled()}, nil)
		return
	}
	s.Auth.SetSessionCookie(w, id, sess.Expires)
	if sess.Restricted != "" {
		next = "/password"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) signOut(c *ctx) {
	s.Auth.EndSession(c.r, c.me, c.session)
	s.Auth.SetSessionCookie(c.w, "", c.session.Expires)
	http.Redirect(c.w, c.r, "/sign-in", http.StatusSeeOther)
}

func (s *Server) passwordPage(c *ctx) {
	s.render(c, http.StatusOK, "password", "Change your password", map[string]any{"Required": c.session.Restricted != ""}, nil)
}

// changePassword changes the signed-in person's password; every session ends, so they sign in
// again with it.
func (s *Server) changePassword(c *ctx) {
	if c.r.PostFormValue("new_password") != c.r.PostFormValue("confirm") {
		s.render(c, http.StatusUnprocessableEntity, "password", "Change your password",
			map[string]any{"Error": "The two new passwords differ.", "Required": c.session.Restricted != ""}, nil)
		return
	}
	_, err := s.Pipeline.Submit(c.r.Context(), c.me, meta(c.r), change.Op{Action: delegation.UserChangePassword,
		Target:   directory.Ref{Kind: directory.KindUser, ID: c.me.ID, Name: c.me.Name},
		Password: &change.PasswordChange{Current: c.r.PostFormValue("current_password"), New: c.r.PostFormValue("new_password")}})
	if err != nil {
		s.render(c, http.StatusUnprocessableEntity, "password", "Change your password",
			map[string]any{"Error": strings.TrimPrefix(err.Error(), "invalid input: "), "Required": c.session.Restricted != ""}, nil)
		return
	}
	s.Auth.SetSessionCookie(c.w, "", c.session.Expires)
	http.Redirect(c.w, c.r, "/sign-in?done="+url.QueryEscape("Password changed: sign in with the new one."), http.StatusSeeOther)
}

// home is the person's tasks: requests waiting for them, their own requests, break-glass
// changes to review (tier-0), and what changed in their scope lately.
func (s *Server) home(c *ctx) {
	ctx := c.r.Context()
	waiting, err := s.Requests.Requests(ctx, approval.Query{Approver: c.me.ID, Limit: 20})
	if err != nil {
		s.fail(c, err)
		return
	}
	mine, err := s.Requests.Requests(ctx, approval.Query{Requester: c.me.ID, Limit: 20})
	if err != nil {
		s.fail(c, err)
		return
	}
	grants := s.Authz.Grants(c.me.ID)
	data := map[string]any{"Waiting": waiting, "Mine": mine, "Grants": grants}
	readsAll := false
	for _, g := range grants {
		readsAll = readsAll || g.Role.Name == delegation.RoleTier0 || g.Role.Name == delegation.RoleAuditor
		if g.Role.Name == delegation.RoleTier0 && data["BreakGlass"] == nil {
			glass, err := s.Requests.Requests(ctx, approval.Query{State: approval.Unreviewed, Limit: 20})
			if err != nil {
				s.fail(c, err)
				return
			}
			data["BreakGlass"] = glass
		}
	}
	// Assignments held directly that end within two weeks, and those waiting to be activated.
	now := time.Now()
	as, err := s.Deleg.Assignments(ctx, "", c.me.ID, "", 100)
	if err != nil {
		s.fail(c, err)
		return
	}
	var expiring, eligible []delegation.Assignment
	for _, a := range as {
		switch {
		case a.Eligible && (a.Until.IsZero() || now.Before(a.Until)):
			eligible = append(eligible, a)
		case !a.Until.IsZero() && now.Before(a.Until) && a.Until.Before(now.Add(14*24*time.Hour)):
			expiring = append(expiring, a)
		}
	}
	data["Expiring"], data["Eligible"] = expiring, eligible
	if len(grants) > 0 {
		// A summary: the newest 300 events of the week are enough to find the last ten changes.
		recent, _, err := s.scopedEvents(c, readsAll, audit.Query{Outcome: audit.Applied, Since: now.Add(-7 * 24 * time.Hour), Limit: 10}, 300)
		if err != nil {
			s.fail(c, err)
			return
		}
		data["Recent"] = recent
	}
	s.render(c, http.StatusOK, "home", "Home", data, nil)
}

// scopedEvents searches the trail as q says and keeps what the person may see: everything
// for those who read the whole trail, else their own actions and events about objects they
// may read (delegation.EventScope), reading at most budget events. The cursor continues after
// the last event read (0 at the end).
func (s *Server) scopedEvents(c *ctx, readsAll bool, q audit.Query, budget int) ([]audit.Event, int64, error) {
	if readsAll {
		return s.Audit.Events(c.r.Context(), q)
	}
	return delegation.NewEventScope(s.Dir, s.Authz, c.me).Search(c.r.Context(), s.Audit, q, 200, budget)
}

// users searches the users the person may see.
func (s *Server) users(c *ctx) {
	q := directory.ListQuery{Limit: 50, Cursor: c.r.URL.Query().Get("cursor")}
	term := strings.TrimSpace(c.r.URL.Query().Get("q"))
	if term != "" {
		quoted := strconv.Quote(term)
		e, err := filter.Parse("username sw "+quoted+" or display_name co "+quoted+" or email sw "+quoted, directory.UserSchema)
		if err != nil {
			s.fail(c, directory.Invalid("q", "%v", err))
			return
		}
		q.Filter = e
	}
	all, vis := s.Authz.Visibility(c.me, directory.KindUser)
	switch {
	case all:
	case vis == nil:
		s.render(c, http.StatusOK, "users", "People", map[string]any{"Query": term, "None": true}, nil)
		return
	case q.Filter == nil:
		q.Filter = vis
	default:
		q.Filter = &filter.And{Left: vis, Right: q.Filter}
	}
	page, err := s.Dir.ListUsers(c.r.Context(), q)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "users", "People", map[string]any{"Query": term, "Page": page}, nil)
}

// userActions are the actions a user page may offer.
var userActions = []delegation.Action{delegation.DirectoryRead, delegation.UserResetPassword, delegation.UserUnlock,
	delegation.UserDisable, delegation.UserEnable, delegation.UserUpdate, delegation.UserRevokeTokens, delegation.UserMove,
	delegation.UserDelete}

// user shows a person: profile, groups and why, assignments, recent events, and only the
// actions the viewer may take.
func (s *Server) user(c *ctx) {
	ctx := c.r.Context()
	u, err := s.Dir.User(ctx, directory.ParseRef(directory.KindUser, c.r.PathValue("user")))
	if err != nil {
		s.fail(c, directory.NotFound(directory.KindUser, c.r.PathValue("user")))
		return
	}
	allowed := s.Authz.Allowed(ctx, c.me, delegation.Object{Ref: u.Ref(), Fields: u.Fields()}, userActions)
	if len(allowed) == 0 || allowed[0] != delegation.DirectoryRead {
		s.fail(c, directory.NotFound(directory.KindUser, c.r.PathValue("user"))) // not theirs to see: as if it did not exist
		return
	}
	groups, err := s.Memberships.DirectMemberships(ctx, u.Ref())
	if err != nil {
		s.fail(c, err)
		return
	}
	all, err := s.Memberships.Memberships(ctx, u.Ref())
	if err != nil {
		s.fail(c, err)
		return
	}
	var nested []directory.Membership // the groups held through others, with the chain
	for _, m := range all {
		if len(m.Via) > 0 {
			nested = append(nested, m)
		}
	}
	as, err := s.Deleg.Assignments(ctx, "", u.ID, "", 100)
	if err != nil {
		s.fail(c, err)
		return
	}
	evs, _, err := s.Audit.Events(ctx, audit.Query{Target: u.ID, Limit: 10})
	if err != nil {
		s.fail(c, err)
		return
	}
	locked := u.Status == directory.StatusLocked
	if s.Credentials != nil {
		if uc, err := s.Credentials.UserCredential(ctx, u.ID); err == nil && uc.LockedUntil.After(time.Now()) {
			locked = true
		}
	}
	s.render(c, http.StatusOK, "user", u.Username, map[string]any{"User": u, "Groups": groups, "Assignments": as,
		"Events": evs, "Allowed": allowed, "Locked": locked, "Nested": nested, "StepUp": s.stepUpNeed(c)}, nil)
}

// userActionDone says in words what a user page's action did.
var userActionDone = map[delegation.Action]string{
	delegation.UserUnlock:        "Unlocked: they can sign in again.",
	delegation.UserDisable:       "Disabled: their sign-in, sessions and API tokens stop.",
	delegation.UserEnable:        "Enabled again.",
	delegation.UserRevokeTokens:  "Their API tokens are revoked: they stop working now.",
	delegation.UserResetPassword: "A one-time reset link is on its way: it lets them choose a new password.",
}

// userAction runs one of the user page's actions.
func (s *Server) userAction(c *ctx) {
	target := directory.ParseRef(directory.KindUser, c.r.PathValue("user"))
	op := change.Op{Target: target, Justification: strings.TrimSpace(c.r.PostFormValue("justification"))}
	switch c.r.PathValue("action") {
	case "reset-password":
		// A takeover action: a fresh second factor first, as on the API.
		if err := s.stepUp(c); err != nil {
			s.fail(c, err)
			return
		}
		op.Action, op.Reset = delegation.UserResetPassword, &change.ResetInput{Verification: strings.TrimSpace(c.r.PostFormValue("code")),
			Deliver: c.r.PostFormValue("deliver"), Portal: s.Portal}
	case "unlock":
		op.Action = delegation.UserUnlock
	case "disable":
		op.Action = delegation.UserDisable
	case "enable":
		op.Action = delegation.UserEnable
	case "revoke-tokens":
		op.Action = delegation.UserRevokeTokens
	case "delete":
		if c.r.PostFormValue("confirm") != c.r.PathValue("user") {
			s.fail(c, directory.Invalid("confirm", "type the username to confirm the deletion"))
			return
		}
		op.Action = delegation.UserDelete
	default:
		s.fail(c, directory.NotFound("action", c.r.PathValue("action")))
		return
	}
	res, err := s.Pipeline.Submit(c.r.Context(), c.me, meta(c.r), op)
	if err != nil {
		s.fail(c, err)
		return
	}
	if op.Action == delegation.UserDelete {
		http.Redirect(c.w, c.r, "/users?done="+url.QueryEscape(res.Target.Name+" is deleted."), http.StatusSeeOther)
		return
	}
	if res.Credential != nil && op.Action == delegation.UserResetPassword {
		s.render(c, http.StatusOK, "temporary", "Temporary password", map[string]any{"User": res.Target.Name,
			"Password": res.Credential.Secret}, nil)
		return
	}
	http.Redirect(c.w, c.r, "/users/"+url.PathEscape(res.Target.Name)+"?done="+url.QueryEscape(userActionDone[op.Action]), http.StatusSeeOther)
}

// group shows a group's owners and members (with why each is there) and the membership actions
// the viewer may take.
func (s *Server) group(c *ctx) {
	ctx := c.r.Context()
	g, err := s.Dir.Group(ctx, directory.ParseRef(directory.KindGroup, c.r.PathValue("group")))
	if err != nil {
		s.fail(c, directory.NotFound(directory.KindGroup, c.r.PathValue("group")))
		return
	}
	allowed := s.Authz.Allowed(ctx, c.me, delegation.Object{Ref: g.Ref(), Fields: g.Fields()},
		[]delegation.Action{delegation.DirectoryRead, delegation.GroupAddMember, delegation.GroupRemoveMember, delegation.GroupUpdate,
			delegation.GroupSetOwner})
	if len(allowed) == 0 || allowed[0] != delegation.DirectoryRead {
		s.fail(c, directory.NotFound(directory.KindGroup, c.r.PathValue("group")))
		return
	}
	members, err := s.Dir.Members(ctx, g.Ref(), directory.ListQuery{Limit: 200})
	if err != nil {
		s.fail(c, err)
		return
	}
	// Anyone who sees the group, is not in it and is not its only owner may ask to join: the
	// request goes to the owners, who add them (or not) in their own name.
	mine, err := s.Memberships.DirectMemberships(ctx, directory.Ref{Kind: directory.KindUser, ID: c.me.ID})
	if err != nil {
		s.fail(c, err)
		return
	}
	canAsk := slices.ContainsFunc(g.Owners, func(o directory.Ref) bool { return o.ID != c.me.ID }) &&
		!slices.ContainsFunc(mine, func(m directory.DirectMembership) bool { return m.Group.ID == g.ID })
	s.render(c, http.StatusOK, "group", g.Name, map[string]any{"Group": g, "Members": members.Items, "Allowed": allowed,
		"CanAsk": canAsk, "Add": c.r.URL.Query().Get("add"), "Owners": strings.ReplaceAll(ownerNames(g.Owners), ",", ", ")}, nil)
}

// editGroup saves a group's description and (when the form has them: group.set_owner) owners
// (usernames, comma-separated) as a merge patch, on the version the page was read at: a change by someone else meanwhile makes it fail
// as stale.
func (s *Server) editGroup(c *ctx) {
	ref := directory.ParseRef(directory.KindGroup, c.r.PathValue("group"))
	g, err := s.Dir.Group(c.r.Context(), ref)
	if err != nil {
		s.fail(c, directory.NotFound(directory.KindGroup, c.r.PathValue("group")))
		return
	}
	version, err := strconv.ParseInt(c.r.PostFormValue("version"), 10, 64)
	if err != nil || version < 1 {
		s.fail(c, directory.Invalid("version", "the form lost the version it was read at: open it again"))
		return
	}
	patch := directory.Patch{}
	stale := version != g.Version // then send all, and let the pipeline say it changed meanwhile
	if _, sent := c.r.PostForm["description"]; sent && (stale || strings.TrimSpace(c.r.PostFormValue("description")) != g.Description) {
		d := strings.TrimSpace(c.r.PostFormValue("description"))
		patch["description"], _ = json.Marshal(d)
	}
	owners := []string{}
	for _, o := range strings.Split(c.r.PostFormValue("owners"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			owners = append(owners, o)
		}
	}
	if _, sent := c.r.PostForm["owners"]; sent && (stale || strings.Join(owners, ",") != ownerNames(g.Owners)) {
		patch["owners"], _ = json.Marshal(owners)
	}
	if len(patch) == 0 {
		http.Redirect(c.w, c.r, "/groups/"+url.PathEscape(g.Name)+"?done="+url.QueryEscape("Nothing changed"), http.StatusSeeOther)
		return
	}
	if _, err := s.Pipeline.Submit(c.r.Context(), c.me, meta(c.r), change.Op{Action: delegation.GroupUpdate, Target: g.Ref(),
		IfVersion: version, Patch: patch, Justification: strings.TrimSpace(c.r.PostFormValue("justification"))}); err != nil {
		s.fail(c, err)
		return
	}
	http.Redirect(c.w, c.r, "/groups/"+url.PathEscape(g.Name)+"?done="+url.QueryEscape("Saved"), http.StatusSeeOther)
}

// ownerNames is a group's owners as the edit form writes them.
func ownerNames(owners []directory.Ref) string {
	names := make([]string, len(owners))
	for i, o := range owners {
		names[i] = o.Name
	}
	return strings.Join(names, ",")
}

// askToJoin sends the group's owners the person's request to be added, with their reason.
func (s *Server) askToJoin(c *ctx) {
	group := c.r.PathValue("group")
	if _, err := s.Pipeline.RequestJoin(c.r.Context(), c.me, meta(c.r), directory.ParseRef(directory.KindGroup, group),
		c.r.PostFormValue("justification"), s.Portal); err != nil {
		s.fail(c, err)
		return
	}
	http.Redirect(c.w, c.r, "/groups/"+url.PathEscape(group)+"?done="+url.QueryEscape("Your request went to the owners: they decide whether to add you."), http.StatusSeeOther)
}

func (s *Server) addMember(c *ctx) {
	group := c.r.PathValue("group")
	_, err := s.Pipeline.Submit(c.r.Context(), c.me, meta(c.r), change.Op{Action: delegation.GroupAddMember,
		Target: directory.ParseRef(directory.KindGroup, group), Member: strings.TrimSpace(c.r.PostFormValue("member")),
		Justification: strings.TrimSpace(c.r.PostFormValue("justification"))})
	if err != nil {
		s.fail(c, err)
		return
	}
	http.Redirect(c.w, c.r, "/groups/"+url.PathEscape(group)+"?done="+url.QueryEscape("Member added"), http.StatusSeeOther)
}

func (s *Server) removeMember(c *ctx) {
	group := c.r.PathValue("group")
	_, err := s.Pipeline.Submit(c.r.Context(), c.me, meta(c.r), change.Op{Action: delegation.GroupRemoveMember,
		Target: directory.ParseRef(directory.KindGroup, group), Member: c.r.PathValue("member"),
		Justification: strings.TrimSpace(c.r.PostFormValue("justification"))})
	if err != nil {
		s.fail(c, err)
		return
	}
	http.Redirect(c.w, c.r, "/groups/"+url.PathEscape(group)+"?done="+url.QueryEscape("Member removed"), http.StatusSeeOther)
}

// requests is the approvals inbox: waiting for me, and mine.
func (s *Server) requests(c *ctx) {
	ctx := c.r.Context()
	waiting, err := s.Requests.Requests(ctx, approval.Query{Approver: c.me.ID, Limit: 100})
	if err != nil {
		s.fail(c, err)
		return
	}
	mine, err := s.Requests.Requests(ctx, approval.Query{Requester: c.me.ID, Limit: 100})
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "requests", "Approvals", map[string]any{"Waiting": waiting, "Mine": mine}, nil)
}

// request shows one request: the change as a readable diff (the event that parked it), its
// stages, the decisions, and approve/reject when the viewer may decide.
func (s *Server) request(c *ctx) {
	ctx := c.r.Context()
	req, err := s.Requests.Request(ctx, c.r.PathValue("id"))
	if err != nil {
		s.fail(c, directory.NotFound(directory.KindRequest, c.r.PathValue("id")))
		return
	}
	visible := req.Requester.ID == c.me.ID
	for _, st := range req.Stages {
		for _, u := range st.Eligible {
			visible = visible || u == c.me.ID
		}
	}
	for _, g := range s.Authz.Grants(c.me.ID) {
		visible = visible || g.Role.Name == delegation.RoleTier0 || g.Role.Name == delegation.RoleAuditor
	}
	if !visible {
		s.fail(c, directory.NotFound(directory.KindRequest, req.ID))
		return
	}
	ev, _ := s.Audit.Event(ctx, req.Event)
	canDecide := false
	for _, u := range req.Inbox() {
		canDecide = canDecide || u == c.me.ID
	}
	s.render(c, http.StatusOK, "request", "Request", map[string]any{"Request": req, "Event": ev, "CanDecide": canDecide,
		"CanCancel": req.State == approval.Open && req.Requester.ID == c.me.ID}, nil)
}

// decide posts a verdict on a request.
func (s *Server) decide(c *ctx) {
	id, verdict := c.r.PathValue("id"), c.r.PathValue("verdict")
	switch verdict {
	case approval.VerdictApprove, approval.VerdictReject, approval.VerdictCancel, approval.VerdictReview:
	default:
		s.fail(c, directory.NotFound("verdict", verdict))
		return
	}
	if _, err := s.Pipeline.Decide(c.r.Context(), c.me, meta(c.r), id, verdict, c.r.PostFormValue("comment")); err != nil {
		s.fail(c, err)
		return
	}
	http.Redirect(c.w, c.r, "/requests/"+url.PathEscape(id)+"?done="+url.QueryEscape("Recorded: "+verdict), http.StatusSeeOther)
}

// auditList is the audit trail, filterable, for whoever may read it all; others see their own
// actions.
func (s *Server) auditList(c *ctx) {
	qv := c.r.URL.Query()
	q := audit.Query{Actor: qv.Get("actor"), Target: qv.Get("target"), Action: qv.Get("action"), Limit: 50}
	if b, err := strconv.ParseInt(qv.Get("before"), 10, 64); err == nil {
		q.Before = b
	}
	all := false
	for _, g := range s.Authz.Grants(c.me.ID) {
		all = all || g.Role.Name == delegation.RoleTier0 || g.Role.Name == delegation.RoleAuditor
	}
	evs, next, err := s.scopedEvents(c, all, q, 1000)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "audit", "Audit trail", map[string]any{"Events": evs, "Next": next, "Query": q, "All": all,
		"Checkpoint": s.checkpointStatus(c.r.Context())}, nil)
}

func (s *Server) mfaPage(c *ctx) {
	s.render(c, http.StatusOK, "mfa", "Your authenticator", map[string]any{"Required": c.session.Restricted != ""}, nil)
}

// mfaStart makes a new authenticator secret, shown once with its otpauth address.
func (s *Server) mfaStart(c *ctx) {
	res, err := s.Pipeline.Submit(c.r.Context(), c.me, meta(c.r), change.Op{Action: delegation.UserEnrolMFA,
		Target: directory.Ref{Kind: directory.KindUser, ID: c.me.ID, Name: c.me.Name}, MFA: &change.MFAInput{}})
	if err != nil {
		s.fail(c, err)
		return
	}
	secret := ""
	if u, err := url.Parse(res.Credential.Secret); err == nil {
		secret = u.Query().Get("secret")
	}
	s.render(c, http.StatusOK, "mfa", "Your authenticator", map[string]any{"URL": res.Credential.Secret, "Secret": secret,
		"QR": qrImage(res.Credential.Secret), "Required": c.session.Restricted != ""}, nil)
}

// mfaConfirm turns the authenticator on with a code from it; the person signs in again, with it.
func (s *Server) mfaConfirm(c *ctx) {
	_, err := s.Pipeline.Submit(c.r.Context(), c.me, meta(c.r), change.Op{Action: delegation.UserEnrolMFA,
		Target: directory.Ref{Kind: directory.KindUser, ID: c.me.ID, Name: c.me.Name}, MFA: &change.MFAInput{Code: c.r.PostFormValue("code")}})
	if err != nil {
		s.render(c, http.StatusUnprocessableEntity, "mfa", "Your authenticator", map[string]any{"Error": "That code did not match: try the next one.",
			"Required": c.session.Restricted != ""}, nil)
		return
	}
	s.Auth.EndSession(c.r, c.me, c.session)
	s.Auth.SetSessionCookie(c.w, "", c.session.Expires)
	http.Redirect(c.w, c.r, "/sign-in?done="+url.QueryEscape("Authenticator on: sign in again with a code from it."), http.StatusSeeOther)
}

func (s *Server) forgotPage(w http.ResponseWriter, r *http.Request) {
	s.render(&ctx{w: w, r: r}, http.StatusOK, "forgot", "Forgotten password", map[string]any{}, nil)
}

// forgot sends a code to the recovery address, answering the same whether or not the account
// exists, and shows the form that takes it.
func (s *Server) forgot(w http.ResponseWriter, r *http.Request) {
	c := &ctx{w: w, r: r}
	username := strings.TrimSpace(r.PostFormValue("username"))
	if err := s.Auth.ForgotPassword(r, username); err != nil {
		s.render(c, http.StatusTooManyRequests, "forgot", "Forgotten password", map[string]any{"Error": "Too many attempts from here: wait a minute."}, nil)
		return
	}
	s.render(c, http.StatusOK, "forgot", "Forgotten password", map[string]any{"Sent": true, "Username": username}, nil)
}

// resetForgotten sets the new password with the code (and the authenticator's, when enrolled).
func (s *Server) resetForgotten(w http.ResponseWriter, r *http.Request) {
	c := &ctx{w: w, r: r}
	username := strings.TrimSpace(r.PostFormValue("username"))
	data := map[string]any{"Sent": true, "Username": username}
	if r.PostFormValue("new_password") != r.PostFormValue("confirm") {
		data["Error"] = "The two new passwords differ."
		s.render(c, http.StatusUnprocessableEntity, "forgot", "Forgotten password", data, nil)
		return
	}
	if _, err := s.Auth.ResetForgotten(r, username, r.PostFormValue("code"), r.PostFormValue("totp"), r.PostFormValue("new_password")); err != nil {
		data["Error"] = "The code is not right or has expired, or the new password is too weak: " + strings.TrimPrefix(err.Error(), "invalid input: ")
		if err == authn.ErrBadRecovery {
			data["Error"] = "The code is not right or has expired: ask for a new one."
		}
		s.render(c, http.StatusUnprocessableEntity, "forgot", "Forgotten password", data, nil)
		return
	}
	http.Redirect(w, r, "/sign-in?done="+url.QueryEscape("Password changed: sign in with the new one."), http.StatusSeeOther)
}

// activatePage is where a joiner sets their first password, from the activation link their
// manager passed on (lifecycle sends it). The code is checked when the form is sent.
func (s *Server) activatePage(w http.ResponseWriter, r *http.Request) {
	c := &ctx{w: w, r: r}
	q := r.URL.Query()
	s.render(c, http.StatusOK, "activate", "Welcome", map[string]any{"Username": q.Get("user"), "Code": q.Get("code")}, nil)
}

// activate sets a joiner's first password with their activation code: the same one-time
// recovery code a forgotten password uses, so it works once and counts wrong tries.
func (s *Server) activate(w http.ResponseWriter, r *http.Request) {
	c := &ctx{w: w, r: r}
	username, code := strings.TrimSpace(r.PostFormValue("user")), r.PostFormValue("code")
	data := map[string]any{"Username": username, "Code": code}
	if r.PostFormValue("new_password") != r.PostFormValue("confirm") {
		data["Error"] = "The two passwords differ."
		s.render(c, http.StatusUnprocessableEntity, "activate", "Welcome", data, nil)
		return
	}
	if _, err := s.Auth.ResetForgotten(r, username, code, r.PostFormValue("totp"), r.PostFormValue("new_password")); err != nil {
		data["Error"] = "That password cannot be used: " + strings.TrimPrefix(err.Error(), "invalid input: ")
		if err == authn.ErrBadRecovery {
			data["Error"] = "This link has expired or was used already (or, if you have an authenticator, its code is not right): ask your manager or the helpdesk for a new link."
		}
		s.render(c, http.StatusUnprocessableEntity, "activate", "Welcome", data, nil)
		return
	}
	http.Redirect(w, r, "/sign-in?done="+url.QueryEscape("Your password is set: sign in with it."), http.StatusSeeOther)
}

// qrImage is the otpauth address as a QR code for an authenticator app to scan: a PNG in a
// data: URL (the page loads nothing from elsewhere), or "" when it cannot be drawn.
func qrImage(otpauth string) template.URL {
	k, err := otp.NewKeyFromURL(otpauth)
	if err != nil {
		return ""
	}
	img, err := k.Image(240, 240)
	if err != nil {
		return ""
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return ""
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes())) // our own PNG: safe as a URL
}
