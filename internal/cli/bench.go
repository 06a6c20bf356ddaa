package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/deputy-iam/deputy/internal/app"
)

func (e *env) benchCommand() *cobra.Command {
	var (
		opts app.BenchOptions
		keep bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure this machine: pipeline throughput, seeding, and read latency (SQLite)",
		Long: `Measure, on fresh SQLite databases in a scratch directory: user creations through the
change pipeline (one client, 16 concurrent clients, batches of 100), seeding an organisation,
and GET /api/v1/users/{user} latency over loopback HTTP. docs/benchmarks.md has reference figures.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Dir == "" {
				dir, err := os.MkdirTemp("", "deputy-bench-")
				if err != nil {
					return err
				}
				opts.Dir = dir
			}
			if !keep {
				defer os.RemoveAll(opts.Dir)
			}
			if opts.Ops < 1 || opts.People < 20 || opts.Requests < 100 {
				return fmt.Errorf("--ops must be at least 1, --people at least 20 and --requests at least 100")
			}
			return app.Bench(cmd.Context(), opts, e.stdout)
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "scratch directory (default: a new temporary one)")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the scratch databases")
	cmd.Flags().IntVar(&opts.Ops, "ops", 20000, "user creations per pipeline scenario")
	cmd.Flags().IntVar(&opts.People, "people", 100000, "people in the seeded organisation")
	cmd.Flags().IntVar(&opts.Requests, "requests", 20000, "GET requests for the latency figures")
	return cmd
}
