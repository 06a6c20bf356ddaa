package delegation

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/directory"
)

// The engine benchmarks load an organisation of the size the delegation issue names: 1,000,000
// users, 10,000 OUs, 50,000 groups and 5,000 assignments, built in memory (the engine holds the
// same state whether it was loaded from the database or from here).

const (
	benchUsers       = 1_000_000
	benchOUs         = 10_000
	benchGroups      = 50_000
	benchAssignments = 5_000
)

// benchOrg is the synthetic organisation and the attributes of its objects, as the store would
// give them to the engine (Fields) for a question.
type benchOrg struct {
	snap      Snapshot
	ouIDs     []string
	ouPaths   []string
	userIDs   []string
	userOU    []int32 // index into ouIDs
	manager   []int32 // index into userIDs, -1 for none
	groupIDs  []string
	delegates []int32 // users who hold assignments (through their holder groups)
}

var (
	benchOnce sync.Once
	benchData *benchOrg
	benchEng  *Engine
	benchMem  uint64
)

func id(prefix string, i int) string { return fmt.Sprintf("%s%030d", prefix, i) }

func buildBenchOrg() *benchOrg {
	rng := rand.New(rand.NewPCG(1, 2))
	o := &benchOrg{}
	// OUs: a root with 10 children, each with 10 children, each with 99 leaves (10,000 in all
	// with the root and the two upper levels).
	o.ouIDs, o.ouPaths = []string{id("ou", 0)}, []string{""}
	o.snap.OUs = append(o.snap.OUs, [2]string{o.ouIDs[0], ""})
	var leaves []int32
	add := func(parent int, name string) int {
		i := len(o.ouIDs)
		o.ouIDs = append(o.ouIDs, id("ou", i))
		path := name
		if o.ouPaths[parent] != "" {
			path = o.ouPaths[parent] + "/" + name
		}
		o.ouPaths = append(o.ouPaths, path)
		o.snap.OUs = append(o.snap.OUs, [2]string{o.ouIDs[i], o.ouIDs[parent]})
		return i
	}
	for a := 0; a < 10; a++ {
		ai := add(0, fmt.Sprintf("d%d", a))
		for b := 0; b < 10; b++ {
			bi := add(ai, fmt.Sprintf("t%d", b))
			for c := 0; c < 99 && len(o.ouIDs) < benchOUs; c++ {
				leaves = append(leaves, int32(add(bi, fmt.Sprintf("l%d", c))))
			}
		}
	}
	// Users, each in a leaf OU, managed by the first user of their OU.
	o.userIDs = make([]string, benchUsers)
	o.userOU = make([]int32, benchUsers)
	o.manager = make([]int32, benchUsers)
	firstOf := map[int32]int32{}
	for i := range benchUsers {
		o.userIDs[i] = id("u", i)
		ou := leaves[i%len(leaves)]
		o.userOU[i] = ou
		o.manager[i] = -1
		if f, ok := firstOf[ou]; ok {
			o.manager[i] = f
		} else {
			firstOf[ou] = int32(i)
		}
		obj := SnapshotObject{ID: o.userIDs[i], Kind: directory.KindUser, Status: directory.StatusActive, OU: o.ouIDs[ou]}
		if m := o.manager[i]; m >= 0 {
			obj.Manager = o.userIDs[m]
		}
		o.snap.Objects = append(o.snap.Objects, obj)
	}
	// Groups: each user in two random groups; one group in ten nested in another.
	o.groupIDs = make([]string, benchGroups)
	for g := range benchGroups {
		o.groupIDs[g] = id("g", g)
		o.snap.Objects = append(o.snap.Objects, SnapshotObject{ID: o.groupIDs[g], Kind: directory.KindGroup,
			OU: o.ouIDs[leaves[g%len(leaves)]], Owners: []string{o.userIDs[rng.IntN(benchUsers)]}})
		if g%10 == 0 && g > 0 {
			o.snap.Memberships = append(o.snap.Memberships, [2]string{o.groupIDs[rng.IntN(g)], o.groupIDs[g]})
		}
	}
	for i := range benchUsers {
		for range 2 {
			o.snap.Memberships = append(o.snap.Memberships, [2]string{o.groupIDs[rng.IntN(benchGroups)], o.userIDs[i]})
		}
	}
	// Assignments: held by 1,000 delegate groups of 5 users each; scopes over OU subtrees at
	// every level, groups, filters and relations; roles helpdesk, hr, manager, group-owner.
	roles := []string{RoleHelpdesk, RoleHR, RoleHelpdesk, RoleManager, RoleGroupOwner}
	for d := range 1000 {
		holder := id("dg", d)
		o.snap.Objects = append(o.snap.Objects, SnapshotObject{ID: holder, Kind: directory.KindGroup})
		for k := range 5 {
			u := int32(rng.IntN(benchUsers))
			o.delegates = append(o.delegates, u)
			o.snap.Memberships = append(o.snap.Memberships, [2]string{holder, o.userIDs[u]})
			_ = k
		}
	}
	for a := range benchAssignments {
		as := Assignment{ID: id("a", a), Role: roles[a%len(roles)],
			Holder: directory.Ref{Kind: directory.KindGroup, ID: id("dg", a%1000)}}
		switch a % 10 {
		case 0, 1, 2, 3, 4: // a leaf OU
			as.Scope = Scope{OU: o.ouIDs[leaves[rng.IntN(len(leaves))]], Subtree: true}
		case 5, 6: // a department
			as.Scope = Scope{OU: o.ouIDs[1+rng.IntN(10)*100], Subtree: true}
		case 7:
			as.Scope = Scope{Groups: []string{o.groupIDs[rng.IntN(benchGroups)]}}
		case 8:
			as.Scope = Scope{Filter: fmt.Sprintf(`department eq "dept%d"`, rng.IntN(50))}
		default:
			as.Scope = Scope{Relation: RelDirectReports}
		}
		o.snap.Assignments = append(o.snap.Assignments, as)
	}
	o.snap.LastIndex = 0
	return o
}

