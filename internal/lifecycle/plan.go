package lifecycle

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// Account is a directory user that carries an employee ID, as planning needs it: its
// attributes, its direct memberships with their provenance, the assignments it holds and what it
// owns.
type Account struct {
	UserID, Username, EmployeeID                string
	Status                                      directory.Status
	OU                                          string // path
	Manager                                     string // the manager's user ID
	GivenName, FamilyName, DisplayName, Email   string
	Department, Title, Location, EmploymentType string
	Attributes                                  map[string]string
	Protected                                   bool
	Groups                                      []Held
	Assignments                                 []HeldAssignment
	OwnsGroups, OwnsServiceAccounts             []Owned
	Reports                                     int // users whose manager this is
	Tokens                                      int // API tokens
}

// Owned is a group or service account the account owns, with all its owners' IDs.
type Owned struct {
	Ref    directory.Ref
	Owners []string
}

// Held is a direct membership with its provenance.
type Held struct {
	Group    directory.Ref
	Source   string // rule, request, manual, bootstrap
	SourceID string // for a rule: its name
}

// HeldAssignment is an assignment the account holds (directly).
type HeldAssignment struct {
	ID, Role, Source string
	GrantedBy        string // the granter's ID
}

// Current is the directory as planning sees it: accounts by employee ID, the usernames taken,
// and how many users are active (the base of the mass-change threshold).
type Current struct {
	Accounts    map[string]*Account
	Usernames   map[string]bool // lower-cased
	ActiveUsers int
}

// Attribute keys lifecycle keeps on a user beside the directory's own fields.
const (
	AttrCostCenter = "cost_center"
	AttrStartDate  = "start_date"
	AttrEndDate    = "end_date"
	AttrLeftAt     = "left_at"   // the day a leaver was disabled; retention counts from it
	AttrStatus     = "hr_status" // the HR status when it is not plain "active" (leave, ...)
)

// Kinds of change a person's plan carries.
const (
	KindJoiner        = "joiner"
	KindMover         = "mover" // written mover:OLD->NEW department
	KindLeaver        = "leaver"
	KindLeaverManager = "leaver:manager"
	KindManagerChange = "manager-change"
	KindUpdate        = "update"
	KindRehire        = "rehire"
	KindDelete        = "retention-delete"
	KindScheduled     = "scheduled" // a joiner whose account is created later
	KindUnchanged     = "unchanged"
)

// PersonPlan is what one person's run does: the kind of change, why, and the ops (applied
// together or not at all).
type PersonPlan struct {
	EmployeeID string    `json:"employee_id"`
	Username   string    `json:"username"`
	Kind       string    `json:"kind"`
	Changes    []string  `json:"changes,omitempty"`
	Ops        []Planned `json:"ops,omitempty"`
	// Notes are what the run leaves for a person to do (access it may not remove, reviews);
	// Manager (a username), who is told.
	Notes   []string `json:"notes,omitempty"`
	Manager string   `json:"manager,omitempty"`
}

// Planned is one op with the reason it is there.
type Planned struct {
	Op  change.Op `json:"op"`
	Why string    `json:"why"`
}

// Plan is the whole run: per person, in the order they must apply (managers before reports).
type Plan struct {
	Today   time.Time      `json:"today"`
	People  []PersonPlan   `json:"people"`
	Totals  map[string]int `json:"totals"`
	Ops     int            `json:"ops"`
	Missing int            `json:"missing"` // accounts with an employee ID the feed does not list (left alone)
	// Disables counts the accounts the run disables or deletes, against Active.
	Disables int `json:"disables"`
	Active   int `json:"active"`
}

// Options of a plan.
type Options struct {
	Today time.Time // the day of the run, in the HR time zone
	Actor delegation.Actor
	// Portal is the portal's external address, for joiners' activation links.
	Portal string
}

// planner holds one planning run's state.
type planner struct {
	rules    *RuleSet
	cur      *Current
	opt      Options
	feed     map[string]*Person
	username map[string]string // employee ID -> username (existing or assigned)
	byUserID map[string]string // user ID -> username, built when first needed
	now      time.Time
}

