package cli

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"
)

var tokenCols = []column{{"ID", "id"}, {"NAME", "name"}, {"CREATED", "created"}, {"EXPIRES", "expires"}, {"LAST USED", "last_used"},
	{"ACTIVE", "active"}}

// credentialCommands are the user subcommands about credentials: tokens, resets, unlocks.
func (e *env) credentialCommands(k kindSpec, f *clientFlags) []*cobra.Command {
	tokens := &cobra.Command{
		Use:   "tokens USER",
		Short: "List a user's API tokens (never their secrets)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, p, err := e.fetchPage(cmd, f, "GET", k.objectPath(args[0])+"/tokens", nil)
			if err != nil {
				return err
			}
			return c.printList(e, tokenCols, p.Items, "")
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke-token USER ID",
		Short: "Revoke one API token of a user (your own, or as a delegate with user.revoke_tokens)",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			if err := c.call(cmd.Context(), "DELETE", k.objectPath(args[0])+"/tokens/"+url.PathEscape(args[1]), nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "revoked token %s of %s\n", args[1], args[0])
			return nil
		},
	}
	var code, deliver string
	reset := &cobra.Command{
		Use:   "reset-password USER",
		Short: "Set a one-time temporary password (shown once; the user must change it at the next sign-in)",
		Example: "  deputy user reset-password sally\n" +
			"  deputy user verify sally --channel email    # when your role asks for the user's identity first\n" +
			"  deputy user reset-password sally --code 123456\n" +
			"  deputy user reset-password sally --deliver email   # a one-time link to her own address",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			var body any
			if code != "" || deliver != "" {
				body = map[string]string{"verification": code, "deliver": deliver}
			}
			var obj map[string]any
			if err := c.call(cmd.Context(), "POST", k.objectPath(args[0])+"/reset-password", nil, body, &obj); err != nil {
				return err
			}
			if c.output == "json" {
				return printJSON(e.stdout, obj)
			}
			if deliver != "" {
				fmt.Fprintf(e.stdout, "A one-time reset link for %s went to %s (audit event %v)\n", obj["user"],
					map[string]string{"manager": "their manager", "email": "their own email address"}[deliver], obj["event"])
				return nil
			}
			fmt.Fprintf(e.stdout, "Temporary password for %s (shown once; it must be changed at the next sign-in):\n%s\n", obj["user"], obj["temporary_password"])
			return nil
		},
	}
	reset.Flags().StringVar(&code, "code", "", "the verification code the user read out")
	reset.Flags().StringVar(&deliver, "deliver", "", "send a one-time reset link instead of showing you a temporary password: manager or email")
	var channel string
	verify := &cobra.Command{
		Use:   "verify USER",
		Short: "Start an identity check before a reset: send the user a code by email, or ask for their authenticator's code",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			var obj map[string]any
			if err := c.call(cmd.Context(), "POST", k.objectPath(args[0])+"/verification", nil, map[string]string{"channel": channel}, &obj); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s; ask %s for the code and pass it with --code (it expires at %s)\n", obj["status"], args[0], obj["expires"])
			return nil
		},
	}
	verify.Flags().StringVar(&channel, "channel", "email", "email or totp")
	resetMFA := &cobra.Command{
		Use:   "reset-mfa USER",
		Short: "Remove a user's authenticator (lost or replaced): they enrol a new one at their next sign-in",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			if err := c.call(cmd.Context(), "POST", k.objectPath(args[0])+"/reset-mfa", nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "authenticator of %s removed; they enrol a new one at their next sign-in\n", args[0])
			return nil
		},
	}
	return []*cobra.Command{tokens, revoke, reset, verify, resetMFA, e.postCommand(k, f, "unlock", "Clear the lockout that failed sign-ins set")}
}
