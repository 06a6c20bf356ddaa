package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/approval"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
	"github.com/deputy-iam/deputy/internal/httpx"
)

// DelegEngine is what the delegation pages ask the delegation engine beyond Authz: any
// question (who-can asks it for each candidate), the candidates for an action on an object, the
// escalation report, and (approval.Directory) what the approval gate needs to say who could
// approve a grant.
type DelegEngine interface {
	approval.Directory
	Decide(ctx context.Context, q *delegation.Question) delegation.Decision
	Escalations() []delegation.Escalation
}

// ApprovalPolicies reads the approval policies, for a grant's preview.
type ApprovalPolicies interface {
	Policies(ctx context.Context) ([]approval.Policy, error)
}

// registerDelegation adds the pages of delegation: roles, assignments (grant with a preview, activate an eligible one), who can act on an object, and the escalation-path report.
func (s *Server) registerDelegation(mux *http.ServeMux) {
	mux.HandleFunc("GET /delegation", s.page(s.delegationHome))
	mux.HandleFunc("GET /delegation/roles", s.page(s.delegationRoles))
	mux.HandleFunc("GET /delegation/roles/{role}", s.page(s.delegationRole))
	mux.HandleFunc("GET /delegation/grant", s.page(s.delegationGrantForm))
	mux.HandleFunc("POST /delegation/grant/preview", s.page(s.delegationGrantPreview))
	mux.HandleFunc("POST /delegation/grant", s.page(s.delegationGrant))
	mux.HandleFunc("POST /delegation/assignments/{id}/activate", s.page(s.delegationActivate))
	mux.HandleFunc("POST /delegation/assignments/{id}/revoke", s.page(s.delegationRevoke))
	mux.HandleFunc("GET /delegation/who-can", s.page(s.delegationWhoCan))
	mux.HandleFunc("GET /delegation/escalations", s.page(s.delegationEscalations))
}

// actionWords are the actions in plain words, as a sentence's verb phrase ("reset passwords").
var actionWords = map[delegation.Action]string{
	delegation.OUCreate: "create OUs", delegation.OUUpdate: "change OUs", delegation.OUMove: "move OUs",
	delegation.OUDelete:   "delete OUs",
	delegation.UserCreate: "create people", delegation.UserUpdate: "change people's attributes",
	delegation.UserMove: "move people to another OU", delegation.UserDisable: "disable accounts",
	delegation.UserEnable: "enable accounts", delegation.UserDelete: "delete people",
	delegation.UserIssueToken: "issue API tokens for people", delegation.UserRevokeTokens: "revoke people's API tokens",
	delegation.UserChangePassword: "change one's own password", delegation.UserEnrolMFA: "turn on one's own authenticator",
	delegation.UserResetMFA: "remove people's authenticators", delegation.UserResetPassword: "reset passwords",
	delegation.UserUnlock:  "unlock locked-out accounts",
	delegation.GroupCreate: "create groups", delegation.GroupUpdate: "change groups", delegation.GroupMove: "move groups",
	delegation.GroupDelete: "delete groups", delegation.GroupAddMember: "add members to groups",
	delegation.GroupRemoveMember: "remove members from groups", delegation.GroupSetOwner: "choose groups' owners",
	delegation.SACreate: "create service accounts", delegation.SAUpdate: "change service accounts",
	delegation.SAMove: "move service accounts", delegation.SADelete: "delete service accounts",
	delegation.SASetOwner: "choose service accounts' owners", delegation.SAIssueKey: "issue service-account keys",
	delegation.SARevokeKey: "revoke service-account keys",
	delegation.RoleCreate:  "create roles", delegation.RoleUpdate: "change roles", delegation.RoleDelete: "delete roles",
	delegation.RoleAssign: "grant roles", delegation.RoleRevoke: "revoke assignments",
	delegation.RoleActivate:  "activate eligible assignments",
	delegation.DirectoryRead: "see the objects", delegation.AuditRead: "read the audit trail",
}

