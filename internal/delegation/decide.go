package delegation

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/directory"
)

// decide answers q on st at now. The order matters: the actor must be active; guardrails that
// hold for everyone (no self-escalation) come first; tier-0 then allows the rest; for anyone
// else every action the op needs must be covered on the target's state before and after the
// change, protected objects are refused, and a takeover must not reach rights the actor lacks.
func decide(st *state, q *Question, now time.Time) Decision {
	mine := st.closure(q.Actor.ID) // the actor and every group they are in
	return decideFor(st, q, now, actorOf(st, q.Actor.ID), mine, st.grantsOf(mine, now), nil)
}

// actorOf is what the engine knows of an actor's own record (ok false when it knows nothing).
func actorOf(st *state, id string) actorInfo {
	info, ok := st.objects.get(id)
	return actorInfo{known: ok, status: info.status}
}

// actorInfo is an actor's record as decide needs it.
type actorInfo struct {
	known  bool
	status directory.Status
}

// decideFor is decide with the actor's record, closure and active grants already read; sub,
// when not nil, is the target as q.Before has it, shared by several questions on one object.
func decideFor(st *state, q *Question, now time.Time, who actorInfo, mine []string, gs []grant, sub *subject) Decision {
	a := q.Actor
	switch a.Kind {
	case ActorUser, ActorServiceAccount: // a service account acts by its key, bounded by its own assignments
	case ActorSystem: // a system actor is no directory object: it is always active, and bounded by its own assignments
		who = actorInfo{known: true, status: directory.StatusActive}
	default:
		return Deny(ReasonNotAuthorized, "%s %s holds no roles", a.Kind, a.Name)
	}
	if !who.known || who.status != directory.StatusActive {
		return Deny(ReasonActorInactive, "%s is not active", a.Name)
	}
	if d, denied := selfEscalation(q, a, mine, holdsTier0(gs) != nil); denied {
		return d
	}
	switch q.Action {
	case RoleCreate, RoleUpdate, RoleDelete, RoleAssign, RoleRevoke, RoleActivate:
		return decideDelegation(st, q, gs)
	}
	if t0 := holdsTier0(gs); t0 != nil {
		return authority{t0.a.ID}.decision(RoleTier0)
	}
	if d, ok := selfService(q); ok {
		return d
	}
	if q.Action == AuditRead {
		return decideAuditRead(st, gs)
	}
	auth, d, ok := covered(st, q, gs, sub)
	if !ok {
		return d
	}
	if q.Action != DirectoryRead { // protection guards changes, not reads
		if d, denied := protectedTarget(st, q, sub); denied {
			return d
		}
	}
	if d, denied := takeover(st, q, gs, now); denied {
		return d
	}
	if q.Action == UserResetPassword && !q.Verified && !resetWithoutVerification(st, q, gs, sub) {
		return Deny(ReasonVerification, "your role asks for %s's identity to be verified first: send them a code and enter what they read out",
			q.Target)
	}
	return auth.decision("")
}

// resetWithoutVerification reports whether one of the grants that allow a password reset of
// the target does not ask for the user's identity to be verified first.
func resetWithoutVerification(st *state, q *Question, gs []grant, sub *subject) bool {
	if sub == nil || !sameMap(sub.fields, q.Before) {
		sub = st.subject(q.Target, q.Before)
	}
	for _, g := range gs {
		if g.role.Allows(UserResetPassword) && !g.role.VerifyIdentity && g.a.Scope.covers(q.Actor.ID, sub) {
			return true
		}
	}
	return false
}

// selfService is what every user may do without any assignment: read their own record and
// issue their own API tokens.
func selfService(q *Question) (Decision, bool) {
	self := q.Target.Kind == directory.KindUser && q.Target.ID == q.Actor.ID
	if self && (q.Action == DirectoryRead || q.Action == UserIssueToken || q.Action == UserChangePassword || q.Action == UserEnrolMFA ||
		q.Action == UserRevokeTokens) {
		return Allow(audit.Authority{Rule: "self"}), true
	}
	return Decision{}, false
}

// requirement is one action an op needs, for one attribute when the role may narrow it.
type requirement struct {
	action Action
	attr   string
}

