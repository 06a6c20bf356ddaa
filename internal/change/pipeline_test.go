package change_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/deputy-iam/deputy/internal/approval"
	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/store"
	"github.com/deputy-iam/deputy/internal/store/storetest"
)

// engine is a database the pipeline tests run on.
type engine struct {
	name string
	dsn  func(t testing.TB) string
	// replicas is true when several stores may open the same database at once, as several
	// Deputy replicas share one PostgreSQL database.
	replicas bool
}

var engines = []engine{
	{"sqlite", storetest.SQLiteDSN, false},
	{"postgres", storetest.PostgresDSN, true},
}

// world is a bootstrapped database with its pipeline.
type world struct {
	t     *testing.T
	ctx   context.Context
	dsn   string
	st    *store.Store
	p     *change.Pipeline
	admin delegation.Actor
	meta  change.Meta
}

func newWorld(t *testing.T, e engine) *world {
	t.Helper()
	dsn := e.dsn(t)
	st := storetest.Open(t, dsn)
	env := storetest.Bootstrap(t, st)
	return &world{t: t, ctx: context.Background(), dsn: dsn, st: st, p: env.Pipeline, admin: env.Admin,
		meta: change.Meta{Transport: audit.TransportAPI}}
}

// pipelines returns n pipelines that write to the world's database: on an engine with replicas
// each over a store of its own (as separate Deputy processes), otherwise all over the world's
// store (as separate pipelines in one process).
func (w *world) pipelines(e engine, n int) []*change.Pipeline {
	w.t.Helper()
	out := []*change.Pipeline{w.p}
	for len(out) < n {
		st := w.st
		if e.replicas {
			st = storetest.Open(w.t, w.dsn)
		}
		log := storetest.Logger(w.t)
		engine := delegation.NewEngine(log)
		p := change.New(st, engine, log, change.WithGate(approval.NewGate(engine)))
		if err := p.LoadPolicies(w.ctx); err != nil {
			w.t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// do submits op as the admin and fails the test unless it applies.
func (w *world) do(op change.Op) change.Result {
	w.t.Helper()
	res, err := w.p.Submit(w.ctx, w.admin, w.meta, op)
	if err != nil || res.Outcome != audit.Applied {
		w.t.Fatalf("%s %s: %+v, %v", op.Action, op.Target, res, err)
	}
	return res
}

func (w *world) user(name string) directory.User {
	w.t.Helper()
	w.do(change.Op{Action: delegation.UserCreate, User: &directory.UserInput{Username: name, OU: directory.RootPath}})
	u, err := w.st.User(w.ctx, directory.ParseRef(directory.KindUser, name))
	if err != nil {
		w.t.Fatal(err)
	}
	return u
}

// events returns the audit trail in index order and checks that its indexes are dense from 0.
func (w *world) events() []audit.Event {
	w.t.Helper()
	var all []audit.Event
	q := audit.Query{Limit: directory.MaxLimit}
	for {
		page, next, err := w.st.Events(w.ctx, q)
		if err != nil {
			w.t.Fatal(err)
		}
		all = append(all, page...)
		if next == 0 {
			break
		}
		q.Before = next
	}
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	for i, e := range all {
		if e.Index != int64(i) {
			w.t.Fatalf("audit event %d has index %d: the indexes are not dense", i, e.Index)
		}
	}
	return all
}

// counts is how many objects and outbox messages the database holds.
type counts struct{ ous, users, groups, sas, outbox int }

func (w *world) counts() counts {
	w.t.Helper()
	q := directory.ListQuery{Limit: directory.MaxLimit}
	ous, err1 := w.st.ListOUs(w.ctx, q)
	users, err2 := w.st.ListUsers(w.ctx, q)
	groups, err3 := w.st.ListGroups(w.ctx, q)
	sas, err4 := w.st.ListServiceAccounts(w.ctx, q)
	msgs, err5 := w.st.Outbox(w.ctx, "directory", 0, directory.MaxLimit)
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		w.t.Fatal(err)
	}
	return counts{len(ous.Items), len(users.Items), len(groups.Items), len(sas.Items), len(msgs)}
}

func forEngines(t *testing.T, fn func(t *testing.T, e engine)) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			fn(t, e)
		})
	}
}

