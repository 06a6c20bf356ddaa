package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// questionFlags are the flags that name what an authz question is about.
type questionFlags struct {
	action, target, typ, attribute, member string
}

func (q *questionFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&q.action, "action", "", "the action, such as user.update or group.add_member")
	fl.StringVar(&q.target, "target", "", "the object (name or ID; for a create action, the OU it would be created in)")
	fl.StringVar(&q.typ, "type", "", "the target's type when the action does not say it: user, group, sa or ou")
	fl.StringVar(&q.attribute, "attribute", "", "for user.update: the attribute to change, such as phone")
	fl.StringVar(&q.member, "member", "", "for group.add_member: the member to add")
	_ = cmd.MarkFlagRequired("action")
}

func (q *questionFlags) values() url.Values {
	return url.Values{"action": {q.action}, "target": {q.target}, "type": {q.typ}, "attribute": {q.attribute}, "member": {q.member}}
}

// nonEmpty drops the empty parameters of v.
func nonEmpty(v url.Values) url.Values {
	out := url.Values{}
	for k, vals := range v {
		if len(vals) > 0 && vals[0] != "" {
			out[k] = vals
		}
	}
	return out
}

func (e *env) authzCommand() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{Use: "authz", Short: "Ask the delegation engine: may I, who may, what may I, where could rights escalate"}
	e.addClientFlags(cmd, f, false)
	cmd.AddCommand(e.checkCommand(f), e.whoCanCommand(f), e.canWhatCommand(f), e.escalationsCommand(f))
	return cmd
}

// describeAuthority renders what allowed a decision.
func describeAuthority(v any) string {
	m, _ := v.(map[string]any)
	var parts []string
	if ids := cell(m["assignments"]); ids != "" {
		parts = append(parts, "assignment "+strings.ReplaceAll(ids, ",", ", "))
	}
	if rule, _ := m["rule"].(string); rule != "" {
		parts = append(parts, "rule "+rule)
	}
	return strings.Join(parts, "; ")
}

func (e *env) checkCommand(f *clientFlags) *cobra.Command {
	var (
		q     questionFlags
		actor string
	)
	cmd := &cobra.Command{
		Use:   "check --action ACTION --target OBJECT",
		Short: "May you (or --actor) perform an action on an object? Exits 0 when allowed, 3 when not",
		Example: "  deputy authz check --action user.update --attribute phone --target ada.lovelace\n" +
			"  deputy authz check --action group.add_member --target crm-users --member bob --actor helen\n" +
			"  deputy authz check --action user.create --target corp/sales",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			v := q.values()
			v.Set("actor", actor)
			var d map[string]any
			if err := c.call(cmd.Context(), "GET", "/api/v1/authz/check", nonEmpty(v), nil, &d); err != nil {
				return err
			}
			allowed, _ := d["allow"].(bool)
			if c.output == "json" {
				if err := printJSON(e.stdout, d); err != nil {
					return err
				}
			} else {
				what := fmt.Sprintf("%v %v", refName(d["actor"]), d["action"])
				if q.attribute != "" {
					what += " of " + q.attribute
				}
				if t, ok := d["target"].(map[string]any); ok {
					what += fmt.Sprintf(" on %v %v", t["type"], t["name"])
				} else if ou, ok := d["ou"].(map[string]any); ok {
					what += fmt.Sprintf(" in OU %v", ou["name"])
				}
				if allowed {
					fmt.Fprintf(e.stdout, "allowed: %s (%s)\n", what, describeAuthority(d["authority"]))
				} else {
					fmt.Fprintf(e.stdout, "denied: %s: %v (%v)\n", what, d["message"], d["reason"])
				}
			}
			if !allowed {
				return &exitError{code: ExitDenied}
			}
			return nil
		},
	}
	q.add(cmd)
	cmd.Flags().StringVar(&actor, "actor", "", "ask about this user instead of yourself (needs audit.read)")
	return cmd
}

var whoCanCols = []column{{"USER", "actor"}, {"AUTHORITY", "authority"}}

func (e *env) whoCanCommand(f *clientFlags) *cobra.Command {
	var (
		q      questionFlags
		cursor string
		limit  int
		all    bool
	)
	cmd := &cobra.Command{
		Use:     "who-can --action ACTION --target OBJECT",
		Short:   "Every user who may perform an action on an object, with the assignment behind each (needs audit.read)",
		Example: "  deputy authz who-can --action user.reset_password --target ada.lovelace",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			items, next, err := c.listAll(cmd.Context(), "/api/v1/authz/who-can", q.values(), cursor, limit, all)
			if err != nil {
				return err
			}
			if c.output != "json" {
				for _, it := range items {
					it["actor"], it["authority"] = refName(it["actor"]), describeAuthority(it["authority"])
				}
			}
			return c.printList(e, whoCanCols, items, next)
		},
	}
	q.add(cmd)
	cmd.Flags().StringVar(&cursor, "cursor", "", "continue after a previous page")
	cmd.Flags().IntVar(&limit, "limit", 100, "page size (1-1000)")
	cmd.Flags().BoolVar(&all, "all", false, "fetch every page")
	return cmd
}

