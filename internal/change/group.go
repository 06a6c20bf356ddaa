package change

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/delegation"
)

// group commits ops submitted concurrently together: while one transaction commits, the ops
// that arrive queue up, and the next transaction takes them all. Each op still runs on its own
// (in a savepoint: its denial or failure undoes only its own writes and is recorded in the same
// transaction), but they share one commit, the dominant cost of a small change. A lone op pays
// nothing extra: it runs in a transaction of its own.
type group struct {
	mu       sync.Mutex
	queue    []*waiter
	draining bool
}

// waiter is one submitted op waiting for its group to commit.
type waiter struct {
	ctx   context.Context
	actor delegation.Actor
	meta  Meta
	op    Op
	res   Result
	err   error
	done  chan struct{}
}

// Submit runs op for actor. It returns the result with a nil error when the op was applied.
// A denial returns a *DeniedError (errors.Is ErrDenied) after recording it; a change that was
// allowed but cannot be applied returns the directory error (ErrNotFound, ErrConflict,
// ErrStale, ErrInvalid) after recording the failure. In every such case nothing was changed.
// If ctx ends while the op waits to be applied, Submit returns ctx's error and the op is not
// applied; once applying has begun, it completes and the audit trail tells its outcome.
func (p *Pipeline) Submit(ctx context.Context, actor delegation.Actor, meta Meta, op Op) (Result, error) {
	if err := op.check(); err != nil {
		return Result{}, err
	}
	if err := p.prepare(ctx, actor, &op); err != nil {
		return Result{}, err
	}
	w := &waiter{ctx: ctx, actor: actor, meta: meta, op: op, done: make(chan struct{})}
	p.group.mu.Lock()
	p.group.queue = append(p.group.queue, w)
	if p.group.draining {
		p.group.mu.Unlock()
		// A drainer is committing; it takes this op into its next group. It skips a waiter
		// whose context has ended before that group starts; once the group has started, the
		// outcome is waited for rather than a change reported as not done.
		<-w.done
		return w.outcome()
	}
	// Nobody is committing: commit the queue (this op, and any that raced in) right here, then
	// hand what arrived meanwhile to a drainer.
	p.group.draining = true
	batch := p.group.queue
	p.group.queue = nil
	p.group.mu.Unlock()
	p.commitGroup(context.WithoutCancel(ctx), batch)
	p.group.mu.Lock()
	if len(p.group.queue) > 0 {
		go p.drain(context.WithoutCancel(ctx))
	} else {
		p.group.draining = false
	}
	p.group.mu.Unlock()
	return w.outcome()
}

// outcome is what Submit returns: a parked op comes back as a *PendingError, so that a caller
// that knows nothing of approvals does not take it for applied.
func (w *waiter) outcome() (Result, error) {
	if w.err == nil && w.res.Outcome == audit.Pending {
		return w.res, &PendingError{Request: w.res.Request, Event: w.res.Event}
	}
	return w.res, w.err
}

// drain commits queued ops, group by group, until the queue is empty.
func (p *Pipeline) drain(ctx context.Context) {
	for {
		// Let the submitters just woken by the last commit queue their next ops, so that they
		// join this group instead of the one after.
		runtime.Gosched()
		p.group.mu.Lock()
		batch := p.group.queue
		p.group.queue = nil
		if len(batch) == 0 {
			p.group.draining = false
			p.group.mu.Unlock()
			return
		}
		p.group.mu.Unlock()
		p.commitGroup(ctx, batch)
	}
}

// commitGroup applies a batch of independent ops in one transaction and wakes their waiters.
func (p *Pipeline) commitGroup(ctx context.Context, batch []*waiter) {
	defer func() {
		for _, w := range batch {
			close(w.done)
		}
	}()
	live := batch[:0:0]
	for _, w := range batch {
		if err := w.ctx.Err(); err != nil {
			w.err = fmt.Errorf("change: %s: not applied: %w", w.op.Action, err)
			continue
		}
		live = append(live, w)
	}
	switch len(live) {
	case 0:
		return
	case 1:
		w := live[0]
		results, err := p.runBatch(context.WithoutCancel(w.ctx), w.actor, w.meta, []Op{w.op})
		if len(results) == 1 {
			w.res = results[0]
		}
		w.err = err
		return
	}
	start := p.now()
	var sess delegation.Session
	err := p.store.InTx(ctx, func(tx Tx) error {
		var err error
		if sess, err = p.authz.Session(ctx, tx); err != nil {
			return err
		}
		for _, w := range live {
			if err := p.applyIsolated(ctx, tx, sess, w); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		sess.Commit()
	} else {
		for _, w := range live {
			w.res, w.err = Result{}, fmt.Errorf("change: %s: %w", w.op.Action, err)
		}
	}
	ops := make([]Op, len(live))
	results := make([]Result, len(live))
	for i, w := range live {
		ops[i], results[i] = w.op, w.res
	}
	p.observe(ops, results, nil, start)
}

// applyIsolated applies one op of a group in a savepoint. A denial or failure undoes the op's
// own writes, is recorded in the same transaction and becomes the waiter's error; only an
// infrastructure error is returned, failing the whole group.
func (p *Pipeline) applyIsolated(ctx context.Context, tx Tx, sess delegation.Session, w *waiter) error {
	var (
		res   Result
		a     *attempt
		opErr error
	)
	err := tx.Savepoint(ctx, func() error {
		res, a, opErr = p.apply(ctx, tx, sess, w.actor, w.meta, &w.op)
		return opErr
	})
	switch {
	case errors.Is(err, ErrTxBroken):
		return err
	case opErr == nil:
		w.res = res
		return err
	case a == nil || a.ev == nil:
		return opErr // an infrastructure error: nothing can be recorded
	}
	idx, err := tx.AppendEvent(ctx, a.ev)
	if err != nil {
		return err
	}
	a.result.Event = idx
	var denied *DeniedError
	if errors.As(opErr, &denied) {
		denied.Event = idx
	}
	w.res, w.err = a.result, opErr
	return nil
}
