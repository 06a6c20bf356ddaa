package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strconv"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// Mismatch names where a log stops matching its evidence: the first event that does not match
// (Index), or, when the evidence only bounds it (a checkpoint's root over a stretch whose every
// other record is consistent), the range [Index, Upto) that holds it.
type Mismatch struct {
	Index  uint64
	Upto   uint64 // 0 when Index is exact
	Reason string
}

func (m *Mismatch) Error() string {
	if m.Upto > m.Index+1 {
		return fmt.Sprintf("an event in %d..%d does not match: %s", m.Index, m.Upto-1, m.Reason)
	}
	return fmt.Sprintf("event %d does not match: %s", m.Index, m.Reason)
}

// Verified is what a successful verification establishes.
type Verified struct {
	Size        uint64 // events read and hashed
	Root        []byte // the root over them
	Checkpoints int    // checkpoints whose root matched
	Covered     uint64 // the largest checkpointed size: events beyond it are not yet signed for
}

// RootBase64 is the root as checkpoints write it.
func (v Verified) RootBase64() string { return base64.StdEncoding.EncodeToString(v.Root) }

// Verifier recomputes the log from its events, in index order, and checks it against signed
// checkpoints (already opened with the trusted key) and, when the source keeps them, the
// stored leaf hashes and interior nodes. It stops at the first mismatch.
type Verifier struct {
	app         *Appender
	checkpoints []Checkpoint // ascending size, not yet reached
	matched     int
	lastGood    uint64 // size of the last checkpoint that matched
	nodes       map[compact.NodeID][]byte
	err         *Mismatch
	hash        *reusedHasher
}

// NewVerifier starts a verification against checkpoints (in any order).
func NewVerifier(checkpoints []Checkpoint) *Verifier {
	cps := slices.Clone(checkpoints)
	slices.SortFunc(cps, func(a, b Checkpoint) int {
		return cmp.Or(cmp.Compare(a.Size, b.Size), bytes.Compare(a.Root, b.Root))
	})
	// The same checkpoint from the database and a witness's file counts once.
	cps = slices.CompactFunc(cps, func(a, b Checkpoint) bool { return a.Size == b.Size && bytes.Equal(a.Root, b.Root) })
	h := newReusedHasher()
	return &Verifier{app: &Appender{r: (&compact.RangeFactory{Hash: h.children}).NewEmptyRange(0)}, checkpoints: cps, hash: h}
}

// StoredNodes gives the verifier the interior nodes the database keeps, which it compares with
// the recomputed ones as it passes them (a tampered node would make proofs lie).
func (v *Verifier) StoredNodes(nodes map[compact.NodeID][]byte) { v.nodes = nodes }

// Add takes the next event's canonical encoding, as an export holds it.
func (v *Verifier) Add(body []byte) error { return v.add(body, nil, false) }

// AddStored takes the next event's canonical encoding and the leaf hash the database stores
// beside it (nil when it stores none).
func (v *Verifier) AddStored(body, leaf []byte) error { return v.add(body, leaf, true) }

func (v *Verifier) add(body, stored []byte, haveStored bool) error {
	if v.err != nil {
		return v.err
	}
	leaf := v.hash.leaf(body)
	pos := v.app.Size()
	if idx, ok := encodedIndex(body); !ok {
		return v.fail(pos, 0, "it is not a canonical event encoding")
	} else if idx != pos {
		return v.fail(pos, 0, fmt.Sprintf("the event at position %d says it is event %d (events deleted, reordered or inserted)", pos, idx))
	}
	if haveStored && !bytes.Equal(stored, leaf) {
		if stored == nil {
			return v.fail(pos, 0, "the database holds no leaf hash for it (added outside the log)")
		}
		return v.fail(pos, 0, "its content does not hash to the leaf hash stored with it (changed after it was logged)")
	}
	nodes, err := v.app.Append(leaf)
	if err != nil {
		return v.fail(pos, 0, err.Error())
	}
	if v.nodes != nil {
		for _, n := range nodes {
			if !bytes.Equal(v.nodes[n.ID], n.Hash) {
				b, e := n.ID.Coverage()
				return v.fail(b, e, fmt.Sprintf("the stored tree node %d/%d over them does not match their hashes", n.ID.Level, n.ID.Index))
			}
		}
	}
	for len(v.checkpoints) > 0 && v.checkpoints[0].Size == v.app.Size() {
		cp := v.checkpoints[0]
		v.checkpoints = v.checkpoints[1:]
		root, err := v.app.Root()
		if err != nil {
			return v.fail(pos, 0, err.Error())
		}
		if !bytes.Equal(root, cp.Root) {
			return v.fail(v.lastGood, cp.Size, fmt.Sprintf("the root over the first %d events is not the one the checkpoint of size %d signed (history rewritten)", cp.Size, cp.Size))
		}
		v.matched++
		v.lastGood = cp.Size
	}
	return nil
}

