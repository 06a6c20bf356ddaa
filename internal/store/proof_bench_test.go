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
				e := benchEvent(t0, i)
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

// benchEvent is event i of a synthetic log shaped like a real one: 5,000 actors, a target per
// event, 700 assignments as authorities, a mix of actions, one event in 100 denied and one in
// 20 from the CLI.
func benchEvent(t0 time.Time, i int) *audit.Event {
	actions := []string{"user.update", "user.update", "user.update", "group.add_member", "user.reset_password", "user.disable", "user.create"}
	e := &audit.Event{Time: t0.Add(time.Duration(i) * time.Second),
		Actor:  audit.Principal{Type: "user", ID: fmt.Sprintf("0193b0c4-0000-7000-8000-%012d", i%5000), Name: fmt.Sprintf("agent%d", i%5000)},
		Action: actions[i%len(actions)], Target: audit.Target{Type: "user", ID: fmt.Sprintf("0193b0c4-1111-7000-8000-%012d", i/3), Name: fmt.Sprintf("user%d", i/3), Version: 2},
		Authority: audit.Authority{Assignments: []string{fmt.Sprintf("0193b0c4-2222-7000-8000-%012d", i%700)}},
		Outcome:   audit.Applied, Before: map[string]any{"title": "Engineer"}, After: map[string]any{"title": "Senior Engineer"},
		Transport: audit.TransportAPI, ClientAddr: "10.1.2.3", UserAgent: "deputy-cli/dev"}
	if i%100 == 7 {
		e.Outcome, e.Reason, e.Authority, e.Before, e.After = audit.Denied, "not_authorized", audit.Authority{}, nil, nil
	}
	if i%20 == 3 {
		e.Transport = audit.TransportCLI
	}
	return e
}

// BenchmarkAuditQuery10M times GET /api/v1/audit/events's searches (the store's Events, first
// page of 100, newest first) on a 10,000,000-event log: each filter alone and combined, each
// asked 20 times for different values, reporting the median per search and the slowest of all.
// Building the log takes about ten minutes; run it with the proof benchmark to build it once:
// go test ./internal/store -run XXX -bench 'InclusionProof10M|AuditQuery10M' -benchtime 1x -timeout 60m
func BenchmarkAuditQuery10M(b *testing.B) { benchAuditQuery(b, 10_000_000) }

// BenchmarkAuditQuery100k is the same on 100,000 events.
func BenchmarkAuditQuery100k(b *testing.B) { benchAuditQuery(b, 100_000) }

func benchAuditQuery(b *testing.B, n int) {
	st := logOf(b, n)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	actor := func(k int) string { return fmt.Sprintf("0193b0c4-0000-7000-8000-%012d", (k*37)%5000) }
	searches := []struct {
		name string
		q    func(k int) audit.Query
	}{
		{"all", func(int) audit.Query { return audit.Query{} }},
		{"actor", func(k int) audit.Query { return audit.Query{Actor: actor(k)} }},
		{"target", func(k int) audit.Query {
			return audit.Query{Target: fmt.Sprintf("0193b0c4-1111-7000-8000-%012d", (k*7919)%(n/3))}
		}},
		{"action", func(int) audit.Query { return audit.Query{Action: "user.reset_password"} }},
		{"outcome", func(int) audit.Query { return audit.Query{Outcome: audit.Denied} }},
		{"transport", func(int) audit.Query { return audit.Query{Transport: audit.TransportCLI} }},
		{"authority", func(k int) audit.Query {
			return audit.Query{Authority: fmt.Sprintf("0193b0c4-2222-7000-8000-%012d", (k*13)%700)}
		}},
		{"time_window", func(k int) audit.Query {
			from := t0.Add(time.Duration((k*104729)%n) * time.Second)
			return audit.Query{Since: from, Until: from.Add(time.Hour)}
		}},
		{"actor_action", func(k int) audit.Query { return audit.Query{Actor: actor(k), Action: "user.reset_password"} }},
		// Most actors have no denied event: the search reads all of theirs to find none.
		{"actor_denied", func(k int) audit.Query { return audit.Query{Actor: actor(k), Outcome: audit.Denied} }},
		{"action_none", func(int) audit.Query { return audit.Query{Action: "sa.issue_key"} }},
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var worst time.Duration
		for _, s := range searches {
			lat := make([]time.Duration, 0, 20)
			for k := range 20 {
				q := s.q(k)
				q.Limit = 100
				start := time.Now()
				page, _, err := st.Events(ctx, q)
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Fatalf("%s: %v", s.name, err)
				}
				if len(page) == 0 && s.name != "action_none" && s.name != "actor_denied" {
					b.Fatalf("%s: no events", s.name)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, s.name+"_p50_ms")
			worst = max(worst, lat[len(lat)-1])
		}
		b.ReportMetric(float64(worst.Microseconds())/1000, "worst_ms")
	}
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
	// At least 5,000 proofs whatever b.N, so that one run (-benchtime 1x, as the query benchmark
	// on the same log wants) gives a 99th percentile. The first round runs on the log as it was
	// just built (its tree tables partly out of the page cache); the second after reading the
	// leaf and node tables once, as a server that appends and proves keeps them.
	proofs := max(b.N, 5000)
	rng := rand.New(rand.NewPCG(1, uint64(proofs)))
	round := func(metric string) {
		lat := make([]time.Duration, 0, proofs)
		for i := 0; i < proofs; i++ {
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
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), metric+"p50_µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), metric+"p99_µs")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), metric+"max_µs")
	}
	b.ResetTimer()
	round("")
	b.StopTimer()
	for _, q := range []string{"SELECT COUNT(*), SUM(LENGTH(hash)) FROM audit_leaves", "SELECT COUNT(*), SUM(LENGTH(hash)) FROM audit_nodes"} {
		var n, bytes int64
		if err := st.queryRow(ctx, q).Scan(&n, &bytes); err != nil {
			b.Fatal(err)
		}
	}
	b.StartTimer()
	round("warm_")
}
