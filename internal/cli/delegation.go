package cli

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// roleKind is the role collection for the generic get, update and delete verbs; list and create
// are role-specific (roles are few and unfiltered, and have no protected flag).
var roleKind = kindSpec{name: "role", noun: "role", path: "/api/v1/roles", key: "name",
	strs: []string{"description", "copy_of"}, lists: []string{"actions", "user_attributes"}}

var roleCols = []column{{"NAME", "name"}, {"BUILTIN", "builtin"}, {"USER ATTRIBUTES", "user_attributes"}, {"ACTIONS", "actions"}}

func (e *env) roleCommand() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{Use: "role", Short: "List, read and change roles (named sets of actions)"}
	e.addClientFlags(cmd, f, true)
	list := &cobra.Command{
		Use:   "list",
		Short: "List the built-in and custom roles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, p, err := e.fetchPage(cmd, f, "GET", roleKind.path, nil)
			if err != nil {
				return err
			}
			return c.printList(e, roleCols, p.Items, "")
		},
	}
	cmd.AddCommand(list, e.getCommand(roleKind, f), e.roleCreateCommand(f), e.updateCommand(roleKind, f),
		e.deleteCommand(roleKind, f))
	return cmd
}

func (e *env) roleCreateCommand(f *clientFlags) *cobra.Command {
	var (
		actions, attrs      []string
		copyOf, description string
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a custom role, from actions or as a copy of another role",
		Example: "  deputy role create sales-helpdesk --copy-of helpdesk --description \"Helpdesk for Sales\"\n" +
			"  deputy role create badge-admin --action directory.read --action user.update --user-attribute attributes.badge",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			body := map[string]any{"name": args[0]}
			if len(actions) > 0 {
				body["actions"] = actions
			}
			if len(attrs) > 0 {
				body["user_attributes"] = attrs
			}
			if copyOf != "" {
				body["copy_of"] = copyOf
			}
			if description != "" {
				body["description"] = description
			}
			var obj map[string]any
			if err := c.call(cmd.Context(), "POST", roleKind.path, nil, body, &obj); err != nil {
				return err
			}
			return c.printOne(e, obj)
		},
	}
	cmd.Flags().StringSliceVar(&actions, "action", nil, "an action the role allows, such as user.update (repeat or separate with commas)")
	cmd.Flags().StringSliceVar(&attrs, "user-attribute", nil, "narrow user.update to this attribute (repeat or separate with commas)")
	cmd.Flags().StringVar(&copyOf, "copy-of", "", "start from this role's actions and attributes (the flags above replace them)")
	cmd.Flags().StringVar(&description, "description", "", "what the role is for")
	return cmd
}

const assignmentsPath = "/api/v1/assignments"

var assignmentCols = []column{{"ID", "id"}, {"ROLE", "role"}, {"HOLDER", "holder"}, {"SCOPE", "description"},
	{"ACTIVE", "active"}, {"UNTIL", "until"}, {"GRANTED BY", "granted_by"}}

// refName renders a reference object of the API ({"type","id","name"}) for a table: a user by
// name, anything else with its type ("group:it-helpdesk").
func refName(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	name, _ := m["name"].(string)
	switch m["type"] {
	case "user", "system", nil:
		return name
	case "service_account":
		return "sa:" + name
	}
	return fmt.Sprintf("%v:%s", m["type"], name)
}

// flattenAssignment rewrites an assignment's references as names, for a table.
func flattenAssignment(a map[string]any) map[string]any {
	for _, key := range []string{"holder", "granted_by"} {
		if v, ok := a[key]; ok {
			a[key] = refName(v)
		}
	}
	return a
}

// printAssignment prints one assignment: as the API wrote it with -o json, else with its
// references by name.
func (c *client) printAssignment(e *env, a map[string]any) error {
	if c.output == "json" {
		return printJSON(e.stdout, a)
	}
	return printObject(e.stdout, flattenAssignment(a))
}

func (e *env) assignCommand() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{Use: "assign", Short: "Grant, list, revoke and activate role assignments (delegations)"}
	e.addClientFlags(cmd, f, true)
	cmd.AddCommand(e.assignListCommand(f), e.assignGetCommand(f), e.assignCreateCommand(f), e.assignRevokeCommand(f),
		e.assignActivateCommand(f))
	return cmd
}

