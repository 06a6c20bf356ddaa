package audit

import (
	"context"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// The audit trail is an RFC 6962 Merkle log: leaf i is the canonical encoding of event i.
// The store keeps each event's leaf hash beside it and the interior nodes from StoredLevel up;
// the levels below are recomputed from at most 2^StoredLevel leaf hashes when a proof needs
// them, which keeps appending to one extra row for every eight events on average.

// StoredLevel is the lowest tree level (leaves are level 0) whose nodes the store keeps.
const StoredLevel = 4

var (
	hasher  = rfc6962.DefaultHasher
	factory = &compact.RangeFactory{Hash: hasher.HashChildren}
)

// LeafHash is the hash of an event's canonical encoding as a leaf of the log.
func LeafHash(encoding []byte) []byte { return hasher.HashLeaf(encoding) }

// Node is one stored tree node.
type Node struct {
	ID   compact.NodeID
	Hash []byte
}

// NodeSource reads what the store keeps of the tree.
type NodeSource interface {
	// StoredNodes returns the hashes of nodes at StoredLevel or above, in the order asked,
	// or an error if one is missing.
	StoredNodes(ctx context.Context, ids []compact.NodeID) ([][]byte, error)
	// LeafHashes returns the leaf hashes of events [begin, end), in index order.
	LeafHashes(ctx context.Context, begin, end uint64) ([][]byte, error)
}

// Tree answers questions about the log from a NodeSource.
type Tree struct{ Src NodeSource }

// nodes returns the hashes of ids: stored ones read in one call, lower ones recomputed from
// their leaves, read in one call too (a proof's low nodes lie within one block of leaves).
func (t Tree) nodes(ctx context.Context, ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	var (
		stored       []compact.NodeID
		at           []int
		lowLo, lowHi uint64 // the leaves the low nodes cover
		anyLow       bool
	)
	for i, id := range ids {
		if id.Level >= StoredLevel {
			stored, at = append(stored, id), append(at, i)
			continue
		}
		b, e := id.Coverage()
		if !anyLow {
			lowLo, lowHi, anyLow = b, e, true
		}
		lowLo, lowHi = min(lowLo, b), max(lowHi, e)
	}
	// One read when the low nodes share a block of leaves (an inclusion proof's do); one per
	// node when they lie apart (a consistency proof's two edges).
	var block [][]byte
	if anyLow && lowHi-lowLo <= 2<<StoredLevel {
		var err error
		if block, err = t.Src.LeafHashes(ctx, lowLo, lowHi); err != nil {
			return nil, err
		}
	}
	for i, id := range ids {
		if id.Level >= StoredLevel {
			continue
		}
		b, e := id.Coverage()
		var leaves [][]byte
		if block != nil {
			if uint64(len(block)) == lowHi-lowLo {
				leaves = block[b-lowLo : e-lowLo]
			}
		} else {
			var err error
			if leaves, err = t.Src.LeafHashes(ctx, b, e); err != nil {
				return nil, err
			}
		}
		if uint64(len(leaves)) != e-b {
			return nil, fmt.Errorf("audit: node %d/%d: %d of %d leaves", id.Level, id.Index, len(leaves), e-b)
		}
		r := factory.NewEmptyRange(b)
		for _, l := range leaves {
			if err := r.Append(l, nil); err != nil {
				return nil, err
			}
		}
		out[i] = r.Hashes()[0]
	}
	if len(stored) > 0 {
		hs, err := t.Src.StoredNodes(ctx, stored)
		if err != nil {
			return nil, err
		}
		for k, i := range at {
			out[i] = hs[k]
		}
	}
	return out, nil
}

// Range returns the compact range [0, size): what appending continues from and what the root
// is computed from.
func (t Tree) Range(ctx context.Context, size uint64) (*compact.Range, error) {
	ids := compact.RangeNodes(0, size, nil)
	hs, err := t.nodes(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("audit: tree of size %d: %w", size, err)
	}
	return factory.NewRange(0, size, hs)
}

// Root returns the root hash of the tree of the first size events.
func (t Tree) Root(ctx context.Context, size uint64) ([]byte, error) {
	if size == 0 {
		return hasher.EmptyRoot(), nil
	}
	r, err := t.Range(ctx, size)
	if err != nil {
		return nil, err
	}
	return r.GetRootHash(nil)
}

// InclusionProof proves that event index is leaf index of the tree of size events.
func (t Tree) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	if index >= size {
		return nil, fmt.Errorf("audit: inclusion of %d in a tree of size %d: index must be below size", index, size)
	}
	n, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	return t.rehash(ctx, n)
}

// ConsistencyProof proves that the tree of size1 events is a prefix of the tree of size2.
func (t Tree) ConsistencyProof(ctx context.Context, size1, size2 uint64) ([][]byte, error) {
	if size1 > size2 {
		return nil, fmt.Errorf("audit: consistency from %d to %d: the first size must not exceed the second", size1, size2)
	}
	n, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, err
	}
	return t.rehash(ctx, n)
}

func (t Tree) rehash(ctx context.Context, n proof.Nodes) ([][]byte, error) {
	hs, err := t.nodes(ctx, n.IDs)
	if err != nil {
		return nil, err
	}
	return n.Rehash(hs, hasher.HashChildren)
}

// VerifyInclusion checks an inclusion proof of a leaf hash against a root.
func VerifyInclusion(index, size uint64, leaf []byte, p [][]byte, root []byte) error {
	return proof.VerifyInclusion(hasher, index, size, leaf, p, root)
}

// VerifyConsistency checks a consistency proof between two roots.
func VerifyConsistency(size1, size2 uint64, p [][]byte, root1, root2 []byte) error {
	return proof.VerifyConsistency(hasher, size1, size2, p, root1, root2)
}

// Appender extends the log one leaf at a time, reporting the nodes the store must keep.
type Appender struct{ r *compact.Range }

// NewAppender continues the log from r (from Tree.Range), or starts it when r is nil.
func NewAppender(r *compact.Range) *Appender {
	if r == nil {
		r = factory.NewEmptyRange(0)
	}
	return &Appender{r: r}
}

// Size is the number of leaves appended so far.
func (a *Appender) Size() uint64 { return a.r.End() }

// Append adds a leaf hash and returns the completed nodes at StoredLevel or above.
func (a *Appender) Append(leaf []byte) ([]Node, error) {
	var out []Node
	err := a.r.Append(leaf, func(id compact.NodeID, h []byte) {
		if id.Level >= StoredLevel {
			out = append(out, Node{ID: id, Hash: h})
		}
	})
	return out, err
}

// Root is the root hash of the leaves appended so far.
func (a *Appender) Root() ([]byte, error) {
	if a.r.End() == 0 {
		return hasher.EmptyRoot(), nil
	}
	return a.r.GetRootHash(nil)
}

// Clone returns an independent copy (a transaction works on a copy of the committed state).
func (a *Appender) Clone() *Appender {
	r, err := factory.NewRange(a.r.Begin(), a.r.End(), append([][]byte(nil), a.r.Hashes()...))
	if err != nil {
		panic(err) // the hashes come from a valid range
	}
	return &Appender{r: r}
}
