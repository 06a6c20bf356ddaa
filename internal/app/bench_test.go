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