// TestDenied submits ops as actors without rights: each is refused with not_authorized,
// recorded as denied, and changes nothing.
func TestDenied(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		w := newWorld(t, e)
		plain := w.user("plain")
		other := w.user("other")
		w.do(change.Op{Action: delegation.GroupCreate, Group: &directory.GroupInput{Name: "team", OU: "/"}})
		actors := []struct {
			name  string
			actor delegation.Actor
		}{
			{"plain user", storetest.ActorOf(plain)},
			{"system actor", delegation.SystemActor("lifecycle")},
			{"service account", delegation.Actor{Kind: delegation.ActorServiceAccount, ID: directory.NewID(), Name: "bot"}},
			{"unknown user", delegation.Actor{Kind: delegation.ActorUser, ID: directory.NewID(), Name: "ghost"}},
		}
		ops := []change.Op{
			{Action: delegation.UserCreate, User: &directory.UserInput{Username: "eve", OU: "/"}},
			{Action: delegation.UserUpdate, Target: directory.ParseRef(directory.KindUser, "other"), Patch: directory.Patch{"title": []byte(`"x"`)}},
			{Action: delegation.UserDisable, Target: directory.ParseRef(directory.KindUser, w.admin.ID)},
			{Action: delegation.UserDelete, Target: directory.ParseRef(directory.KindUser, "nobody")},
			{Action: delegation.UserIssueToken, Target: directory.ParseRef(directory.KindUser, other.ID), Token: &change.TokenInput{Name: "x"}},
			{Action: delegation.GroupAddMember, Target: directory.ParseRef(directory.KindGroup, "team"), Member: "plain"},
			{Action: delegation.OUCreate, OU: &directory.OUInput{Name: "x"}},
			{Action: delegation.SACreate, Service: &directory.ServiceAccountInput{Name: "bot", OU: "/", Owners: []string{"plain"}}},
		}
		for _, a := range actors {
			for _, op := range ops {
				before, n := w.counts(), len(w.events())
				res, err := w.p.Submit(w.ctx, a.actor, w.meta, op)
				want := delegation.ReasonNotAuthorized
				switch {
				case a.name == "unknown user" || a.name == "service account": // no such account
					want = delegation.ReasonActorInactive
				case a.name == "plain user" && op.Action == delegation.GroupAddMember:
					want = delegation.ReasonSelfEscalation // plain adds plain
				}
				var denied *change.DeniedError
				if !errors.As(err, &denied) || !errors.Is(err, change.ErrDenied) || denied.Reason != want {
					t.Fatalf("%s: %s: %v, want a denial for %s", a.name, op.Action, err, want)
				}
				evs := w.events()
				if len(evs) != n+1 {
					t.Fatalf("%s: %s wrote %d events", a.name, op.Action, len(evs)-n)
				}
				ev := evs[n]
				if ev.Outcome != audit.Denied || ev.Reason != want || ev.Action != string(op.Action) ||
					ev.Actor != a.actor.Principal() || ev.Before != nil || ev.After != nil || len(ev.Authority.Assignments) != 0 {
					t.Errorf("%s: %s recorded as %+v", a.name, op.Action, ev)
				}
				if res.Outcome != audit.Denied || res.Event != ev.Index || denied.Event != ev.Index {
					t.Errorf("%s: %s: result %+v, denial event %d, recorded %d", a.name, op.Action, res, denied.Event, ev.Index)
				}
				if after := w.counts(); after != before {
					t.Errorf("%s: %s changed the directory: %+v -> %+v", a.name, op.Action, before, after)
				}
			}
		}
		if got, err := w.st.User(w.ctx, directory.ParseRef(directory.KindUser, "other")); err != nil || got.Title != "" || got.Version != 1 {
			t.Errorf("other after denied updates: %+v, %v", got, err)
		}
		if got, err := w.st.User(w.ctx, directory.ParseRef(directory.KindUser, w.admin.ID)); err != nil || got.Status != directory.StatusActive {
			t.Errorf("admin after a denied disable: %+v, %v", got, err)
		}
	})
}

