package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// mfaCommand enrols the caller's own authenticator from the command line: holders of rights
// need one (by default) before takeover actions and activations, which then take --totp.
func (e *env) mfaCommand() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{Use: "mfa", Short: "Enrol your own authenticator (TOTP)"}
	e.addClientFlags(cmd, f, false)
	enrol := &cobra.Command{
		Use:   "enrol",
		Short: "Start an enrolment: prints a new secret as an otpauth:// URL, shown once",
		Example: "  deputy mfa enrol\n  deputy mfa confirm 123456\n" +
			"  deputy user reset-password sally --totp 654321   # an action that needs a fresh second factor",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			var out map[string]string
			if err := c.call(cmd.Context(), "POST", "/api/v1/me/mfa", nil, nil, &out); err != nil {
				return err
			}
			if c.output == "json" {
				return printJSON(e.stdout, out)
			}
			fmt.Fprintf(e.stdout, "Add this to your authenticator app (shown once):\n%s\nthen run: deputy mfa confirm CODE\n", out["otpauth_url"])
			return nil
		},
	}
	confirm := &cobra.Command{
		Use:   "confirm CODE",
		Short: "Finish an enrolment with a current code from the authenticator",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := c.call(cmd.Context(), "POST", "/api/v1/me/mfa/confirm", nil, map[string]string{"code": args[0]}, &out); err != nil {
				return err
			}
			if c.output == "json" {
				return printJSON(e.stdout, out)
			}
			fmt.Fprintln(e.stdout, "Authenticator enrolled.")
			if codes, ok := out["recovery_codes"].([]any); ok && len(codes) > 0 {
				fmt.Fprintln(e.stdout, "Recovery codes (shown once; each works once):")
				for _, rc := range codes {
					fmt.Fprintf(e.stdout, "  %v\n", rc)
				}
			}
			return nil
		},
	}
	cmd.AddCommand(enrol, confirm)
	return cmd
}
