package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"
)

// page is a list response.
type page struct {
	Items      []map[string]any `json:"items"`
	NextCursor string           `json:"next_cursor"`
}

// listAll fetches one page of the list at path, filtered by query, or every page with all.
func (c *client) listAll(ctx context.Context, path string, query url.Values, cursor string, limit int, all bool) ([]map[string]any, string, error) {
	var items []map[string]any
	for {
		q := url.Values{}
		for k, v := range query {
			if len(v) > 0 && v[0] != "" {
				q[k] = v
			}
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		q.Set("limit", strconv.Itoa(limit))
		var p page
		if err := c.call(ctx, "GET", path, q, nil, &p); err != nil {
			return nil, "", err
		}
		items = append(items, p.Items...)
		cursor = p.NextCursor
		if !all || cursor == "" {
			return items, cursor, nil
		}
	}
}

// printList prints items as a table (noting a further page) or as JSON.
func (c *client) printList(e *env, cols []column, items []map[string]any, next string) error {
	if c.output == "json" {
		if items == nil {
			items = []map[string]any{}
		}
		return printJSON(e.stdout, page{Items: items, NextCursor: next})
	}
	if err := printTable(e.stdout, cols, items); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(e.stderr, "(more: --cursor %s, or --all)\n", next)
	}
	return nil
}

// printOne prints one object.
func (c *client) printOne(e *env, obj map[string]any) error {
	if c.output == "json" {
		return printJSON(e.stdout, obj)
	}
	return printObject(e.stdout, obj)
}

func readAllLimited(r io.Reader) ([]byte, error) { return io.ReadAll(io.LimitReader(r, 1<<20)) }

func (e *env) tokenCommand(k kindSpec, f *clientFlags) *cobra.Command {
	var (
		name string
		days int
	)
	cmd := &cobra.Command{
		Use:   "token NAME",
		Short: "Issue a personal API token for a user (your own, or anyone's as a tier-0 admin); shown once",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			body := map[string]any{"name": name}
			if days > 0 {
				body["expires_in_days"] = days
			}
			var obj map[string]any
			if err := c.call(cmd.Context(), "POST", k.objectPath(args[0])+"/tokens", nil, body, &obj); err != nil {
				return err
			}
			if c.output == "json" {
				return printJSON(e.stdout, obj)
			}
			fmt.Fprintf(e.stdout, "API token %s for %s, expires %s (shown once):\n%s\n", obj["id"], obj["user"], obj["expires"], obj["token"])
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "what the token is for")
	cmd.Flags().IntVar(&days, "days", 0, "lifetime in days (default 90, at most 366)")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

var memberCols = []column{{"TYPE", "type"}, {"NAME", "name"}, {"SOURCE", "source"}, {"ADDED BY", "added_by"}, {"ADDED", "added_at"}}

func (e *env) membersCommand(k kindSpec, f *clientFlags) *cobra.Command {
	var (
		filter, cursor string
		limit          int
		all            bool
	)
	cmd := &cobra.Command{
		Use:   "members GROUP",
		Short: "List the direct members of a group",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			items, next, err := c.listAll(cmd.Context(), k.objectPath(args[0])+"/members", url.Values{"filter": {filter}},
				cursor, limit, all)
			if err != nil {
				return err
			}
			return c.printList(e, memberCols, items, next)
		},
	}
	cmd.Flags().StringVar(&filter, "filter", "", "SCIM filter on type, name, id or source")
	cmd.Flags().StringVar(&cursor, "cursor", "", "continue after a previous page")
	cmd.Flags().IntVar(&limit, "limit", 1000, "page size (1-1000)")
	cmd.Flags().BoolVar(&all, "all", false, "fetch every page")
	return cmd
}

func (e *env) addMemberCommand(k kindSpec, f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "add-member GROUP MEMBER",
		Short:   "Add a user, service account or group to a group",
		Example: "  deputy group add-member crm-users ada.lovelace\n  deputy group add-member all-staff group:sales-all",
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			var obj map[string]any
			if err := c.call(cmd.Context(), "POST", k.objectPath(args[0])+"/members", nil, map[string]string{"member": args[1]}, &obj); err != nil {
				return err
			}
			if c.output == "json" {
				return printJSON(e.stdout, obj)
			}
			fmt.Fprintf(e.stdout, "added %s %s to %s\n", obj["type"], obj["name"], args[0])
			return nil
		},
	}
}

func (e *env) removeMemberCommand(k kindSpec, f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "remove-member GROUP MEMBER",
		Short: "Remove a direct member from a group",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			if err := c.call(cmd.Context(), "DELETE", k.objectPath(args[0])+"/members/"+url.PathEscape(args[1]), nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "removed %s from %s\n", args[1], args[0])
			return nil
		},
	}
}

var eventCols = []column{{"INDEX", "index"}, {"TIME", "time"}, {"ACTOR", "actor"}, {"ACTION", "action"},
	{"TARGET", "target"}, {"OUTCOME", "outcome"}, {"REASON", "reason"}}

func (e *env) auditCommand() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{Use: "audit", Short: "Read, export and verify the audit trail"}
	e.addClientFlags(cmd, f, true)
	var (
		q      = map[string]*string{}
		limit  int
		cursor string
		all    bool
	)
	events := &cobra.Command{
		Use:     "events",
		Short:   "List audit events, newest first",
		Example: "  deputy audit events --actor admin --outcome denied --since 2026-11-01T00:00:00Z",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			v := url.Values{}
			for name, val := range q {
				v.Set(name, *val)
			}
			items, next, err := c.listAll(cmd.Context(), "/api/v1/audit/events", v, cursor, limit, all)
			if err != nil {
				return err
			}
			if c.output != "json" {
				// The table shows who and what by name; -o json keeps the events as the API
				// wrote them, IDs included.
				for _, it := range items {
					for _, key := range []string{"actor", "target"} {
						if m, ok := it[key].(map[string]any); ok {
							it[key] = m["name"]
						}
					}
				}
			}
			return c.printList(e, eventCols, items, next)
		},
	}
	for _, fl := range []struct{ name, usage string }{
		{"actor", "only events by this actor (ID or name, any case)"},
		{"target", "only events about this object (ID or name, any case)"},
		{"action", "only events of this action, such as user.update"},
		{"outcome", "only events with this outcome: applied, denied, failed or pending"},
		{"transport", "only events that came through this transport: api, cli, ..."},
		{"authority", "only events this assignment (ID) or approval request permitted"},
		{"since", "only events at or after this RFC 3339 time"},
		{"until", "only events before this RFC 3339 time"},
	} {
		q[fl.name] = events.Flags().String(fl.name, "", fl.usage)
	}
	events.Flags().IntVar(&limit, "limit", 50, "how many events (1-1000)")
	events.Flags().StringVar(&cursor, "cursor", "", "continue after a previous page")
	events.Flags().BoolVar(&all, "all", false, "fetch every page")
	cmd.AddCommand(events, e.auditCheckpointCommand(f), e.auditExportCommand(f), e.auditProveCommand(f),
		e.auditVerifyProofCommand(), e.auditVerifyCommand(), e.auditRevertCommand(f), e.auditTailCommand(f))
	return cmd
}
