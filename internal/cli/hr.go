package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/lifecycle"
)

// maxFeed is the largest feed `hr import` sends (the server's limit).
const maxFeed = 64 << 20

// runTimeout bounds an import or recompute: a large feed applies for minutes.
const runTimeout = time.Hour

// runAnswer is the server's answer to an import or a recompute.
type runAnswer struct {
	Run      lifecycle.Run       `json:"run"`
	Plan     lifecycle.Plan      `json:"plan"`
	Problems []lifecycle.Problem `json:"problems"`
}

// hrCommand is `deputy hr ...`: HR feed imports, recomputation, runs, rules and setup.
func (e *env) hrCommand() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{Use: "hr", Short: "Import HR feeds (joiners, movers, leavers) and manage the birthright rules"}
	e.addClientFlags(cmd, f, false)
	cmd.AddCommand(e.hrImportCommand(f), e.hrRecomputeCommand(f), e.hrRunsCommand(f), e.hrRulesCommand(f), e.hrSetupCommand(f))
	return cmd
}

// runFlags are the options of an import or recompute.
type runFlags struct {
	dryRun, skipInvalid, allowMassChange bool
	mapping                              string
}

func (r *runFlags) query() url.Values {
	q := url.Values{}
	for name, set := range map[string]bool{"dry_run": r.dryRun, "skip_invalid": r.skipInvalid, "allow_mass_change": r.allowMassChange} {
		if set {
			q.Set(name, "true")
		}
	}
	if r.mapping != "" {
		q.Set("mapping", r.mapping)
	}
	return q
}

func (e *env) hrImportCommand(f *clientFlags) *cobra.Command {
	var rf runFlags
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Plan and apply an HR feed (CSV, or JSON when FILE ends in .json; - reads stdin)",
		Long: "Plans the changes that bring the directory to what the feed and the birthright rules say, and\n" +
			"applies them person by person as system:lifecycle (tier-0 admins only). A feed with invalid rows,\n" +
			"or one that disables more than 5% of active users, applies nothing unless --skip-invalid or\n" +
			"--allow-mass-change says so. --dry-run shows the plan and changes nothing.",
		Example: "  deputy hr import hr-2026-11-26.csv --dry-run\n  deputy hr import workday.csv --mapping employee_id=Worker ID,start_date=Hire Date\n" +
			"  deputy hr import feed.json --allow-mass-change",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, contentType, source, err := e.readFeedFile(args[0])
			if err != nil {
				return err
			}
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			q := rf.query()
			if source != "" {
				q.Set("filename", source)
			}
			raw, err := c.post(cmd.Context(), e, "/api/v1/hr/imports", q, contentType, body)
			if err != nil {
				return err
			}
			return c.printRun(e, raw)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&rf.dryRun, "dry-run", false, "show the plan; change nothing")
	fl.BoolVar(&rf.skipInvalid, "skip-invalid", false, "apply the valid rows of a feed that has invalid ones")
	fl.BoolVar(&rf.allowMassChange, "allow-mass-change", false, "apply a feed that disables or deletes more than 5% of active users")
	fl.StringVar(&rf.mapping, "mapping", "", "CSV columns of fields that differ from Deputy's layout: field=header,...")
	return cmd
}

// readFeedFile reads a feed from path ("-": standard input). It is JSON when the path ends in
// .json (or, on stdin, when it starts with "{"), CSV otherwise; source is the file's name.
func (e *env) readFeedFile(path string) (body []byte, contentType, source string, err error) {
	var r io.Reader
	if path == "-" {
		r = e.stdin
	} else {
		fh, err := os.Open(path)
		if err != nil {
			return nil, "", "", err
		}
		defer fh.Close()
		r, source = fh, filepath.Base(path)
	}
	body, err = io.ReadAll(io.LimitReader(r, maxFeed+1))
	if err != nil {
		return nil, "", "", fmt.Errorf("read %s: %w", path, err)
	}
	if len(body) > maxFeed {
		return nil, "", "", fmt.Errorf("%s is larger than %d MiB, the most a server takes", path, maxFeed>>20)
	}
	contentType = "text/csv"
	if strings.EqualFold(filepath.Ext(path), ".json") || path == "-" && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		contentType = "application/json"
	}
	return body, contentType, source, nil
}

