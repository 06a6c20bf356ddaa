package cli

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/deputy-iam/deputy/internal/app"
	"github.com/deputy-iam/deputy/internal/config"
)

// recoverTokenCommand issues a token straight from the database, for when no working token is
// left (the first admin's token expired, say). It needs what only the server's operator has:
// the data directory or the database URL. The token is issued through the pipeline as the user
// asking for their own token, so it is audited like any other.
func (e *env) recoverTokenCommand() *cobra.Command {
	var (
		user, output string
		days         int
	)
	cmd := &cobra.Command{
		Use:   "recover-token",
		Short: "Issue an API token from the server's own database, when no working token is left",
		Long: `Issue a new API token for an active user (by default the admin created by init) by
opening the database directly: the SQLite file in --data, or --database-url. Use it on the
server's machine when every token has expired or been lost. The token is printed once and the
issue is recorded in the audit trail like any other.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: want table or json", output)
			}
			cfg, err := config.Resolve(cmd.Flags(), e.getenv)
			if err != nil {
				return err
			}
			a, err := app.Open(cmd.Context(), cfg, cfg.Logger(e.stderr).With("cmd", "recover-token"))
			if err != nil {
				return err
			}
			defer a.Close()
			if ok, err := a.Initialized(cmd.Context()); err != nil {
				return err
			} else if !ok {
				return fmt.Errorf("%s is not initialized: run 'deputy init' first", cfg.DSN())
			}
			token, err := a.IssueTokenFor(cmd.Context(), user, "recovered "+time.Now().UTC().Format("2006-01-02 15:04"), days)
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(e.stdout).Encode(map[string]string{"user": user, "token": token})
			}
			fmt.Fprintf(e.stdout, "API token for %s (shown once): %s\n", user, token)
			return nil
		},
	}
	config.AddFlags(cmd.Flags(), "data", "database-url", "log-level", "log-format")
	cmd.Flags().StringVar(&user, "user", "admin", "the user the token is for")
	cmd.Flags().IntVar(&days, "days", 0, "lifetime in days (default 90, at most 366)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

// recoverPasswordCommand sets a one-time temporary password straight from the database: how
// the first admin gets a password for the portal (nobody may reset their own), and how an admin
// who lost theirs gets back in.
func (e *env) recoverPasswordCommand() *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:   "recover-password",
		Short: "Set a one-time temporary password from the server's own database (the first admin's, for the portal)",
		Long: `Set a one-time temporary password for an active user (by default the admin created by
init) by opening the database directly: the SQLite file in --data, or --database-url. It must be
changed at the next sign-in. Use it on the server's machine. It is recorded in the audit trail.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Resolve(cmd.Flags(), e.getenv)
			if err != nil {
				return err
			}
			a, err := app.Open(cmd.Context(), cfg, cfg.Logger(e.stderr).With("cmd", "recover-password"))
			if err != nil {
				return err
			}
			defer a.Close()
			pw, err := a.TemporaryPassword(cmd.Context(), user)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Temporary password for %s (shown once; change it at the first sign-in): %s\n", user, pw)
			return nil
		},
	}
	config.AddFlags(cmd.Flags(), "data", "database-url", "log-level", "log-format")
	cmd.Flags().StringVar(&user, "user", "admin", "the user the password is for")
	return cmd
}