// sayAction renders an action in plain words (its name when it has none).
func sayAction(a delegation.Action) string {
	if w, ok := actionWords[a]; ok {
		return w
	}
	return strings.ReplaceAll(string(a), "_", " ")
}

// roleView is a role as the pages show it: its actions in plain words.
type roleView struct {
	delegation.Role
	Words []string
}

func viewRole(r delegation.Role) roleView {
	v := roleView{Role: r}
	for _, a := range r.Actions {
		w := sayAction(a)
		if a == delegation.UserUpdate && len(r.UserAttributes) > 0 {
			w += " (only " + strings.Join(r.UserAttributes, ", ") + ")"
		}
		if a == delegation.UserResetPassword && r.VerifyIdentity {
			w += " (after verifying the person's identity)"
		}
		v.Words = append(v.Words, w)
	}
	return v
}

// roles returns the built-in and custom roles, by name.
func (s *Server) roles(ctx context.Context) ([]delegation.Role, error) {
	custom, err := s.Deleg.Roles(ctx)
	if err != nil {
		return nil, err
	}
	all := append(delegation.BuiltinRoles(), custom...)
	slices.SortFunc(all, func(a, b delegation.Role) int { return strings.Compare(a.Name, b.Name) })
	return all, nil
}

// role reads a built-in or custom role.
func (s *Server) role(ctx context.Context, name string) (delegation.Role, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	if r, ok := delegation.BuiltinRole(name); ok {
		return r, nil
	}
	return s.Deleg.Role(ctx, name)
}

// mayAudit reports whether the person may read the whole delegation configuration (an auditor
// or tier-0 admin), as the API's who-can and escalation report ask.
func (s *Server) mayAudit(c *ctx) bool {
	return s.DelegEngine != nil &&
		s.DelegEngine.Decide(c.r.Context(), &delegation.Question{Actor: c.me, Action: delegation.AuditRead}).Allow
}

// mayGrant reports whether the person holds something they may pass on: tier-0, or an
// assignment in force with can_redelegate.
func (s *Server) mayGrant(c *ctx) bool {
	for _, g := range s.Authz.Grants(c.me.ID) {
		if g.Role.Name == delegation.RoleTier0 || g.Assignment.CanRedelegate && !g.Assignment.Eligible {
			return true
		}
	}
	return false
}