// requirements lists what an op needs: an update needs its action for each attribute it
// touches; changing owners needs set_owner.
func requirements(q *Question) []requirement {
	switch q.Action {
	case UserUpdate:
		reqs := make([]requirement, 0, len(q.Touched))
		for _, attr := range q.Touched {
			reqs = append(reqs, requirement{UserUpdate, attr})
		}
		if len(reqs) == 0 { // the op could not be planned: it needs the action at least
			reqs = append(reqs, requirement{UserUpdate, ""})
		}
		return reqs
	case GroupUpdate, SAUpdate:
		var reqs []requirement
		for _, attr := range q.Touched {
			switch {
			case attr == "owners" && q.Action == GroupUpdate:
				reqs = append(reqs, requirement{GroupSetOwner, ""})
			case attr == "owners":
				reqs = append(reqs, requirement{SASetOwner, ""})
			case !slices.ContainsFunc(reqs, func(r requirement) bool { return r.action == q.Action }):
				reqs = append(reqs, requirement{q.Action, ""})
			}
		}
		if len(reqs) == 0 {
			reqs = append(reqs, requirement{q.Action, ""})
		}
		return reqs
	}
	return []requirement{{q.Action, ""}}
}

// states are the target's states a scope must cover: before and after a change (a create has
// only an after, a delete only a before; a read has its current state as Before).
func states(q *Question) []map[string]any {
	switch {
	case q.Before == nil && q.After == nil:
		return []map[string]any{{}}
	case q.Before == nil:
		return []map[string]any{q.After}
	case q.After == nil || sameMap(q.Before, q.After):
		return []map[string]any{q.Before}
	}
	return []map[string]any{q.Before, q.After}
}

// sameMap reports whether a and b are the same map (a read passes one map as both states).
func sameMap(a, b map[string]any) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// covered checks that for every requirement, every state of the target is covered by some
// grant whose role allows it; and for a new member, that the actor can see them. shared, when
// not nil, is the subject of q.Before, for a caller that wants only the verdict.
func covered(st *state, q *Question, gs []grant, shared *subject) (authority, Decision, bool) {
	var auth authority
	for _, req := range requirements(q) {
		for i, fields := range states(q) {
			sub := shared
			if sub == nil || !sameMap(sub.fields, fields) {
				sub = st.subject(q.Target, fields)
			}
			found := false
			for _, g := range gs {
				if g.role.Allows(req.action) && (req.attr == "" || g.role.AllowsAttribute(req.attr)) &&
					g.a.Scope.covers(q.Actor.ID, sub) {
					auth.add(g.a.ID)
					found = true
					break
				}
			}
			if !found && shared != nil { // Allowed wants only the verdict
				return nil, Decision{Reason: ReasonNotAuthorized}, false
			}
			if !found {
				what := string(req.action)
				if req.attr != "" {
					what += " of " + req.attr
				}
				where := ""
				if i == 1 || q.Before == nil && q.After != nil {
					where = " as it would be after the change"
				}
				on := q.Target.Kind.Noun() + " " + q.Target.String()
				if q.Target.Key() == "" {
					on = q.Target.Kind.Noun() + "s"
				}
				// Most questions end here: the message is built without fmt.
				return nil, Decision{Reason: ReasonNotAuthorized,
					Message: q.Actor.Name + " holds no assignment that allows " + what + " on " + on + where}, false
			}
		}
	}
	if q.Action == GroupAddMember && q.Member != nil {
		sub := st.subject(q.Member.Ref, q.Member.Fields)
		if !slices.ContainsFunc(gs, func(g grant) bool {
			return g.role.Allows(DirectoryRead) && g.a.Scope.covers(q.Actor.ID, sub)
		}) {
			return nil, Deny(ReasonNotAuthorized, "you cannot see %s %s, so you cannot add them to a group",
				q.Member.Ref.Kind.Noun(), q.Member.Ref), false
		}
	}
	return auth, Decision{}, true
}

// selfEscalation refuses changes to one's own rights: for everyone, adding oneself (or a group
// one is in) to a group and granting or revoking one's own assignments; for anyone but tier-0
// (who holds everything anyway), making oneself an owner or someone's manager, which relation
// scopes would follow. Activating one's own eligible assignment is the one change to one's own rights
// that is allowed, and is judged elsewhere.
func selfEscalation(q *Question, a Actor, mine []string, tier0 bool) (Decision, bool) {
	switch q.Action {
	case GroupAddMember:
		if q.Member != nil && slices.Contains(mine, q.Member.Ref.ID) {
			return Deny(ReasonSelfEscalation, "you cannot add yourself, or a group you belong to, to a group"), true
		}
	case GroupUpdate, SAUpdate:
		if !tier0 && slices.Contains(refIDs(q.After["owners"]), a.ID) && !slices.Contains(refIDs(q.Before["owners"]), a.ID) {
			return Deny(ReasonSelfEscalation, "you cannot make yourself an owner"), true
		}
	case UserUpdate:
		if !tier0 && refID(q.After["manager"]) == a.ID && refID(q.Before["manager"]) != a.ID {
			return Deny(ReasonSelfEscalation, "you cannot make yourself someone's manager"), true
		}
	case RoleAssign, RoleRevoke:
		if as := assignmentOf(q); as != nil && slices.Contains(mine, as.Holder.ID) {
			return Deny(ReasonSelfEscalation, "you cannot grant or revoke your own assignments (or your groups')"), true
		}
	}
	return Decision{}, false
}

