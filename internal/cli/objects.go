package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// kindSpec describes one kind of object for the generic verbs.
type kindSpec struct {
	name    string   // the command: "user"
	noun    string   // in help texts
	path    string   // the collection path: "/api/v1/users"
	key     string   // the field the positional name of create fills: "username"
	strs    []string // string fields settable by --flag on create
	lists   []string // list fields (repeatable flag on create, comma-separated with --set)
	attrs   bool     // has custom attributes (--attr k=v)
	cols    []column // list columns
	canMove bool
}

var kinds = []kindSpec{
	{name: "ou", noun: "OU", path: "/api/v1/ous", key: "name", strs: []string{"parent"},
		cols: []column{{"PATH", "path"}, {"NAME", "name"}, {"PROTECTED", "protected"}, {"VERSION", "version"}}, canMove: true},
	{name: "user", noun: "user", path: "/api/v1/users", key: "username",
		strs: []string{"given_name", "family_name", "display_name", "email", "phone", "employee_id", "department",
			"title", "manager", "location", "employment_type", "status", "ou"}, attrs: true,
		cols: []column{{"USERNAME", "username"}, {"DISPLAY NAME", "display_name"}, {"DEPARTMENT", "department"},
			{"TITLE", "title"}, {"OU", "ou"}, {"STATUS", "status"}}, canMove: true},
	{name: "group", noun: "group", path: "/api/v1/groups", key: "name", strs: []string{"description", "ou"},
		lists: []string{"owners"},
		cols:  []column{{"NAME", "name"}, {"OU", "ou"}, {"OWNERS", "owners"}, {"DESCRIPTION", "description"}}, canMove: true},
	{name: "sa", noun: "service account", path: "/api/v1/service-accounts", key: "name",
		strs: []string{"description", "ou", "status"}, lists: []string{"owners"},
		cols:    []column{{"NAME", "name"}, {"OU", "ou"}, {"OWNERS", "owners"}, {"STATUS", "status"}, {"DESCRIPTION", "description"}},
		canMove: true},
}

// objectPath is the path of one object: names are escaped so an OU path fits one segment.
func (k kindSpec) objectPath(name string) string { return k.path + "/" + url.PathEscape(name) }

// rootOU is how the root OU is written on the command line.
const rootOU = "/"

// pathOf is the API path of the object name names. The root OU is addressed by its ID, which
// is looked up: its path "/" escaped alone ("%2F") reads to the server's router as a trailing
// slash, not as a name.
func (c *client) pathOf(ctx context.Context, k kindSpec, name string) (string, error) {
	if k.name != "ou" || strings.Trim(name, rootOU) != "" {
		return k.objectPath(name), nil
	}
	var p page
	q := url.Values{"filter": {`path eq "/"`}, "limit": {"1"}}
	if err := c.call(ctx, "GET", k.path, q, nil, &p); err != nil {
		return "", err
	}
	if len(p.Items) != 1 {
		return "", fmt.Errorf("the server listed no root OU")
	}
	id, _ := p.Items[0]["id"].(string)
	if id == "" {
		return "", fmt.Errorf("the server listed the root OU without an id")
	}
	return k.objectPath(id), nil
}

// flagName is the command-line form of a field.
func flagName(field string) string { return strings.ReplaceAll(field, "_", "-") }

func (e *env) addClientCommands(root *cobra.Command) {
	for _, k := range kinds {
		root.AddCommand(e.kindCommand(k))
	}
	root.AddCommand(e.roleCommand(), e.assignCommand(), e.authzCommand(), e.auditCommand(), e.requestCommand(), e.policyCommand(), e.hrCommand(), e.reportCommand(), e.mfaCommand())
}

func (e *env) kindCommand(k kindSpec) *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{Use: k.name, Short: "List, read and change " + k.noun + "s"}
	e.addClientFlags(cmd, f, true)
	cmd.AddCommand(e.listCommand(k, f), e.getCommand(k, f), e.createCommand(k, f), e.updateCommand(k, f),
		e.deleteCommand(k, f))
	if k.canMove {
		cmd.AddCommand(e.moveCommand(k, f))
	}
	switch k.name {
	case "user":
		cmd.AddCommand(e.postCommand(k, f, "disable", "Disable a user: sign-in and API tokens stop working"),
			e.postCommand(k, f, "enable", "Enable a disabled user"), e.tokenCommand(k, f))
		cmd.AddCommand(e.credentialCommands(k, f)...)
	case "group":
		cmd.AddCommand(e.membersCommand(k, f), e.addMemberCommand(k, f), e.removeMemberCommand(k, f))
	case "sa":
		cmd.AddCommand(e.keyCommand(k, f))
	}
	return cmd
}

