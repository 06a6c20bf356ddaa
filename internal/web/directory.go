package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
	"github.com/deputy-iam/deputy/internal/httpx"
)

// SAKeys lists the API keys of a service account (by its ID), newest first, without secrets.
type SAKeys interface {
	ServiceAccountKeys(ctx context.Context, id string) ([]credential.Token, error)
}

// registerDirectory adds the pages of the directory beyond a person's page: the OU tree, groups, service accounts and their keys, and the forms that create, edit and move.
func (s *Server) registerDirectory(mux *http.ServeMux) {
	mux.HandleFunc("GET /ous", s.page(s.ous))
	mux.HandleFunc("POST /ous", s.page(s.createOU))
	mux.HandleFunc("GET /ous/people", s.page(s.ouPeople))
	mux.HandleFunc("GET /groups", s.page(s.groups))
	mux.HandleFunc("GET /groups/new", s.page(s.newGroupPage))
	mux.HandleFunc("POST /groups/new", s.page(s.createGroup))
	mux.HandleFunc("GET /service-accounts", s.page(s.serviceAccounts))
	mux.HandleFunc("GET /service-accounts/{sa}", s.page(s.serviceAccount))
	mux.HandleFunc("POST /service-accounts/{sa}/keys", s.page(s.issueKey))
	mux.HandleFunc("POST /service-accounts/{sa}/keys/{key}/revoke", s.page(s.revokeKey))
	mux.HandleFunc("GET /users/new", s.page(s.newUserPage))
	mux.HandleFunc("POST /users/new", s.page(s.createUser))
	mux.HandleFunc("GET /users/{user}/edit", s.page(s.editUserPage))
	mux.HandleFunc("POST /users/{user}/edit", s.page(s.editUser))
	mux.HandleFunc("POST /users/{user}/move", s.page(s.moveUser))
}

// listPageSize is how many rows a directory list shows at once.
const listPageSize = 50

// narrow restricts q to the objects of kind the person may see; false when they may see none.
func (s *Server) narrow(c *ctx, kind directory.Kind, q *directory.ListQuery) bool {
	all, vis := s.Authz.Visibility(c.me, kind)
	switch {
	case all:
	case vis == nil:
		return false
	case q.Filter == nil:
		q.Filter = vis
	default:
		q.Filter = &filter.And{Left: vis, Right: q.Filter}
	}
	return true
}

// listFilter parses the search term (matched by expr, with %q standing for the quoted term)
// and the OU path, if any, into q's filter.
func listFilter(q *directory.ListQuery, schema filter.Schema, term, ou, expr string) error {
	var parts []string
	if term != "" {
		quoted := strconv.Quote(term)
		parts = append(parts, "("+strings.ReplaceAll(expr, "%q", quoted)+")")
	}
	if ou != "" {
		parts = append(parts, "ou eq "+strconv.Quote(ouPath(ou)))
	}
	if len(parts) == 0 {
		return nil
	}
	e, err := filter.Parse(strings.Join(parts, " and "), schema)
	if err != nil {
		return directory.Invalid("q", "%v", err)
	}
	q.Filter = e
	return nil
}

// ouPath writes an OU path as the directory displays it: "/" for the root, no outer slashes
// otherwise.
func ouPath(p string) string {
	if p = strings.Trim(strings.TrimSpace(p), "/"); p == "" {
		return directory.RootPath
	}
	return p
}

// nextURL is the address of the page after this one, keeping the query's other parameters.
func nextURL(r *http.Request, next string) string {
	if next == "" {
		return ""
	}
	v := r.URL.Query()
	v.Del("done")
	v.Set("cursor", next)
	return r.URL.Path + "?" + v.Encode()
}

// mayCreate says whether the person holds any grant whose role allows action (the pipeline
// judges the OU when they use it).
func (s *Server) mayCreate(c *ctx, action delegation.Action) bool {
	for _, g := range s.Authz.Grants(c.me.ID) {
		if g.Role.Allows(action) {
			return true
		}
	}
	return false
}