func (e *env) assignListCommand(f *clientFlags) *cobra.Command {
	var (
		role, holder, cursor string
		limit                int
		all                  bool
	)
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List assignments (yours and your groups'; everyone's for an auditor or tier-0 admin)",
		Example: "  deputy assign list --role helpdesk\n  deputy assign list --holder group:it-helpdesk --all -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			items, next, err := c.listAll(cmd.Context(), assignmentsPath, url.Values{"role": {role}, "holder": {holder}},
				cursor, limit, all)
			if err != nil {
				return err
			}
			if c.output != "json" {
				for _, it := range items {
					flattenAssignment(it)
				}
			}
			return c.printList(e, assignmentCols, items, next)
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "only assignments of this role")
	cmd.Flags().StringVar(&holder, "holder", "", "only assignments held by this user or group (name, user:NAME, group:NAME or ID)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "continue after a previous page")
	cmd.Flags().IntVar(&limit, "limit", 100, "page size (1-1000)")
	cmd.Flags().BoolVar(&all, "all", false, "fetch every page")
	return cmd
}

func (e *env) assignGetCommand(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show one assignment",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, obj, err := e.fetchOne(cmd, f, assignmentsPath+"/"+url.PathEscape(args[0]))
			if err != nil {
				return err
			}
			return c.printAssignment(e, obj)
		},
	}
}

// assignInput holds the flags of assign create.
type assignInput struct {
	role, user, group, system, ou, filter, relation, from, until, maxActivation string
	groups, excludeOUs, excludeGroups                                           []string
	noSubtree, canRedelegate, eligible, dryRun                                  bool
}

// body builds the assignment as the API takes it; scope and holder are checked by the server,
// which names every invalid field.
func (in *assignInput) body(cmd *cobra.Command, justification string) (map[string]any, error) {
	holder := map[string]string{}
	if in.user != "" {
		holder["user"] = in.user
	}
	if in.group != "" {
		holder["group"] = in.group
	}
	if in.system != "" {
		holder["system"] = in.system
	}
	scope := map[string]any{}
	if in.ou != "" {
		scope["ou"] = in.ou
	}
	if cmd.Flags().Changed("no-subtree") {
		scope["subtree"] = !in.noSubtree
	}
	if len(in.groups) > 0 {
		scope["groups"] = in.groups
	}
	if in.filter != "" {
		scope["filter"] = in.filter
	}
	if in.relation != "" {
		scope["relation"] = in.relation
	}
	body := map[string]any{"role": in.role, "holder": holder, "scope": scope, "justification": justification}
	if len(in.excludeOUs)+len(in.excludeGroups) > 0 {
		ex := map[string]any{}
		if len(in.excludeOUs) > 0 {
			ex["ous"] = in.excludeOUs
		}
		if len(in.excludeGroups) > 0 {
			ex["groups"] = in.excludeGroups
		}
		body["exclude"] = ex
	}
	for flag, v := range map[string]string{"from": in.from, "until": in.until} {
		if v == "" {
			continue
		}
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			return nil, fmt.Errorf("--%s %q: want an RFC 3339 time such as 2026-12-31T18:00:00Z", flag, v)
		}
		body[flag] = v
	}
	if in.canRedelegate {
		body["can_redelegate"] = true
	}
	if in.eligible {
		body["eligible"] = true
	}
	if in.maxActivation != "" {
		body["max_activation"] = in.maxActivation
	}
	return body, nil
}

func (e *env) assignCreateCommand(f *clientFlags) *cobra.Command {
	in := &assignInput{}
	cmd := &cobra.Command{
		Use:   "create --role ROLE (--user U | --group G | --system lifecycle) (--ou PATH | --groups G,... | --filter F | --relation R) --justification WHY",
		Short: "Grant a role to a user or a group's members over a scope (--dry-run: only show what it would unlock)",
		Example: "  deputy assign create --role helpdesk --group it-helpdesk --ou corp/sales --exclude-ou corp/sales/vip \\\n" +
			"    --until 2026-12-31T18:00:00Z --justification \"Sales helpdesk, ticket IT-42\"\n" +
			"  deputy assign create --role manager --group managers --relation direct_reports --justification \"managers\" --dry-run\n" +
			"  deputy assign create --role tier0-admin --user grace --ou / --eligible --max-activation 2h --justification \"on call\"",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			body, err := in.body(cmd, f.justification)
			if err != nil {
				return err
			}
			if in.dryRun {
				var preview map[string]any
				if err := c.call(cmd.Context(), "POST", assignmentsPath, url.Values{"dry_run": {"true"}}, body, &preview); err != nil {
					return err
				}
				return c.printPreview(e, preview)
			}
			var obj map[string]any
			if err := c.call(cmd.Context(), "POST", assignmentsPath, nil, body, &obj); err != nil {
				return err
			}
			return c.printAssignment(e, obj)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&in.role, "role", "", "the role to grant")
	fl.StringVar(&in.user, "user", "", "the user who holds it")
	fl.StringVar(&in.group, "group", "", "the group whose members (transitively) hold it")
	fl.StringVar(&in.system, "system", "", "the system actor that holds it: lifecycle (what HR feeds may do)")
	fl.StringVar(&in.ou, "ou", "", "scope: the objects in this OU and, unless --no-subtree, below it")
	fl.BoolVar(&in.noSubtree, "no-subtree", false, "with --ou: that OU only, not the OUs below it")
	fl.StringSliceVar(&in.groups, "groups", nil, "scope: these groups and their members (comma-separated or repeated)")
	fl.StringVar(&in.filter, "filter", "", "scope: the users matching this SCIM filter, such as 'department eq \"Sales\"'")
	fl.StringVar(&in.relation, "relation", "", "scope: self, direct_reports, owned_groups or owned_service_accounts")
	fl.StringArrayVar(&in.excludeOUs, "exclude-ou", nil, "carve this OU subtree out of the scope (repeatable)")
	fl.StringArrayVar(&in.excludeGroups, "exclude-group", nil, "carve this group's members out of the scope (repeatable)")
	fl.StringVar(&in.from, "from", "", "valid from this RFC 3339 time (default: now)")
	fl.StringVar(&in.until, "until", "", "valid until this RFC 3339 time (default: no end)")
	fl.BoolVar(&in.canRedelegate, "can-redelegate", false, "let the holder grant a subset of it onward")
	fl.BoolVar(&in.eligible, "eligible", false, "grant nothing until the holder activates it (just in time)")
	fl.StringVar(&in.maxActivation, "max-activation", "", "with --eligible: the longest activation, such as 8h (default 8h)")
	fl.BoolVar(&in.dryRun, "dry-run", false, "grant nothing: say whether you may, and what it would unlock")
	return cmd
}

