package storetest

import (
	"testing"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

func testOUCrud(t *testing.T, f *fixture) {
	corp := f.mkOU("Corp", "")
	tests := []struct {
		name, parent string
		wantPath     string
	}{
		{"Sales", "corp", "Corp/Sales"},
		{"EMEA", "CORP/sales", "Corp/Sales/EMEA"},
		{"Ärzte", "/corp/", "Corp/Ärzte"},
		{"R&D (lab)", corp.ID, "Corp/R&D (lab)"},
		{"Top", "", "Top"},
		{"Top2", "/", "Top2"},
	}
	for _, tc := range tests {
		o := f.mkOU(tc.name, tc.parent)
		if o.Path != tc.wantPath || o.Name != tc.name || o.Version != 1 {
			t.Errorf("OU %q under %q = %+v, want path %q at version 1", tc.name, tc.parent, o, tc.wantPath)
		}
		for _, key := range []string{o.ID, tc.wantPath, "/" + tc.wantPath + "/", directory.CanonicalKey(tc.wantPath)} {
			if got := f.getOU(ouRef(key)); got.ID != o.ID {
				t.Errorf("OU by %q is %s, want %s", key, got.ID, o.ID)
			}
		}
	}
	if _, err := f.st.OU(f.ctx, ouRef("corp/nope")); !errorsIsNotFound(err) {
		t.Errorf("missing OU: %v, want ErrNotFound", err)
	}

	_, err := f.try(change.Op{Action: delegation.OUCreate, OU: &directory.OUInput{Name: "x", Parent: "nope"}})
	wantErr(t, err, directory.ErrInvalid, "parent")
	for _, name := range []string{"a/b", "a,b", "100%", "", " "} {
		_, err := f.try(change.Op{Action: delegation.OUCreate, OU: &directory.OUInput{Name: name}})
		wantErr(t, err, directory.ErrInvalid, "name")
	}

	// Update: rename and protect.
	sales := f.getOU(ouRef("corp/sales"))
	res := f.do(change.Op{Action: delegation.OUUpdate, Target: ouRef(sales.ID),
		Patch: patch(t, map[string]any{"name": "Vertrieb", "protected": true})})
	got := f.getOU(ouRef(sales.ID))
	if got.Name != "Vertrieb" || got.Path != "Corp/Vertrieb" || !got.Protected || got.Version != 2 || res.Version != 2 {
		t.Errorf("after update: %+v (result version %d)", got, res.Version)
	}
	if !got.Updated.After(got.Created) {
		t.Errorf("updated %v is not after created %v", got.Updated, got.Created)
	}
	_, err = f.try(change.Op{Action: delegation.OUUpdate, Target: ouRef(sales.ID), Patch: patch(t, map[string]any{"parent": "top"})})
	wantErr(t, err, directory.ErrInvalid, "parent")

	// Delete a leaf.
	top := f.getOU(ouRef("top"))
	f.do(change.Op{Action: delegation.OUDelete, Target: ouRef(top.ID)})
	if _, err := f.st.OU(f.ctx, ouRef(top.ID)); !errorsIsNotFound(err) {
		t.Errorf("deleted OU: %v, want ErrNotFound", err)
	}
	_, err = f.try(change.Op{Action: delegation.OUDelete, Target: ouRef(top.ID)})
	wantErr(t, err, directory.ErrNotFound, "")
}

func testOUSiblingNamesUnique(t *testing.T, f *fixture) {
	f.mkOU("Sales", "")
	f.mkOU("Ärzte", "")
	f.mkOU("Élodie", "")
	f.mkOU("Corp", "")
	f.mkOU("Other", "corp")
	tests := []struct {
		name, parent string
	}{
		{"sales", ""},
		{"SALES", "/"},
		{"ÄRZTE", ""},
		{"élodie", ""},
		{"OTHER", "corp"},
	}
	for _, tc := range tests {
		before := f.snapshot()
		_, err := f.try(change.Op{Action: delegation.OUCreate, OU: &directory.OUInput{Name: tc.name, Parent: tc.parent}})
		wantErr(t, err, directory.ErrConflict, "name")
		f.unchanged(before)
	}
	// The same name under another parent is fine.
	if o := f.mkOU("sales", "corp"); o.Path != "Corp/sales" {
		t.Errorf("corp/sales path %q", o.Path)
	}
	// A rename or a move onto a sibling's name collides too, and changes nothing.
	other := f.getOU(ouRef("corp/other"))
	before := f.snapshot()
	_, err := f.try(change.Op{Action: delegation.OUUpdate, Target: ouRef(other.ID), Patch: patch(t, map[string]any{"name": "SALES"})})
	wantErr(t, err, directory.ErrConflict, "name")
	f.unchanged(before)
	before = f.snapshot()
	_, err = f.try(change.Op{Action: delegation.OUMove, Target: ouRef("corp/sales"), To: "/"})
	wantErr(t, err, directory.ErrConflict, "name")
	f.unchanged(before)
}

// testOURenameRewritesPaths renames and moves OUs whose names hold LIKE wildcards and non-ASCII
// letters, and checks every path below them, and that look-alike paths are left alone.
func testOURenameRewritesPaths(t *testing.T, f *fixture) {
	f.mkOU("a_b", "")
	f.mkOU("c", "a_b")
	f.mkOU("d", "a_b/c")
	f.mkOU("axb", "") // matches "a_b" if "_" were a wildcard
	f.mkOU("c", "axb")
	f.mkOU("a_bc", "") // shares the prefix "a_b" without the slash
	f.mkOU("x", "a_bc")
	f.mkOU("Ünïcødé Straße", "")
	f.mkOU("Ωmega", "Ünïcødé Straße")
	f.mkOU("ß", "Ünïcødé Straße/ωMEGA")
	u := f.mkUser(directory.UserInput{Username: "deep", OU: "a_b/c/d"})
	g := f.mkGroup("deep-group", "Ünïcødé Straße/Ωmega/ß")

	steps := []change.Op{
		{Action: delegation.OUUpdate, Target: ouRef("a_b"), Patch: patch(t, map[string]any{"name": "A_%B"})},
		{Action: delegation.OUUpdate, Target: ouRef("ünïcødé straße"), Patch: patch(t, map[string]any{"name": "Éé"})},
		{Action: delegation.OUMove, Target: ouRef("Éé/Ωmega"), To: "axb/c"},
	}
	ids := map[string]string{}
	for _, p := range []string{"a_b", "a_b/c", "a_b/c/d", "axb", "axb/c", "a_bc", "a_bc/x", "Ünïcødé Straße",
		"Ünïcødé Straße/Ωmega", "Ünïcødé Straße/Ωmega/ß"} {
		ids[p] = f.getOU(ouRef(p)).ID
	}
	// "%" is not a valid OU name character, so the first rename is refused as invalid; "_" is.
	_, err := f.try(steps[0])
	wantErr(t, err, directory.ErrInvalid, "name")
	steps[0].Patch = patch(t, map[string]any{"name": "A_B_"})
	for _, op := range steps {
		f.do(op)
	}
	want := map[string]string{
		"a_b": "A_B_", "a_b/c": "A_B_/c", "a_b/c/d": "A_B_/c/d",
		"axb": "axb", "axb/c": "axb/c", "a_bc": "a_bc", "a_bc/x": "a_bc/x",
		"Ünïcødé Straße": "Éé", "Ünïcødé Straße/Ωmega": "axb/c/Ωmega", "Ünïcødé Straße/Ωmega/ß": "axb/c/Ωmega/ß",
	}
	for old, path := range want {
		o := f.getOU(ouRef(ids[old]))
		if o.Path != path {
			t.Errorf("OU once at %q is at %q, want %q", old, o.Path, path)
		}
		if got := f.getOU(ouRef(directory.CanonicalKey(path))); got.ID != o.ID {
			t.Errorf("OU by folded path %q is %s, want %s", path, got.ID, o.ID)
		}
	}
	if got := f.getUser(u.ID); got.OUPath != "A_B_/c/d" {
		t.Errorf("user in the renamed subtree has OU path %q", got.OUPath)
	}
	if got := f.getGroup(g.ID); got.OUPath != "axb/c/Ωmega/ß" {
		t.Errorf("group in the moved subtree has OU path %q", got.OUPath)
	}
	// Filters by OU see the new paths.
	if got := f.allUsers(`ou sw "a_b_/"`); len(got) != 1 || got[0].ID != u.ID {
		t.Errorf(`users with ou sw "a_b_/": %v`, usernames(got))
	}
}

func testOUMove(t *testing.T, f *fixture) {
	f.mkOU("a", "")
	f.mkOU("b", "a")
	f.mkOU("c", "a/b")
	f.mkOU("z", "")
	tests := []struct {
		name, ou, to string
		want         error
		field        string
	}{
		{"into itself", "a", "a", directory.ErrConflict, "to"},
		{"into its child", "a", "a/b", directory.ErrConflict, "to"},
		{"into its grandchild", "a", "A/B/C", directory.ErrConflict, "to"},
		{"to its own parent", "a/b", "a", directory.ErrConflict, ""},
		{"to a missing OU", "a/b", "nope", directory.ErrInvalid, "to"},
		{"the root", "/", "z", directory.ErrConflict, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			before := f.snapshot()
			_, err := f.try(change.Op{Action: delegation.OUMove, Target: ouRef(tc.ou), To: tc.to})
			wantErr(t, err, tc.want, tc.field)
			f.unchanged(before)
		})
	}
	b := f.getOU(ouRef("a/b"))
	res := f.do(change.Op{Action: delegation.OUMove, Target: ouRef(b.ID), To: "z", IfVersion: b.Version})
	got := f.getOU(ouRef(b.ID))
	if got.Path != "z/b" || got.ParentID != f.getOU(ouRef("z")).ID || got.Version != b.Version+1 || res.Version != got.Version {
		t.Errorf("moved OU = %+v", got)
	}
	if c := f.getOU(ouRef("z/b/c")); c.ParentID != b.ID {
		t.Errorf("child of the moved OU: %+v", c)
	}
	// Back to the top, by the root's path.
	f.do(change.Op{Action: delegation.OUMove, Target: ouRef(b.ID), To: "/"})
	if got := f.getOU(ouRef("b/c")); got.Path != "b/c" {
		t.Errorf("after the move to the root: %+v", got)
	}
}

