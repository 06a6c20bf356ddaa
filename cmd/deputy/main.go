// Command deputy is Deputy's single binary: the server (serve, init) and a client for its REST
// API. See docs/cli.md.
package main

import (
	"os"

	"github.com/deputy-iam/deputy/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}