// protectedTarget refuses, for anyone but tier-0, protected objects, the holders of tier-0, and
// changes to the protected flag itself. sub, when not nil, is the target's subject, which
// remembers what the engine knows of it.
func protectedTarget(st *state, q *Question, sub *subject) (Decision, bool) {
	for _, fields := range []map[string]any{q.Before, q.After} {
		if p, _ := fields["protected"].(bool); p {
			return Deny(ReasonProtected, "%s %s is protected: only a tier-0 admin may change it", q.Target.Kind.Noun(), q.Target), true
		}
	}
	if slices.Contains(q.Touched, "protected") {
		return Deny(ReasonProtected, "only a tier-0 admin may protect or unprotect an object"), true
	}
	refs := []directory.Ref{q.Target}
	if q.Member != nil {
		refs = append(refs, q.Member.Ref)
	}
	for _, r := range refs {
		if r.ID == "" {
			continue
		}
		var (
			info objInfo
			ok   bool
		)
		if sub != nil && r.ID == sub.id {
			info, ok = sub.info()
		} else {
			info, ok = st.objects.get(r.ID)
		}
		if ok && info.protected {
			return Deny(ReasonProtected, "%s %s is protected: only a tier-0 admin may change it", r.Kind.Noun(), r), true
		}
		if st.tier0Holders()[r.ID] {
			return Deny(ReasonProtected, "%s %s holds tier-0 rights: only a tier-0 admin may change it", r.Kind.Noun(), r), true
		}
	}
	return Decision{}, false
}

// holdsRole reports whether principal holds an assignment of role (active or not: an eligible
// tier-0 admin is as protected as an active one), directly or through its groups.
func (st *state) holdsRole(principal, role string) bool {
	for _, holder := range st.closure(principal) {
		ids, _ := st.byHolder.get(holder)
		for _, id := range ids {
			if a, ok := st.assignments.get(id); ok && a.Role == role {
				return true
			}
		}
	}
	return false
}

// held returns the rights principal holds, directly or through its groups, now or later: its
// active assignments, and also those that are eligible but not activated or not yet valid,
// which whoever controls the principal can make active without anyone else's consent. Only
// expired assignments and those of deleted roles grant nothing, now or later.
func (st *state) held(principal string, now time.Time) []grant {
	var out []grant
	for _, holder := range st.closure(principal) {
		ids, _ := st.byHolder.get(holder)
		for _, id := range ids {
			a, ok := st.assignments.get(id)
			if !ok || !a.Until.IsZero() && !now.Before(a.Until) {
				continue
			}
			if r, ok := st.role(a.Role); ok {
				out = append(out, grant{a: a, role: r})
			}
		}
	}
	return out
}

// takeoverAttributes are the user attributes whose change can take over an account (recovery
// channels) or its reporting line.
var takeoverAttributes = []string{"email", "phone", "manager"}

// takeover refuses a takeover action on a target that holds any right the actor does not hold
// (active or not: an eligible or not yet valid assignment is a right its holder can use later).
// A new member of a group gains the group's rights (and its parents'), so adding one is a
// takeover of those rights on the member's behalf: the actor must hold them already.
func takeover(st *state, q *Question, gs []grant, now time.Time) (Decision, bool) {
	var (
		rights []grant // what the takeover reaches
		holder string  // whose relation scopes they are
		whose  string
	)
	switch q.Action {
	case UserUpdate:
		if !slices.ContainsFunc(q.Touched, func(a string) bool { return slices.Contains(takeoverAttributes, a) }) {
			return Decision{}, false
		}
		rights, holder, whose = st.held(q.Target.ID, now), q.Target.ID, "user "+q.Target.String()
	case UserResetPassword, UserResetMFA, UserIssueToken, SAIssueKey:
		// A token for someone else is their credential, as a key is a service account's; one's
		// own token is self-service and never gets here.
		rights, holder, whose = st.held(q.Target.ID, now), q.Target.ID, q.Target.Kind.Noun()+" "+q.Target.String()
	case GroupAddMember:
		rights, whose = st.held(q.Target.ID, now), "group "+q.Target.String()
		if q.Member != nil {
			holder = q.Member.Ref.ID
		}
	default:
		return Decision{}, false
	}
	for _, r := range rights {
		if !st.rightCovered(gs, q.Actor.ID, r, holder) {
			return Deny(ReasonEscalation, "%s holds %s over %s, which you do not hold: this change could take it over",
				whose, r.role.Name, r.a.Scope.Describe()), true
		}
	}
	return Decision{}, false
}

