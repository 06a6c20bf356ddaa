package audit

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"
)

// BenchmarkVerifyExport1M verifies an export of 1,000,000 events (shaped like real ones, about
// 500 bytes each) against a checkpoint, and in the same run hashes the same bytes with plain
// SHA-256, reporting both rates and their ratio: what verification costs beyond reading the
// hash function's input.
func BenchmarkVerifyExport1M(b *testing.B) {
	const n = 1_000_000
	var buf bytes.Buffer
	app := NewAppender(nil)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		e := &Event{Index: int64(i), Time: t0.Add(time.Duration(i) * time.Second),
			Actor:  Principal{Type: "user", ID: fmt.Sprintf("0193b0c4-0000-7000-8000-%012d", i%5000), Name: fmt.Sprintf("agent%d", i%5000)},
			Action: "user.update", Target: Target{Type: "user", ID: fmt.Sprintf("0193b0c4-1111-7000-8000-%012d", i), Name: fmt.Sprintf("user%d", i), Version: 2},
			Authority: Authority{Assignments: []string{fmt.Sprintf("0193b0c4-2222-7000-8000-%012d", i%700)}},
			Outcome:   Applied, Before: map[string]any{"title": "Engineer"}, After: map[string]any{"title": "Senior Engineer"},
			Transport: TransportAPI, ClientAddr: "10.1.2.3", UserAgent: "deputy-cli/dev"}
		line, err := Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
		if _, err := app.Append(LeafHash(line)); err != nil {
			b.Fatal(err)
		}
	}
	root, _ := app.Root()
	cps := []Checkpoint{{Origin: "bench", Size: n, Root: root}}
	data := buf.Bytes()
	b.ResetTimer()
	var verify, plain time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		got, err := VerifyExport(bytes.NewReader(data), cps)
		verify += time.Since(start)
		if err != nil || got.Size != n || got.Checkpoints != 1 {
			b.Fatalf("%+v %v", got, err)
		}
		start = time.Now()
		h := sha256.New()
		h.Write(data)
		h.Sum(nil)
		plain += time.Since(start)
	}
	per := func(d time.Duration) float64 { return float64(n) * float64(b.N) / d.Seconds() }
	b.ReportMetric(per(verify), "verified_events/s")
	b.ReportMetric(per(plain), "sha256_events/s")
	b.ReportMetric(float64(len(data))/n, "bytes/event")
	b.ReportMetric(verify.Seconds()/plain.Seconds(), "verify/sha256")
}