func (e *env) listCommand(k kindSpec, f *clientFlags) *cobra.Command {
	var (
		filter, cursor string
		limit          int
		all            bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List " + k.noun + "s, optionally filtered (SCIM filter syntax)",
		Example: fmt.Sprintf("  deputy %s list --filter 'department eq \"Sales\" and title sw \"Senior\"'\n  deputy %s list --all -o json",
			k.name, k.name),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			items, next, err := c.listAll(cmd.Context(), k.path, url.Values{"filter": {filter}}, cursor, limit, all)
			if err != nil {
				return err
			}
			return c.printList(e, k.cols, items, next)
		},
	}
	cmd.Flags().StringVar(&filter, "filter", "", "SCIM filter, such as 'department eq \"Sales\"'")
	cmd.Flags().StringVar(&cursor, "cursor", "", "continue after a previous page")
	cmd.Flags().IntVar(&limit, "limit", 100, "page size (1-1000)")
	cmd.Flags().BoolVar(&all, "all", false, "fetch every page")
	return cmd
}

func (e *env) getCommand(k kindSpec, f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show one " + k.noun + " (by name or ID)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			path, err := c.pathOf(cmd.Context(), k, args[0])
			if err != nil {
				return err
			}
			var obj map[string]any
			if err := c.call(cmd.Context(), "GET", path, nil, nil, &obj); err != nil {
				return err
			}
			return c.printOne(e, obj)
		},
	}
}

func (e *env) createCommand(k kindSpec, f *clientFlags) *cobra.Command {
	var (
		file      string
		strs      = map[string]*string{}
		lists     = map[string]*[]string{}
		attrs     []string
		protected bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a " + k.noun,
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			body := map[string]any{}
			if file != "" {
				if body, err = readJSONObject(file, e); err != nil {
					return err
				}
			}
			if len(args) == 1 {
				body[k.key] = args[0]
			}
			for field, v := range strs {
				if cmd.Flags().Changed(flagName(field)) {
					body[field] = *v
				}
			}
			for field, v := range lists {
				if cmd.Flags().Changed(flagName(strings.TrimSuffix(field, "s"))) {
					body[field] = *v
				}
			}
			if len(attrs) > 0 {
				m, err := keyValues(attrs)
				if err != nil {
					return err
				}
				body["attributes"] = m
			}
			if protected {
				body["protected"] = true
			}
			if _, ok := body[k.key]; !ok {
				return fmt.Errorf("name the %s: deputy %s create NAME (or give %q in -f)", k.noun, k.name, k.key)
			}
			var obj map[string]any
			if err := c.call(cmd.Context(), "POST", k.path, nil, body, &obj); err != nil {
				return err
			}
			return c.printOne(e, obj)
		},
	}
	for _, field := range k.strs {
		strs[field] = cmd.Flags().String(flagName(field), "", strings.ReplaceAll(field, "_", " "))
	}
	for _, field := range k.lists {
		single := strings.TrimSuffix(field, "s")
		lists[field] = cmd.Flags().StringSlice(flagName(single), nil, single+" (repeat or separate with commas)")
	}
	if k.attrs {
		cmd.Flags().StringArrayVar(&attrs, "attr", nil, "custom attribute KEY=VALUE (repeatable)")
	}
	cmd.Flags().BoolVar(&protected, "protected", false, "mark as protected (only tier-0 admins may change it)")
	cmd.Flags().StringVarP(&file, "file", "f", "", "read the "+k.noun+" as JSON from a file (- for stdin); flags override it")
	return cmd
}