// TestBatchRollback submits a batch whose third op fails: the first two are rolled back, and
// the failure alone is recorded.
func TestBatchRollback(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		w := newWorld(t, e)
		w.user("taken")
		third := []struct {
			name   string
			op     change.Op
			want   error
			reason string
		}{
			{"conflict", change.Op{Action: delegation.UserCreate, User: &directory.UserInput{Username: "TAKEN", OU: "/"}}, directory.ErrConflict, "conflict"},
			{"not found", change.Op{Action: delegation.UserDelete, Target: directory.ParseRef(directory.KindUser, "nobody")}, directory.ErrNotFound, "not_found"},
			{"stale", change.Op{Action: delegation.UserUpdate, Target: directory.ParseRef(directory.KindUser, "taken"), IfVersion: 7,
				Patch: directory.Patch{"title": []byte(`"x"`)}}, directory.ErrStale, "stale_version"},
			{"invalid", change.Op{Action: delegation.UserCreate, User: &directory.UserInput{Username: "x", OU: "batch-ou/missing"}}, directory.ErrInvalid, "invalid"},
		}
		for i, tc := range third {
			before, n := w.counts(), len(w.events())
			ops := []change.Op{
				{Action: delegation.OUCreate, OU: &directory.OUInput{Name: "batch-ou"}},
				{Action: delegation.UserCreate, User: &directory.UserInput{Username: fmt.Sprintf("batch-user-%d", i), OU: "batch-ou"}},
				tc.op,
				{Action: delegation.GroupCreate, Group: &directory.GroupInput{Name: "never", OU: "/"}},
			}
			results, err := w.p.SubmitBatch(w.ctx, w.admin, w.meta, ops)
			if !errors.Is(err, tc.want) {
				t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
			}
			evs := w.events()
			if len(evs) != n+1 {
				t.Fatalf("%s: the batch left %d events, want 1 (the failure)", tc.name, len(evs)-n)
			}
			ev := evs[n]
			if ev.Outcome != audit.Failed || ev.Reason != tc.reason || ev.Action != string(tc.op.Action) {
				t.Errorf("%s: recorded %s %s/%s", tc.name, ev.Action, ev.Outcome, ev.Reason)
			}
			if len(results) != 3 || results[2].Outcome != audit.Failed || results[2].Event != ev.Index {
				t.Fatalf("%s: results %+v, want 3 with the failure (event %d) last", tc.name, results, ev.Index)
			}
			for j, r := range results[:2] {
				// The first two were rolled back: their results name the failure that undid them.
				if r.Outcome != audit.Failed || r.Event != ev.Index || r.Version != 0 || r.Target.Key() == "" {
					t.Errorf("%s: result %d of a rolled-back batch: %+v", tc.name, j, r)
				}
			}
			if after := w.counts(); after != before {
				t.Errorf("%s: the rolled-back batch changed the directory: %+v -> %+v", tc.name, before, after)
			}
			if _, err := w.st.OU(w.ctx, directory.ParseRef(directory.KindOU, "batch-ou")); !errors.Is(err, directory.ErrNotFound) {
				t.Errorf("%s: the OU of the rolled-back batch: %v", tc.name, err)
			}
		}
		// The same batch without the failing op applies whole.
		results, err := w.p.SubmitBatch(w.ctx, w.admin, w.meta, []change.Op{
			{Action: delegation.OUCreate, OU: &directory.OUInput{Name: "batch-ou"}},
			{Action: delegation.UserCreate, User: &directory.UserInput{Username: "batch-user", OU: "batch-ou"}},
		})
		if err != nil || len(results) != 2 {
			t.Fatalf("good batch: %+v, %v", results, err)
		}
		evs := w.events()
		for i, r := range results {
			e := evs[r.Event]
			if r.Outcome != audit.Applied || e.Outcome != audit.Applied || e.Target.ID != r.Target.ID {
				t.Errorf("good batch result %d: %+v, event %+v", i, r, e)
			}
		}
		if results[1].Event != results[0].Event+1 {
			t.Errorf("the batch's events are %d and %d", results[0].Event, results[1].Event)
		}
	})
}