// delegWhen renders a time as the pages do.
func delegWhen(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// sayDuration renders a duration in hours and minutes ("8 hours", "1 hour 30 minutes").
func sayDuration(d time.Duration) string {
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	var parts []string
	for _, p := range []struct {
		n    int
		unit string
	}{{h, "hour"}, {m, "minute"}} {
		switch {
		case p.n == 1:
			parts = append(parts, "1 "+p.unit)
		case p.n > 1:
			parts = append(parts, fmt.Sprintf("%d %ss", p.n, p.unit))
		}
	}
	if len(parts) == 0 {
		return d.String()
	}
	return strings.Join(parts, " ")
}

// assignmentRow is an assignment as the pages list it, with what the viewer may do to it.
type assignmentRow struct {
	A           delegation.Assignment
	Status      string
	Scope       string
	Max         string // how long an activation lasts at most, in words
	CanActivate bool
	CanRevoke   bool
}

// row describes an assignment now and asks which of activate and revoke the person may do.
func (s *Server) row(c *ctx, a delegation.Assignment, now time.Time) assignmentRow {
	r := assignmentRow{A: a, Scope: a.Scope.Describe(), Max: sayDuration(time.Duration(a.MaxActivation) * time.Second)}
	switch {
	case !a.Until.IsZero() && !now.Before(a.Until):
		r.Status = "expired"
	case !a.From.IsZero() && now.Before(a.From):
		r.Status = "not valid yet (from " + delegWhen(a.From) + ")"
	case a.Eligible && now.Before(a.ActiveUntil):
		r.Status = "activated, until " + delegWhen(a.ActiveUntil)
	case a.Eligible:
		r.Status = "eligible: activate it when you need it"
	default:
		r.Status = "in force"
	}
	allowed := s.Authz.Allowed(c.r.Context(), c.me, delegation.Object{Ref: a.Ref(), Fields: a.Fields()},
		[]delegation.Action{delegation.RoleActivate, delegation.RoleRevoke})
	r.CanActivate = a.Eligible && a.Valid(now) && !a.Active(now) && slices.Contains(allowed, delegation.RoleActivate)
	r.CanRevoke = slices.Contains(allowed, delegation.RoleRevoke)
	return r
}

// delegationHome shows the person's assignments (in force and eligible, with activation), the
// assignments they manage, and links to the roles, the grant form and the reports.
func (s *Server) delegationHome(c *ctx) {
	ctx := c.r.Context()
	holders := []string{c.me.ID}
	ms, err := s.Dir.Memberships(ctx, directory.Ref{Kind: directory.KindUser, ID: c.me.ID})
	if err != nil {
		s.fail(c, err)
		return
	}
	for _, m := range ms {
		holders = append(holders, m.Group.ID)
	}
	now := time.Now()
	var mine []assignmentRow
	seen := map[string]bool{}
	for _, h := range holders {
		as, err := s.Deleg.Assignments(ctx, "", h, "", 200)
		if err != nil {
			s.fail(c, err)
			return
		}
		for _, a := range as {
			if !seen[a.ID] {
				seen[a.ID] = true
				mine = append(mine, s.row(c, a, now))
			}
		}
	}
	managed, more, err := s.managed(c, now)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "deleg-home", "Delegation", map[string]any{"Mine": mine, "Managed": managed,
		"More": more, "MayGrant": s.mayGrant(c), "MayAudit": s.mayAudit(c), "StepUp": s.stepUpNeed(c)}, nil)
}

// managedScan bounds how many assignments the list of those one granted reads.
const managedScan = 2000

// managed lists the assignments the person may revoke: every one for a tier-0 admin, else those
// they granted (who grants an assignment may revoke it). more says the list was cut short.
func (s *Server) managed(c *ctx, now time.Time) (rows []assignmentRow, more bool, err error) {
	ctx := c.r.Context()
	tier0 := slices.ContainsFunc(s.Authz.Grants(c.me.ID), func(g delegation.Grant) bool { return g.Role.Name == delegation.RoleTier0 })
	if !tier0 && !s.mayGrant(c) {
		return nil, false, nil
	}
	after := ""
	for read := 0; read < managedScan; {
		page, err := s.Deleg.Assignments(ctx, "", "", after, 500)
		if err != nil {
			return nil, false, err
		}
		for _, a := range page {
			if !tier0 && a.GrantedBy.ID != c.me.ID {
				continue
			}
			if len(rows) == 200 {
				return rows, true, nil
			}
			rows = append(rows, s.row(c, a, now))
		}
		read += len(page)
		if len(page) < 500 {
			return rows, false, nil
		}
		after = page[len(page)-1].ID
	}
	return rows, true, nil
}

