package store

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// benchPipeline opens a fresh SQLite store with a bootstrapped admin and an OU "corp".
func benchPipeline(b *testing.B) (*Store, *change.Pipeline, delegation.Actor) {
	b.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"), log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	p := change.New(st, delegation.NewEngine(log), log)
	boot, err := p.Bootstrap(ctx, change.Meta{Transport: audit.TransportCLI}, "admin")
	if err != nil {
		b.Fatal(err)
	}
	admin := delegation.Actor{Kind: delegation.ActorUser, ID: boot.Admin.ID, Name: boot.Admin.Username}
	if _, err := p.Submit(ctx, admin, change.Meta{Transport: audit.TransportCLI},
		change.Op{Action: delegation.OUCreate, OU: &directory.OUInput{Name: "corp"}}); err != nil {
		b.Fatal(err)
	}
	return st, p, admin
}

func benchUser(i int) *directory.UserInput {
	return &directory.UserInput{Username: fmt.Sprintf("user%07d", i), GivenName: "Given", FamilyName: fmt.Sprintf("Family%d", i),
		Email: fmt.Sprintf("user%07d@example.com", i), EmployeeID: fmt.Sprintf("E%07d", i), Department: "Sales",
		Title: "Account Executive", Location: "Berlin", EmploymentType: "employee", OU: "corp",
		Attributes: map[string]string{"cost_center": "CC-100"}}
}

// BenchmarkPipelineUserCreate measures user creations through the whole pipeline (plan,
// authorize, apply, audit event, outbox row), one transaction per op as the API submits them.
func BenchmarkPipelineUserCreate(b *testing.B) {
	_, p, admin := benchPipeline(b)
	ctx := context.Background()
	meta := change.Meta{Transport: audit.TransportAPI}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Submit(ctx, admin, meta, change.Op{Action: delegation.UserCreate, User: benchUser(i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkPipelineUserCreateConcurrent measures the same with 16 submitters at once, as a
// busy server sees them: ops that arrive while one transaction commits share the next commit.
func BenchmarkPipelineUserCreateConcurrent(b *testing.B) {
	_, p, admin := benchPipeline(b)
	ctx := context.Background()
	meta := change.Meta{Transport: audit.TransportAPI}
	var next atomic.Int64
	b.SetParallelism(8) // 8 x GOMAXPROCS(2) = 16 submitters
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1))
			if _, err := p.Submit(ctx, admin, meta, change.Op{Action: delegation.UserCreate, User: benchUser(i)}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkPipelineVsRaw creates the same 20,000 users three times in one run, each on a fresh
// database: through the pipeline one op per transaction (as single API requests), through the
// pipeline in batches of 1,000 ops, and as a raw INSERT of the same rows in batches of 1,000 (no
// authorization, audit event or outbox row). It reports the three rates and the pipeline's
// fraction of the raw rate.
func BenchmarkPipelineVsRaw(b *testing.B) {
	const n, batch = 20000, 1000
	ctx := context.Background()
	meta := change.Meta{Transport: audit.TransportAPI}
	for i := 0; i < b.N; i++ {
		_, p, admin := benchPipeline(b)
		start := time.Now()
		for j := 0; j < n; j++ {
			if _, err := p.Submit(ctx, admin, meta, change.Op{Action: delegation.UserCreate, User: benchUser(j)}); err != nil {
				b.Fatal(err)
			}
		}
		single := time.Since(start)

		_, p, admin = benchPipeline(b)
		start = time.Now()
		for k := 0; k < n; k += batch {
			ops := make([]change.Op, 0, batch)
			for j := k; j < k+batch; j++ {
				ops = append(ops, change.Op{Action: delegation.UserCreate, User: benchUser(j)})
			}
			if _, err := p.SubmitBatch(ctx, admin, meta, ops); err != nil {
				b.Fatal(err)
			}
		}
		batched := time.Since(start)

		st, _, _ := benchPipeline(b)
		corp, err := st.OU(ctx, directory.Ref{Kind: directory.KindOU, Name: "corp"})
		if err != nil {
			b.Fatal(err)
		}
		rows := make([]directory.User, n)
		for j := range rows {
			in := benchUser(j)
			if err := in.Normalize(); err != nil {
				b.Fatal(err)
			}
			rows[j] = directory.User{ID: directory.NewID(), Status: directory.StatusActive, OUID: corp.ID, Version: 1,
				Created: time.Now(), Updated: time.Now()}
			rows[j].SetInput(*in)
		}
		start = time.Now()
		for k := 0; k < n; k += batch {
			err := st.InTx(ctx, func(tx change.Tx) error {
				for j := k; j < k+batch; j++ {
					if err := tx.InsertUser(ctx, &rows[j]); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		raw := time.Since(start)
		b.ReportMetric(n/single.Seconds(), "single_ops/s")
		b.ReportMetric(n/batched.Seconds(), "batched_ops/s")
		b.ReportMetric(n/raw.Seconds(), "raw_rows/s")
		b.ReportMetric(raw.Seconds()/batched.Seconds(), "batched/raw")
		b.ReportMetric(raw.Seconds()/single.Seconds(), "single/raw")
	}
}

// BenchmarkPipelineUserCreateBatch measures SubmitBatch with 100 ops per transaction, the path
// bulk imports (the demo seeder, HR feeds) take: every op is still authorized and audited on its
// own.
func BenchmarkPipelineUserCreateBatch(b *testing.B) {
	_, p, admin := benchPipeline(b)
	ctx := context.Background()
	meta := change.Meta{Transport: audit.TransportCLI}
	b.ResetTimer()
	for i := 0; i < b.N; i += 100 {
		ops := make([]change.Op, 0, 100)
		for j := i; j < min(i+100, b.N); j++ {
			ops = append(ops, change.Op{Action: delegation.UserCreate, User: benchUser(j)})
		}
		if _, err := p.SubmitBatch(ctx, admin, meta, ops); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkMerkleOverhead measures what the Merkle log adds to an op: the same 10,000 user
// creations through the pipeline with the log (leaf hash, tree nodes, in the transaction) and
// without it, alternating three times on fresh databases, one op per transaction and in
// batches of 100. It reports both rates and the added cost per op in percent.
func BenchmarkMerkleOverhead(b *testing.B) {
	const n = 10000
	ctx := context.Background()
	meta := change.Meta{Transport: audit.TransportAPI}
	run := func(unlogged bool, batch int) time.Duration {
		st, p, admin := benchPipeline(b)
		st.unlogged = unlogged
		start := time.Now()
		for k := 0; k < n; k += batch {
			ops := make([]change.Op, 0, batch)
			for j := k; j < k+batch; j++ {
				ops = append(ops, change.Op{Action: delegation.UserCreate, User: benchUser(j)})
			}
			var err error
			if batch == 1 {
				_, err = p.Submit(ctx, admin, meta, ops[0])
			} else {
				_, err = p.SubmitBatch(ctx, admin, meta, ops)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	for i := 0; i < b.N; i++ {
		for _, batch := range []int{1, 100} {
			var with, without time.Duration
			for range 3 {
				without += run(true, batch)
				with += run(false, batch)
			}
			name := "single"
			if batch > 1 {
				name = "batch100"
			}
			b.ReportMetric(3*n/with.Seconds(), name+"_logged_ops/s")
			b.ReportMetric(3*n/without.Seconds(), name+"_unlogged_ops/s")
			b.ReportMetric(100*(with.Seconds()/without.Seconds()-1), name+"_overhead_%")
		}
	}
}
