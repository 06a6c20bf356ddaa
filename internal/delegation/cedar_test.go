package delegation

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
)

// The reference point the delegation issue asks for: the same decisions, on the same
// organisation, by github.com/cedar-policy/cedar-go. Each assignment becomes one Cedar policy;
// users, OUs and groups become entities whose parents carry the OU tree and the memberships.

// cedarPolicies renders the benchmark's assignments as Cedar policies: one per assignment,
// for user.update of each attribute its role may update (Cedar has no attribute narrowing, so
// the attribute is part of the action), scoped by the OU, group, filter or relation.
func cedarPolicies(o *benchOrg, assignments []Assignment) string {
	var b strings.Builder
	for _, a := range assignments {
		role, _ := BuiltinRole(a.Role)
		if !role.Allows(UserUpdate) {
			continue
		}
		var actions []string
		for _, attr := range role.UserAttributes {
			actions = append(actions, fmt.Sprintf(`Action::"user.update.%s"`, attr))
		}
		fmt.Fprintf(&b, "permit(principal in Group::%q, action in [%s], resource", a.Holder.ID, strings.Join(actions, ", "))
		switch a.Scope.Kind() {
		case "ou":
			fmt.Fprintf(&b, " in OU::%q);\n", a.Scope.OU)
		case "groups":
			fmt.Fprintf(&b, " in Group::%q);\n", a.Scope.Groups[0])
		case "filter":
			dept := strings.TrimSuffix(strings.TrimPrefix(a.Scope.Filter, `department eq "`), `"`)
			fmt.Fprintf(&b, ") when { resource.department == %q };\n", dept)
		case "relation":
			b.WriteString(") when { resource has manager && resource.manager == principal };\n")
		}
	}
	return b.String()
}

// cedarEntities answers Cedar's entity lookups from the benchmark organisation, building each
// entity once (as an application's entity store would hold them).
type cedarEntities struct {
	o       *benchOrg
	mu      sync.Mutex
	cache   map[types.EntityUID]types.Entity
	userIdx map[string]int32
	parents map[string][]string // member ID -> groups (the memberships of the snapshot)
}

func newCedarEntities(o *benchOrg, memberships [][2]string) *cedarEntities {
	c := &cedarEntities{o: o, cache: map[types.EntityUID]types.Entity{}, userIdx: make(map[string]int32, benchUsers),
		parents: map[string][]string{}}
	for i, u := range o.userIDs {
		c.userIdx[u] = int32(i)
	}
	for _, m := range memberships {
		c.parents[m[1]] = append(c.parents[m[1]], m[0])
	}
	return c
}

var ouParentOf = map[string]string{}

func (c *cedarEntities) Get(uid types.EntityUID) (types.Entity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.cache[uid]; ok {
		return e, true
	}
	id := string(uid.ID)
	var parents []types.EntityUID
	for _, g := range c.parents[id] {
		parents = append(parents, types.NewEntityUID("Group", types.String(g)))
	}
	attrs := types.RecordMap{}
	switch uid.Type {
	case "User":
		i, ok := c.userIdx[id]
		if !ok {
			return types.Entity{}, false
		}
		parents = append(parents, types.NewEntityUID("OU", types.String(c.o.ouIDs[c.o.userOU[i]])))
		attrs["department"] = types.String(fmt.Sprintf("dept%d", i%50))
		if m := c.o.manager[i]; m >= 0 {
			attrs["manager"] = types.NewEntityUID("User", types.String(c.o.userIDs[m]))
		}
	case "OU":
		if p := ouParentOf[id]; p != "" {
			parents = append(parents, types.NewEntityUID("OU", types.String(p)))
		}
	}
	e := types.Entity{UID: uid, Parents: types.NewEntityUIDSet(parents...), Attributes: types.NewRecord(attrs)}
	c.cache[uid] = e
	return e, true
}

// BenchmarkDecideVsCedar decides the same questions with the engine and with cedar-go in one
// run, each in a phase of its own (interleaving them would measure each one's cache misses
// after the other), and reports the medians, their ratio and how many answers differ (none
// should). Cedar is measured twice: with every assignment's policy (the equivalent of the
// engine's configuration) and with only the policies of the actor's own holder groups (what an
// application that indexes its policies by principal would pass).
func BenchmarkDecideVsCedar(b *testing.B) {
	full := buildBenchOrg()
	o, e := loadBench(b)
	for _, p := range full.snap.OUs {
		ouParentOf[p[0]] = p[1]
	}
	all, err := cedar.NewPolicySetFromBytes("bench.cedar", []byte(cedarPolicies(o, full.snap.Assignments)))
	if err != nil {
		b.Fatal(err)
	}
	byHolder := map[string][]Assignment{}
	for _, a := range full.snap.Assignments {
		byHolder[a.Holder.ID] = append(byHolder[a.Holder.ID], a)
	}
	ents := newCedarEntities(o, full.snap.Memberships)
	qs := o.questions(100_000)
	ctx := context.Background()
	n := b.N
	engineLat, cedarLat, indexedLat := make([]time.Duration, n), make([]time.Duration, n), make([]time.Duration, n)
	answers := make([]bool, n)
	mismatches := 0
	b.ResetTimer()
	for i := 0; i < n; i++ {
		t0 := time.Now()
		answers[i] = e.Decide(ctx, qs[i%len(qs)]).Allow
		engineLat[i] = time.Since(t0)
	}
	request := func(q *Question) cedar.Request {
		return cedar.Request{Principal: types.NewEntityUID("User", types.String(q.Actor.ID)),
			Action:   types.NewEntityUID("Action", "user.update.title"),
			Resource: types.NewEntityUID("User", types.String(q.Target.ID)), Context: types.NewRecord(nil)}
	}
	for i := 0; i < n; i++ {
		q := qs[i%len(qs)]
		req := request(q)
		t0 := time.Now()
		d, _ := cedar.Authorize(all, ents, req)
		cedarLat[i] = time.Since(t0)
		if (d == cedar.Allow) != answers[i] {
			mismatches++
		}
	}
	indexed := map[string]*cedar.PolicySet{}
	for i := 0; i < n; i++ {
		q := qs[i%len(qs)]
		var mine []Assignment
		for _, g := range ents.parents[q.Actor.ID] {
			mine = append(mine, byHolder[g]...)
		}
		key := fmt.Sprint(ents.parents[q.Actor.ID])
		ps, ok := indexed[key]
		if !ok {
			if ps, err = cedar.NewPolicySetFromBytes("mine.cedar", []byte(cedarPolicies(o, mine))); err != nil {
				b.Fatal(err)
			}
			indexed[key] = ps
		}
		req := request(q)
		t0 := time.Now()
		d, _ := cedar.Authorize(ps, ents, req)
		indexedLat[i] = time.Since(t0)
		if (d == cedar.Allow) != answers[i] {
			mismatches++
		}
	}
	b.StopTimer()
	p50 := func(l []time.Duration) float64 {
		slices.Sort(l)
		return float64(l[len(l)/2].Nanoseconds()) / 1000
	}
	ep, cp, ip := p50(engineLat), p50(cedarLat), p50(indexedLat)
	b.ReportMetric(ep, "engine_p50_µs")
	b.ReportMetric(cp, "cedar_all_p50_µs")
	b.ReportMetric(ip, "cedar_indexed_p50_µs")
	b.ReportMetric(cp/ep, "cedar_all/engine")
	b.ReportMetric(ip/ep, "cedar_indexed/engine")
	b.ReportMetric(float64(mismatches), "mismatches")
}
