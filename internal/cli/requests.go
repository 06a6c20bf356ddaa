package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

var requestCols = []column{{"ID", "id"}, {"STATE", "state"}, {"ACTION", "action"}, {"TARGET", "target"},
	{"REQUESTER", "requester"}, {"STAGE", "stage"}, {"EXPIRES", "expires"}}

// requestCommand is `deputy request ...`: the approval inbox and the verdicts.
func (e *env) requestCommand() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{Use: "request", Short: "List approval requests and approve, reject, cancel or review them"}
	e.addClientFlags(cmd, f, false)
	var (
		view, state, cursor string
		limit               int
		all                 bool
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List requests waiting for you (default), yours (--view mine), or all you may see (--view all)",
		Example: "  deputy request list\n  deputy request list --view mine --state open\n" +
			"  deputy request list --view all --state unreviewed   # break-glass changes to review",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			q := url.Values{"view": {view}}
			if state != "" {
				q.Set("state", state)
			}
			items, next, err := c.listAll(cmd.Context(), "/api/v1/requests", q, cursor, limit, all)
			if err != nil {
				return err
			}
			for _, it := range items {
				flattenRequest(it)
			}
			return c.printList(e, requestCols, items, next)
		},
	}
	list.Flags().StringVar(&view, "view", "waiting", "waiting, mine or all")
	list.Flags().StringVar(&state, "state", "", "only requests in this state (open, applied, rejected, cancelled, expired, failed, unreviewed, reviewed)")
	list.Flags().StringVar(&cursor, "cursor", "", "continue after this request ID")
	list.Flags().IntVar(&limit, "limit", 50, "requests per page")
	list.Flags().BoolVar(&all, "all", false, "read every page")
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a request: the change, its stages, who may decide, and what was decided",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, obj, err := e.fetchOne(cmd, f, "/api/v1/requests/"+url.PathEscape(args[0]))
			if err != nil {
				return err
			}
			return c.printOne(e, obj)
		},
	}
	cmd.AddCommand(list, show)
	for _, v := range []struct{ verb, short string }{
		{"approve", "Approve a request waiting for you (the last approval applies the change)"},
		{"reject", "Reject a request waiting for you (a --comment saying why is required)"},
		{"cancel", "Withdraw a request you made"},
		{"review", "Mark a break-glass change as reviewed (tier-0 admins other than the one who made it)"},
	} {
		cmd.AddCommand(e.verdictCommand(f, v.verb, v.short))
	}
	return cmd
}

func (e *env) verdictCommand(f *clientFlags, verb, short string) *cobra.Command {
	var comment string
	cmd := &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			var obj map[string]any
			body := map[string]string{"comment": comment}
			if err := c.call(cmd.Context(), "POST", "/api/v1/requests/"+url.PathEscape(args[0])+"/"+verb, nil, body, &obj); err != nil {
				return err
			}
			if c.output == "json" {
				return printJSON(e.stdout, obj)
			}
			fmt.Fprintf(e.stdout, "request %s is %s", args[0], obj["state"])
			if msg, _ := obj["message"].(string); msg != "" && obj["state"] == "failed" {
				fmt.Fprintf(e.stdout, ": %s", msg)
			}
			fmt.Fprintln(e.stdout)
			return nil
		},
	}
	cmd.Flags().StringVar(&comment, "comment", "", "a comment recorded with your decision")
	return cmd
}

// flattenRequest turns a request's nested fields into the columns of the list.
func flattenRequest(it map[string]any) {
	if t, ok := it["target"].(map[string]any); ok {
		it["target"] = firstNonEmpty(fmt.Sprint(t["name"]), fmt.Sprint(t["id"]))
	}
	if r, ok := it["requester"].(map[string]any); ok {
		it["requester"] = r["name"]
	}
	if st, ok := it["stages"].([]any); ok {
		n, _ := it["stage"].(float64)
		it["stage"] = fmt.Sprintf("%d/%d", min(int(n)+1, len(st)), len(st))
	}
}

var policyCols = []column{{"NAME", "name"}, {"ACTIONS", "actions"}, {"STAGES", "stages"}, {"EXPIRY", "expiry"}, {"DISABLED", "disabled"}}