// delegationRoles lists the roles, built-in and custom, with their actions in words.
func (s *Server) delegationRoles(c *ctx) {
	all, err := s.roles(c.r.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	views := make([]roleView, len(all))
	for i, r := range all {
		views[i] = viewRole(r)
	}
	s.render(c, http.StatusOK, "deleg-roles", "Roles", map[string]any{"Roles": views}, nil)
}

// delegationRole shows one role and, to an auditor or tier-0 admin, its assignments.
func (s *Server) delegationRole(c *ctx) {
	ctx := c.r.Context()
	r, err := s.role(ctx, c.r.PathValue("role"))
	if err != nil {
		s.fail(c, directory.NotFound(directory.KindRole, c.r.PathValue("role")))
		return
	}
	data := map[string]any{"Role": viewRole(r)}
	if s.mayAudit(c) {
		as, err := s.Deleg.Assignments(ctx, r.Name, "", "", 200)
		if err != nil {
			s.fail(c, err)
			return
		}
		now := time.Now()
		rows := make([]assignmentRow, len(as))
		for i, a := range as {
			rows[i] = s.row(c, a, now)
		}
		data["Assignments"], data["ShowAssignments"] = rows, true
	}
	s.render(c, http.StatusOK, "deleg-role", r.Name, data, nil)
}

// delegationActivate activates one of the person's eligible assignments: with a justification,
// and after a fresh second factor, as the API asks.
func (s *Server) delegationActivate(c *ctx) {
	in := delegation.ActivationInput{Justification: strings.TrimSpace(c.r.PostFormValue("justification")),
		Duration: strings.TrimSpace(c.r.PostFormValue("duration"))}
	if in.Justification == "" { // said before the code is spent on it
		s.fail(c, directory.Invalid("justification", "is required: say why you need this right now"))
		return
	}
	if err := s.stepUp(c); err != nil {
		s.fail(c, err)
		return
	}
	id := strings.ToLower(c.r.PathValue("id"))
	_, err := s.Pipeline.Submit(c.r.Context(), c.me, meta(c.r), change.Op{Action: delegation.RoleActivate,
		Target: directory.Ref{Kind: directory.KindAssignment, ID: id, Name: id}, Activation: &in})
	if err != nil {
		s.fail(c, err)
		return
	}
	msg := "Activated"
	if a, err := s.Deleg.Assignment(c.r.Context(), id); err == nil {
		msg = "Activated: " + a.Role + " over " + a.Scope.Describe() + ", until " + delegWhen(a.ActiveUntil)
	}
	http.Redirect(c.w, c.r, "/delegation?done="+url.QueryEscape(msg), http.StatusSeeOther)
}

// delegationRevoke revokes an assignment (its granter or a tier-0 admin may).
func (s *Server) delegationRevoke(c *ctx) {
	id := strings.ToLower(c.r.PathValue("id"))
	_, err := s.Pipeline.Submit(c.r.Context(), c.me, meta(c.r), change.Op{Action: delegation.RoleRevoke,
		Target:        directory.Ref{Kind: directory.KindAssignment, ID: id, Name: id},
		Justification: strings.TrimSpace(c.r.PostFormValue("justification"))})
	if err != nil {
		s.fail(c, err)
		return
	}
	http.Redirect(c.w, c.r, "/delegation?done="+url.QueryEscape("Assignment revoked"), http.StatusSeeOther)
}

// delegationEscalations is the escalation-path report, for tier-0 admins and auditors; anyone
// else is answered as if it did not exist.
func (s *Server) delegationEscalations(c *ctx) {
	if !s.mayAudit(c) {
		s.fail(c, directory.NotFound("page", "escalations"))
		return
	}
	if err := s.Pipeline.CatchUp(c.r.Context()); err != nil {
		s.fail(c, err)
		return
	}
	type item struct {
		Via, Gains             delegation.Assignment
		ViaScope, GainsScope   string
		Attribute, Explanation string
	}
	var items []item
	for _, e := range s.DelegEngine.Escalations() {
		gains := e.Gains.Role
		if r, err := s.role(c.r.Context(), e.Gains.Role); err == nil {
			gains = strings.Join(viewRole(r).Words, "; ")
		}
		whose := map[string]string{"manager": "of the people", "owners": "of the groups or service accounts"}[e.Attribute]
		items = append(items, item{Via: e.Via, Gains: e.Gains, ViaScope: e.Via.Scope.Describe(),
			GainsScope: e.Gains.Scope.Describe(), Attribute: e.Attribute,
			Explanation: fmt.Sprintf("%s can make anyone the %s %s in %s; whoever is made so, holding %s, can then %s over them.",
				e.Via.Holder.Name, e.Attribute, whose, e.Via.Scope.Describe(), e.Gains.Role, gains)})
	}
	s.render(c, http.StatusOK, "deleg-escalations", "Escalation paths", map[string]any{"Items": items}, nil)
}

// describeAuthority renders what an allow rests on: the assignments (role, holder, scope) or the
// rule, in words.
func (s *Server) describeAuthority(ctx context.Context, action delegation.Action, d delegation.Decision, cache map[string]string) string {
	var parts []string
	for _, id := range d.Authority.Assignments {
		key := string(action) + " " + id
		if w, ok := cache[key]; ok {
			parts = append(parts, w)
			continue
		}
		w := "assignment " + id
		if a, err := s.Deleg.Assignment(ctx, id); err == nil {
			w = a.Role + " over " + a.Scope.Describe()
			if r, err := s.role(ctx, a.Role); err == nil && action == delegation.UserUpdate && len(r.UserAttributes) > 0 {
				w += " (only " + strings.Join(r.UserAttributes, ", ") + ")"
			}
			if a.Holder.Kind == directory.KindGroup {
				w += ", held by the group " + a.Holder.Name
			}
		}
		cache[key] = w
		parts = append(parts, w)
	}
	if len(parts) == 0 {
		switch d.Authority.Rule {
		case "":
			return "their own account"
		default:
			return strings.ReplaceAll(d.Authority.Rule, "_", " ")
		}
	}
	return strings.Join(parts, "; ")
}

// whoCanActions are the actions the who-can page asks about, by kind of object.
var whoCanActions = map[directory.Kind][]delegation.Action{
	directory.KindUser: {delegation.UserUpdate, delegation.UserResetPassword, delegation.UserUnlock, delegation.UserResetMFA,
		delegation.UserDisable, delegation.UserEnable, delegation.UserMove, delegation.UserDelete, delegation.UserRevokeTokens,
		delegation.DirectoryRead},
	directory.KindGroup: {delegation.GroupAddMember, delegation.GroupRemoveMember, delegation.GroupSetOwner,
		delegation.GroupUpdate, delegation.GroupMove, delegation.GroupDelete, delegation.DirectoryRead},
	directory.KindServiceAccount: {delegation.SAIssueKey, delegation.SARevokeKey, delegation.SASetOwner,
		delegation.SAUpdate, delegation.SAMove, delegation.SADelete, delegation.DirectoryRead},
}

// whoCanTarget reads the object who-can is about; ok false when it does not exist.
func (s *Server) whoCanTarget(ctx context.Context, kind directory.Kind, id string) (delegation.Object, bool) {
	switch kind {
	case directory.KindUser:
		if u, err := s.Dir.User(ctx, directory.ParseRef(kind, id)); err == nil {
			return delegation.Object{Ref: u.Ref(), Fields: u.Fields()}, true
		}
	case directory.KindGroup:
		if g, err := s.Dir.Group(ctx, directory.ParseRef(kind, id)); err == nil {
			return delegation.Object{Ref: g.Ref(), Fields: g.Fields()}, true
		}
	case directory.KindServiceAccount:
		if sa, err := s.Dir.ServiceAccount(ctx, directory.ParseRef(kind, id)); err == nil {
			return delegation.Object{Ref: sa.Ref(), Fields: sa.Fields()}, true
		}
	}
	return delegation.Object{}, false
}

// whoCanRow is one person who may take an action, and the authority they would act on.
type whoCanRow struct {
	Name, Authority string
}

// whoCanGroup is one action and who may take it.
type whoCanGroup struct {
	Action delegation.Action
	Words  string
	People []whoCanRow
}

// delegationWhoCan answers "who can do this to this object": to an auditor or tier-0 admin,
// everyone who may, with the assignment each would act on (as the API's who-can); to anyone
// else who may see the object, whether they themselves may, and through what.
func (s *Server) delegationWhoCan(c *ctx) {
	ctx := c.r.Context()
	q := c.r.URL.Query()
	kind := directory.Kind(strings.ReplaceAll(q.Get("type"), "-", "_"))
	actions, known := whoCanActions[kind]
	obj, ok := s.whoCanTarget(ctx, kind, strings.TrimSpace(q.Get("id")))
	if !known || !ok || len(s.Authz.Allowed(ctx, c.me, obj, []delegation.Action{delegation.DirectoryRead})) == 0 {
		s.fail(c, directory.NotFound(kind, q.Get("id")))
		return
	}
	if a := delegation.Action(q.Get("action")); a != "" {
		if !slices.Contains(actions, a) {
			s.fail(c, directory.Invalid("action", "choose one of the actions listed for a %s", kind.Noun()))
			return
		}
		actions = []delegation.Action{a}
	}
	if err := s.Pipeline.CatchUp(ctx); err != nil {
		s.fail(c, err)
		return
	}
	all := s.mayAudit(c)
	cache := map[string]string{}
	var groups []whoCanGroup
	for _, action := range actions {
		g := whoCanGroup{Action: action, Words: sayAction(action)}
		candidates := []string{c.me.ID}
		if all {
			candidates = s.DelegEngine.CandidatesFor(action, obj.Ref, obj.Fields)
			if kind == directory.KindUser && action == delegation.DirectoryRead && !slices.Contains(candidates, obj.Ref.ID) {
				candidates = append(candidates, obj.Ref.ID) // everyone may see themselves
			}
		}
		for _, id := range candidates {
			u, err := s.Dir.ResolveMember(ctx, directory.Ref{Kind: directory.KindUser, ID: id})
			if err != nil {
				continue // deleted since
			}
			d := s.DelegEngine.Decide(ctx, &delegation.Question{Actor: delegation.Actor{Kind: delegation.ActorUser, ID: u.ID, Name: u.Name},
				Action: action, Target: obj.Ref, Before: obj.Fields, After: obj.Fields, Verified: true})
			if d.Allow {
				g.People = append(g.People, whoCanRow{Name: u.Name, Authority: s.describeAuthority(ctx, action, d, cache)})
			}
		}
		groups = append(groups, g)
	}
	var choices []map[string]string
	for _, a := range whoCanActions[kind] {
		choices = append(choices, map[string]string{"Action": string(a), "Words": sayAction(a)})
	}
	s.render(c, http.StatusOK, "deleg-who-can", "Who can change "+obj.Ref.Name, map[string]any{"Object": obj.Ref,
		"Kind": string(kind), "Noun": kind.Noun(), "Groups": groups, "All": all, "Choices": choices,
		"Chosen": q.Get("action")}, nil)
}

// grantForm is the grant form as the person filled it in.
type grantForm struct {
	Role, HolderKind, Holder, ScopeKind, OU, Relation, Groups, Filter string
	Subtree, Eligible, CanRedelegate                                  bool
	MaxActivation, Until, Justification                               string
}

// readGrantForm reads the grant form from the request (a GET gives its defaults).
func readGrantForm(r *http.Request) grantForm {
	v := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	f := grantForm{Role: v("role"), HolderKind: v("holder_kind"), Holder: v("holder"), ScopeKind: v("scope_kind"),
		OU: v("ou"), Relation: v("relation"), Groups: v("groups"), Filter: v("filter"),
		Subtree: v("subtree") != "", Eligible: v("mode") == "eligible", CanRedelegate: v("can_redelegate") != "",
		MaxActivation: v("max_activation"), Until: v("until"), Justification: v("justification")}
	if r.Method == http.MethodGet {
		f.Subtree = true
		f.Role, f.Holder, f.OU = r.URL.Query().Get("role"), r.URL.Query().Get("holder"), r.URL.Query().Get("ou")
	}
	if f.HolderKind != "group" {
		f.HolderKind = "user"
	}
	if f.ScopeKind == "" {
		f.ScopeKind = "ou"
	}
	return f
}

// input turns the form into an assignment as a client writes it.
func (f grantForm) input() (delegation.AssignmentInput, error) {
	in := delegation.AssignmentInput{Role: f.Role, Eligible: f.Eligible, CanRedelegate: f.CanRedelegate,
		Justification: f.Justification}
	if f.HolderKind == "group" {
		in.Holder.Group = f.Holder
	} else {
		in.Holder.User = f.Holder
	}
	switch f.ScopeKind {
	case "ou":
		sub := f.Subtree
		in.Scope.OU, in.Scope.Subtree = f.OU, &sub
		if f.OU == "" {
			return in, directory.Invalid("scope.ou", "name the OU (a path such as corp/sales, or / for everything)")
		}
	case "relation":
		in.Scope.Relation = delegation.Relation(f.Relation)
	case "groups":
		for _, g := range strings.Split(f.Groups, ",") {
			if g = strings.TrimSpace(g); g != "" {
				in.Scope.Groups = append(in.Scope.Groups, g)
			}
		}
	case "filter":
		in.Scope.Filter = f.Filter
	default:
		return in, directory.Invalid("scope", "choose an OU, a relation, groups or a filter")
	}
	if f.Eligible {
		in.MaxActivation = f.MaxActivation
	}
	if f.Until != "" {
		d, err := time.Parse("2006-01-02", f.Until)
		if err != nil {
			return in, directory.Invalid("until", "is a date such as 2026-12-31")
		}
		in.Until = d.Add(24*time.Hour - time.Second).UTC().Format(time.RFC3339) // the end of that day, UTC
	}
	return in, nil
}

// grantData is what the grant page shows: the roles to choose from, the form as filled in and,
// after a preview, what the grant would unlock and whether it would apply.
func (s *Server) grantData(c *ctx, f grantForm) (map[string]any, error) {
	all, err := s.roles(c.r.Context())
	if err != nil {
		return nil, err
	}
	var names []string
	for _, r := range all {
		if r.Name != delegation.RoleTier0 {
			names = append(names, r.Name)
		}
	}
	return map[string]any{"Roles": names, "Form": f, "MayGrant": s.mayGrant(c),
		"Relations": []string{"self", "direct_reports", "owned_groups", "owned_service_accounts"}}, nil
}

// delegationGrantForm shows the grant form.
func (s *Server) delegationGrantForm(c *ctx) {
	data, err := s.grantData(c, readGrantForm(c.r))
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "deleg-grant", "Grant a role", data, nil)
}