// post sends body (nil for none) with contentType and returns the JSON answer. A refused feed
// (422 invalid_feed) prints each bad row on stdout, one a line, before it fails.
func (c *client) post(ctx context.Context, e *env, path string, query url.Values, contentType string, body []byte) ([]byte, error) {
	req, err := c.request(ctx, "POST", path, query, nil)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Type", contentType)
	}
	hc := *c.http
	hc.Timeout = runTimeout
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode == http.StatusUnprocessableEntity {
		var p problem
		if json.Unmarshal(data, &p) == nil && p.Code == "invalid_feed" {
			for _, fe := range p.Errors {
				fmt.Fprintf(e.stdout, "%s: %s\n", fe.Field, fe.Message)
			}
			return nil, &exitError{code: ExitError, msg: fmt.Sprintf("%s (invalid_feed)", p.Detail)}
		}
	}
	if resp.StatusCode >= 400 {
		return nil, responseError(resp.StatusCode, data)
	}
	return data, nil
}

// printRun prints an import's or recompute's answer: the plan, terraform-style, and what was
// applied; -o json prints the answer whole. A run in which someone failed exits 1.
func (c *client) printRun(e *env, raw []byte) error {
	var a runAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	if c.output == "json" {
		if err := printJSON(e.stdout, json.RawMessage(raw)); err != nil {
			return err
		}
	} else {
		printPlan(e.stdout, &a)
	}
	if len(a.Run.Failed) > 0 {
		return &exitError{code: ExitError, msg: fmt.Sprintf("run %s: %d of %d people failed", a.Run.ID, len(a.Run.Failed),
			len(a.Run.Failed)+a.Run.Applied)}
	}
	return nil
}

// kindOrder is the order of the plan's totals.
var kindOrder = []string{lifecycle.KindJoiner, lifecycle.KindRehire, lifecycle.KindMover, lifecycle.KindManagerChange,
	lifecycle.KindUpdate, lifecycle.KindLeaver, lifecycle.KindLeaverManager, lifecycle.KindDelete, lifecycle.KindScheduled,
	lifecycle.KindUnchanged}

// printPlan writes a run's plan: a block per person who changes, then the totals and the outcome.
func printPlan(w io.Writer, a *runAnswer) {
	for _, p := range a.Problems {
		fmt.Fprintf(w, "skipped: %s\n", problemLine(p))
	}
	if len(a.Problems) > 0 {
		fmt.Fprintln(w)
	}
	for _, pp := range a.Plan.People {
		if pp.Kind == lifecycle.KindUnchanged && len(pp.Ops) == 0 {
			continue
		}
		fmt.Fprintf(w, "%s %s %s (%s)\n", kindSymbol(pp.Kind), pp.EmployeeID, pp.Username, pp.Kind)
		for _, ch := range pp.Changes {
			fmt.Fprintf(w, "    %s\n", ch)
		}
		for _, o := range pp.Ops {
			fmt.Fprintf(w, "  %s %s %s  # %s\n", opSymbol(string(o.Op.Action)), o.Op.Action, opTarget(&o.Op), o.Why)
		}
		for _, n := range pp.Notes {
			fmt.Fprintf(w, "    note: %s\n", n)
		}
		fmt.Fprintln(w)
	}
	var totals []string
	seen := map[string]bool{}
	for _, k := range kindOrder {
		seen[k] = true
		if n := a.Plan.Totals[k]; n > 0 {
			totals = append(totals, fmt.Sprintf("%d %s", n, k))
		}
	}
	var other []string
	for k, n := range a.Plan.Totals {
		if !seen[k] && n > 0 {
			other = append(other, fmt.Sprintf("%d %s", n, k))
		}
	}
	slices.Sort(other)
	totals = append(totals, other...)
	if len(totals) == 0 {
		totals = []string{"no people"}
	}
	fmt.Fprintf(w, "Plan: %s; %d ops\n", strings.Join(totals, ", "), a.Plan.Ops)
	if a.Plan.Missing > 0 {
		noun := "accounts"
		if a.Plan.Missing == 1 {
			noun = "account"
		}
		fmt.Fprintf(w, "Not in the feed: %d %s with an employee ID (left alone)\n", a.Plan.Missing, noun)
	}
	r := &a.Run
	if r.DryRun {
		fmt.Fprintf(w, "Dry run: run %s: nothing applied\n", r.ID)
		if r.Stopped != "" {
			fmt.Fprintf(w, "Applying it would stop: %s\n", r.Stopped)
		}
		return
	}
	fmt.Fprintf(w, "Applied: run %s: %d people applied, %d failed\n", r.ID, r.Applied, len(r.Failed))
	for _, f := range r.Failed {
		fmt.Fprintf(w, "  failed: %s %s: %s: %s\n", f.EmployeeID, f.Username, f.Reason, f.Message)
	}
}