// rightCovered reports whether one of the actor's grants includes right r (held by holder):
// a role that covers r's role, over a scope that contains r's.
func (st *state) rightCovered(gs []grant, actor string, r grant, holder string) bool {
	if holdsTier0(gs) != nil {
		return true
	}
	if r.role.Name == RoleTier0 {
		return false
	}
	for _, g := range gs {
		if g.role.Covers(r.role) && st.contains(&g.a.Scope, actor, &r.a.Scope, holder) {
			return true
		}
	}
	if r.a.Scope.Kind() == "relation" && holder != "" {
		return st.relationCovered(gs, actor, r, holder)
	}
	return false
}

// relationCovered judges a relation-scoped right on the objects it reaches now (the holder's
// reports, or the groups or service accounts they own): it is covered when, for each of them,
// one of the actor's grants has a role that covers the right's and a scope that covers the
// object. A holder the relation reaches nothing of holds nothing the actor lacks. Objects are
// judged on what the engine knows of them (OU, groups, manager, owners), so a grant whose scope
// is a filter covers none of them.
func (st *state) relationCovered(gs []grant, actor string, r grant, holder string) bool {
	for _, id := range st.related(r.a.Scope.Relation, holder) {
		info, _ := st.objects.get(id)
		sub := st.subject(directory.Ref{Kind: info.kind, ID: id}, st.fieldsOf(id))
		if !slices.ContainsFunc(gs, func(g grant) bool { return g.role.Covers(r.role) && g.a.Scope.covers(actor, sub) }) {
			return false
		}
	}
	return true
}

// related lists the objects a relation scope held by holder reaches now.
func (st *state) related(rel Relation, holder string) []string {
	switch rel {
	case RelSelf:
		return []string{holder}
	case RelDirectReports:
		return st.reports.ids(holder)
	case RelOwnedGroups, RelOwnedServiceAccounts:
		want := directory.KindGroup
		if rel == RelOwnedServiceAccounts {
			want = directory.KindServiceAccount
		}
		var out []string
		for _, id := range st.owned.ids(holder) {
			if info, ok := st.objects.get(id); ok && info.kind == want {
				out = append(out, id)
			}
		}
		return out
	}
	return nil
}

// fieldsOf renders what the engine knows of an object as the attributes a scope reads.
func (st *state) fieldsOf(id string) map[string]any {
	info, _ := st.objects.get(id)
	f := map[string]any{"protected": info.protected, "status": string(info.status)}
	if info.ou != "" {
		f["ou"] = map[string]string{"id": info.ou}
	}
	if info.manager != "" {
		f["manager"] = map[string]string{"id": info.manager}
	}
	if len(info.owners) > 0 {
		owners := make([]map[string]string, len(info.owners))
		for i, o := range info.owners {
			owners[i] = map[string]string{"id": o}
		}
		f["owners"] = owners
	}
	return f
}