func (e *env) updateCommand(k kindSpec, f *clientFlags) *cobra.Command {
	var (
		sets, unsets []string
		patch        string
		ifMatch      string
	)
	cmd := &cobra.Command{
		Use:     "update NAME",
		Short:   "Change fields of a " + k.noun + " (a JSON merge patch)",
		Example: fmt.Sprintf("  deputy %s update NAME --set title=\"Account Director\" --unset phone --if-match 3", k.name),
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			body, err := buildPatch(k, patch, sets, unsets)
			if err != nil {
				return err
			}
			if c.ifMatch, err = parseVersion(ifMatch); err != nil {
				return err
			}
			path, err := c.pathOf(cmd.Context(), k, args[0])
			if err != nil {
				return err
			}
			var obj map[string]any
			if err := c.call(cmd.Context(), "PATCH", path, nil, body, &obj); err != nil {
				return err
			}
			return c.printOne(e, obj)
		},
	}
	cmd.Flags().StringArrayVar(&sets, "set", nil, "FIELD=VALUE to set (repeatable; attributes.KEY=VALUE for custom attributes)")
	cmd.Flags().StringArrayVar(&unsets, "unset", nil, "FIELD to clear (repeatable)")
	cmd.Flags().StringVar(&patch, "patch", "", "a JSON merge patch, merged under --set and --unset")
	cmd.Flags().StringVar(&ifMatch, "if-match", "", "apply only if the object is still at this version")
	return cmd
}

// buildPatch assembles a merge patch from --patch, --set and --unset.
func buildPatch(k kindSpec, raw string, sets, unsets []string) (map[string]any, error) {
	body := map[string]any{}
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &body); err != nil {
			return nil, fmt.Errorf("--patch: not a JSON object: %w", err)
		}
	}
	put := func(field string, v any) {
		if key, ok := strings.CutPrefix(field, "attributes."); ok {
			m, _ := body["attributes"].(map[string]any)
			if m == nil {
				m = map[string]any{}
			}
			m[key] = v
			body["attributes"] = m
			return
		}
		body[field] = v
	}
	for _, s := range sets {
		field, val, ok := strings.Cut(s, "=")
		if !ok || field == "" {
			return nil, fmt.Errorf("--set %q: want FIELD=VALUE", s)
		}
		switch {
		case field == "protected":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return nil, fmt.Errorf("--set %q: protected is true or false", s)
			}
			put(field, b)
		case slices.Contains(k.lists, field):
			put(field, splitList(val))
		default:
			put(field, val)
		}
	}
	for _, field := range unsets {
		put(field, nil)
	}
	if len(body) == 0 {
		return nil, fmt.Errorf("nothing to change: give --set, --unset or --patch")
	}
	return body, nil
}

func (e *env) deleteCommand(k kindSpec, f *clientFlags) *cobra.Command {
	var ifMatch string
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a " + k.noun,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			if c.ifMatch, err = parseVersion(ifMatch); err != nil {
				return err
			}
			path, err := c.pathOf(cmd.Context(), k, args[0])
			if err != nil {
				return err
			}
			if err := c.call(cmd.Context(), "DELETE", path, nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "deleted %s %s\n", k.noun, args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&ifMatch, "if-match", "", "delete only if the object is still at this version")
	return cmd
}

func (e *env) moveCommand(k kindSpec, f *clientFlags) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "move NAME --to OU",
		Short: "Move a " + k.noun + " to another OU",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			path, err := c.pathOf(cmd.Context(), k, args[0])
			if err != nil {
				return err
			}
			var obj map[string]any
			if err := c.call(cmd.Context(), "POST", path+"/move", nil, map[string]string{"to": to}, &obj); err != nil {
				return err
			}
			return c.printOne(e, obj)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the destination OU (path such as corp/sales, or ID)")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

// postCommand is a verb that POSTs to NAME/verb without a body (disable, enable).
func (e *env) postCommand(k kindSpec, f *clientFlags, verb, short string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			var obj map[string]any
			if err := c.call(cmd.Context(), "POST", k.objectPath(args[0])+"/"+verb, nil, nil, &obj); err != nil {
				return err
			}
			return c.printOne(e, obj)
		},
	}
}

func readJSONObject(file string, e *env) (map[string]any, error) {
	var (
		b   []byte
		err error
	)
	if file == "-" {
		b, err = readAllLimited(e.stdin)
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("-f %s: %w", file, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("-f %s: not a JSON object: %w", file, err)
	}
	return m, nil
}

func keyValues(pairs []string) (map[string]string, error) {
	m := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want KEY=VALUE", p)
		}
		m[k] = v
	}
	return m, nil
}

func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