// fields renders user i as the store would.
func (o *benchOrg) fields(i int32) map[string]any {
	f := map[string]any{"username": fmt.Sprintf("user%d", i), "department": fmt.Sprintf("dept%d", i%50),
		"title": "Engineer", "status": "active", "protected": false,
		"ou": map[string]string{"id": o.ouIDs[o.userOU[i]], "name": o.ouPaths[o.userOU[i]]}}
	if m := o.manager[i]; m >= 0 {
		f["manager"] = map[string]string{"id": o.userIDs[m], "name": fmt.Sprintf("user%d", m)}
	}
	return f
}

type snapLoader struct{ s Snapshot }

func (l snapLoader) AuthzSnapshot(context.Context) (Snapshot, error) { return l.s, nil }

// loadBench builds the organisation and the engine once per test binary run, and records the
// heap the loaded engine holds.
func loadBench(b *testing.B) (*benchOrg, *Engine) {
	b.Helper()
	benchOnce.Do(func() {
		benchData = buildBenchOrg()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		benchEng = NewEngine(slog.New(slog.DiscardHandler))
		if err := benchEng.Load(context.Background(), snapLoader{benchData.snap}); err != nil {
			panic(err)
		}
		benchData.snap = Snapshot{} // drop the loader's copy; the engine holds what it needs
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		benchMem = after.HeapInuse - min(after.HeapInuse, before.HeapInuse)
	})
	return benchData, benchEng
}

// questions pre-builds n user.update questions of delegates on random users (most outside
// their scopes, some inside), so the timed loop measures Decide alone.
func (o *benchOrg) questions(n int) []*Question {
	rng := rand.New(rand.NewPCG(3, 4))
	qs := make([]*Question, n)
	for i := range qs {
		actor := o.delegates[rng.IntN(len(o.delegates))]
		target := int32(rng.IntN(benchUsers))
		f := o.fields(target)
		qs[i] = &Question{Actor: Actor{Kind: ActorUser, ID: o.userIDs[actor], Name: "delegate"}, Action: UserUpdate,
			Target: directory.Ref{Kind: directory.KindUser, ID: o.userIDs[target], Name: "target"},
			Before: f, After: f, Touched: []string{"title"}}
	}
	return qs
}