// grantPreview is what a grant would do, before it is made.
type grantPreview struct {
	Allow      bool
	Refusal    string // the reason in plain words
	Message    string
	Code       string
	Role       roleView
	Scope      string
	Holder     string
	Users      int
	UserSample []string
	Groups     int
	Approval   *approval.Routing
	Approvers  []string
}

// delegationGrantPreview shows what the grant would unlock and the pipeline's decision on it
// (allowed, refused and why, or waiting for approval), without granting anything.
func (s *Server) delegationGrantPreview(c *ctx) {
	f := readGrantForm(c.r)
	data, err := s.grantData(c, f)
	if err != nil {
		s.fail(c, err)
		return
	}
	in, err := f.input()
	var p *grantPreview
	if err == nil {
		p, err = s.previewGrant(c, in)
	}
	if err != nil {
		s.grantError(c, data, err)
		return
	}
	data["Preview"] = p
	s.render(c, http.StatusOK, "deleg-grant", "Grant a role: preview", data, nil)
}

// grantError shows the grant form again, as filled in, with what is wrong in it; any other
// error is explained as everywhere.
func (s *Server) grantError(c *ctx, data map[string]any, err error) {
	p := httpx.ProblemFor(err)
	if p.Code != "invalid" && p.Code != "invalid_filter" {
		s.fail(c, err)
		return
	}
	data["Error"] = strings.TrimPrefix(p.Detail, "invalid input: ")
	s.render(c, p.Status, "deleg-grant", "Grant a role", data, nil)
}