// TestConcurrentSameVersion updates one user from many goroutines, all with the same If-Match:
// exactly one applies, every other gets ErrStale, and every attempt is recorded.
func TestConcurrentSameVersion(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		for _, npipes := range []int{1, 3} {
			t.Run(fmt.Sprintf("%d pipelines", npipes), func(t *testing.T) {
				w := newWorld(t, e)
				u := w.user("contended")
				pipes := w.pipelines(e, npipes)
				n := len(w.events())
				const workers = 24
				var (
					wg    sync.WaitGroup
					start = make(chan struct{})
					errs  = make([]error, workers)
					res   = make([]change.Result, workers)
				)
				for i := range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						op := change.Op{Action: delegation.UserUpdate, Target: u.Ref(), IfVersion: u.Version,
							Patch: directory.Patch{"title": []byte(fmt.Sprintf(`"writer %d"`, i))}}
						res[i], errs[i] = pipes[i%len(pipes)].Submit(w.ctx, w.admin, w.meta, op)
					}()
				}
				close(start)
				wg.Wait()
				winner := -1
				for i, err := range errs {
					switch {
					case err == nil:
						if winner >= 0 {
							t.Errorf("writers %d and %d both applied", winner, i)
						}
						winner = i
					case !errors.Is(err, directory.ErrStale):
						t.Errorf("writer %d: %v, want ErrStale", i, err)
					case res[i].Outcome != audit.Failed:
						t.Errorf("writer %d: result %+v", i, res[i])
					}
				}
				if winner < 0 {
					t.Fatal("no writer applied")
				}
				got, err := w.st.User(w.ctx, u.Ref())
				if err != nil || got.Version != u.Version+1 || got.Title != fmt.Sprintf("writer %d", winner) {
					t.Errorf("user after the race: %+v, %v (winner %d)", got, err, winner)
				}
				evs := w.events()[n:]
				applied, stale := 0, 0
				for _, ev := range evs {
					switch {
					case ev.Target.ID != u.ID || ev.Action != string(delegation.UserUpdate):
						t.Errorf("unexpected event %+v", ev)
					case ev.Outcome == audit.Applied:
						applied++
					case ev.Outcome == audit.Failed && ev.Reason == "stale_version":
						stale++
					}
				}
				if applied != 1 || stale != workers-1 {
					t.Errorf("%d applied and %d stale events, want 1 and %d", applied, stale, workers-1)
				}
				if res[winner].Event < int64(n) || evs[res[winner].Event-int64(n)].Outcome != audit.Applied {
					t.Errorf("the winner's result names event %d", res[winner].Event)
				}
			})
		}
	})
}

// TestConcurrentOppositeNesting nests a into b and b into a at the same time, many times over:
// the two may never both succeed, since together they make a cycle.
func TestConcurrentOppositeNesting(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		for _, npipes := range []int{1, 2} {
			t.Run(fmt.Sprintf("%d pipelines", npipes), func(t *testing.T) {
				w := newWorld(t, e)
				pipes := w.pipelines(e, npipes)
				const rounds = 25
				for r := range rounds {
					a, b := fmt.Sprintf("a%d", r), fmt.Sprintf("b%d", r)
					for _, g := range []string{a, b} {
						w.do(change.Op{Action: delegation.GroupCreate, Group: &directory.GroupInput{Name: g, OU: "/"}})
					}
					var (
						wg    sync.WaitGroup
						start = make(chan struct{})
						errs  [2]error
					)
					for i, pair := range [2][2]string{{b, a}, {a, b}} {
						wg.Add(1)
						go func() {
							defer wg.Done()
							<-start
							_, errs[i] = pipes[i%len(pipes)].Submit(w.ctx, w.admin, w.meta, change.Op{Action: delegation.GroupAddMember,
								Target: directory.ParseRef(directory.KindGroup, pair[0]), Member: "group:" + pair[1]})
						}()
					}
					close(start)
					wg.Wait()
					ok := 0
					for i, err := range errs {
						switch {
						case err == nil:
							ok++
						case !errors.Is(err, directory.ErrConflict):
							t.Errorf("round %d, nesting %d: %v, want success or a cycle conflict", r, i, err)
						}
					}
					if ok != 1 {
						t.Fatalf("round %d: %d of the two opposite nestings applied, want exactly 1 (%v)", r, ok, errs)
					}
					for _, g := range []string{a, b} {
						ref := directory.ParseRef(directory.KindGroup, g)
						gr, err := w.st.Group(w.ctx, ref)
						if err != nil {
							t.Fatal(err)
						}
						ms, err := w.st.Memberships(w.ctx, gr.Ref())
						if err != nil {
							t.Fatal(err)
						}
						for _, m := range ms {
							if m.Group.ID == gr.ID {
								t.Fatalf("round %d: group %s contains itself", r, g)
							}
						}
					}
				}
				w.events() // the trail is still dense
			})
		}
	})
}

