package lifecycle_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/lifecycle"
	"github.com/deputy-iam/deputy/internal/store/storetest"
)

// genorg writes the shared generator's organisation of n people into a temporary folder and
// returns it; it skips when the generator (../shared/tools/genorg) is absent.
func genorg(b *testing.B, n string) string {
	b.Helper()
	tool, err := filepath.Abs("../../../shared/tools/genorg")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tool, "main.go")); err != nil {
		b.Skipf("the organisation generator is not at %s (a clone without ../shared): %v", tool, err)
	}
	out := b.TempDir()
	cmd := exec.Command("go", "run", ".", "-n", n, "-seed", "1", "-out", out)
	cmd.Dir = tool
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("genorg: %v\n%s", err, msg)
	}
	return out
}

// BenchmarkImport100k imports the generated organisation of 100,000 people on SQLite: day 1
// (every person a joiner with their birthright groups and, for managers, an assignment), day 2
// (about 1% changes), and day 2 again (nothing to do). It reports the three times and ops.
func BenchmarkImport100k(b *testing.B) { benchImport(b, "100000") }

// BenchmarkImport20k is the same at 20,000 people, for profiling.
func BenchmarkImport20k(b *testing.B) { benchImport(b, "20000") }

func benchImport(b *testing.B, n string) {
	dir := genorg(b, n)
	for i := 0; i < b.N; i++ {
		o := newOrg(b, storetest.SQLiteDSN(b))
		for _, step := range []struct{ name, file, today string }{
			{"day1", "hr-day1.csv", "2026-11-26"}, {"day2", "hr-day2.csv", "2026-11-27"}, {"day2_again", "hr-day2.csv", "2026-11-27"},
		} {
			start := time.Now()
			f, err := os.Open(filepath.Join(dir, step.file))
			if err != nil {
				b.Fatal(err)
			}
			feed, err := lifecycle.ParseCSV(f, lifecycle.DefaultMapping())
			f.Close()
			if err != nil || len(feed.Problems) > 0 {
				b.Fatalf("%s: %v, %d problems", step.file, err, len(feed.Problems))
			}
			run, plan, err := o.importFeed(feed, step.today, lifecycle.ImportOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if len(run.Failed) > 0 {
				b.Fatalf("%s: %d failed, first %+v", step.name, len(run.Failed), run.Failed[0])
			}
			b.ReportMetric(time.Since(start).Seconds(), step.name+"_s")
			b.ReportMetric(float64(plan.Ops), step.name+"_ops")
		}
	}
}
