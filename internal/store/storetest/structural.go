package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
)

// structObj is an object with the getter filter.Match evaluates it with: its attributes, and
// its place (OU chain, group closure, manager, owners) computed here from the OU table and the
// direct memberships, independently of the store's SQL.
type structObj struct {
	kind directory.Kind
	id   string
	name string
	get  filter.Getter
}

// structWorld is the organisation testStructuralAgreesWithMatch runs over.
type structWorld struct {
	objs   []structObj
	ous    []string // IDs
	users  []string
	groups []string
	all    []string // every object ID
}

// buildStructWorld creates OUs, users (some without a manager), nested groups with owners and
// service accounts, and returns them with independent getters.
func buildStructWorld(t *testing.T, f *fixture, r *rand.Rand) *structWorld {
	paths := []string{"/"}
	for i := range 8 {
		parent := pick(r, paths)
		name := fmt.Sprintf("ou%d", i)
		f.mkOU(name, parent)
		if parent == "/" {
			paths = append(paths, name)
		} else {
			paths = append(paths, parent+"/"+name)
		}
	}
	var users []string
	for i := range 20 {
		in := directory.UserInput{Username: fmt.Sprintf("user%02d", i), OU: pick(r, paths), Department: pick(r, []string{"Sales", "IT"})}
		if len(users) > 0 && r.IntN(2) == 0 {
			in.Manager = pick(r, users)
		}
		users = append(users, f.mkUser(in).Username)
	}
	var groups []string
	for i := range 8 {
		var owners []string
		for range r.IntN(3) {
			owners = append(owners, pick(r, users))
		}
		g := f.mkGroup(fmt.Sprintf("grp%d", i), pick(r, paths), owners...)
		for range r.IntN(4) {
			m := "user:" + pick(r, users)
			if len(groups) > 0 && r.IntN(3) == 0 {
				m = "group:" + pick(r, groups) // earlier groups only: no cycles
			}
			if res, err := f.try(change.Op{Action: delegation.GroupAddMember, Target: groupRef(g.Name), Member: m}); err != nil && res.Outcome == "" {
				t.Fatalf("add %s to %s: %v", m, g.Name, err)
			}
		}
		groups = append(groups, g.Name)
	}
	for i := range 4 {
		s := f.mkSA(fmt.Sprintf("bot%d", i), pick(r, users))
		f.do(change.Op{Action: delegation.SAMove, Target: saRef(s.ID), To: pick(r, paths[1:])})
		f.addMember(pick(r, groups), "sa:"+s.Name)
	}

	// The place of every object, from the tables read plainly.
	q := directory.ListQuery{Limit: directory.MaxLimit}
	ous, err := f.st.ListOUs(f.ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	parent := map[string]string{}
	w := &structWorld{}
	for _, o := range ous.Items {
		parent[o.ID] = o.ParentID
		w.ous = append(w.ous, o.ID)
	}
	chain := func(start string) []string {
		var out []string
		for id := start; id != ""; id = parent[id] {
			out = append(out, id)
		}
		return out
	}
	gs, err := f.st.ListGroups(f.ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	memberOf := map[string][]string{}
	for _, g := range gs.Items {
		w.groups = append(w.groups, g.ID)
		ms, err := f.st.Members(f.ctx, g.Ref(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms.Items {
			memberOf[m.Ref.ID] = append(memberOf[m.Ref.ID], g.ID)
		}
	}
	closure := func(id string) []string {
		out := []string{id}
		for i := 0; i < len(out); i++ {
			for _, g := range memberOf[out[i]] {
				if !slices.Contains(out, g) {
					out = append(out, g)
				}
			}
		}
		return out
	}
	ownerIDs := func(refs []directory.Ref) []string {
		var out []string
		for _, r := range refs {
			out = append(out, r.ID)
		}
		return out
	}
	place := func(id, ou string, own func(string) (any, bool)) filter.Getter {
		return func(attr string) (any, bool) {
			switch attr {
			case filter.AttrOUIDs:
				return chain(ou), true
			case filter.AttrGroupIDs:
				return closure(id), true
			}
			return own(attr)
		}
	}
	for _, o := range ous.Items {
		w.objs = append(w.objs, structObj{directory.KindOU, o.ID, o.DisplayPath(), place(o.ID, o.ID, func(attr string) (any, bool) {
			switch attr {
			case "id":
				return o.ID, true
			case "name":
				return o.Name, true
			}
			return nil, false
		})})
	}
	for _, u := range f.allUsers("") {
		w.users = append(w.users, u.ID)
		w.objs = append(w.objs, structObj{directory.KindUser, u.ID, u.Username, place(u.ID, u.OUID, func(attr string) (any, bool) {
			if attr == filter.AttrManagerID {
				return u.ManagerID, true
			}
			return u.Get(attr)
		})})
	}
	for _, g := range gs.Items {
		w.objs = append(w.objs, structObj{directory.KindGroup, g.ID, g.Name, place(g.ID, g.OUID, func(attr string) (any, bool) {
			switch attr {
			case filter.AttrOwnerIDs:
				return ownerIDs(g.Owners), true
			case "id":
				return g.ID, true
			case "name":
				return g.Name, true
			}
			return nil, false
		})})
	}
	sas, err := f.st.ListServiceAccounts(f.ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sas.Items {
		w.objs = append(w.objs, structObj{directory.KindServiceAccount, s.ID, s.Name, place(s.ID, s.OUID, func(attr string) (any, bool) {
			switch attr {
			case filter.AttrOwnerIDs:
				return ownerIDs(s.Owners), true
			case "id":
				return s.ID, true
			case "name":
				return s.Name, true
			}
			return nil, false
		})})
	}
	for _, o := range w.objs {
		w.all = append(w.all, o.id)
	}
	return w
}

// randomStructural draws an expression of structural nodes under And, Or and Not.
func (w *structWorld) randomStructural(r *rand.Rand, depth int) filter.Expr {
	if depth > 0 && r.IntN(3) > 0 {
		switch r.IntN(3) {
		case 0:
			return &filter.And{Left: w.randomStructural(r, depth-1), Right: w.randomStructural(r, depth-1)}
		case 1:
			return &filter.Or{Left: w.randomStructural(r, depth-1), Right: w.randomStructural(r, depth-1)}
		default:
			return &filter.Not{X: w.randomStructural(r, depth-1)}
		}
	}
	switch r.IntN(8) {
	case 0, 1:
		return &filter.Within{OU: pick(r, w.ous), Subtree: r.IntN(2) == 0}
	case 2, 3:
		gs := []string{pick(r, w.groups)}
		if r.IntN(3) == 0 {
			gs = append(gs, pick(r, w.all)) // not always a group
		}
		return &filter.MemberOf{Groups: gs}
	case 4:
		return &filter.Related{Attr: "id", ID: pick(r, w.all)}
	case 5:
		return &filter.Related{Attr: filter.AttrManagerID, ID: pick(r, w.users)}
	case 6:
		return &filter.Related{Attr: filter.AttrOwnerIDs, ID: pick(r, w.users)}
	}
	return &filter.Nothing{}
}

// testStructuralAgreesWithMatch checks that the SQL translation of the structural filter nodes
// delegation scopes compile to (Within, MemberOf, Related, Nothing, under And, Or and Not)
// selects, for every kind of object, exactly what filter.Match selects on the same objects.
// listIDs lists one page of up to MaxLimit objects and returns their IDs.
func listIDs[T any](t *testing.T, list func(context.Context, directory.ListQuery) (directory.Page[T], error), q directory.ListQuery,
	id func(T) string) []string {
	t.Helper()
	q.Limit = directory.MaxLimit
	page, err := list(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return pageIDs(page.Items, id)
}

// kindUserFacts stands for ListUserFacts among the kinds' lists.
const kindUserFacts directory.Kind = "user facts"

func testStructuralAgreesWithMatch(t *testing.T, f *fixture) {
	r := rand.New(rand.NewPCG(3, 5))
	w := buildStructWorld(t, f, r)
	list := map[directory.Kind]func(e filter.Expr) []string{
		directory.KindOU: func(e filter.Expr) []string {
			return listIDs(t, f.st.ListOUs, directory.ListQuery{Filter: e}, func(o directory.OU) string { return o.ID })
		},
		directory.KindUser: func(e filter.Expr) []string {
			return listIDs(t, f.st.ListUsers, directory.ListQuery{Filter: e}, func(u directory.User) string { return u.ID })
		},
		// The users' facts are read by a query of their own (the kind is told apart below).
		kindUserFacts: func(e filter.Expr) []string {
			var ids []string
			if err := f.st.EachUserFact(f.ctx, e, func(u directory.User) error { ids = append(ids, u.ID); return nil }); err != nil {
				t.Fatal(err)
			}
			return ids
		},
		directory.KindGroup: func(e filter.Expr) []string {
			return listIDs(t, f.st.ListGroups, directory.ListQuery{Filter: e}, func(g directory.Group) string { return g.ID })
		},
		directory.KindServiceAccount: func(e filter.Expr) []string {
			return listIDs(t, f.st.ListServiceAccounts, directory.ListQuery{Filter: e}, func(s directory.ServiceAccount) string { return s.ID })
		},
	}
	// Fixed cases first: the absent manager under Not, and the empty group list.
	exprs := []filter.Expr{
		&filter.Not{X: &filter.Related{Attr: filter.AttrManagerID, ID: w.users[1]}},
		&filter.Not{X: &filter.Related{Attr: filter.AttrOwnerIDs, ID: w.users[1]}},
		&filter.Not{X: &filter.MemberOf{Groups: []string{w.groups[0]}}},
		&filter.Not{X: &filter.Within{OU: w.ous[0], Subtree: true}},
		&filter.MemberOf{},
		&filter.Not{X: &filter.Nothing{}},
	}
	for range 300 {
		exprs = append(exprs, w.randomStructural(r, 3))
	}
	mismatches := 0
	for _, e := range exprs {
		for kind, ls := range list {
			got := ls(e)
			for _, o := range w.objs {
				if o.kind != kind && (kind != kindUserFacts || o.kind != directory.KindUser) {
					continue
				}
				if want := filter.Match(e, o.get); slices.Contains(got, o.id) != want {
					mismatches++
					t.Errorf("%s %s under %s: the store selects it: %v, filter.Match: %v", kind, o.name, describeExpr(e), !want, want)
				}
			}
		}
		if mismatches > 20 {
			t.Fatal("too many mismatches")
		}
	}
}

// describeExpr renders an expression for messages.
func describeExpr(e filter.Expr) string {
	switch e := e.(type) {
	case *filter.And:
		return "(" + describeExpr(e.Left) + " and " + describeExpr(e.Right) + ")"
	case *filter.Or:
		return "(" + describeExpr(e.Left) + " or " + describeExpr(e.Right) + ")"
	case *filter.Not:
		return "not " + describeExpr(e.X)
	case *filter.Within:
		return fmt.Sprintf("within(%s, subtree=%v)", e.OU, e.Subtree)
	case *filter.MemberOf:
		return fmt.Sprintf("member_of%v", e.Groups)
	case *filter.Related:
		return fmt.Sprintf("related(%s=%s)", e.Attr, e.ID)
	case *filter.Nothing:
		return "nothing"
	}
	return fmt.Sprintf("%v", e)
}