// problemLine writes a feed problem as `line 22: employee_id: is required`.
func problemLine(p lifecycle.Problem) string {
	s := "line " + strconv.Itoa(p.Line)
	if p.Field != "" {
		s += ": " + p.Field
	}
	return s + ": " + p.Message
}

// kindSymbol marks a person's block: + arrives, ~ changes, - leaves.
func kindSymbol(kind string) string {
	switch {
	case kind == lifecycle.KindJoiner || kind == lifecycle.KindRehire:
		return "+"
	case kind == lifecycle.KindLeaver || kind == lifecycle.KindLeaverManager || kind == lifecycle.KindDelete:
		return "-"
	case kind == lifecycle.KindScheduled:
		return "."
	}
	return "~"
}

// opSymbol marks an op: + grants or creates, - removes, ~ changes.
func opSymbol(action string) string {
	_, verb, _ := strings.Cut(action, ".")
	switch verb {
	case "create", "add_member", "assign", "enable":
		return "+"
	case "delete", "remove_member", "revoke", "revoke_tokens", "disable":
		return "-"
	}
	return "~"
}

// opTarget names what an op acts on: its target, or the object it creates.
func opTarget(op *change.Op) string {
	name := op.Target.Name
	if name == "" {
		name = op.Target.ID
	}
	switch {
	case name != "":
	case op.User != nil:
		name = op.User.Username
	case op.Group != nil:
		name = op.Group.Name
	case op.OU != nil:
		name = strings.TrimSuffix(op.OU.Parent, "/") + "/" + op.OU.Name
	case op.Role != nil:
		name = op.Role.Name
	case op.Assignment != nil:
		h := op.Assignment.Holder
		name = op.Assignment.Role + " to " + firstNonEmpty(h.User, h.Group, "system:"+h.System)
	}
	if op.To != "" {
		name += " -> " + op.To
	}
	return name
}

func (e *env) hrRecomputeCommand(f *clientFlags) *cobra.Command {
	var rf runFlags
	cmd := &cobra.Command{
		Use:   "recompute",
		Short: "Apply the rules to the directory as it is: rule changes, passed end dates, retention deletes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			raw, err := c.post(cmd.Context(), e, "/api/v1/hr/recompute", rf.query(), "", nil)
			if err != nil {
				return err
			}
			return c.printRun(e, raw)
		},
	}
	cmd.Flags().BoolVar(&rf.dryRun, "dry-run", false, "show the plan; change nothing")
	cmd.Flags().BoolVar(&rf.allowMassChange, "allow-mass-change", false, "apply a plan that disables or deletes more than 5% of active users")
	return cmd
}

var runCols = []column{{"ID", "id"}, {"STARTED", "started"}, {"SOURCE", "source"}, {"STATE", "state"}, {"DRY RUN", "dry_run"},
	{"ROWS", "rows"}, {"INVALID", "invalid"}, {"OPS", "ops"}, {"APPLIED", "applied"}, {"FAILED", "failed"}, {"STOPPED", "stopped"}}

func (e *env) hrRunsCommand(f *clientFlags) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List the latest HR feed runs, newest first (tier-0 admins and auditors)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, p, err := e.fetchPage(cmd, f, "GET", "/api/v1/hr/runs", url.Values{"limit": {strconv.Itoa(limit)}})
			if err != nil {
				return err
			}
			if c.output != "json" {
				for _, it := range p.Items {
					failed, _ := it["failed"].([]any)
					it["failed"] = len(failed)
				}
			}
			return c.printList(e, runCols, p.Items, "")
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "how many runs (1-1000)")
	return cmd
}

