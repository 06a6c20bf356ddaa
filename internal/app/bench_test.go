package app

import (
	"context"
	"log/slog"
	"testing"
	"time"
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

// BenchmarkGetUser100k times GET /api/v1/users/{user} over loopback HTTP, one request at a time
// on a kept-alive connection, with the demo organisation seeded at 100,000 people. It reports
// the median and 99th percentile.
func BenchmarkGetUser100k(b *testing.B) {
	ctx := context.Background()
	a, err := Open(ctx, benchConfig(b.TempDir()), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	boot, err := a.Init(ctx, "admin")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.SeedDemo(ctx, boot.Admin, 100000); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	lat, err := benchGets(ctx, a, boot.Token, max(b.N, 100))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(ms(lat[len(lat)/2]), "p50_ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99_ms")
}
