package cli

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"
)

var (
	keyCols       = []column{{"ID", "id"}, {"NAME", "name"}, {"CREATED", "created"}, {"EXPIRES", "expires"}, {"LAST USED", "last_used"}, {"REVOKED", "revoked"}, {"ACTIVE", "active"}}
	keyReportCols = []column{{"SERVICE ACCOUNT", "service_account"}, {"ID", "id"}, {"NAME", "name"}, {"CREATED", "created"}, {"EXPIRES", "expires"}, {"LAST USED", "last_used"}}
	orphanedCols  = []column{{"NAME", "name"}, {"OU", "ou"}, {"OWNERS", "owners"}, {"STATUS", "status"}, {"UPDATED", "updated"}}
)

// keyCommand is `deputy sa key ...`: the API keys of a service account.
func (e *env) keyCommand(k kindSpec, f *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Issue, list, rotate and revoke the API keys of a service account"}
	cmd.AddCommand(e.keyIssueCommand(k, f, false), e.keyIssueCommand(k, f, true), e.keyListCommand(k, f),
		e.keyRevokeCommand(k, f))
	return cmd
}

// keyIssueCommand is `deputy sa key issue SA` or, with rotate, `deputy sa key rotate SA KEY`.
func (e *env) keyIssueCommand(k kindSpec, f *clientFlags, rotate bool) *cobra.Command {
	var (
		name          string
		days, overlap int
	)
	cmd := &cobra.Command{
		Use:     "issue SA",
		Short:   "Issue an API key for a service account; shown once",
		Example: "  deputy sa key issue ci-deployer --name github-actions --days 30",
		Args:    exactArgs(1),
	}
	if rotate {
		cmd.Use, cmd.Args = "rotate SA KEY_ID", exactArgs(2)
		cmd.Short = "Replace a key by a new one; the old one stays valid for an overlap (default 24h), then expires"
		cmd.Example = "  deputy sa key rotate ci-deployer vjfr2n65ejxvgist --overlap-hours 2"
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := e.newClient(f)
		if err != nil {
			return err
		}
		path := k.objectPath(args[0]) + "/keys"
		body := map[string]any{}
		if days > 0 {
			body["expires_in_days"] = days
		}
		if rotate {
			body["rotate_from"] = args[1]
			if overlap > 0 {
				body["overlap_hours"] = overlap
			}
			if name == "" { // the new key does what the old one did
				var p page
				if err := c.call(cmd.Context(), "GET", path, nil, nil, &p); err != nil {
					return err
				}
				for _, it := range p.Items {
					if it["id"] == args[1] {
						name, _ = it["name"].(string)
					}
				}
			}
		}
		if name == "" {
			return fmt.Errorf("say what the key is for: --name")
		}
		body["name"] = name
		var obj map[string]any
		if err := c.call(cmd.Context(), "POST", path, nil, body, &obj); err != nil {
			return err
		}
		if c.output == "json" {
			return printJSON(e.stdout, obj)
		}
		fmt.Fprintf(e.stdout, "API key %s for service account %s, expires %s (shown once):\n%s\n", obj["id"],
			obj["service_account"], obj["expires"], obj["key"])
		if r, ok := obj["rotated"].(map[string]any); ok {
			fmt.Fprintf(e.stdout, "Key %s stays valid until %s: put the new key in its place before then.\n", r["id"], r["expires"])
		}
		return nil
	}
	cmd.Flags().StringVar(&name, "name", "", "what the key is for")
	cmd.Flags().IntVar(&days, "days", 0, "lifetime in days (default 90; the server sets the maximum, 366 unless configured)")
	if rotate {
		cmd.Flags().IntVar(&overlap, "overlap-hours", 0, "how long the old key stays valid (default 24, at most 168)")
		cmd.Flag("name").Usage = "what the key is for (default: the old key's name)"
	} else {
		_ = cmd.MarkFlagRequired("name")
	}
	return cmd
}