func testOUDelete(t *testing.T, f *fixture) {
	root := f.getOU(directory.Ref{Kind: directory.KindOU})
	for _, op := range []change.Op{
		{Action: delegation.OUDelete, Target: ouRef(root.ID)},
		{Action: delegation.OUUpdate, Target: ouRef(root.ID), Patch: patch(t, map[string]any{"name": "x"})},
		{Action: delegation.OUMove, Target: ouRef(root.ID), To: "/"},
	} {
		before := f.snapshot()
		_, err := f.try(op)
		wantErr(t, err, directory.ErrConflict, "")
		f.unchanged(before)
	}

	owner := f.mkUser(directory.UserInput{Username: "owner"})
	holders := []struct {
		name   string
		fill   func(f *fixture, ou string)
		remove func(f *fixture)
	}{
		{"child OU", func(f *fixture, ou string) { f.mkOU("child", ou) },
			func(f *fixture) { f.do(change.Op{Action: delegation.OUDelete, Target: ouRef("full/child")}) }},
		{"user", func(f *fixture, ou string) { f.mkUser(directory.UserInput{Username: "inside", OU: ou}) },
			func(f *fixture) { f.do(change.Op{Action: delegation.UserDelete, Target: userRef("inside")}) }},
		{"group", func(f *fixture, ou string) { f.mkGroup("inside", ou) },
			func(f *fixture) { f.do(change.Op{Action: delegation.GroupDelete, Target: groupRef("inside")}) }},
		{"service account", func(f *fixture, ou string) {
			f.do(change.Op{Action: delegation.SACreate, Service: &directory.ServiceAccountInput{Name: "inside", OU: ou, Owners: []string{owner.ID}}})
		}, func(f *fixture) { f.do(change.Op{Action: delegation.SADelete, Target: saRef("inside")}) }},
	}
	for _, h := range holders {
		t.Run(h.name, func(t *testing.T) {
			f := f.sub(t)
			full := f.mkOU("full", "")
			h.fill(f, "full")
			before := f.snapshot()
			_, err := f.try(change.Op{Action: delegation.OUDelete, Target: ouRef(full.ID)})
			wantErr(t, err, directory.ErrConflict, "")
			f.unchanged(before)
			h.remove(f)
			f.do(change.Op{Action: delegation.OUDelete, Target: ouRef(full.ID)})
		})
	}
}
