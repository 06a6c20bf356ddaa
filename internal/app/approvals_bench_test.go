package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/approval"
	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// approvalsWorld is an installation with two OUs of people, "free" and "gated", a policy that
// gates user.update in "gated" on the approval of bob, and the admin who submits.
type approvalsWorld struct {
	a     *App
	admin delegation.Actor
	bob   delegation.Actor
	meta  change.Meta
}

func newApprovalsWorld(b *testing.B, people int) *approvalsWorld {
	b.Helper()
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
	w := &approvalsWorld{a: a, admin: actorOf(boot.Admin), meta: change.Meta{Transport: audit.TransportAPI}}
	ops := []change.Op{{Action: delegation.OUCreate, OU: &directory.OUInput{Name: "free"}},
		{Action: delegation.OUCreate, OU: &directory.OUInput{Name: "gated"}},
		{Action: delegation.UserCreate, User: &directory.UserInput{Username: "bob", OU: "free"}}}
	for i := range people {
		for _, ou := range []string{"free", "gated"} {
			ops = append(ops, change.Op{Action: delegation.UserCreate, User: &directory.UserInput{Username: fmt.Sprintf("%s%05d", ou, i), OU: ou}})
		}
	}
	for len(ops) > 0 {
		n := min(len(ops), 1000)
		if _, err := a.Pipeline.SubmitBatch(ctx, w.admin, w.meta, ops[:n]); err != nil {
			b.Fatal(err)
		}
		ops = ops[n:]
	}
	bob, err := a.Store.User(ctx, directory.ParseRef(directory.KindUser, "bob"))
	if err != nil {
		b.Fatal(err)
	}
	w.bob = actorOf(bob)
	if _, err := a.Pipeline.CreatePolicy(ctx, w.admin, w.meta, approval.Policy{Name: "gated-updates",
		Actions: []delegation.Action{delegation.UserUpdate}, When: approval.Predicate{OU: "gated"},
		Stages: []approval.Stage{{Approvers: []approval.Approver{{Kind: approval.ApproverUser, User: "bob"}}}}}); err != nil {
		b.Fatal(err)
	}
	return w
}

// update is the op both variants run: a title change of one person.
func update(ou string, i, round int) change.Op {
	return change.Op{Action: delegation.UserUpdate,
		Target:        directory.ParseRef(directory.KindUser, fmt.Sprintf("%s%05d", ou, i)),
		Patch:         directory.Patch{"title": json.RawMessage(fmt.Sprintf(`"Title %d"`, round))},
		Justification: "benchmark"}
}

// BenchmarkRequestLifecycle compares, in one run, a title change applied at once (a person in
// "free") with the same change gated (a person in "gated"): submitted (parked, with its event,
// request and inbox rows), approved and applied (re-authorized, with the approval's event).
// It reports both per-op times and their ratio; the target is at most 3.
func BenchmarkRequestLifecycle(b *testing.B) {
	const n = 2000
	w := newApprovalsWorld(b, n)
	ctx := context.Background()
	for round := 0; round < b.N; round++ {
		var free, gated time.Duration
		for rep := range 3 { // alternate, so that neither variant gets the warmer cache
			start := time.Now()
			for i := range n / 3 {
				if _, err := w.a.Pipeline.Submit(ctx, w.admin, w.meta, update("free", rep*(n/3)+i, round)); err != nil {
					b.Fatal(err)
				}
			}
			free += time.Since(start)
			start = time.Now()
			for i := range n / 3 {
				res, err := w.a.Pipeline.Submit(ctx, w.admin, w.meta, update("gated", rep*(n/3)+i, round))
				if res.Outcome != audit.Pending {
					b.Fatalf("not parked: %+v, %v", res, err)
				}
				r, err := w.a.Pipeline.Decide(ctx, w.bob, w.meta, res.Request, approval.VerdictApprove, "")
				if err != nil || r.State != approval.Applied {
					b.Fatalf("approve: %+v, %v", r, err)
				}
			}
			gated += time.Since(start)
		}
		ops := float64(3 * (n / 3))
		b.ReportMetric(float64(free.Microseconds())/ops, "ungated_us/op")
		b.ReportMetric(float64(gated.Microseconds())/ops, "lifecycle_us/op")
		b.ReportMetric(gated.Seconds()/free.Seconds(), "ratio")
	}
}

// BenchmarkWaitingForMe10k times GET /api/v1/requests?view=waiting over loopback HTTP for an
// approver with 10,000 open requests: the first page of 50 and pages deep in the inbox, one
// request at a time on a kept-alive connection. It reports the median and 99th percentile.
func BenchmarkWaitingForMe10k(b *testing.B) {
	const open = 10000
	w := newApprovalsWorld(b, 1000)
	ctx := context.Background()
	var ids []string
	for i := range open {
		res, err := w.a.Pipeline.Submit(ctx, w.admin, w.meta, update("gated", i%1000, i))
		if res.Outcome != audit.Pending {
			b.Fatalf("not parked: %+v, %v", res, err)
		}
		ids = append(ids, res.Request)
	}
	slices.Sort(ids)
	token, err := w.a.IssueToken(ctx, "bob", "bench")
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go w.a.Serve(sctx, l)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	base := "http://" + l.Addr().String() + "/api/v1/requests?view=waiting&limit=50"
	get := func(url string) (time.Duration, int) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var page struct{ Items []json.RawMessage }
		err = json.NewDecoder(resp.Body).Decode(&page)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d: %v", resp.StatusCode, err)
		}
		return time.Since(t0), len(page.Items)
	}
	b.ResetTimer()
	var lat []time.Duration
	for i := 0; i < max(b.N, 200)+20; i++ {
		url := base
		if i%2 == 1 {
			url += "&cursor=" + ids[(i*397)%(open-100)]
		}
		d, n := get(url)
		if n != 50 {
			b.Fatalf("page of %d", n)
		}
		if i >= 20 { // the first requests warm the connection and caches
			lat = append(lat, d)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)/2]), "p50_ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99_ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max_ms")
}