// BenchmarkDecide measures Decide on the loaded organisation and reports its median and 99th
// percentile latency, the share of questions allowed, and the heap the loaded engine holds.
func BenchmarkDecide(b *testing.B) {
	o, e := loadBench(b)
	qs := o.questions(100_000)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	allowed := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q := qs[i%len(qs)]
		t0 := time.Now()
		d := e.Decide(ctx, q)
		lat = append(lat, time.Since(t0))
		if d.Allow {
			allowed++
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1000, "p50_µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1000, "p99_µs")
	b.ReportMetric(float64(allowed)/float64(b.N), "allowed")
	b.ReportMetric(float64(benchMem)/(1<<20), "engine_MiB")
}

// BenchmarkWhoCan measures who-can: the candidates whose assignments cover a target, each then
// decided, on random targets.
func BenchmarkWhoCan(b *testing.B) {
	o, e := loadBench(b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	lat := make([]time.Duration, 0, b.N)
	found := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		target := int32(rng.IntN(benchUsers))
		f := o.fields(target)
		ref := directory.Ref{Kind: directory.KindUser, ID: o.userIDs[target]}
		t0 := time.Now()
		for _, c := range e.CandidatesFor(UserUpdate, ref, f) {
			if e.Decide(ctx, &Question{Actor: Actor{Kind: ActorUser, ID: c}, Action: UserUpdate, Target: ref,
				Before: f, After: f, Touched: []string{"title"}}).Allow {
				found++
			}
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max_ms")
	b.ReportMetric(float64(found)/float64(b.N), "actors/op")
}

// BenchmarkCanWhat100k measures the engine's side of can-what over a 100,000-object scope: every
// user of a department (100,000 of them) judged by Allowed, as the API does, for every action on
// users, for an HR delegate. (The API adds the SQL that reads them; docs/benchmarks.md has the
// end-to-end figure.)
func BenchmarkCanWhat100k(b *testing.B) {
	o, e := loadBench(b)
	ctx := context.Background()
	// An HR delegate over department 0 (OU index 1): a new holder group and assignment, folded
	// in like any event.
	dept := o.ouIDs[1]
	actor := Actor{Kind: ActorUser, ID: o.userIDs[7]}
	e.mu.Lock()
	e.st.addMember("bench-hr", actor.ID)
	e.st.putAssignment(&Assignment{ID: "bench-hr-a", Role: RoleHR, Holder: directory.Ref{Kind: directory.KindGroup, ID: "bench-hr"},
		Scope: Scope{OU: dept, Subtree: true}})
	e.st.lastIndex++ // as folding an event would: cached grants are now stale
	e.mu.Unlock()
	var inScope []int32
	for i := range int32(benchUsers) {
		if o.ouPaths[o.userOU[i]] >= "d0/" && o.ouPaths[o.userOU[i]] < "d0/\xff" {
			inScope = append(inScope, i)
		}
	}
	var actions []Action
	for _, a := range AllActions() {
		if k, ok := a.Kind(); a == DirectoryRead || ok && k == directory.KindUser && a != UserCreate {
			actions = append(actions, a)
		}
	}
	objs := make([]Object, len(inScope))
	for k, i := range inScope {
		objs[k] = Object{Ref: directory.Ref{Kind: directory.KindUser, ID: o.userIDs[i]}, Fields: o.fields(i)}
	}
	b.ResetTimer()
	allowed := 0
	for n := 0; n < b.N; n++ {
		for _, obj := range objs {
			allowed += len(e.Allowed(ctx, actor, obj, actions))
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(len(inScope)), "objects")
	b.ReportMetric(float64(len(actions)), "actions")
	b.ReportMetric(float64(allowed)/float64(b.N), "allowed/op")
}
