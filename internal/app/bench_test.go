package app

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
)

// BenchmarkSeed100k seeds the demo organisation at 100,000 people through the pipeline (every
// object and membership its own op with its own audit event) and reports the time.
func BenchmarkSeed100k(b *testing.B) {
	benchSeed(b, 100000)
}

func benchSeed(b *testing.B, people int) {
	for i := 0; i < b.N; i++ {
		ctx := context.Background()
		a, err := Open(ctx, benchConfig(b.TempDir()), slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		boot, err := a.Init(ctx, "admin")
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		stats, err := a.SeedDemo(ctx, boot.Admin, people)
		if err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		a.Close()
		b.ReportMetric(d.Seconds(), "s/seed")
		b.ReportMetric(float64(stats.Ops)/d.Seconds(), "ops/s")
	}
}

func BenchmarkSeed20k(b *testing.B) { benchSeed(b, 20000) }

// seeded opens an application in a temporary directory and seeds the demo organisation at
// people; it is closed when the benchmark ends.
func seeded(b *testing.B, people int) (*App, change.Bootstrapped) {
	ctx := context.Background()
	a, err := Open(ctx, benchConfig(b.TempDir()), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	boot, err := a.Init(ctx, "admin")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.SeedDemo(ctx, boot.Admin, people); err != nil {
		b.Fatal(err)
	}
	return a, boot
}

// BenchmarkGetUser100k times GET /api/v1/users/{user} over loopback HTTP, one request at a time
// on a kept-alive connection, with the demo organisation seeded at 100,000 people. It reports
// the median and 99th percentile.
func BenchmarkGetUser100k(b *testing.B) {
	ctx := context.Background()
	a, boot := seeded(b, 100000)
	b.ResetTimer()
	lat, err := benchGets(ctx, a, boot.Token, max(b.N, 100))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(ms(lat[len(lat)/2]), "p50_ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99_ms")
}

// BenchmarkCanWhatStream100k times GET /api/v1/authz/can-what?stream=true over loopback HTTP for
// an HR delegate whose scope (corp) holds the 100,000 people of the seeded organisation: the
// SQL that reads them, a decision per object and action, and the NDJSON on the wire. Seeding
// takes about a minute; run it with -benchtime 5x for a median.
func BenchmarkCanWhatStream100k(b *testing.B) { benchCanWhatStream(b, 100000, "corp", 100000) }

// BenchmarkCanWhatStream1M is the same stream for a scope of about 100,000 people
// (corp/operations) in an organisation of 1,000,000: what the scope costs, not the directory.
// Seeding takes several minutes.
func BenchmarkCanWhatStream1M(b *testing.B) { benchCanWhatStream(b, 1000000, "corp/operations", 99000) }

// streamSetups keeps each stream benchmark's seeded organisation and server for the whole run:
// the testing package calls a benchmark function more than once (first with b.N = 1), and
// seeding is the slow part. TestMain closes them.
var (
	streamSetups = map[string]string{} // benchmark name -> URL with the delegate's token
	benchCloses  []func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, c := range benchCloses {
		c()
	}
	os.Exit(code)
}

// benchCanWhatStream seeds people, gives an HR partner the HR role over ou and streams what
// they can do to users, expecting at least want objects.
func benchCanWhatStream(b *testing.B, people int, ou string, want int) {
	ctx := context.Background()
	target, ok := streamSetups[b.Name()]
	if !ok {
		target = streamSetup(b, people, ou)
		streamSetups[b.Name()] = target
	}
	url, token, _ := strings.Cut(target, "#")
	var times []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		lines := 0
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines++
		}
		resp.Body.Close()
		d := time.Since(t0)
		if resp.StatusCode != http.StatusOK || lines < want {
			b.Fatalf("can-what: %s, %d objects, want at least %d", resp.Status, lines, want)
		}
		times = append(times, d)
		b.ReportMetric(float64(lines), "objects")
	}
	slices.Sort(times)
	b.ReportMetric(times[len(times)/2].Seconds(), "s/stream_p50")
	b.ReportMetric(times[len(times)-1].Seconds(), "s/stream_max")
}

// streamSetup seeds people in a directory of its own, assigns the HR role over ou to an HR
// partner and serves the API on loopback until TestMain ends; it returns "URL#token".
func streamSetup(b *testing.B, people int, ou string) string {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "deputy-bench-")
	if err != nil {
		b.Fatal(err)
	}
	a, err := Open(ctx, benchConfig(dir), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	benchCloses = append(benchCloses, func() { cancel(); a.Close(); os.RemoveAll(dir) })
	boot, err := a.Init(ctx, "admin")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.SeedDemo(ctx, boot.Admin, people); err != nil {
		b.Fatal(err)
	}
	page, err := a.Store.ListUsers(ctx, directory.ListQuery{Limit: 1, Filter: &filter.Compare{Attr: "title",
		Type: filter.String, Op: filter.Eq, Value: "HR Partner"}})
	if err != nil || len(page.Items) == 0 {
		b.Fatalf("an HR partner: %v", err)
	}
	hr := page.Items[0]
	if _, err := a.Pipeline.Submit(ctx, actorOf(boot.Admin), change.Meta{Transport: audit.TransportCLI}, change.Op{
		Action: delegation.RoleAssign, Assignment: &delegation.AssignmentInput{Role: delegation.RoleHR,
			Holder: delegation.HolderInput{User: hr.Username}, Scope: delegation.ScopeInput{OU: ou}, Justification: "bench"}}); err != nil {
		b.Fatal(err)
	}
	token, err := a.IssueToken(ctx, hr.Username, "bench")
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go a.Serve(sctx, l)
	return "http://" + l.Addr().String() + "/api/v1/authz/can-what?type=user&stream=true#" + token
}