// previewGrant asks the pipeline about the grant (nothing is written) and, when it would be
// allowed, the approval policies about it; what it unlocks is counted among the objects the
// person may see, as the API's dry run does.
func (s *Server) previewGrant(c *ctx, in delegation.AssignmentInput) (*grantPreview, error) {
	ctx := c.r.Context()
	d, q, err := s.Pipeline.Preview(ctx, c.me, change.Op{Action: delegation.RoleAssign, Assignment: &in})
	if err != nil {
		return nil, err
	}
	p := &grantPreview{Allow: d.Allow, Message: d.Message, Code: d.Reason}
	if !d.Allow {
		p.Refusal = reasons[d.Reason]
		if p.Refusal == "" {
			p.Refusal = "This grant would be refused"
		}
	}
	a, _ := q.After["assignment"].(delegation.Assignment)
	role, err := s.role(ctx, a.Role)
	if err != nil {
		return nil, err
	}
	p.Role, p.Scope, p.Holder = viewRole(role), a.Scope.Describe(), a.Holder.Kind.Noun()+" "+a.Holder.Name
	if p.Users, p.UserSample, err = s.unlocks(c, &a, directory.KindUser); err != nil {
		return nil, err
	}
	if p.Groups, _, err = s.unlocks(c, &a, directory.KindGroup); err != nil {
		return nil, err
	}
	if d.Allow && s.ApprovalPolicies != nil && s.DelegEngine != nil {
		ps, err := s.ApprovalPolicies.Policies(ctx)
		if err != nil {
			return nil, err
		}
		g := approval.NewGate(s.DelegEngine)
		if err := g.Set(ps); err != nil {
			return nil, err
		}
		if p.Approval = g.Route(q, time.Now()); p.Approval != nil && len(p.Approval.Stages) > 0 {
			for _, id := range p.Approval.Stages[0].Eligible {
				if r, err := s.Dir.ResolveMember(ctx, directory.Ref{Kind: directory.KindUser, ID: id}); err == nil {
					p.Approvers = append(p.Approvers, r.Name)
				}
			}
		}
	}
	return p, nil
}