func (e *env) keyListCommand(k kindSpec, f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list SA",
		Short: "List the keys of a service account (never their secrets)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, p, err := e.fetchPage(cmd, f, "GET", k.objectPath(args[0])+"/keys", nil)
			if err != nil {
				return err
			}
			return c.printList(e, keyCols, p.Items, "")
		},
	}
}

func (e *env) keyRevokeCommand(k kindSpec, f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke SA KEY_ID",
		Short: "Revoke a key of a service account: it stops working at once",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			path := k.objectPath(args[0]) + "/keys/" + url.PathEscape(args[1])
			if err := c.call(cmd.Context(), "DELETE", path, nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "revoked key %s of service account %s\n", args[1], args[0])
			return nil
		},
	}
}

// keysReportCommand is `deputy report keys`: active service-account keys by expiry, use and age.
func (e *env) keysReportCommand(f *clientFlags) *cobra.Command {
	var (
		expiring, unused, notRotated int
		failIfAny                    bool
	)
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "List active service-account keys expiring soon, unused, or not rotated (tier-0 admins and auditors)",
		Long: "Lists the active API keys of service accounts. --expiring-within N keeps those that expire in the\n" +
			"next N days, --unused-for N those not used for N days (or never, and older than that),\n" +
			"--not-rotated-for N those issued more than N days ago; given together, all must hold.",
		Example: "  deputy report keys --expiring-within 14\n  deputy report keys --unused-for 90 --fail-if-any",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			q := url.Values{}
			for _, p := range []struct {
				flag, param string
				days        int
			}{{"expiring-within", "expiring_within_days", expiring}, {"unused-for", "unused_for_days", unused},
				{"not-rotated-for", "not_rotated_for_days", notRotated}} {
				if cmd.Flags().Changed(p.flag) {
					q.Set(p.param, strconv.Itoa(p.days))
				}
			}
			var p page
			if err := c.call(cmd.Context(), "GET", "/api/v1/reports/keys", q, nil, &p); err != nil {
				return err
			}
			return e.printReport(c, keyReportCols, p.Items, "no keys match", failIfAny)
		},
	}
	cmd.Flags().IntVar(&expiring, "expiring-within", 0, "keys that expire within N days")
	cmd.Flags().IntVar(&unused, "unused-for", 0, "keys not used for N days")
	cmd.Flags().IntVar(&notRotated, "not-rotated-for", 0, "keys issued more than N days ago")
	cmd.Flags().BoolVar(&failIfAny, "fail-if-any", false, "exit 1 when the report is not empty")
	return cmd
}

// orphanedReportCommand is `deputy report orphaned-service-accounts`.
func (e *env) orphanedReportCommand(f *clientFlags) *cobra.Command {
	var failIfAny bool
	cmd := &cobra.Command{
		Use:   "orphaned-service-accounts",
		Short: "List service accounts whose last active owner left, awaiting a review of their owners",
		Long: "When the last active owner of a service account is disabled or deleted, the account goes to that\n" +
			"owner's manager and is flagged orphaned. Setting its owners (or orphaned=false) clears the flag.",
		Example: "  deputy report orphaned-service-accounts\n  deputy sa update ci-deployer --set owners=grace.hopper",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, p, err := e.fetchPage(cmd, f, "GET", "/api/v1/reports/orphaned-service-accounts", nil)
			if err != nil {
				return err
			}
			return e.printReport(c, orphanedCols, p.Items, "no orphaned service accounts", failIfAny)
		},
	}
	cmd.Flags().BoolVar(&failIfAny, "fail-if-any", false, "exit 1 when the report is not empty")
	return cmd
}

// printReport prints a report's rows (or, in a table, none), failing when failIfAny and there
// are rows.
func (e *env) printReport(c *client, cols []column, items []map[string]any, none string, failIfAny bool) error {
	if c.output != "json" && len(items) == 0 {
		fmt.Fprintln(e.stdout, none)
		return nil
	}
	if err := c.printList(e, cols, items, ""); err != nil {
		return err
	}
	if failIfAny && len(items) > 0 {
		return &exitError{code: ExitError}
	}
	return nil
}