func (v *Verifier) fail(index, upto uint64, reason string) error {
	if upto == index+1 {
		upto = 0
	}
	v.err = &Mismatch{Index: index, Upto: upto, Reason: reason}
	return v.err
}

// Finish ends the verification: checkpoints larger than the log mean events are missing.
func (v *Verifier) Finish() (Verified, error) {
	if v.err != nil {
		return Verified{}, v.err
	}
	size := v.app.Size()
	if len(v.checkpoints) > 0 {
		last := v.checkpoints[len(v.checkpoints)-1]
		return Verified{}, v.fail(size, 0, fmt.Sprintf("the log ends with %d events but a checkpoint signed for %d (events removed from the end)", size, last.Size))
	}
	root, err := v.app.Root()
	if err != nil {
		return Verified{}, err
	}
	return Verified{Size: size, Root: root, Checkpoints: v.matched, Covered: v.lastGood}, nil
}

// encodedIndex reads the index from the start of a canonical encoding ({"index":N,...}) without
// decoding the rest: verifying a large export is then hashing, not JSON parsing.
func encodedIndex(body []byte) (uint64, bool) {
	const prefix = `{"index":`
	if !bytes.HasPrefix(body, []byte(prefix)) {
		return 0, false
	}
	rest := body[len(prefix):]
	end := bytes.IndexByte(rest, ',')
	if end <= 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(rest[:end]), 10, 64)
	return n, err == nil
}

// OpenCheckpoints verifies signed checkpoints against the trusted keys. It returns those that
// verify and, joined, an error naming each that does not (where names what they came from).
func OpenCheckpoints(notes [][]byte, known note.Verifiers, where string) ([]Checkpoint, error) {
	var (
		out  []Checkpoint
		errs []error
	)
	for i, n := range notes {
		cp, err := OpenCheckpoint(n, known)
		if err != nil {
			errs = append(errs, fmt.Errorf("checkpoint %d of %s: %w", i+1, where, err))
			continue
		}
		out = append(out, cp)
	}
	return out, errors.Join(errs...)
}

// VerifyExport verifies an export (one canonical event encoding per line, from event 0, as
// `deputy audit export --format jsonl` writes it) against checkpoints.
func VerifyExport(r io.Reader, checkpoints []Checkpoint) (Verified, error) {
	v := NewVerifier(checkpoints)
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return Verified{}, fmt.Errorf("audit: event %d: a line longer than 1 MiB is not an event", v.app.Size())
		}
		if len(line) > 0 {
			if aerr := v.Add(bytes.TrimSuffix(line, []byte("\n"))); aerr != nil {
				return Verified{}, aerr
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Verified{}, fmt.Errorf("audit: read export: %w", err)
		}
	}
	return v.Finish()
}

// reusedHasher computes RFC 6962 leaf and node hashes with one SHA-256 state it resets, instead
// of a new one per hash: verifying a large log is then hashing, not allocating. It is not safe
// for concurrent use; each Verifier has its own. (The tests check its roots against the RFC
// 6962 test vectors and the reference tree.)
type reusedHasher struct {
	h hash.Hash
}

func newReusedHasher() *reusedHasher { return &reusedHasher{h: sha256.New()} }

func (r *reusedHasher) leaf(data []byte) []byte {
	r.h.Reset()
	r.h.Write([]byte{rfc6962.RFC6962LeafHashPrefix})
	r.h.Write(data)
	return r.h.Sum(make([]byte, 0, sha256.Size))
}

func (r *reusedHasher) children(left, right []byte) []byte {
	r.h.Reset()
	r.h.Write([]byte{rfc6962.RFC6962NodeHashPrefix})
	r.h.Write(left)
	r.h.Write(right)
	return r.h.Sum(make([]byte, 0, sha256.Size))
}
