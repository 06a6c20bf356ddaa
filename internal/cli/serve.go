package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/deputy-iam/deputy/internal/app"
	"github.com/deputy-iam/deputy/internal/approval"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/config"
	"github.com/deputy-iam/deputy/internal/directory"
)

// demoAdmin is the tier-0 admin of the demo organisation.
const demoAdmin = "admin"

func (e *env) serveCommand() *cobra.Command {
	var (
		demo       bool
		demoPeople int
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Deputy server",
		Long: `Run the Deputy server on --addr, with the database in --data (SQLite) or at
--database-url (PostgreSQL). With --demo, an empty data directory is first initialized and
filled with a demo organisation, and a fresh API token for its admin is printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Resolve(cmd.Flags(), e.getenv)
			if err != nil {
				return err
			}
			log := cfg.Logger(e.stderr)
			if demo && !cmd.Flags().Changed("mfa") && e.getenv("DEPUTY_MFA") == "" {
				cfg.MFA = "optional" // a demo to look around in; production keeps the default (required)
			}
			if demo && cfg.MailDir == "" && cfg.SMTPAddr == "" {
				cfg.MailDir = filepath.Join(cfg.DataDir, "mail") // the demo's notifications, readable as files
			}
			a, err := app.Open(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			defer a.Close()
			if !demo {
				ok, err := a.Initialized(cmd.Context())
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("%s is not initialized: run 'deputy init' with the same --data/--database-url first (or 'deputy serve --demo' for a demo)", cfg.DSN())
				}
			}
			l, err := a.Listen()
			if err != nil {
				return err
			}
			if demo {
				token, err := e.prepareDemo(cmd.Context(), a, demoPeople)
				if err != nil {
					l.Close()
					return err
				}
				pw, err := a.TemporaryPassword(cmd.Context(), demoAdmin)
				if err != nil {
					l.Close()
					return err
				}
				printDemoWelcome(e.stdout, "http://"+l.Addr().String(), token, pw)
			}
			if err := a.PreparePolicies(cmd.Context()); err != nil {
				l.Close()
				return err
			}
			if err := a.PrepareRules(cmd.Context()); err != nil {
				l.Close()
				return err
			}
			log.Info("deputy serving", "addr", l.Addr().String(), "database", a.Store.Dialect(), "version", Version)
			return a.Serve(cmd.Context(), l)
		},
	}
	config.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&demo, "demo", false, "initialize and seed a demo organisation when the data directory is new, and print an admin token")
	cmd.Flags().IntVar(&demoPeople, "demo-people", 300, "people in the demo organisation")
	return cmd
}

// prepareDemo initializes and seeds a new installation, or reuses an existing one, and returns
// a new API token for the demo admin (tokens are stored hashed, so an old one cannot be shown).
func (e *env) prepareDemo(ctx context.Context, a *app.App, people int) (string, error) {
	b, err := a.Init(ctx, demoAdmin)
	switch {
	case err == nil:
		fmt.Fprintf(e.stderr, "Seeding a demo organisation of %d people...\n", people)
		start := time.Now()
		stats, err := a.SeedDemo(ctx, b.Admin, people)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(e.stderr, "Seeded %d OUs, %d users, %d groups, %d memberships and %d service accounts in %s.\n",
			stats.OUs, stats.Users, stats.Groups, stats.Memberships, stats.ServiceAccounts, time.Since(start).Round(time.Millisecond))
		return b.Token, nil
	case errors.Is(err, change.ErrInitialized):
		token, err := a.IssueToken(ctx, demoAdmin, "demo "+time.Now().UTC().Format("2006-01-02 15:04"))
		if errors.Is(err, directory.ErrNotFound) {
			return "", fmt.Errorf("%s was not created by --demo (it has no user %q): run 'deputy serve' without --demo, or use another --data",
				a.Config.DSN(), demoAdmin)
		}
		return token, err
	}
	return "", err
}

func printDemoWelcome(w io.Writer, url, token, password string) {
	fmt.Fprintf(w, `
Deputy is running at %[1]s with a demo organisation.

The portal: open %[1]s/ and sign in as admin with this one-time password (you choose your own
next; the demo does not ask for an authenticator):
  %[3]s

Admin API token (shown once):
  %[2]s

Try next:
  export DEPUTY_SERVER=%[1]s DEPUTY_TOKEN=%[2]s
  go run ./cmd/deputy user list --filter 'department eq "Sales" and title sw "Senior"'
  go run ./cmd/deputy group members sales-all
  go run ./cmd/deputy user update <username> --set title="Account Director"
  go run ./cmd/deputy audit events --limit 5
  curl -H "Authorization: Bearer $DEPUTY_TOKEN" %[1]s/api/v1/me

Stop with Ctrl-C; run the same command again to continue with the same data.
`, url, token, password)
}

func (e *env) initCommand() *cobra.Command {
	var (
		admin  string
		output string
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create an empty database, the audit signing key and the first tier-0 admin",
		Long: `Create the database (SQLite in --data, or PostgreSQL at --database-url), the audit
signing key, and the first tier-0 admin, and print that admin's API token once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: want table or json", output)
			}
			// Check the admin's name before anything is created, so a typo leaves nothing behind.
			if err := (&directory.UserInput{Username: admin, OU: directory.RootPath}).Normalize(); err != nil {
				return fmt.Errorf("--admin: %w", err)
			}
			cfg, err := config.Resolve(cmd.Flags(), e.getenv)
			if err != nil {
				return err
			}
			if cfg.Policies != "" { // a file that does not even parse stops init before anything is created
				b, err := os.ReadFile(cfg.Policies)
				if err != nil {
					return fmt.Errorf("--policies: %w", err)
				}
				if _, err := approval.ParseFile(b); err != nil {
					return fmt.Errorf("%s: %w", cfg.Policies, err)
				}
			}
			a, err := app.Open(cmd.Context(), cfg, cfg.Logger(e.stderr).With("cmd", "init"))
			if err != nil {
				return err
			}
			defer a.Close()
			b, err := a.Init(cmd.Context(), admin)
			if errors.Is(err, change.ErrInitialized) {
				return fmt.Errorf("%s is already initialized; nothing was changed", cfg.DSN())
			}
			if err != nil {
				return err
			}
			// The token is shown before the policies are put in force: it exists now, and a
			// policy that cannot be loaded must not make it unrecoverable.
			if output == "json" {
				if err := json.NewEncoder(e.stdout).Encode(map[string]string{"user": b.Admin.Username, "token": b.Token}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(e.stdout, "Initialized %s.\nTier-0 admin: %s\nAPI token (shown once): %s\n",
					cfg.DSN(), b.Admin.Username, b.Token)
			}
			if err := a.PreparePolicies(cmd.Context()); err != nil {
				return fmt.Errorf("initialized, but the approval policies were not put in force (%w); fix them and start 'deputy serve --policies FILE'", err)
			}
			return nil
		},
	}
	config.AddFlags(cmd.Flags(), "data", "database-url", "signing-key", "policies", "log-level", "log-format")
	cmd.Flags().StringVar(&admin, "admin", "admin", "username of the first tier-0 admin")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}
