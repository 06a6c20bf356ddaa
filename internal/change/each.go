package change

import (
	"context"
	"errors"
	"fmt"

	"github.com/deputy-iam/deputy/internal/delegation"
)

// BatchResult is what became of one batch of SubmitEach: the results of its ops when they all
// applied, or the error that stopped it and the event that recorded that attempt.
type BatchResult struct {
	Results []Result
	Err     error
	Event   int64
}

// SubmitEach applies many independent batches in one transaction: each batch is all or
// nothing (a savepoint), and a batch that is denied or fails leaves the others alone; its
// attempt is recorded in the same transaction. It is how a feed applies each person's changes
// atomically without paying a commit per person. The error is an infrastructure error, after
// which nothing was applied.
func (p *Pipeline) SubmitEach(ctx context.Context, actor delegation.Actor, meta Meta, batches [][]Op) ([]BatchResult, error) {
	for _, ops := range batches {
		for i := range ops {
			if err := ops[i].check(); err != nil {
				return nil, err
			}
		}
	}
	meta.inBatch = true
	start := p.now()
	out := make([]BatchResult, len(batches))
	var sess delegation.Session
	err := p.store.InTx(ctx, func(tx Tx) error {
		var err error
		if sess, err = p.authz.Session(ctx, tx); err != nil {
			return err
		}
		for i, ops := range batches {
			out[i] = BatchResult{}
			if err := p.applyBatch(ctx, tx, sess, actor, meta, ops, &out[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("change: submit batches: %w", err)
	}
	sess.Commit()
	var all []Op
	var results []Result
	for i, b := range out {
		if b.Err == nil {
			all, results = append(all, batches[i]...), append(results, b.Results...)
		}
	}
	p.observe(all, results, nil, start)
	return out, nil
}

// applyBatch applies one batch of SubmitEach in a savepoint, recording into res.
func (p *Pipeline) applyBatch(ctx context.Context, tx Tx, sess delegation.Session, actor delegation.Actor, meta Meta, ops []Op,
	res *BatchResult) error {
	var (
		stop  *attempt
		opErr error
	)
	mark := sess.Mark()
	err := tx.Savepoint(ctx, func() error {
		for j := range ops {
			r, a, err := p.apply(ctx, tx, sess, actor, meta, &ops[j])
			if err != nil {
				stop, opErr = a, err
				return err
			}
			res.Results = append(res.Results, r)
		}
		return nil
	})
	switch {
	case errors.Is(err, ErrTxBroken):
		return err
	case opErr == nil:
		return nil
	}
	sess.Rewind(mark) // what the batch applied before it stopped was rolled back
	res.Results = nil
	if stop == nil || stop.ev == nil {
		return opErr // an infrastructure error: nothing can be recorded
	}
	idx, err := tx.AppendEvent(ctx, stop.ev)
	if err != nil {
		return err
	}
	var denied *DeniedError
	if errors.As(opErr, &denied) {
		denied.Event = idx
	}
	res.Err, res.Event = opErr, idx
	return nil
}