// printPreview prints a dry run. A grant the caller may not make exits 3, like a denied one.
func (c *client) printPreview(e *env, p map[string]any) error {
	allowed, _ := p["allowed"].(bool)
	if c.output == "json" {
		if err := printJSON(e.stdout, p); err != nil {
			return err
		}
	} else {
		d, _ := p["decision"].(map[string]any)
		a, _ := p["assignment"].(map[string]any)
		if allowed {
			fmt.Fprintf(e.stdout, "dry run: you may grant %v to %v over %v (nothing was granted)\n", a["role"], refName(a["holder"]), a["description"])
		} else {
			fmt.Fprintf(e.stdout, "dry run: you may not grant this: %v (%v)\n", d["message"], d["reason"])
		}
		fmt.Fprintf(e.stdout, "actions: %s\n", cell(p["actions"]))
		unlocks, _ := p["unlocks"].(map[string]any)
		for _, k := range []struct{ key, noun string }{{"users", "users"}, {"groups", "groups"},
			{"service_accounts", "service accounts"}, {"ous", "OUs"}} {
			u, _ := unlocks[k.key].(map[string]any)
			line := fmt.Sprintf("%s: %v", k.noun, u["count"])
			if s := cell(u["sample"]); s != "" {
				line += " (" + strings.ReplaceAll(s, ",", ", ")
				if n, _ := u["count"].(float64); int(n) > len(u["sample"].([]any)) {
					line += ", ..."
				}
				line += ")"
			}
			fmt.Fprintln(e.stdout, line)
		}
	}
	if !allowed {
		return &exitError{code: ExitDenied}
	}
	return nil
}

func (e *env) assignRevokeCommand(f *clientFlags) *cobra.Command {
	var ifMatch string
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an assignment (a tier-0 admin, or whoever granted it)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			if c.ifMatch, err = parseVersion(ifMatch); err != nil {
				return err
			}
			if err := c.call(cmd.Context(), "DELETE", assignmentsPath+"/"+url.PathEscape(args[0]), nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "revoked assignment %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&ifMatch, "if-match", "", "revoke only if the assignment is still at this version")
	return cmd
}

func (e *env) assignActivateCommand(f *clientFlags) *cobra.Command {
	var duration string
	cmd := &cobra.Command{
		Use:     "activate ID --justification WHY",
		Short:   "Activate one of your eligible assignments for a while (at most its max activation)",
		Example: "  deputy assign activate 01a2228b-a91c-7704-8894-0986179d553a --duration 2h --justification \"incident INC-7\"",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			body := map[string]string{"justification": f.justification}
			if duration != "" {
				body["duration"] = duration
			}
			var obj map[string]any
			if err := c.call(cmd.Context(), "POST", assignmentsPath+"/"+url.PathEscape(args[0])+"/activate", nil, body, &obj); err != nil {
				return err
			}
			return c.printAssignment(e, obj)
		},
	}
	cmd.Flags().StringVar(&duration, "duration", "", "how long, such as 2h (default: the assignment's max activation)")
	return cmd
}