// policyCommand is `deputy policy ...`: the approval policies.
func (e *env) policyCommand() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{Use: "policy", Short: "List and change approval policies (who must approve which changes)"}
	e.addClientFlags(cmd, f, false)
	list := &cobra.Command{
		Use:   "list",
		Short: "List the approval policies in force, in order",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, p, err := e.fetchPage(cmd, f, "GET", "/api/v1/approval-policies", nil)
			if err != nil {
				return err
			}
			for _, it := range p.Items {
				if as, ok := it["actions"].([]any); ok && len(as) > 3 {
					it["actions"] = fmt.Sprintf("%d actions", len(as))
				}
				if st, ok := it["stages"].([]any); ok {
					it["stages"] = len(st)
				}
			}
			return c.printList(e, policyCols, p.Items, "")
		},
	}
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a policy",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, obj, err := e.fetchOne(cmd, f, "/api/v1/approval-policies/"+url.PathEscape(args[0]))
			if err != nil {
				return err
			}
			return printJSON(e.stdout, obj)
		},
	}
	var file string
	create := &cobra.Command{
		Use:     "create -f FILE",
		Short:   "Create a policy from a JSON file (the API's policy document)",
		Example: "  deputy policy create -f finance-moves.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := readJSONFile(file)
			if err != nil {
				return err
			}
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			var obj map[string]any
			if err := c.call(cmd.Context(), "POST", "/api/v1/approval-policies", nil, body, &obj); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "created policy %s (%s)\n", obj["name"], obj["id"])
			return nil
		},
	}
	create.Flags().StringVarP(&file, "file", "f", "", "JSON file with the policy")
	var (
		patchFile string
		disable   bool
		enable    bool
	)
	update := &cobra.Command{
		Use:     "update NAME (-f PATCH.json | --disable | --enable)",
		Short:   "Change a policy: a JSON merge patch from a file, or switch it off or on",
		Example: "  deputy policy update user-deletion --disable\n  deputy policy update user-deletion -f stages.json",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var body any
			switch {
			case patchFile != "" && !disable && !enable:
				b, err := readJSONFile(patchFile)
				if err != nil {
					return err
				}
				body = b
			case patchFile == "" && disable != enable:
				body = map[string]bool{"disabled": disable}
			default:
				return fmt.Errorf("give exactly one of -f, --disable and --enable")
			}
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			var obj map[string]any
			if err := c.call(cmd.Context(), "PATCH", "/api/v1/approval-policies/"+url.PathEscape(args[0]), nil, body, &obj); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "updated policy %s (version %v)\n", obj["name"], obj["version"])
			return nil
		},
	}
	update.Flags().StringVarP(&patchFile, "file", "f", "", "JSON merge patch of the policy")
	update.Flags().BoolVar(&disable, "disable", false, "switch the policy off")
	update.Flags().BoolVar(&enable, "enable", false, "switch the policy on")
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a policy (open requests it gated keep their stages)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			if err := c.call(cmd.Context(), "DELETE", "/api/v1/approval-policies/"+url.PathEscape(args[0]), nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "deleted policy %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(list, show, create, update, del)
	return cmd
}

// readJSONFile reads a JSON object from path ("-" is standard input is not offered: a file
// keeps the change reviewable).
func readJSONFile(path string) (map[string]any, error) {
	if strings.TrimSpace(path) == "" {
		return nil, fmt.Errorf("-f FILE is required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// parkedMessage renders a 202 answer: which request holds the change and who must decide.
func parkedMessage(data []byte) string {
	var r struct {
		ID         string   `json:"id"`
		Policies   []string `json:"policies"`
		WaitingFor []string `json:"waiting_for"`
		Stages     []any    `json:"stages"`
	}
	if json.Unmarshal(data, &r) != nil || r.ID == "" {
		return "sent for approval"
	}
	return fmt.Sprintf("sent for approval: request %s (policy %s, %d stage(s), %d approver(s) can decide now); follow it with 'deputy request show %s'",
		r.ID, strings.Join(r.Policies, ", "), len(r.Stages), len(r.WaitingFor), r.ID)
}
