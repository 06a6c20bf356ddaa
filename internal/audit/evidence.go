package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// LogStore is what the evidence service needs of the store: the tree, its size, the events'
// encodings and the checkpoints it keeps.
type LogStore interface {
	NodeSource
	LogSize(ctx context.Context) (uint64, error)
	EventBody(ctx context.Context, index int64) ([]byte, error)
	LatestCheckpoint(ctx context.Context) ([]byte, error)
	SaveCheckpoint(ctx context.Context, cp Checkpoint, signed []byte) error
}

// ErrNoCheckpoint means no checkpoint has been signed yet.
var ErrNoCheckpoint = errors.New("audit: no checkpoint has been signed yet")

// Evidence signs checkpoints of the log and builds proofs against them. Checkpoints are
// signed every Every events or Interval (when the log grew), and on demand; each is stored in
// the database and appended to File, outside it, for witnesses to keep.
type Evidence struct {
	store    LogStore
	signer   note.Signer
	file     string
	every    uint64
	interval time.Duration
	log      *slog.Logger

	mu     sync.Mutex // serializes signing
	last   Checkpoint
	lastAt time.Time
}

// EvidenceOptions configures NewEvidence.
type EvidenceOptions struct {
	SigningKey string        // the note signer key (the content of the key file)
	File       string        // where checkpoints are appended; empty for none
	Every      uint64        // sign after this many new events (0: 1000)
	Interval   time.Duration // and at least this often while the log grows (0: 1 minute)
}

// NewEvidence returns the evidence service for store, signing with opts.SigningKey.
func NewEvidence(ctx context.Context, store LogStore, opts EvidenceOptions, log *slog.Logger) (*Evidence, error) {
	signer, err := note.NewSigner(opts.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	e := &Evidence{store: store, signer: signer, file: opts.File, every: opts.Every, interval: opts.Interval, log: log}
	if e.every == 0 {
		e.every = 1000
	}
	if e.interval == 0 {
		e.interval = time.Minute
	}
	if signed, err := store.LatestCheckpoint(ctx); err != nil {
		return nil, err
	} else if signed != nil {
		if e.last, err = e.parse(signed); err != nil {
			return nil, fmt.Errorf("audit: latest checkpoint: %w", err)
		}
	}
	return e, nil
}

// Origin is the name checkpoints carry (the signing key's name).
func (e *Evidence) Origin() string { return e.signer.Name() }

// Latest returns the latest signed checkpoint.
func (e *Evidence) Latest(ctx context.Context) ([]byte, Checkpoint, error) {
	signed, err := e.store.LatestCheckpoint(ctx)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	if signed == nil {
		return nil, Checkpoint{}, ErrNoCheckpoint
	}
	cp, err := e.parse(signed)
	return signed, cp, err
}

// parse reads a checkpoint the service itself stored (its signature was made here).
func (e *Evidence) parse(signed []byte) (Checkpoint, error) {
	n, err := note.Open(signed, nil)
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		return ParseCheckpoint(unverified.Note.Text)
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	return ParseCheckpoint(n.Text)
}

// Checkpoint signs a checkpoint of the log as it is now, unless the latest one already covers
// every event, and returns the latest.
func (e *Evidence) Checkpoint(ctx context.Context) ([]byte, Checkpoint, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	size, err := e.store.LogSize(ctx)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	if size > e.last.Size || e.last.Root == nil {
		if err := e.sign(ctx, size); err != nil {
			return nil, Checkpoint{}, err
		}
	}
	return e.Latest(ctx)
}

// sign signs, stores and appends the checkpoint at size. The caller holds e.mu.
func (e *Evidence) sign(ctx context.Context, size uint64) error {
	root, err := Tree{Src: e.store}.Root(ctx, size)
	if err != nil {
		return err
	}
	cp := Checkpoint{Origin: e.Origin(), Size: size, Root: root}
	signed, err := cp.Sign(e.signer)
	if err != nil {
		return err
	}
	if err := e.store.SaveCheckpoint(ctx, cp, signed); err != nil {
		return err
	}
	if e.file != "" {
		if err := appendFile(e.file, signed); err != nil {
			// The database has it; the file is the copy for witnesses. Say so loudly.
			e.log.ErrorContext(ctx, "audit: append checkpoint to file", "file", e.file, "size", size, "err", err)
		}
	}
	e.last, e.lastAt = cp, time.Now()
	e.log.DebugContext(ctx, "audit: checkpoint signed", "size", size)
	return nil
}

// appendFile appends a signed note and the empty line that separates notes, and syncs.
func appendFile(path string, signed []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(signed, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Run signs checkpoints as the log grows until ctx ends, then signs a last one.
func (e *Evidence) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	e.mu.Lock()
	e.lastAt = time.Now()
	e.mu.Unlock()
	// Cover what was logged while the server was down (the CLI's init, a recovered token).
	if _, _, err := e.Checkpoint(ctx); err != nil && ctx.Err() == nil {
		e.log.ErrorContext(ctx, "audit: checkpoint at start", "err", err)
	}
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if _, _, err := e.Checkpoint(sctx); err != nil && !errors.Is(err, context.Canceled) {
				e.log.Error("audit: final checkpoint", "err", err)
			}
			cancel()
			return
		case <-tick.C:
		}
		size, err := e.store.LogSize(ctx)
		if err != nil {
			if ctx.Err() == nil {
				e.log.WarnContext(ctx, "audit: log size", "err", err)
			}
			continue
		}
		e.mu.Lock()
		due := size > e.last.Size && (size-e.last.Size >= e.every || time.Since(e.lastAt) >= e.interval)
		if due {
			if err := e.sign(ctx, size); err != nil && ctx.Err() == nil {
				e.log.ErrorContext(ctx, "audit: sign checkpoint", "size", size, "err", err)
			}
		}
		e.mu.Unlock()
	}
}

