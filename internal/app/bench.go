package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/config"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// BenchOptions size the built-in benchmark.
type BenchOptions struct {
	Dir      string // scratch directory for the benchmark databases
	Ops      int    // user creations per pipeline scenario
	People   int    // size of the seeded organisation
	Requests int    // GET requests for the read latency
}

// Bench measures, on fresh SQLite databases in opts.Dir: user creations through the pipeline
// (one client, 16 concurrent clients, batches of 100), seeding an organisation of opts.People,
// and the latency of GET /api/v1/users/{user} over loopback HTTP on that organisation. It writes
// a report to w.
func Bench(ctx context.Context, opts BenchOptions, w io.Writer) error {
	log := slog.New(slog.DiscardHandler)
	fmt.Fprintf(w, "Deputy benchmark (SQLite, %s)\n\n", opts.Dir)
	for _, sc := range []struct {
		name    string
		clients int
		batch   int
	}{{"pipeline, 1 client, 1 op per transaction", 1, 1}, {"pipeline, 16 concurrent clients", 16, 1},
		{"pipeline, batches of 100 ops", 1, 100}} {
		rate, err := benchCreates(ctx, filepath.Join(opts.Dir, fmt.Sprintf("pipeline-%d-%d", sc.clients, sc.batch)), log,
			opts.Ops, sc.clients, sc.batch)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%-45s %8.0f user creations/s\n", sc.name+":", rate)
	}

	cfg := benchConfig(filepath.Join(opts.Dir, "seed"))
	a, err := Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	boot, err := a.Init(ctx, "admin")
	if err != nil {
		return err
	}
	start := time.Now()
	stats, err := a.SeedDemo(ctx, boot.Admin, opts.People)
	if err != nil {
		return err
	}
	d := time.Since(start)
	fmt.Fprintf(w, "%-45s %8.1f s (%d users, %d groups, %d memberships; %d ops, %.0f ops/s)\n",
		fmt.Sprintf("seed %d people:", opts.People), d.Seconds(), stats.Users, stats.Groups, stats.Memberships,
		stats.Ops, float64(stats.Ops)/d.Seconds())

	lat, err := benchGets(ctx, a, boot.Token, opts.Requests)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%-45s p50 %.3f ms, p90 %.3f ms, p99 %.3f ms (%d requests)\n",
		fmt.Sprintf("GET /api/v1/users/{user}, %d users:", stats.Users+1),
		ms(lat[len(lat)/2]), ms(lat[len(lat)*9/10]), ms(lat[len(lat)*99/100]), len(lat))
	return nil
}

func benchConfig(dir string) config.Config {
	return config.Config{DataDir: dir, Addr: "127.0.0.1:0", SigningKey: filepath.Join(dir, "audit-signing.key"),
		LogLevel: "error", LogFormat: "text", ShutdownTimeout: 5 * time.Second}
}

// benchCreates creates n users through the pipeline from clients goroutines, in batches of
// batch ops, and returns the rate.
func benchCreates(ctx context.Context, dir string, log *slog.Logger, n, clients, batch int) (float64, error) {
	a, err := Open(ctx, benchConfig(dir), log)
	if err != nil {
		return 0, err
	}
	defer a.Close()
	boot, err := a.Init(ctx, "admin")
	if err != nil {
		return 0, err
	}
	admin := actorOf(boot.Admin)
	meta := change.Meta{Transport: audit.TransportCLI}
	if _, err := a.Pipeline.Submit(ctx, admin, meta, change.Op{Action: delegation.OUCreate, OU: &directory.OUInput{Name: "corp"}}); err != nil {
		return 0, err
	}
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		errsMu sync.Mutex
		first  error
	)
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				end := int(next.Add(int64(batch)))
				if end-batch >= n {
					return
				}
				ops := make([]change.Op, 0, batch)
				for i := end - batch; i < min(end, n); i++ {
					ops = append(ops, change.Op{Action: delegation.UserCreate, User: &directory.UserInput{
						Username: fmt.Sprintf("user%07d", i), GivenName: "Given", FamilyName: fmt.Sprintf("Family%d", i),
						Email: fmt.Sprintf("user%07d@example.com", i), EmployeeID: fmt.Sprintf("E%07d", i),
						Department: "Sales", Title: "Account Executive", OU: "corp"}})
				}
				var err error
				if len(ops) == 1 {
					_, err = a.Pipeline.Submit(ctx, admin, meta, ops[0])
				} else {
					_, err = a.Pipeline.SubmitBatch(ctx, admin, meta, ops)
				}
				if err != nil {
					errsMu.Lock()
					first = err
					errsMu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return 0, first
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// benchGets serves a's API on a loopback port and times GETs of random users, one at a time
// over a kept-alive connection. It returns the sorted latencies.
func benchGets(ctx context.Context, a *App, token string, n int) ([]time.Duration, error) {
	page, err := a.Store.ListUsers(ctx, directory.ListQuery{Limit: directory.MaxLimit})
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go a.Serve(sctx, l)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	base := "http://" + l.Addr().String() + "/api/v1/users/"
	rng := rand.New(rand.NewPCG(1, 2))
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n+100; i++ {
		u := page.Items[rng.IntN(len(page.Items))]
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+u.Username, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", u.Username, resp.Status)
		}
		if i >= 100 { // the first requests warm caches and the connection
			lat = append(lat, time.Since(t0))
		}
	}
	slices.Sort(lat)
	return lat, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