// MakePlan computes, for the valid people of a feed, the ops that bring the directory to what
// the feed and the rules say. It only reads.
func MakePlan(people []Person, rules *RuleSet, cur *Current, opt Options) *Plan {
	pl := &planner{rules: rules, cur: cur, opt: opt, feed: make(map[string]*Person, len(people)),
		username: map[string]string{}, now: time.Now().UTC().Truncate(time.Microsecond)}
	for i := range people {
		pl.feed[people[i].EmployeeID] = &people[i]
	}
	for id, a := range cur.Accounts {
		pl.username[id] = a.Username
	}
	taken := func(u string) bool { return cur.Usernames[strings.ToLower(u)] }
	var joiners []Person
	for _, p := range people {
		if _, ok := cur.Accounts[p.EmployeeID]; !ok {
			joiners = append(joiners, p)
		}
	}
	for id, u := range Usernames(joiners, taken) {
		pl.username[id] = u
	}
	plan := &Plan{Today: opt.Today, Totals: map[string]int{}, Active: cur.ActiveUsers}
	for _, p := range pl.ordered(people) {
		pp := pl.person(p)
		plan.Totals[kindName(pp.Kind)]++
		plan.Ops += len(pp.Ops)
		if pp.Kind == KindLeaver || pp.Kind == KindLeaverManager || pp.Kind == KindDelete {
			plan.Disables++
		}
		plan.People = append(plan.People, pp)
	}
	for id := range cur.Accounts {
		if _, ok := pl.feed[id]; !ok {
			plan.Missing++
		}
	}
	return plan
}

func kindName(k string) string {
	if strings.HasPrefix(k, KindMover+":") {
		return KindMover
	}
	return k
}

// ordered puts managers before their reports (by depth in the feed's management tree), keeping
// the feed order otherwise.
func (pl *planner) ordered(people []Person) []*Person {
	depth := map[string]int{}
	var depthOf func(id string, n int) int
	depthOf = func(id string, n int) int {
		if d, ok := depth[id]; ok {
			return d
		}
		p, ok := pl.feed[id]
		if !ok || p.ManagerID == "" || n > 64 {
			return 0
		}
		d := depthOf(p.ManagerID, n+1) + 1
		depth[id] = d
		return d
	}
	out := make([]*Person, len(people))
	for i := range people {
		out[i] = &people[i]
		depthOf(people[i].EmployeeID, 0)
	}
	sort.SliceStable(out, func(i, j int) bool { return depth[out[i].EmployeeID] < depth[out[j].EmployeeID] })
	return out
}

// left reports whether p has left by today: terminated (with an end date today or earlier, or
// none), or past their end date.
func (pl *planner) left(p *Person) bool {
	if p.Status == "terminated" {
		return p.EndDate.IsZero() || !p.EndDate.After(pl.opt.Today)
	}
	return !p.EndDate.IsZero() && p.EndDate.Before(pl.opt.Today)
}

// manager is the username of p's manager: the feed's, or when that one leaves, the first one up
// the chain who stays.
func (pl *planner) manager(p *Person) string {
	id := p.ManagerID
	for n := 0; id != "" && n < 64; n++ {
		m, ok := pl.feed[id]
		if !ok {
			// Not in this feed (a skipped row): the manager's account, as long as it is active.
			if a := pl.cur.Accounts[id]; a != nil && a.Status == directory.StatusActive {
				return a.Username
			}
			break
		}
		if !pl.left(m) {
			return pl.username[id]
		}
		id = m.ManagerID
	}
	return ""
}

func (pl *planner) lifecycle() directory.Ref {
	return directory.Ref{Kind: directory.KindSystem, ID: pl.opt.Actor.ID, Name: pl.opt.Actor.Name}
}

// person plans one person.
func (pl *planner) person(p *Person) PersonPlan {
	pp := PersonPlan{EmployeeID: p.EmployeeID, Username: pl.username[p.EmployeeID], Manager: pl.manager(p)}
	a, exists := pl.cur.Accounts[p.EmployeeID]
	switch {
	case !exists && pl.left(p):
		pp.Kind, pp.Changes = KindUnchanged, []string{"left before joining: nothing to do"}
	case !exists && p.StartDate.After(pl.opt.Today.AddDate(0, 0, pl.rules.Lead())):
		pp.Kind = KindScheduled
		pp.Changes = []string{fmt.Sprintf("joins on %s: the account is created from %s", isoDay(p.StartDate),
			isoDay(p.StartDate.AddDate(0, 0, -pl.rules.Lead())))}
	case !exists:
		pl.joiner(p, &pp)
	case pl.left(p):
		pl.leaver(p, a, &pp)
	default:
		pl.stayer(p, a, &pp)
	}
	return pp
}

func (pl *planner) add(pp *PersonPlan, op change.Op, why string) {
	op.Justification = why
	pp.Ops = append(pp.Ops, Planned{Op: op, Why: why})
}