// ouRow is one OU of the tree.
type ouRow struct {
	Path  string
	Name  string
	Depth int
}

// visibleOUs lists the OUs the person may see, in tree order (each OU after its parent).
func (s *Server) visibleOUs(c *ctx) ([]ouRow, error) {
	q := directory.ListQuery{Limit: directory.MaxLimit}
	if !s.narrow(c, directory.KindOU, &q) {
		return nil, nil
	}
	var rows []ouRow
	for range 20 { // at most 20 000 OUs
		page, err := s.Dir.ListOUs(c.r.Context(), q)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Items {
			depth := 0
			if o.ParentID != "" {
				depth = strings.Count(o.Path, "/") + 1
			}
			rows = append(rows, ouRow{Path: o.DisplayPath(), Name: o.Name, Depth: min(depth, 8)})
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	key := func(p string) []string {
		if p == directory.RootPath {
			return nil
		}
		return strings.Split(strings.ToLower(p), "/")
	}
	slices.SortFunc(rows, func(a, b ouRow) int { return slices.Compare(key(a.Path), key(b.Path)) })
	return rows, nil
}

// ous shows the OU tree the person may see, each OU with links to its people, groups and
// service accounts.
func (s *Server) ous(c *ctx) {
	rows, err := s.visibleOUs(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "ous", "Organisational units", map[string]any{"OUs": rows,
		"NewUser": s.mayCreate(c, delegation.UserCreate), "NewGroup": s.mayCreate(c, delegation.GroupCreate),
		"NewOU": s.mayCreate(c, delegation.OUCreate)}, nil)
}

// createOU makes an OU under a parent the person names; the pipeline judges the parent.
func (s *Server) createOU(c *ctx) {
	in := &directory.OUInput{Name: strings.TrimSpace(c.r.PostFormValue("name")), Parent: ouPath(c.r.PostFormValue("parent"))}
	res, err := s.Pipeline.Submit(c.r.Context(), c.me, meta(c.r), change.Op{Action: delegation.OUCreate, OU: in,
		Justification: strings.TrimSpace(c.r.PostFormValue("justification"))})
	if err != nil {
		s.fail(c, err)
		return
	}
	http.Redirect(c.w, c.r, "/ous?done="+url.QueryEscape("Created "+res.Target.Name), http.StatusSeeOther)
}

// ouPeople lists the people of one OU (not of the OUs below it) whom the person may see.
func (s *Server) ouPeople(c *ctx) {
	ou := ouPath(c.r.URL.Query().Get("ou"))
	q := directory.ListQuery{Limit: listPageSize, Cursor: c.r.URL.Query().Get("cursor")}
	if err := listFilter(&q, directory.UserSchema, "", ou, ""); err != nil {
		s.fail(c, err)
		return
	}
	data := map[string]any{"OU": ou, "NewUser": s.mayCreate(c, delegation.UserCreate)}
	if !s.narrow(c, directory.KindUser, &q) {
		data["None"] = true
		s.render(c, http.StatusOK, "ou-people", "People in "+ou, data, nil)
		return
	}
	page, err := s.Dir.ListUsers(c.r.Context(), q)
	if err != nil {
		s.fail(c, err)
		return
	}
	data["Users"], data["Next"] = page.Items, nextURL(c.r, page.Next)
	s.render(c, http.StatusOK, "ou-people", "People in "+ou, data, nil)
}

// groups searches the groups the person may see, by name or description, optionally in one OU.
func (s *Server) groups(c *ctx) {
	term, ou := strings.TrimSpace(c.r.URL.Query().Get("q")), strings.TrimSpace(c.r.URL.Query().Get("ou"))
	q := directory.ListQuery{Limit: listPageSize, Cursor: c.r.URL.Query().Get("cursor")}
	if err := listFilter(&q, directory.GroupSchema, term, ou, "name sw %q or description co %q"); err != nil {
		s.fail(c, err)
		return
	}
	data := map[string]any{"Query": term, "OU": ou, "NewGroup": s.mayCreate(c, delegation.GroupCreate)}
	if !s.narrow(c, directory.KindGroup, &q) {
		data["None"] = true
		s.render(c, http.StatusOK, "groups", "Groups", data, nil)
		return
	}
	page, err := s.Dir.ListGroups(c.r.Context(), q)
	if err != nil {
		s.fail(c, err)
		return
	}
	data["Groups"], data["Next"] = page.Items, nextURL(c.r, page.Next)
	s.render(c, http.StatusOK, "groups", "Groups", data, nil)
}

// serviceAccounts searches the service accounts the person may see.
func (s *Server) serviceAccounts(c *ctx) {
	term, ou := strings.TrimSpace(c.r.URL.Query().Get("q")), strings.TrimSpace(c.r.URL.Query().Get("ou"))
	q := directory.ListQuery{Limit: listPageSize, Cursor: c.r.URL.Query().Get("cursor")}
	if err := listFilter(&q, directory.ServiceAccountSchema, term, ou, "name sw %q or description co %q"); err != nil {
		s.fail(c, err)
		return
	}
	data := map[string]any{"Query": term, "OU": ou}
	if !s.narrow(c, directory.KindServiceAccount, &q) {
		data["None"] = true
		s.render(c, http.StatusOK, "service-accounts", "Service accounts", data, nil)
		return
	}
	page, err := s.Dir.ListServiceAccounts(c.r.Context(), q)
	if err != nil {
		s.fail(c, err)
		return
	}
	data["Accounts"], data["Next"] = page.Items, nextURL(c.r, page.Next)
	s.render(c, http.StatusOK, "service-accounts", "Service accounts", data, nil)
}

// keyRow is a key as the service account's page shows it: never its secret.
type keyRow struct {
	ID, Name, State                  string
	Created, Expires, LastUsed, Gone time.Time
	Active                           bool
}

// serviceAccount shows a service account: its profile, owners and keys, with the key actions
// the person may take.
func (s *Server) serviceAccount(c *ctx) {
	ctx := c.r.Context()
	name := c.r.PathValue("sa")
	sa, err := s.Dir.ServiceAccount(ctx, directory.ParseRef(directory.KindServiceAccount, name))
	if err != nil {
		s.fail(c, directory.NotFound(directory.KindServiceAccount, name))
		return
	}
	allowed := s.Authz.Allowed(ctx, c.me, delegation.Object{Ref: sa.Ref(), Fields: sa.Fields()},
		[]delegation.Action{delegation.DirectoryRead, delegation.SAIssueKey, delegation.SARevokeKey})
	if len(allowed) == 0 || allowed[0] != delegation.DirectoryRead {
		s.fail(c, directory.NotFound(directory.KindServiceAccount, name)) // not theirs to see
		return
	}
	var rows []keyRow
	if s.SAKeys != nil {
		keys, err := s.SAKeys.ServiceAccountKeys(ctx, sa.ID)
		if err != nil {
			s.fail(c, err)
			return
		}
		now := time.Now()
		for _, k := range keys {
			r := keyRow{ID: k.ID, Name: k.Name, Created: k.Created, Expires: k.Expires, LastUsed: k.LastUsed,
				Gone: k.Revoked, Active: k.Active(now), State: "active"}
			switch {
			case !k.Revoked.IsZero():
				r.State = "revoked"
			case !r.Active:
				r.State, r.Gone = "expired", k.Expires
			}
			rows = append(rows, r)
		}
	}
	var active []keyRow
	for _, r := range rows {
		if r.Active {
			active = append(active, r)
		}
	}
	s.render(c, http.StatusOK, "service-account", sa.Name, map[string]any{"SA": sa, "Keys": rows, "ActiveKeys": active,
		"Allowed": allowed, "DefaultDays": change.DefaultKeyDays, "DefaultOverlap": change.DefaultOverlapHours,
		"MaxOverlap": change.MaxOverlapHours}, nil)
}

// formInt reads a whole number from the form; 0 when the field is empty.
func formInt(c *ctx, field string) (int, error) {
	v := strings.TrimSpace(c.r.PostFormValue(field))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, directory.Invalid(field, "must be a whole number")
	}
	return n, nil
}

// issueKey issues a key (or, with rotate_from, a key that replaces another after an overlap)
// and shows its secret, this once.
func (s *Server) issueKey(c *ctx) {
	in := change.KeyInput{Name: strings.TrimSpace(c.r.PostFormValue("name")),
		RotateFrom: strings.TrimSpace(c.r.PostFormValue("rotate_from"))}
	var err error
	if in.ExpiresInDays, err = formInt(c, "expires_in_days"); err != nil {
		s.fail(c, err)
		return
	}
	if in.RotateFrom != "" {
		if in.OverlapHours, err = formInt(c, "overlap_hours"); err != nil {
			s.fail(c, err)
			return
		}
	}
	res, err := s.Pipeline.Submit(c.r.Context(), c.me, meta(c.r), change.Op{Action: delegation.SAIssueKey,
		Target: directory.ParseRef(directory.KindServiceAccount, c.r.PathValue("sa")), Key: &in,
		Justification: strings.TrimSpace(c.r.PostFormValue("justification"))})
	if err != nil {
		s.fail(c, err)
		return
	}
	if res.Credential == nil {
		s.fail(c, directory.NotFound(directory.KindToken, in.Name))
		return
	}
	s.render(c, http.StatusOK, "key", "New key for "+res.Target.Name, map[string]any{"SA": res.Target.Name,
		"Name": in.Name, "Key": res.Credential}, nil)
}

// revokeKey revokes one key of a service account: it stops authenticating at once.
func (s *Server) revokeKey(c *ctx) {
	name, key := c.r.PathValue("sa"), c.r.PathValue("key")
	res, err := s.Pipeline.Submit(c.r.Context(), c.me, meta(c.r), change.Op{Action: delegation.SARevokeKey,
		Target: directory.ParseRef(directory.KindServiceAccount, name), KeyID: key,
		Justification: strings.TrimSpace(c.r.PostFormValue("justification"))})
	if err != nil {
		s.fail(c, err)
		return
	}
	http.Redirect(c.w, c.r, "/service-accounts/"+url.PathEscape(res.Target.Name)+"?done="+
		url.QueryEscape("Key "+key+" revoked: it no longer works"), http.StatusSeeOther)
}

// userField is one attribute of a person the forms show.
type userField struct {
	Name, Label, Value, Type, Auto string
	Editable                       bool
}

// userFields are the attributes the create and edit forms show, in order, with their labels.
var userFields = []userField{
	{Name: "username", Label: "Username", Auto: "off"},
	{Name: "given_name", Label: "Given name", Auto: "off"},
	{Name: "family_name", Label: "Family name", Auto: "off"},
	{Name: "display_name", Label: "Display name (empty: given and family name)", Auto: "off"},
	{Name: "email", Label: "Email", Type: "email", Auto: "off"},
	{Name: "phone", Label: "Phone", Type: "tel", Auto: "off"},
	{Name: "employee_id", Label: "Employee ID", Auto: "off"},
	{Name: "department", Label: "Department", Auto: "off"},
	{Name: "title", Label: "Title", Auto: "off"},
	{Name: "manager", Label: "Manager (username)", Auto: "off"},
	{Name: "location", Label: "Location", Auto: "off"},
	{Name: "employment_type", Label: "Employment type", Auto: "off"},
}

// userValue is a person's value of one of userFields.
func userValue(u *directory.User, name string) string {
	if name == "manager" {
		return u.ManagerName
	}
	v, _ := u.Get(name)
	str, _ := v.(string)
	return str
}

// fieldsOf fills userFields with values from get, editable where editable says so.
func fieldsOf(get func(string) string, editable func(string) bool) []userField {
	out := slices.Clone(userFields)
	for i := range out {
		out[i].Value = get(out[i].Name)
		out[i].Editable = editable(out[i].Name)
		if out[i].Type == "" {
			out[i].Type = "text"
		}
	}
	return out
}

// newUserPage is the form that creates a person.
func (s *Server) newUserPage(c *ctx) {
	ou := c.r.URL.Query().Get("ou")
	if ou != "" {
		ou = ouPath(ou)
	}
	s.userForm(c, http.StatusOK, func(string) string { return "" }, ou, "")
}

// userForm renders the create form with values and, after a refusal, its reason.
func (s *Server) userForm(c *ctx, status int, get func(string) string, ou, problem string) {
	ous, err := s.visibleOUs(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, status, "new-user", "New person", map[string]any{"Fields": fieldsOf(get, func(string) bool { return true }),
		"OUs": ous, "OU": ou, "Error": problem, "May": s.mayCreate(c, delegation.UserCreate)}, nil)
}

// createUser creates a person from the form.
func (s *Server) createUser(c *ctx) {
	get := func(f string) string { return strings.TrimSpace(c.r.PostFormValue(f)) }
	in := directory.UserInput{Username: get("username"), GivenName: get("given_name"), FamilyName: get("family_name"),
		DisplayName: get("display_name"), Email: get("email"), Phone: get("phone"), EmployeeID: get("employee_id"),
		Department: get("department"), Title: get("title"), Manager: get("manager"), Location: get("location"),
		EmploymentType: get("employment_type"), OU: get("ou")}
	res, err := s.Pipeline.Submit(c.r.Context(), c.me, meta(c.r), change.Op{Action: delegation.UserCreate,
		Target: directory.Ref{Kind: directory.KindUser}, User: &in, Justification: get("justification")})
	if p := httpx.ProblemFor(err); err != nil && p.Code == "invalid" {
		s.userForm(c, http.StatusUnprocessableEntity, get, get("ou"), p.Detail)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	http.Redirect(c.w, c.r, "/users/"+url.PathEscape(res.Target.Name)+"?done="+url.QueryEscape("Person created"), http.StatusSeeOther)
}

// newGroupPage is the form that creates a group.
func (s *Server) newGroupPage(c *ctx) {
	ou := c.r.URL.Query().Get("ou")
	if ou != "" {
		ou = ouPath(ou)
	}
	s.groupForm(c, http.StatusOK, map[string]string{"ou": ou}, "")
}

func (s *Server) groupForm(c *ctx, status int, values map[string]string, problem string) {
	ous, err := s.visibleOUs(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, status, "new-group", "New group", map[string]any{"OUs": ous, "Values": values, "Error": problem,
		"May": s.mayCreate(c, delegation.GroupCreate)}, nil)
}

// createGroup creates a group from the form; owners are usernames separated by commas or
// spaces.
func (s *Server) createGroup(c *ctx) {
	values := map[string]string{}
	for _, f := range []string{"name", "description", "ou", "owners", "justification"} {
		values[f] = strings.TrimSpace(c.r.PostFormValue(f))
	}
	in := directory.GroupInput{Name: values["name"], Description: values["description"], OU: values["ou"],
		Owners: strings.FieldsFunc(values["owners"], func(r rune) bool { return r == ',' || r == ' ' })}
	res, err := s.Pipeline.Submit(c.r.Context(), c.me, meta(c.r), change.Op{Action: delegation.GroupCreate,
		Target: directory.Ref{Kind: directory.KindGroup}, Group: &in, Justification: values["justification"]})
	if p := httpx.ProblemFor(err); err != nil && p.Code == "invalid" {
		s.groupForm(c, http.StatusUnprocessableEntity, values, p.Detail)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	http.Redirect(c.w, c.r, "/groups/"+url.PathEscape(res.Target.Name)+"?done="+url.QueryEscape("Group created"), http.StatusSeeOther)
}

// editable says which user attributes the person's roles let them update (somewhere: the
// pipeline judges this person's scope when they save).
func (s *Server) editable(c *ctx) func(string) bool {
	grants := s.Authz.Grants(c.me.ID)
	return func(attr string) bool {
		for _, g := range grants {
			if g.Role.Allows(delegation.UserUpdate) && g.Role.AllowsAttribute(attr) {
				return true
			}
		}
		return false
	}
}

// editTarget reads the person the path names, answering as not found when the viewer may not
// see them and refusing when they may not update them.
func (s *Server) editTarget(c *ctx) (directory.User, bool) {
	name := c.r.PathValue("user")
	u, err := s.Dir.User(c.r.Context(), directory.ParseRef(directory.KindUser, name))
	if err != nil {
		s.fail(c, directory.NotFound(directory.KindUser, name))
		return u, false
	}
	allowed := s.Authz.Allowed(c.r.Context(), c.me, delegation.Object{Ref: u.Ref(), Fields: u.Fields()},
		[]delegation.Action{delegation.DirectoryRead, delegation.UserUpdate})
	switch {
	case len(allowed) == 0 || allowed[0] != delegation.DirectoryRead:
		s.fail(c, directory.NotFound(directory.KindUser, name))
		return u, false
	case !slices.Contains(allowed, delegation.UserUpdate):
		s.fail(c, httpx.NewProblem(http.StatusForbidden, delegation.ReasonNotAuthorized,
			"none of your roles lets you change "+u.Username+"'s details"))
		return u, false
	}
	return u, true
}

// editUserPage is the form that edits a person's attributes: those the viewer's roles may
// update are inputs, the others are shown as they are.
func (s *Server) editUserPage(c *ctx) {
	u, ok := s.editTarget(c)
	if !ok {
		return
	}
	s.render(c, http.StatusOK, "user-edit", "Edit "+u.Username, map[string]any{"User": u,
		"Fields": fieldsOf(func(f string) string { return userValue(&u, f) }, s.editable(c))}, nil)
}

// editUser saves the changed attributes as a merge patch, on the version the form was read
// at: a change by someone else meanwhile makes it fail as stale.
func (s *Server) editUser(c *ctx) {
	u, ok := s.editTarget(c)
	if !ok {
		return
	}
	version, err := strconv.ParseInt(c.r.PostFormValue("version"), 10, 64)
	if err != nil || version < 1 {
		s.fail(c, directory.Invalid("version", "the form lost the version it was read at: open it again"))
		return
	}
	patch := directory.Patch{}
	editable := s.editable(c)
	for _, f := range userFields {
		if _, sent := c.r.PostForm[f.Name]; !sent || !editable(f.Name) {
			continue
		}
		v := strings.TrimSpace(c.r.PostFormValue(f.Name))
		if v == userValue(&u, f.Name) && version == u.Version {
			continue
		}
		raw, _ := json.Marshal(v)
		if f.Name == "manager" && v == "" {
			raw = json.RawMessage("null")
		}
		patch[f.Name] = raw
	}
	if len(patch) == 0 {
		http.Redirect(c.w, c.r, "/users/"+url.PathEscape(u.Username)+"?done="+url.QueryEscape("Nothing changed"), http.StatusSeeOther)
		return
	}
	res, err := s.Pipeline.Submit(c.r.Context(), c.me, meta(c.r), change.Op{Action: delegation.UserUpdate, Target: u.Ref(),
		IfVersion: version, Patch: patch, Justification: strings.TrimSpace(c.r.PostFormValue("justification"))})
	if err != nil {
		s.fail(c, err)
		return
	}
	http.Redirect(c.w, c.r, "/users/"+url.PathEscape(res.Target.Name)+"?done="+url.QueryEscape("Saved"), http.StatusSeeOther)
}

// moveUser moves a person to another OU (rights at both ends are needed; the pipeline checks).
func (s *Server) moveUser(c *ctx) {
	to := strings.TrimSpace(c.r.PostFormValue("to"))
	res, err := s.Pipeline.Submit(c.r.Context(), c.me, meta(c.r), change.Op{Action: delegation.UserMove,
		Target: directory.ParseRef(directory.KindUser, c.r.PathValue("user")), To: to,
		Justification: strings.TrimSpace(c.r.PostFormValue("justification"))})
	if err != nil {
		s.fail(c, err)
		return
	}
	http.Redirect(c.w, c.r, "/users/"+url.PathEscape(res.Target.Name)+"?done="+url.QueryEscape("Moved to "+ouPath(to)), http.StatusSeeOther)
}
