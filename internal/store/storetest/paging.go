package storetest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
)

// pageAll walks a list page by page with the given page size and returns the IDs in order. It
// fails on a page larger than size, and on an empty page that promises more.
func pageAll[T any](t *testing.T, size int, list func(q directory.ListQuery) (directory.Page[T], error), id func(T) string,
	e filter.Expr) []string {
	t.Helper()
	var ids []string
	q := directory.ListQuery{Filter: e, Limit: size}
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("pagination does not end")
		}
		page, err := list(q)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		if len(page.Items) > size || (page.Next != "" && len(page.Items) != size) {
			t.Fatalf("page %d has %d items for a limit of %d (next %q)", pages, len(page.Items), size, page.Next)
		}
		for _, it := range page.Items {
			ids = append(ids, id(it))
		}
		if page.Next == "" {
			return ids
		}
		q.Cursor = page.Next
	}
}

func testPagination(t *testing.T, f *fixture) {
	owner := f.mkUser(directory.UserInput{Username: "owner"})
	f.mkGroup("big", "")
	for i := range 23 {
		// Mixed case and non-ASCII so that the sort key (the folded name) differs from the name.
		name := fmt.Sprintf("%s%02d", []string{"a", "B", "c", "É"}[i%4], 22-i)
		if i%4 == 3 {
			f.mkOU(name, "")
		} else {
			f.mkUser(directory.UserInput{Username: fmt.Sprintf("%s%02d", []string{"a", "B", "c"}[i%3], 22-i), Department: []string{"x", "y"}[i%2]})
		}
		f.mkGroup(name+"-g", "")
		if i%2 == 0 {
			f.mkSA(fmt.Sprintf("bot%02d", 22-i), owner.ID)
		}
	}
	// Members whose names collide across kinds: the tie-breaker keeps them apart.
	f.mkUser(directory.UserInput{Username: "ops"})
	f.mkGroup("OPS", "")
	f.mkSA("Ops", owner.ID)
	for _, m := range []string{"user:ops", "group:ops", "sa:ops"} {
		f.addMember("big", m)
	}
	for _, u := range f.allUsers(`department pr`)[:10] {
		f.addMember("big", u.ID)
	}

	users := func(q directory.ListQuery) (directory.Page[directory.User], error) { return f.st.ListUsers(f.ctx, q) }
	ous := func(q directory.ListQuery) (directory.Page[directory.OU], error) { return f.st.ListOUs(f.ctx, q) }
	groups := func(q directory.ListQuery) (directory.Page[directory.Group], error) { return f.st.ListGroups(f.ctx, q) }
	sas := func(q directory.ListQuery) (directory.Page[directory.ServiceAccount], error) {
		return f.st.ListServiceAccounts(f.ctx, q)
	}
	members := func(q directory.ListQuery) (directory.Page[directory.Member], error) {
		return f.st.Members(f.ctx, groupRef("big"), q)
	}
	userID := func(u directory.User) string { return u.ID }
	ouID := func(o directory.OU) string { return o.ID }
	groupID := func(g directory.Group) string { return g.ID }
	saID := func(s directory.ServiceAccount) string { return s.ID }
	memberID := func(m directory.Member) string { return m.Ref.ID }

	type lister struct {
		name   string
		all    func(size int, e filter.Expr) []string
		schema filter.Schema
		filter string
		min    int // at least this many objects in the unfiltered list
	}
	listers := []lister{
		{"users", func(n int, e filter.Expr) []string { return pageAll(t, n, users, userID, e) }, directory.UserSchema, `department eq "x"`, 17},
		{"OUs", func(n int, e filter.Expr) []string { return pageAll(t, n, ous, ouID, e) }, directory.OUSchema, `name sw "É"`, 6},
		{"groups", func(n int, e filter.Expr) []string { return pageAll(t, n, groups, groupID, e) }, directory.GroupSchema, `name ew "-g"`, 25},
		{"service accounts", func(n int, e filter.Expr) []string { return pageAll(t, n, sas, saID, e) }, directory.ServiceAccountSchema, `name sw "bot"`, 12},
		{"members", func(n int, e filter.Expr) []string { return pageAll(t, n, members, memberID, e) }, directory.MemberSchema, `name eq "ops"`, 13},
	}
	for _, l := range listers {
		t.Run(l.name, func(t *testing.T) {
			whole := l.all(directory.MaxLimit, nil)
			if len(whole) < l.min {
				t.Fatalf("%d objects, want at least %d", len(whole), l.min)
			}
			seen := map[string]bool{}
			for _, id := range whole {
				if seen[id] {
					t.Fatalf("%s listed twice", id)
				}
				seen[id] = true
			}
			for _, size := range []int{1, 2, 5, 7, len(whole) - 1, len(whole), len(whole) + 1} {
				if got := l.all(size, nil); !reflect.DeepEqual(got, whole) {
					t.Errorf("pages of %d: %v, want %v", size, got, whole)
				}
			}
			e := f.parse(l.filter, l.schema)
			filtered := l.all(directory.MaxLimit, e)
			if len(filtered) == 0 || len(filtered) == len(whole) {
				t.Fatalf("filter %s selects %d of %d", l.filter, len(filtered), len(whole))
			}
			for _, size := range []int{1, 3} {
				if got := l.all(size, e); !reflect.DeepEqual(got, filtered) {
					t.Errorf("filtered pages of %d: %v, want %v", size, got, filtered)
				}
			}
		})
	}

	// User facts are every user, with the fields they promise; a filter that reads attributes
	// is refused rather than half applied.
	full, err := f.st.ListUsers(f.ctx, directory.ListQuery{Limit: directory.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	facts := map[string]directory.User{}
	if err := f.st.EachUserFact(f.ctx, nil, func(u directory.User) error { facts[u.ID] = u; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(facts) != len(full.Items) {
		t.Errorf("user facts: %d users, want %d", len(facts), len(full.Items))
	}
	for _, u := range full.Items {
		want := directory.User{ID: u.ID, Username: u.Username, Status: u.Status, OUID: u.OUID, ManagerID: u.ManagerID, Protected: u.Protected}
		if !reflect.DeepEqual(facts[u.ID], want) {
			t.Errorf("facts of %s: %+v, want %+v", u.Username, facts[u.ID], want)
		}
	}
	if err := f.st.EachUserFact(f.ctx, f.parse(`department eq "x"`, directory.UserSchema), func(directory.User) error { return nil }); err == nil {
		t.Error("user facts under an attribute filter: no error")
	}
	stop := errors.New("stop")
	n := 0
	if err := f.st.EachUserFact(f.ctx, nil, func(directory.User) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("user facts stopped by fn: %v after %d users", err, n)
	}

	// A default limit applies when none is given.
	page, err := f.st.ListGroups(f.ctx, directory.ListQuery{})
	if err != nil || len(page.Items) == 0 || len(page.Items) > directory.DefaultLimit {
		t.Errorf("default page: %d items, %v", len(page.Items), err)
	}

	// A cursor stays valid while the list changes: objects created before it do not reappear.
	first, err := f.st.ListUsers(f.ctx, directory.ListQuery{Limit: 3})
	if err != nil || first.Next == "" {
		t.Fatalf("first page: %v", err)
	}
	f.mkUser(directory.UserInput{Username: "0first"})
	f.mkUser(directory.UserInput{Username: "zz-last"})
	rest := pageAll(t, 4, func(q directory.ListQuery) (directory.Page[directory.User], error) {
		if q.Cursor == "" {
			q.Cursor = first.Next
		}
		return f.st.ListUsers(f.ctx, q)
	}, userID, nil)
	got := append(pageIDs(first.Items, userID), rest...)
	want := pageAll(t, directory.MaxLimit, users, userID, nil)[1:] // everyone but "0first"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pages across inserts: %v, want %v", got, want)
	}

	// A cursor this server did not issue is invalid input.
	for _, cur := range []string{"not a cursor!", base64.RawURLEncoding.EncodeToString([]byte("[1,2]")), "e30=="} {
		_, err := f.st.ListUsers(f.ctx, directory.ListQuery{Cursor: cur})
		wantErr(t, err, directory.ErrInvalid, "cursor")
		_, err = f.st.ListOUs(f.ctx, directory.ListQuery{Cursor: cur})
		wantErr(t, err, directory.ErrInvalid, "cursor")
		_, err = f.st.ListGroups(f.ctx, directory.ListQuery{Cursor: cur})
		wantErr(t, err, directory.ErrInvalid, "cursor")
		_, err = f.st.ListServiceAccounts(f.ctx, directory.ListQuery{Cursor: cur})
		wantErr(t, err, directory.ErrInvalid, "cursor")
		_, err = f.st.Members(f.ctx, groupRef("big"), directory.ListQuery{Cursor: cur})
		wantErr(t, err, directory.ErrInvalid, "cursor")
	}
}

func pageIDs[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}