func (pl *planner) joiner(p *Person, pp *PersonPlan) {
	pp.Kind = KindJoiner
	b := pl.rules.Birthright(p)
	in := &directory.UserInput{Username: pp.Username, GivenName: p.GivenName, FamilyName: p.FamilyName,
		DisplayName: p.GivenName + " " + p.FamilyName, Email: p.Email, EmployeeID: p.EmployeeID, Department: p.Department,
		Title: p.Title, Manager: pl.manager(p), Location: p.Location, EmploymentType: p.EmploymentType, OU: b.OU,
		Attributes: hrAttributes(p)}
	why := "joiner: starts " + isoDay(p.StartDate)
	if b.OURule != "" {
		why += "; placed by rule " + b.OURule
	}
	// The joiner's way in: an activation link to their manager, made with the account.
	from := p.StartDate
	if from.Before(pl.opt.Today) {
		from = pl.opt.Today
	}
	op := change.Op{Action: delegation.UserCreate, User: in, Rule: b.OURule,
		Welcome: &change.WelcomeInput{Portal: pl.opt.Portal, Expires: from.AddDate(0, 0, ActivationDays)}}
	pl.add(pp, op, why)
	pl.grantBirthright(pp, b, nil, nil)
}

// hrAttributes are the HR fields kept as custom attributes.
func hrAttributes(p *Person) map[string]string {
	attrs := map[string]string{}
	if p.CostCenter != "" {
		attrs[AttrCostCenter] = p.CostCenter
	}
	if !p.StartDate.IsZero() {
		attrs[AttrStartDate] = isoDay(p.StartDate)
	}
	if !p.EndDate.IsZero() {
		attrs[AttrEndDate] = isoDay(p.EndDate)
	}
	if p.Status != "" && p.Status != "active" && p.Status != "terminated" {
		attrs[AttrStatus] = p.Status
	}
	return attrs
}

// grantBirthright adds the groups and assignments of b that the person does not hold yet.
func (pl *planner) grantBirthright(pp *PersonPlan, b Birthright, held map[string]bool, heldAssign map[string]bool) {
	groups := make([]string, 0, len(b.Groups))
	for g := range b.Groups {
		groups = append(groups, g)
	}
	slices.Sort(groups)
	for _, g := range groups {
		if held[g] {
			continue
		}
		rule := b.Groups[g]
		pl.add(pp, change.Op{Action: delegation.GroupAddMember, Target: directory.ParseRef(directory.KindGroup, g),
			Member: "user:" + pp.Username, Rule: rule,
			Provenance: &directory.Provenance{Source: "rule", SourceID: rule, By: pl.lifecycle(), At: pl.now}},
			"birthright group "+g+" (rule "+rule+")")
	}
	keys := make([]string, 0, len(b.Assignments))
	for k := range b.Assignments {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		g := b.Assignments[k]
		if heldAssign[g.Rule+" "+g.Role] {
			continue
		}
		pl.add(pp, change.Op{Action: delegation.RoleAssign, Rule: g.Rule, Assignment: &delegation.AssignmentInput{
			Role: g.Role, Holder: delegation.HolderInput{User: pp.Username}, Scope: g.Scope,
			Justification: "birthright of rule " + g.Rule, Source: RuleSource(g.Rule)}},
			"birthright role "+g.Role+" (rule "+g.Rule+")")
	}
}

