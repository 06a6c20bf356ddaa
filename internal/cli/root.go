// Package cli is the deputy command: serve and init run the server; the other verbs are a
// client of the REST API. Exit codes: 0 success, 3 denied, 4 parked for approval, 1 anything else.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitError  = 1
	ExitDenied = 3
	ExitParked = 4
)

// Version is the program's version, set at build time with -ldflags "-X ...cli.Version=...".
var Version = "dev"

// env is the process environment the commands read, passed in so tests can set it.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// exitError carries an exit code and a one-line message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// Main runs the deputy command with args and returns the process exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := e.rootCommand()
	root.SetArgs(args)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath())
	})
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(stderr, "deputy: "+oneLine(ee.msg))
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "deputy: "+oneLine(err.Error()))
	return ExitError
}

func (e *env) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "deputy",
		Short:         "Deputy: secure delegated identity administration",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(e.serveCommand(), e.initCommand(), e.recoverTokenCommand(), e.recoverPasswordCommand(), e.benchCommand())
	e.addClientCommands(root)
	return root
}

// exactArgs requires n positional arguments, and says how to call the command when they are
// not there (cobra's own message names no command and no argument).
func exactArgs(n int) cobra.PositionalArgs { return rangeArgs(n, n) }

// rangeArgs requires from min to max positional arguments.
func rangeArgs(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || len(args) > max {
			return fmt.Errorf("usage: %s (got %d arguments; see %s --help)", cmd.UseLine(), len(args), cmd.CommandPath())
		}
		return nil
	}
}

// oneLine folds an error message onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