// TestConcurrentAdminsDisableEachOther has the two tier-0 admins disable each other at the same
// time: one applies, the other is refused, and an active admin remains.
func TestConcurrentAdminsDisableEachOther(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		w := newWorld(t, e)
		pipes := w.pipelines(e, 2)
		for r := range 10 {
			second := w.user(fmt.Sprintf("second%d", r))
			_, err := pipes[0].Submit(w.ctx, w.admin, w.meta, change.Op{Action: delegation.RoleAssign,
				Assignment: &delegation.AssignmentInput{Role: delegation.RoleTier0, Holder: delegation.HolderInput{User: second.ID},
					Scope: delegation.ScopeInput{OU: "/"}, Justification: "a second admin"}})
			if err != nil {
				t.Fatal(err)
			}
			first, err := w.st.User(w.ctx, directory.Ref{Kind: directory.KindUser, ID: w.admin.ID})
			if err != nil {
				t.Fatal(err)
			}
			admins := [2]directory.User{first, second}
			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				errs  [2]error
			)
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, errs[i] = pipes[i].Submit(w.ctx, storetest.ActorOf(admins[i]), w.meta,
						change.Op{Action: delegation.UserDisable, Target: admins[1-i].Ref()})
				}()
			}
			close(start)
			wg.Wait()
			if (errs[0] == nil) == (errs[1] == nil) {
				t.Fatalf("round %d: mutual disables gave %v and %v, want exactly one applied", r, errs[0], errs[1])
			}
			var holder directory.User
			for i, err := range errs {
				if err == nil {
					holder = admins[i]
				} else if !errors.Is(err, directory.ErrConflict) && !errors.Is(err, change.ErrDenied) {
					t.Errorf("round %d: admin %d: %v", r, i, err)
				}
			}
			if u, err := w.st.User(w.ctx, holder.Ref()); err != nil || u.Status != directory.StatusActive {
				t.Fatalf("round %d: no active tier-0 admin is left: %v %v", r, u.Status, err)
			}
			if held, err := w.st.Assignments(w.ctx, delegation.RoleTier0, holder.ID, "", 1); err != nil || len(held) != 1 {
				t.Fatalf("round %d: the survivor holds no tier-0 assignment: %v", r, err)
			}
			// Make the survivor the first admin of the next round.
			w.admin = storetest.ActorOf(holder)
		}
	})
}

// TestConcurrentMixedOps runs nestings, member changes and updates from many goroutines over
// several pipelines at once. Every op must end as applied or as a recorded directory failure:
// the locks the store takes must never deadlock or otherwise fail a transaction.
func TestConcurrentMixedOps(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		w := newWorld(t, e)
		pipes := w.pipelines(e, 3)
		const groups, workers, opsPerWorker = 6, 12, 15
		for g := range groups {
			w.do(change.Op{Action: delegation.GroupCreate, Group: &directory.GroupInput{Name: fmt.Sprintf("g%d", g), OU: "/"}})
		}
		users := make([]directory.User, workers)
		for i := range users {
			users[i] = w.user(fmt.Sprintf("u%d", i))
		}
		n := len(w.events())
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			mu      sync.Mutex
			applied int
			failed  int
		)
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				p := pipes[i%len(pipes)]
				for j := range opsPerWorker {
					g := func(k int) directory.Ref {
						return directory.ParseRef(directory.KindGroup, fmt.Sprintf("g%d", k%groups))
					}
					var op change.Op
					switch j % 3 {
					case 0:
						op = change.Op{Action: delegation.GroupAddMember, Target: g(i + j), Member: fmt.Sprintf("group:g%d", (i+2*j+1)%groups)}
					case 1:
						op = change.Op{Action: delegation.UserUpdate, Target: users[i].Ref(), Patch: directory.Patch{"title": []byte(fmt.Sprintf(`"t%d"`, j))}}
					case 2:
						op = change.Op{Action: delegation.GroupAddMember, Target: g(i * j), Member: "user:" + users[i].Username}
					}
					_, err := p.Submit(w.ctx, w.admin, w.meta, op)
					mu.Lock()
					switch {
					case err == nil:
						applied++
					case change.FailureReason(err) != "":
						failed++
					default:
						t.Errorf("worker %d op %d (%s): an infrastructure error: %v", i, j, op.Action, err)
					}
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		evs := w.events()[n:]
		if len(evs) != applied+failed || applied == 0 {
			t.Errorf("%d events for %d applied and %d failed ops", len(evs), applied, failed)
		}
		// No group may contain itself.
		for g := range groups {
			gr, err := w.st.Group(w.ctx, directory.ParseRef(directory.KindGroup, fmt.Sprintf("g%d", g)))
			if err != nil {
				t.Fatal(err)
			}
			ms, err := w.st.Memberships(w.ctx, gr.Ref())
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if m.Group.ID == gr.ID {
					t.Errorf("group %s contains itself", gr.Name)
				}
			}
		}
	})
}