func (pl *planner) leaver(p *Person, a *Account, pp *PersonPlan) {
	pp.Username = a.Username
	if a.Status != directory.StatusActive {
		leftAt, _ := time.Parse(time.DateOnly, a.Attributes[AttrLeftAt])
		if !leftAt.IsZero() && !leftAt.AddDate(0, 0, pl.rules.Retention()).After(pl.opt.Today) {
			pp.Kind = KindDelete
			pl.add(pp, change.Op{Action: delegation.UserDelete, Target: userRef(a)},
				fmt.Sprintf("left on %s; retention of %d days is over", isoDay(leftAt), pl.rules.Retention()))
			return
		}
		pp.Kind, pp.Changes = KindUnchanged, []string{"left; disabled"}
		if !leftAt.IsZero() {
			pp.Changes = []string{fmt.Sprintf("left on %s; deleted after %s", isoDay(leftAt),
				isoDay(leftAt.AddDate(0, 0, pl.rules.Retention())))}
		}
		return
	}
	pp.Kind = KindLeaver
	if a.Reports > 0 {
		pp.Kind = KindLeaverManager
	}
	end := p.EndDate
	if end.IsZero() {
		end = pl.opt.Today
	}
	why := "leaver: " + p.Status + ", last day " + isoDay(end)
	pp.Changes = []string{why}
	steward := pl.manager(p)
	if pl.rules.Steward != "" {
		steward = pl.rules.Steward
	}
	// Ownership goes to the manager (or the configured steward) first, so that nothing is left without an owner.
	for _, kind := range []struct {
		owned  []Owned
		action delegation.Action
		noun   string
	}{{a.OwnsGroups, delegation.GroupUpdate, "group"}, {a.OwnsServiceAccounts, delegation.SAUpdate, "service account"}} {
		for _, o := range kind.owned {
			owners := slices.DeleteFunc(slices.Clone(o.Owners), func(id string) bool { return id == a.UserID })
			if steward != "" {
				owners = append(owners, steward)
			}
			if len(owners) == 0 && kind.action == delegation.SAUpdate {
				pp.Notes = append(pp.Notes, "service account "+o.Ref.Name+" has no other owner and the leaver no manager: give it an owner")
				continue
			}
			pl.add(pp, change.Op{Action: kind.action, Target: o.Ref, Patch: directory.Patch{"owners": mustJSON(owners)}},
				"leaver: ownership of "+kind.noun+" "+o.Ref.Name+" moves to "+orNone(steward))
			pp.Notes = append(pp.Notes, "review the ownership of "+kind.noun+" "+o.Ref.Name+" (now "+orNone(steward)+")")
		}
	}
	for _, h := range a.Groups {
		pl.add(pp, change.Op{Action: delegation.GroupRemoveMember, Target: h.Group, Member: "user:" + a.UserID},
			"leaver: membership of "+h.Group.Name+" ("+h.Source+") removed")
	}
	for _, as := range a.Assignments {
		if as.GrantedBy != pl.opt.Actor.ID {
			pp.Notes = append(pp.Notes, fmt.Sprintf("assignment %s (%s) was granted by hand: a tier-0 admin or its granter must revoke it", as.ID, as.Role))
			continue
		}
		pl.add(pp, change.Op{Action: delegation.RoleRevoke, Target: directory.Ref{Kind: directory.KindAssignment, ID: as.ID}},
			"leaver: role "+as.Role+" revoked")
	}
	if a.Tokens > 0 {
		pl.add(pp, change.Op{Action: delegation.UserRevokeTokens, Target: userRef(a)}, "leaver: API tokens revoked")
	}
	pl.add(pp, change.Op{Action: delegation.UserDisable, Target: userRef(a)}, why)
	attrs := map[string]any{AttrLeftAt: isoDay(pl.opt.Today)}
	if !p.EndDate.IsZero() {
		attrs[AttrEndDate] = isoDay(p.EndDate)
	}
	pl.add(pp, change.Op{Action: delegation.UserUpdate, Target: userRef(a), Patch: directory.Patch{"attributes": mustJSON(attrs)}},
		fmt.Sprintf("leaver: deleted after %d days", pl.rules.Retention()))
}