// InclusionProof is the evidence that event Index is in the log of Size events whose root a
// signed checkpoint states: with the checkpoint, anyone can check it offline.
type InclusionProof struct {
	Index      uint64   `json:"index"`
	Size       uint64   `json:"size"`
	Event      string   `json:"event"`     // the event's canonical encoding
	LeafHash   []byte   `json:"leaf_hash"` // of Event
	Proof      [][]byte `json:"proof"`
	Root       []byte   `json:"root"`
	Checkpoint string   `json:"checkpoint,omitempty"` // the signed checkpoint of Size, when size is a checkpoint's
}

// ProveInclusion builds the inclusion proof of index in the tree of size events; size 0 means
// the latest checkpoint's (signing one first if it does not cover index).
func (e *Evidence) ProveInclusion(ctx context.Context, index, size uint64) (InclusionProof, error) {
	var signed []byte
	if size == 0 {
		s, cp, err := e.Latest(ctx)
		if err != nil && !errors.Is(err, ErrNoCheckpoint) {
			return InclusionProof{}, err
		}
		if err != nil || cp.Size <= index {
			if s, cp, err = e.Checkpoint(ctx); err != nil {
				return InclusionProof{}, err
			}
		}
		signed, size = s, cp.Size
	}
	logSize, err := e.store.LogSize(ctx)
	if err != nil {
		return InclusionProof{}, err
	}
	if size > logSize || index >= size {
		return InclusionProof{}, &RangeError{fmt.Sprintf("index %d and size %d: want index < size <= %d, the log's size", index, size, logSize)}
	}
	body, err := e.store.EventBody(ctx, int64(index))
	if err != nil {
		return InclusionProof{}, err
	}
	tree := Tree{Src: e.store}
	p, err := tree.InclusionProof(ctx, index, size)
	if err != nil {
		return InclusionProof{}, err
	}
	root, err := tree.Root(ctx, size)
	if err != nil {
		return InclusionProof{}, err
	}
	return InclusionProof{Index: index, Size: size, Event: string(body), LeafHash: LeafHash(body), Proof: nonNil(p), Root: root,
		Checkpoint: string(signed)}, nil
}

// Verify checks an inclusion proof offline: the event hashes to the leaf, the proof leads to the
// root, and, when it carries one, the checkpoint is signed by a known key and states that root.
func (p InclusionProof) Verify(known note.Verifiers) error {
	if !bytes.Equal(LeafHash([]byte(p.Event)), p.LeafHash) {
		return errors.New("audit: the event does not hash to the proof's leaf hash")
	}
	if idx, ok := encodedIndex([]byte(p.Event)); !ok || idx != p.Index {
		return fmt.Errorf("audit: the event is not event %d", p.Index)
	}
	if err := VerifyInclusion(p.Index, p.Size, p.LeafHash, p.Proof, p.Root); err != nil {
		return fmt.Errorf("audit: inclusion proof: %w", err)
	}
	if p.Checkpoint == "" {
		return errors.New("audit: the proof carries no signed checkpoint to check its root against")
	}
	cp, err := OpenCheckpoint([]byte(p.Checkpoint), known)
	if err != nil {
		return err
	}
	if cp.Size != p.Size || !bytes.Equal(cp.Root, p.Root) {
		return fmt.Errorf("audit: the checkpoint states size %d and another root than the proof's", cp.Size)
	}
	return nil
}

// ConsistencyProof is the evidence that the log of From events is a prefix of the log of To.
type ConsistencyProof struct {
	From     uint64   `json:"from"`
	To       uint64   `json:"to"`
	FromRoot []byte   `json:"from_root"`
	ToRoot   []byte   `json:"to_root"`
	Proof    [][]byte `json:"proof"`
}

// ProveConsistency builds the consistency proof between two sizes; to 0 means the log's size.
func (e *Evidence) ProveConsistency(ctx context.Context, from, to uint64) (ConsistencyProof, error) {
	logSize, err := e.store.LogSize(ctx)
	if err != nil {
		return ConsistencyProof{}, err
	}
	if to == 0 {
		to = logSize
	}
	if from > to || to > logSize {
		return ConsistencyProof{}, &RangeError{fmt.Sprintf("from %d and to %d: want from <= to <= %d, the log's size", from, to, logSize)}
	}
	tree := Tree{Src: e.store}
	p, err := tree.ConsistencyProof(ctx, from, to)
	if err != nil {
		return ConsistencyProof{}, err
	}
	r1, err := tree.Root(ctx, from)
	if err != nil {
		return ConsistencyProof{}, err
	}
	r2, err := tree.Root(ctx, to)
	if err != nil {
		return ConsistencyProof{}, err
	}
	return ConsistencyProof{From: from, To: to, FromRoot: r1, ToRoot: r2, Proof: nonNil(p)}, nil
}

// RangeError is a proof asked for outside the log.
type RangeError struct{ Msg string }

func (e *RangeError) Error() string { return "audit: " + e.Msg }

func nonNil(p [][]byte) [][]byte {
	if p == nil {
		return [][]byte{}
	}
	return p
}