// unlocks counts the objects of kind an assignment's scope covers among those the person may
// see, with up to ten of their names.
func (s *Server) unlocks(c *ctx, a *delegation.Assignment, kind directory.Kind) (int, []string, error) {
	expr := delegation.ScopeExpr(a, kind)
	switch all, vis := s.Authz.Visibility(c.me, kind); {
	case all:
	case vis == nil:
		expr = &filter.Nothing{}
	default:
		expr = &filter.And{Left: expr, Right: vis}
	}
	n, err := s.Dir.Count(c.r.Context(), kind, directory.ListQuery{Filter: expr})
	if err != nil || kind != directory.KindUser {
		return n, nil, err
	}
	page, err := s.Dir.ListUsers(c.r.Context(), directory.ListQuery{Filter: expr, Limit: 10})
	if err != nil {
		return 0, nil, err
	}
	var names []string
	for _, u := range page.Items {
		names = append(names, u.Username)
	}
	return n, names, nil
}

// delegationGrant makes the grant (the pipeline authorizes it, and may park it for approval).
func (s *Server) delegationGrant(c *ctx) {
	f := readGrantForm(c.r)
	in, err := f.input()
	var res change.Result
	if err == nil {
		res, err = s.Pipeline.Submit(c.r.Context(), c.me, meta(c.r), change.Op{Action: delegation.RoleAssign, Assignment: &in})
	}
	if err != nil {
		data, derr := s.grantData(c, f)
		if derr != nil {
			s.fail(c, derr)
			return
		}
		s.grantError(c, data, err)
		return
	}
	msg := fmt.Sprintf("Granted: %s to %s", in.Role, f.Holder)
	if in.Eligible {
		msg += " (eligible: they activate it when they need it)"
	}
	if res.Request != "" {
		msg += "; applied as break-glass, for a tier-0 admin to review"
	}
	http.Redirect(c.w, c.r, "/delegation?done="+url.QueryEscape(msg), http.StatusSeeOther)
}