func (e *env) hrRulesCommand(f *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "rules", Short: "Read or replace the birthright rules"}
	get := &cobra.Command{
		Use:   "get",
		Short: "Print the rules in force (JSON, defaults filled in)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			var rs json.RawMessage
			if err := c.call(cmd.Context(), "GET", "/api/v1/lifecycle/rules", nil, nil, &rs); err != nil {
				return err
			}
			return printJSON(e.stdout, rs)
		},
	}
	set := &cobra.Command{
		Use:   "set FILE",
		Short: "Replace the rules with a YAML or JSON file (- reads stdin; tier-0 admins only)",
		Long: "The file is checked here first (unknown fields, filters, names), then on the server. The new\n" +
			"rules apply to everyone at the next import or recompute; run 'deputy hr setup' if they name\n" +
			"OUs, groups or roles that do not exist yet.",
		Example: "  deputy hr rules set rules.yaml",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, err := e.readRulesFile(args[0])
			if err != nil {
				return err
			}
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			var rs lifecycle.RuleSet
			if err := c.call(cmd.Context(), "PUT", "/api/v1/lifecycle/rules", nil, doc, &rs); err != nil {
				return err
			}
			if c.output == "json" {
				return printJSON(e.stdout, rs)
			}
			fmt.Fprintf(e.stdout, "rules set: %d rules (%s); they apply at the next import or recompute\n",
				len(rs.Rules), strings.Join(rs.Names(), ", "))
			return nil
		},
	}
	cmd.AddCommand(get, set)
	return cmd
}

// readRulesFile reads a rule set from path ("-": standard input), checks it as the server will,
// and returns it as JSON.
func (e *env) readRulesFile(path string) (json.RawMessage, error) {
	var (
		b   []byte
		err error
	)
	if path == "-" {
		b, err = readAllLimited(e.stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := lifecycle.ParseRules(b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	doc, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return doc, nil
}

var setupCols = []column{{"ACTION", "action"}, {"TARGET", "target"}, {"EVENT", "event"}}

func (e *env) hrSetupCommand(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "setup",
		Short: "Create what the rules need: their OUs and groups, the lifecycle role and system:lifecycle's assignments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, p, err := e.fetchPage(cmd, f, "POST", "/api/v1/hr/setup", nil)
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.printList(e, setupCols, p.Items, "")
			}
			if len(p.Items) == 0 {
				fmt.Fprintln(e.stdout, "nothing to set up: everything the rules need exists")
				return nil
			}
			for _, it := range p.Items {
				if t, ok := it["target"].(map[string]any); ok {
					it["target"] = firstNonEmpty(fmt.Sprint(t["name"]), fmt.Sprint(t["id"]))
				}
			}
			return c.printList(e, setupCols, p.Items, "")
		},
	}
}

var residualCols = []column{{"USERNAME", "username"}, {"EMPLOYEE ID", "employee_id"}, {"STATUS", "status"}, {"HOLDS", "holds"}}

// reportCommand is `deputy report ...`: reports over the directory.
func (e *env) reportCommand() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{Use: "report", Short: "Reports: residual access of departed identities"}
	e.addClientFlags(cmd, f, false)
	var failIfAny bool
	residual := &cobra.Command{
		Use:   "residual-access",
		Short: "List disabled or departed identities that still hold something (tier-0 admins and auditors)",
		Long: "Lists every disabled user, or one whose HR record says they left, who still holds a membership,\n" +
			"an assignment, an owned group or service account, or a live API token. After every HR run it\n" +
			"should be empty; --fail-if-any exits 1 when it is not, for a scheduled check.",
		Example: "  deputy report residual-access --fail-if-any",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, p, err := e.fetchPage(cmd, f, "GET", "/api/v1/reports/residual-access", nil)
			if err != nil {
				return err
			}
			switch {
			case c.output == "json":
				if err := c.printList(e, residualCols, p.Items, ""); err != nil {
					return err
				}
			case len(p.Items) == 0:
				fmt.Fprintln(e.stdout, "no residual access")
			default:
				for _, it := range p.Items {
					if holds, ok := it["holds"].([]any); ok {
						parts := make([]string, len(holds))
						for i, h := range holds {
							parts[i] = fmt.Sprint(h)
						}
						it["holds"] = strings.Join(parts, "; ")
					}
				}
				if err := c.printList(e, residualCols, p.Items, ""); err != nil {
					return err
				}
			}
			if failIfAny && len(p.Items) > 0 {
				return &exitError{code: ExitError}
			}
			return nil
		},
	}
	residual.Flags().BoolVar(&failIfAny, "fail-if-any", false, "exit 1 when the report is not empty")
	cmd.AddCommand(residual)
	cmd.AddCommand(e.keysReportCommand(f), e.orphanedReportCommand(f))
	return cmd
}
