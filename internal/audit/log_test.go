package audit

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
)

// memLog keeps a log the way the store does: leaf hashes, and the nodes Append reports.
type memLog struct {
	app    *Appender
	leaves [][]byte
	nodes  map[compact.NodeID][]byte
}

func newMemLog() *memLog { return &memLog{app: NewAppender(nil), nodes: map[compact.NodeID][]byte{}} }

func (m *memLog) add(t testing.TB, data []byte) {
	t.Helper()
	leaf := LeafHash(data)
	nodes, err := m.app.Append(leaf)
	if err != nil {
		t.Fatal(err)
	}
	m.leaves = append(m.leaves, leaf)
	for _, n := range nodes {
		if n.ID.Level < StoredLevel {
			t.Fatalf("appender reported node %v below the stored level", n.ID)
		}
		m.nodes[n.ID] = n.Hash
	}
}

func (m *memLog) StoredNodes(_ context.Context, ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		h, ok := m.nodes[id]
		if !ok {
			return nil, fmt.Errorf("no node %v", id)
		}
		out[i] = h
	}
	return out, nil
}

func (m *memLog) LeafHashes(_ context.Context, begin, end uint64) ([][]byte, error) {
	return m.leaves[begin:min(end, uint64(len(m.leaves)))], nil
}

// TestRootsMatchRFC6962Vectors checks the roots against the published test vectors the merkle
// module carries (RootHashes()[n] is the root of the first n inputs; computed by the RFC 6962
// reference, not by this code).
func TestRootsMatchRFC6962Vectors(t *testing.T) {
	m := newMemLog()
	for i, in := range testonly.LeafInputs() {
		m.add(t, in)
		root, err := Tree{Src: m}.Root(context.Background(), uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		if want := testonly.RootHashes()[i+1]; !bytes.Equal(root, want) {
			t.Fatalf("root at size %d = %x, want %x", i+1, root, want)
		}
	}
	if root, _ := (Tree{Src: m}).Root(context.Background(), 0); !bytes.Equal(root, testonly.EmptyRootHash()) {
		t.Fatalf("empty root = %x", root)
	}
}

// TestProofsAgainstReference compares roots and proofs, computed from stored nodes plus
// recomputed low levels, with the reference in-memory tree, at sizes around the stored level's
// boundaries, and verifies each proof.
func TestProofsAgainstReference(t *testing.T) {
	ctx := context.Background()
	ref := testonly.New(rfc6962.DefaultHasher)
	m := newMemLog()
	rng := rand.New(rand.NewPCG(7, 8))
	const n = 300
	for i := range n {
		data := fmt.Appendf(nil, `{"index":%d,"n":%d}`, i, rng.Int())
		ref.AppendData(data)
		m.add(t, data)
	}
	tree := Tree{Src: m}
	for size := uint64(1); size <= n; size++ {
		root, err := tree.Root(ctx, size)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(root, ref.HashAt(size)) {
			t.Fatalf("root at %d differs from the reference", size)
		}
		for range 3 {
			idx := rng.Uint64N(size)
			p, err := tree.InclusionProof(ctx, idx, size)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ref.InclusionProof(idx, size)
			if fmt.Sprint(p) != fmt.Sprint(want) {
				t.Fatalf("inclusion %d in %d differs from the reference", idx, size)
			}
			if err := VerifyInclusion(idx, size, m.leaves[idx], p, root); err != nil {
				t.Fatalf("inclusion %d in %d: %v", idx, size, err)
			}
			from := rng.Uint64N(size + 1)
			c, err := tree.ConsistencyProof(ctx, from, size)
			if err != nil {
				t.Fatal(err)
			}
			want, _ = ref.ConsistencyProof(from, size)
			if fmt.Sprint(c) != fmt.Sprint(want) {
				t.Fatalf("consistency %d..%d differs from the reference", from, size)
			}
			if err := VerifyConsistency(from, size, c, ref.HashAt(from), root); err != nil {
				t.Fatalf("consistency %d..%d: %v", from, size, err)
			}
		}
	}
	// A proof checked against the wrong leaf fails.
	p, _ := tree.InclusionProof(ctx, 5, n)
	if err := VerifyInclusion(5, n, m.leaves[6], p, ref.Hash()); err == nil {
		t.Fatal("an inclusion proof verified for another leaf")
	}
	// The appender's own root and a clone's.
	c := m.app.Clone()
	if r, _ := c.Root(); !bytes.Equal(r, ref.Hash()) || c.Size() != n {
		t.Fatal("clone differs")
	}
	if _, err := tree.InclusionProof(ctx, n, n); err == nil {
		t.Fatal("inclusion of an index at the size was answered")
	}
	if _, err := tree.ConsistencyProof(ctx, 5, 4); err == nil {
		t.Fatal("consistency from a larger size was answered")
	}
}