var canWhatCols = []column{{"TYPE", "type"}, {"NAME", "name"}, {"ACTIONS", "actions"}}

// flattenCanWhat rewrites a can-what item for a table.
func flattenCanWhat(it map[string]any) map[string]any {
	obj, _ := it["object"].(map[string]any)
	return map[string]any{"type": obj["type"], "name": obj["name"], "actions": it["actions"]}
}

func (e *env) canWhatCommand(f *clientFlags) *cobra.Command {
	var (
		actor, typ, cursor string
		limit              int
		all, stream        bool
	)
	cmd := &cobra.Command{
		Use:   "can-what",
		Short: "Every object of a type that you (or --actor) may act on, with the actions",
		Example: "  deputy authz can-what\n  deputy authz can-what --actor helen --type group\n" +
			"  deputy authz can-what --stream -o json > reach.ndjson",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			if all && stream {
				return fmt.Errorf("give --all or --stream, not both")
			}
			if stream && cursor != "" {
				return fmt.Errorf("--cursor is for pages: --stream returns everything")
			}
			v := url.Values{"actor": {actor}, "type": {typ}}
			if stream {
				return c.streamCanWhat(cmd.Context(), e, nonEmpty(v))
			}
			items, next, err := c.listAll(cmd.Context(), "/api/v1/authz/can-what", v, cursor, limit, all)
			if err != nil {
				return err
			}
			if c.output != "json" {
				for i, it := range items {
					items[i] = flattenCanWhat(it)
				}
			}
			return c.printList(e, canWhatCols, items, next)
		},
	}
	cmd.Flags().StringVar(&actor, "actor", "", "ask about this user instead of yourself (needs audit.read)")
	cmd.Flags().StringVar(&typ, "type", "", "user (default), group, sa or ou")
	cmd.Flags().StringVar(&cursor, "cursor", "", "continue after a previous page")
	cmd.Flags().IntVar(&limit, "limit", 100, "page size (1-1000)")
	cmd.Flags().BoolVar(&all, "all", false, "fetch every page")
	cmd.Flags().BoolVar(&stream, "stream", false, "fetch everything in one streamed answer (with -o json: one object per line)")
	return cmd
}

// streamCanWhat reads can-what as newline-delimited JSON and prints each object as it arrives:
// with -o json the lines as they come, else table rows.
func (c *client) streamCanWhat(ctx context.Context, e *env, v url.Values) error {
	v.Set("stream", "true")
	body, err := c.stream(ctx, "/api/v1/authz/can-what", v)
	if err != nil {
		return err
	}
	defer body.Close()
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if c.output != "json" {
		fmt.Fprintln(tw, "TYPE\tNAME\tACTIONS")
	}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if c.output == "json" {
			fmt.Fprintln(e.stdout, sc.Text())
			continue
		}
		var it map[string]any
		if err := json.Unmarshal(sc.Bytes(), &it); err != nil {
			return fmt.Errorf("decode streamed line %d: %w", n, err)
		}
		row := flattenCanWhat(it)
		fmt.Fprintf(tw, "%s\t%s\t%s\n", cell(row["type"]), cell(row["name"]), cell(row["actions"]))
		if n%1000 == 0 {
			_ = tw.Flush()
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read the stream: %w", err)
	}
	return tw.Flush()
}

var escalationCols = []column{{"VIA", "via"}, {"SETS", "attribute"}, {"GAINS", "gains"}}

// describeAssignment renders an assignment in one phrase: who holds which role over what.
func describeAssignment(v any) string {
	a, _ := v.(map[string]any)
	return fmt.Sprintf("%v: %v over %v [%v]", refName(a["holder"]), a["role"], a["description"], a["id"])
}

func (e *env) escalationsCommand(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "escalations",
		Short: "Paths by which someone could hand rights to someone else without granting them (needs audit.read)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, p, err := e.fetchPage(cmd, f, "GET", "/api/v1/authz/escalations", nil)
			if err != nil {
				return err
			}
			if c.output != "json" {
				if len(p.Items) == 0 {
					fmt.Fprintln(e.stdout, "no escalation paths")
					return nil
				}
				for _, it := range p.Items {
					it["via"], it["gains"] = describeAssignment(it["via"]), describeAssignment(it["gains"])
				}
			}
			return c.printList(e, escalationCols, p.Items, "")
		},
	}
}