// decideDelegation judges changes to roles and assignments: the delegation configuration.
func decideDelegation(st *state, q *Question, gs []grant) Decision {
	t0 := holdsTier0(gs)
	switch q.Action {
	case RoleCreate, RoleUpdate, RoleDelete:
		if t0 != nil {
			return authority{t0.a.ID}.decision(RoleTier0)
		}
		return Deny(ReasonNotAuthorized, "roles are changed only by tier-0 admins")
	case RoleRevoke:
		as := assignmentOf(q)
		switch {
		case t0 != nil:
			return authority{t0.a.ID}.decision(RoleTier0)
		case as != nil && as.Role == RoleTier0:
			// Whoever granted it was tier-0 then and is not now: tier-0 is tier-0's alone.
			return Deny(ReasonProtected, "only a tier-0 admin may revoke %s", RoleTier0)
		case as != nil && as.GrantedBy.ID == q.Actor.ID:
			return Allow(audit.Authority{Rule: "granter"})
		}
		return Deny(ReasonNotAuthorized, "only a tier-0 admin or whoever granted an assignment may revoke it")
	case RoleActivate:
		as := assignmentOf(q)
		if as == nil || !slices.Contains(st.closure(q.Actor.ID), as.Holder.ID) {
			return Deny(ReasonNotAuthorized, "only the holder of an eligible assignment may activate it")
		}
		return authority{as.ID}.decision("holder")
	}
	// role.assign
	if t0 != nil {
		return authority{t0.a.ID}.decision(RoleTier0)
	}
	as := assignmentOf(q)
	if as == nil {
		// The grant could not be planned (invalid input): someone who may grant at all learns
		// why; anyone else learns nothing.
		for _, g := range gs {
			if g.a.CanRedelegate && !g.a.Eligible {
				return authority{g.a.ID}.decision("redelegation")
			}
		}
		return Deny(ReasonExceedsGrant, "granting needs an assignment of yours with can_redelegate, and you hold none")
	}
	role, ok := st.role(as.Role)
	if !ok {
		return Deny(ReasonNotAuthorized, "there is no role %q", as.Role)
	}
	if role.Name == RoleTier0 {
		return Deny(ReasonProtected, "only a tier-0 admin may grant %s", RoleTier0)
	}
	if d, denied := protectedTarget(st, &Question{Actor: q.Actor, Target: as.Holder}, nil); denied {
		return d
	}
	if q.Member != nil && !slices.ContainsFunc(gs, func(g grant) bool {
		return g.role.Allows(DirectoryRead) && g.a.Scope.covers(q.Actor.ID, st.subject(q.Member.Ref, q.Member.Fields))
	}) {
		return Deny(ReasonNotAuthorized, "you cannot see %s %s, so you cannot grant them anything", as.Holder.Kind.Noun(), as.Holder)
	}
	var reasons []string
	for _, g := range gs {
		switch {
		case !g.a.CanRedelegate:
			continue
		case g.a.Eligible:
			reasons = append(reasons, fmt.Sprintf("%s is eligible (just-in-time) and cannot be redelegated", g.a.ID))
		case !g.role.Covers(role):
			reasons = append(reasons, fmt.Sprintf("%s (%s) does not include everything %s does", g.a.ID, g.role.Name, role.Name))
		case !st.contains(&g.a.Scope, q.Actor.ID, &as.Scope, as.Holder.ID):
			reasons = append(reasons, fmt.Sprintf("%s covers %s, which does not contain %s", g.a.ID, g.a.Scope.Describe(), as.Scope.Describe()))
		case !within(as, g.a):
			reasons = append(reasons, fmt.Sprintf("%s is valid for less long than the new assignment", g.a.ID))
		default:
			return authority{g.a.ID}.decision("redelegation")
		}
	}
	if len(reasons) == 0 {
		return Deny(ReasonExceedsGrant, "granting needs an assignment of yours with can_redelegate, and you hold none")
	}
	return Deny(ReasonExceedsGrant, "you can grant only a subset of an assignment you may redelegate: %s", strings.Join(reasons, "; "))
}

// within reports whether inner's validity lies inside outer's.
func within(inner, outer *Assignment) bool {
	if !outer.From.IsZero() && (inner.From.IsZero() || inner.From.Before(outer.From)) {
		return false
	}
	if !outer.Until.IsZero() && (inner.Until.IsZero() || inner.Until.After(outer.Until)) {
		return false
	}
	return true
}

// assignmentOf is the assignment a delegation question is about (after a grant or an
// activation, before a revocation).
func assignmentOf(q *Question) *Assignment {
	for _, fields := range []map[string]any{q.After, q.Before} {
		switch v := fields["assignment"].(type) {
		case Assignment:
			return &v
		case *Assignment:
			return v
		case nil:
		default:
			var a Assignment
			if decodeRecord(v, &a) {
				return &a
			}
		}
	}
	return nil
}

// decideAuditRead allows reading the audit trail to whoever holds audit.read over everything
// (the whole tree, nothing excluded). Reading the events of a part of the directory only is not
// offered: the trail cannot yet be searched by scope.
func decideAuditRead(st *state, gs []grant) Decision {
	for _, g := range gs {
		s := &g.a.Scope
		if g.role.Allows(AuditRead) && s.Kind() == "ou" && s.Subtree && st.isRoot(s.OU) && len(s.ExcludeOUs) == 0 && len(s.ExcludeGroups) == 0 {
			return authority{g.a.ID}.decision("")
		}
	}
	return Deny(ReasonNotAuthorized, "reading the audit trail needs audit.read over the whole directory (an auditor or tier-0 admin)")
}
