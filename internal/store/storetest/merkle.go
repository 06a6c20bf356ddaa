package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// testMerkleLog runs ops that commit alone, together (group commit, each in a savepoint, some
// failing) and in a batch that rolls back, then checks that the log the store kept is the log
// recomputed from its events: the stored leaves and nodes, the root, and inclusion and
// consistency proofs verified against it.
func testMerkleLog(t *testing.T, f *fixture) {
	user := func(name string) change.Op {
		return change.Op{Action: delegation.UserCreate, User: &directory.UserInput{Username: name, OU: directory.RootPath}}
	}
	for i := range 20 {
		f.do(user(fmt.Sprintf("solo%d", i)))
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 15 {
				// Every third name is taken: a failed op, rolled back to its savepoint.
				name := fmt.Sprintf("group%d-%d", w, i)
				if i%3 == 0 {
					name = "solo1"
				}
				if _, err := f.try(user(name)); err != nil && !errors.Is(err, directory.ErrConflict) {
					t.Errorf("%s: %v", name, err)
				}
			}
		})
	}
	wg.Wait()
	if _, err := f.p.SubmitBatch(f.ctx, f.admin, f.meta, []change.Op{user("batch1"), user("batch2"), user("solo2")}); err == nil {
		f.t.Fatal("a batch with a taken name applied")
	}
	for i := range 5 {
		f.do(user(fmt.Sprintf("after%d", i)))
	}

	size, err := f.st.LogSize(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := uint64(len(f.events())); size != n || size < 80 {
		t.Fatalf("log size %d, %d events", size, n)
	}
	v := audit.NewVerifier(nil)
	nodes, err := f.st.AllNodes(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	v.StoredNodes(nodes)
	var bodies [][]byte
	if err := f.st.EachLeaf(f.ctx, func(body, leaf []byte) error {
		bodies = append(bodies, bytes.Clone(body))
		return v.AddStored(body, leaf)
	}); err != nil {
		t.Fatalf("the stored log does not verify: %v", err)
	}
	got, err := v.Finish()
	if err != nil || got.Size != size {
		t.Fatalf("verified %+v: %v", got, err)
	}
	if want := int(size / 16); len(nodes) < want {
		t.Fatalf("%d stored nodes for %d events", len(nodes), size)
	}
	tree := audit.Tree{Src: f.st}
	root, err := tree.Root(f.ctx, size)
	if err != nil || !bytes.Equal(root, got.Root) {
		t.Fatalf("stored root %x, recomputed %x (%v)", root, got.Root, err)
	}
	for _, idx := range []uint64{0, 1, 15, 16, 17, size / 2, size - 1} {
		p, err := tree.InclusionProof(f.ctx, idx, size)
		if err != nil {
			t.Fatal(err)
		}
		if err := audit.VerifyInclusion(idx, size, audit.LeafHash(bodies[idx]), p, root); err != nil {
			t.Errorf("inclusion of %d: %v", idx, err)
		}
	}
	for _, from := range []uint64{1, 16, 33, size - 1} {
		old, err := tree.Root(f.ctx, from)
		if err != nil {
			t.Fatal(err)
		}
		p, err := tree.ConsistencyProof(f.ctx, from, size)
		if err != nil {
			t.Fatal(err)
		}
		if err := audit.VerifyConsistency(from, size, p, old, root); err != nil {
			t.Errorf("consistency %d..%d: %v", from, size, err)
		}
	}
	// A sink's cursor starts at 0 and keeps what was saved last.
	if n, err := f.st.SinkCursor(f.ctx, "webhook x"); err != nil || n != 0 {
		t.Fatalf("new sink cursor %d, %v", n, err)
	}
	for _, next := range []int64{5, 7} {
		if err := f.st.SaveSinkCursor(f.ctx, "webhook x", next, "boom"); err != nil {
			t.Fatal(err)
		}
		if n, err := f.st.SinkCursor(f.ctx, "webhook x"); err != nil || n != next {
			t.Fatalf("sink cursor %d after saving %d: %v", n, next, err)
		}
	}
}