// stayer plans someone who exists and stays: a rehire, a mover, an update, or nothing.
func (pl *planner) stayer(p *Person, a *Account, pp *PersonPlan) {
	pp.Username = a.Username
	target := userRef(a)
	rehire := a.Status != directory.StatusActive && a.Attributes[AttrLeftAt] != ""
	switch {
	case rehire:
		pp.Changes = append(pp.Changes, "rehired: the same account is enabled again")
		pl.add(pp, change.Op{Action: delegation.UserEnable, Target: target}, "rehire")
	case a.Status != directory.StatusActive:
		// Disabled by someone, not by a leaver run: that is theirs to undo.
		pp.Notes = append(pp.Notes, fmt.Sprintf("the account is %s by hand, not by HR: it stays so", a.Status))
	}
	patch := directory.Patch{}
	set := func(field, have, want string) {
		if have != want {
			patch[field] = mustJSON(want)
			pp.Changes = append(pp.Changes, fmt.Sprintf("%s: %q -> %q", field, have, want))
		}
	}
	set("given_name", a.GivenName, p.GivenName)
	set("family_name", a.FamilyName, p.FamilyName)
	set("display_name", a.DisplayName, p.GivenName+" "+p.FamilyName)
	set("email", a.Email, p.Email)
	set("department", a.Department, p.Department)
	set("title", a.Title, p.Title)
	set("location", a.Location, p.Location)
	set("employment_type", a.EmploymentType, p.EmploymentType)
	managerChanged := false
	wantManager := pl.manager(p)
	if haveManager := pl.usernameOfUser(a.Manager); !p.KeepManager && !strings.EqualFold(haveManager, wantManager) {
		managerChanged = true
		patch["manager"] = mustJSON(wantManager)
		pp.Changes = append(pp.Changes, fmt.Sprintf("manager: %q -> %q", haveManager, wantManager))
	}
	attrs := map[string]any{}
	for k, v := range hrAttributes(p) {
		if a.Attributes[k] != v {
			attrs[k] = v
			pp.Changes = append(pp.Changes, fmt.Sprintf("%s: %q -> %q", k, a.Attributes[k], v))
		}
	}
	for _, k := range []string{AttrEndDate, AttrLeftAt, AttrCostCenter, AttrStartDate, AttrStatus} {
		if _, want := hrAttributes(p)[k]; !want && a.Attributes[k] != "" {
			attrs[k] = nil
			pp.Changes = append(pp.Changes, fmt.Sprintf("%s: %q removed", k, a.Attributes[k]))
		}
	}
	if len(attrs) > 0 {
		patch["attributes"] = mustJSON(attrs)
	}
	deptChanged := a.Department != p.Department
	if len(patch) > 0 {
		pl.add(pp, change.Op{Action: delegation.UserUpdate, Target: target, Patch: patch}, "HR record changed")
	}
	b := pl.rules.Birthright(p)
	moved := !samePath(a.OU, b.OU)
	if moved {
		pp.Changes = append(pp.Changes, fmt.Sprintf("ou: %s -> %s", a.OU, b.OU))
		pl.add(pp, change.Op{Action: delegation.UserMove, Target: target, To: b.OU, Rule: b.OURule}, "placed by rule "+orNone(b.OURule))
	}
	// Birthright: take back what rules no longer give, give what they now do.
	held := map[string]bool{}
	for _, h := range a.Groups {
		name := strings.ToLower(h.Group.Name)
		_, want := b.Groups[name]
		switch {
		case h.Source == "rule" && !want:
			pl.add(pp, change.Op{Action: delegation.GroupRemoveMember, Target: h.Group, Member: "user:" + a.UserID},
				"rule "+h.SourceID+" no longer gives group "+h.Group.Name)
		case h.Source == "rule" || want:
			held[name] = true
		case (deptChanged || moved) && pl.rules.MoverManualAccess == "remove":
			pl.add(pp, change.Op{Action: delegation.GroupRemoveMember, Target: h.Group, Member: "user:" + a.UserID},
				"mover: "+h.Source+" membership of "+h.Group.Name+" removed by configuration")
		case deptChanged || moved:
			pp.Notes = append(pp.Notes, "kept for review by the new manager: "+h.Source+" membership of "+h.Group.Name)
		}
	}
	heldAssign := map[string]bool{}
	for _, as := range a.Assignments {
		rule, ok := strings.CutPrefix(as.Source, "rule:")
		if !ok {
			if deptChanged || moved {
				pp.Notes = append(pp.Notes, "kept for review by the new manager: assignment "+as.ID+" ("+as.Role+")")
			}
			continue
		}
		wanted := false
		for _, g := range b.Assignments {
			if g.Rule == rule && g.Role == as.Role {
				wanted = true
			}
		}
		if wanted {
			heldAssign[rule+" "+as.Role] = true
			continue
		}
		pl.add(pp, change.Op{Action: delegation.RoleRevoke, Target: directory.Ref{Kind: directory.KindAssignment, ID: as.ID}},
			"rule "+rule+" no longer gives role "+as.Role)
	}
	pl.grantBirthright(pp, b, held, heldAssign)
	if len(pp.Ops) > 0 && len(pp.Changes) == 0 {
		pp.Changes = append(pp.Changes, "birthright changed with the rules")
	}
	switch {
	case rehire:
		pp.Kind = KindRehire
	case deptChanged:
		pp.Kind = KindMover + ":" + a.Department + "->" + p.Department
	case managerChanged && len(patch) == 1:
		pp.Kind = KindManagerChange
	case len(pp.Ops) > 0:
		pp.Kind = KindUpdate
	default:
		pp.Kind = KindUnchanged
	}
}

// usernameOfUser finds the username of a user ID among the accounts ("" when unknown).
func (pl *planner) usernameOfUser(id string) string {
	if id == "" {
		return ""
	}
	if pl.byUserID == nil {
		pl.byUserID = make(map[string]string, len(pl.cur.Accounts))
		for _, a := range pl.cur.Accounts {
			pl.byUserID[a.UserID] = a.Username
		}
	}
	if u, ok := pl.byUserID[id]; ok {
		return u
	}
	return id
}

func userRef(a *Account) directory.Ref {
	return directory.Ref{Kind: directory.KindUser, ID: a.UserID, Name: a.Username}
}

func samePath(a, b string) bool {
	return strings.EqualFold(strings.Trim(a, "/"), strings.Trim(b, "/"))
}

func orNone(s string) string {
	if s == "" {
		return "no one"
	}
	return s
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("lifecycle: encode %T: %v", v, err)) // only plain values are encoded
	}
	return b
}
