package store

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
)

// benchLogs holds the large logs the proof benchmarks build, once per test binary run (the
// testing package calls a benchmark function more than once); TestMain removes them.
var benchLogs = struct {
	sync.Mutex
	stores map[int]*Store
	dirs   []string
}{stores: map[int]*Store{}}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, st := range benchLogs.stores {
		st.Close()
	}
	for _, d := range benchLogs.dirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// logOf returns an SQLite store whose audit log holds n events, appended as the pipeline
// appends them (AppendEvent: canonical encoding, leaf hash, tree nodes) in transactions of
// 10,000, with events shaped like real ones (a user update with before and after).
func logOf(b *testing.B, n int) *Store {
	benchLogs.Lock()
	defer benchLogs.Unlock()
	if st, ok := benchLogs.stores[n]; ok {
		return st
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "deputy-log-bench-")
	if err != nil {
		b.Fatal(err)
	}
	benchLogs.dirs = append(benchLogs.dirs, dir)
	st, err := Open(ctx, filepath.Join(dir, "log.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for k := 0; k < n; k += 10000 {
		err := st.InTx(ctx, func(tx change.Tx) error {
			for i := k; i < min(k+10000, n); i++ {
				e := &audit.Event{Time: t0.Add(time.Duration(i) * time.Second),
					Actor:  audit.Principal{Type: "user", ID: fmt.Sprintf("0193b0c4-0000-7000-8000-%012d", i%5000), Name: fmt.Sprintf("agent%d", i%5000)},
					Action: "user.update", Target: audit.Target{Type: "user", ID: fmt.Sprintf("0193b0c4-1111-7000-8000-%012d", i), Name: fmt.Sprintf("user%d", i), Version: 2},
					Authority: audit.Authority{Assignments: []string{fmt.Sprintf("0193b0c4-2222-7000-8000-%012d", i%700)}},
					Outcome:   audit.Applied, Before: map[string]any{"title": "Engineer"}, After: map[string]any{"title": "Senior Engineer"},
					Transport: audit.TransportAPI, ClientAddr: "10.1.2.3", UserAgent: "deputy-cli/dev"}
				if _, err := tx.AppendEvent(ctx, e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("built a log of %d events in %s", n, time.Since(start).Round(time.Second))
	benchLogs.stores[n] = st
	return st
}

// BenchmarkInclusionProof10M builds inclusion proofs for random events of a 10,000,000-event log
// (SQLite), as GET /api/v1/audit/proof/inclusion does, verifies each against the root, and
// reports the median, 99th percentile and maximum time to build one. Building the log takes
// several minutes.
func BenchmarkInclusionProof10M(b *testing.B) { benchInclusionProof(b, 10_000_000) }

// BenchmarkInclusionProof100k is the same on a 100,000-event log, quick enough to run often.
func BenchmarkInclusionProof100k(b *testing.B) { benchInclusionProof(b, 100_000) }

func benchInclusionProof(b *testing.B, n int) {
	st := logOf(b, n)
	ctx := context.Background()
	size, err := st.LogSize(ctx)
	if err != nil || size != uint64(n) {
		b.Fatalf("log size %d, %v", size, err)
	}
	tree := audit.Tree{Src: st}
	root, err := tree.Root(ctx, size)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, uint64(b.N)))
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		idx := rng.Uint64N(size)
		t0 := time.Now()
		p, err := tree.InclusionProof(ctx, idx, size)
		lat = append(lat, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		leaves, err := st.LeafHashes(ctx, idx, idx+1)
		if err != nil || len(leaves) != 1 {
			b.Fatal(err)
		}
		if err := audit.VerifyInclusion(idx, size, leaves[0], p, root); err != nil {
			b.Fatalf("proof of %d: %v", idx, err)
		}
		b.StartTimer()
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50_µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99_µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max_µs")
}
