package auth

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/latchnvr/latch/nvr/store"
)

// committer commits the writes of concurrent attempts in shared IMMEDIATE
// transactions (group commit): SQLite has one writer, and one commit per
// refused attempt would make the commit, not the decision, the cost of a
// flood.
//
// R-ATOMIC still holds per attempt: an attempt's writes (keys, audit,
// session, outbox) run together inside one transaction, and its caller
// answers only after that transaction committed, so a crash before the
// commit leaves no trace of it and grants nothing. Attempts that change
// keys hold their stripes until their commit, so no two writes of one key
// share a batch; writes are compare-and-swap on key versions all the same.
//
// Refusals are merged within a batch (SPEC R-AUDIT): the batch runs inside
// store.Tx.MergeRefusals, so the refusals of one key in one minute that
// share a batch become one aggregate write with their count, instead of
// one write each. Under a flood that is most of a batch: 8 clients
// hammering one locked pair cost one UPDATE per commit. Each refusal is
// still counted exactly once, because the merged count commits with the
// transaction its caller waits for, or not at all.
//
// There is no goroutine of its own: the first caller to find no commit in
// progress leads, committing everything queued (its own write first); a
// caller arriving meanwhile queues for the next batch, which the leader
// hands to the oldest waiter after its own batch, so no caller leads for
// longer than one batch.
type committer struct {
	db *store.DB
	// first, if set, runs at the start of every batch's transaction, once
	// the batch is taken: the key cache's check for other connections'
	// commits (keyCache.checkOthers).
	first func(ctx context.Context, tx *store.Tx)

	mu      sync.Mutex
	queue   []*commitReq
	leading bool

	// batches and requests count committed batches and the requests in
	// them, for the benchmarks' requests-per-commit figure.
	batches, requests atomic.Int64
}

type commitReq struct {
	fn  func(tx *store.Tx) error
	err error
	// wake receives true when this request must lead the next batch, false
	// when its batch is done.
	wake chan bool
}

// maxBatch bounds one transaction, so a batch's latency stays bounded too.
const maxBatch = 256

var reqPool = sync.Pool{New: func() any { return &commitReq{wake: make(chan bool, 1)} }}

// do runs fn in a transaction shared with other callers and returns after
// it committed (nil) or failed. fn may run twice: when a shared transaction
// fails, every request in it is retried in a transaction of its own, so
// one request's error (a stale key version) never fails another's. fn must
// therefore only write through tx and leave nothing behind outside it.
func (c *committer) do(fn func(tx *store.Tx) error) error {
	r := reqPool.Get().(*commitReq)
	r.fn, r.err = fn, nil
	c.mu.Lock()
	c.queue = append(c.queue, r)
	lead := !c.leading
	c.leading = true
	c.mu.Unlock()
	if !lead {
		lead = <-r.wake
	}
	if lead {
		c.lead()
	}
	err := r.err
	r.fn, r.err = nil, nil
	reqPool.Put(r)
	return err
}

// take removes up to maxBatch requests from the queue, oldest first.
func (c *committer) take() []*commitReq {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := min(len(c.queue), maxBatch)
	batch := make([]*commitReq, n)
	copy(batch, c.queue)
	c.queue = append(c.queue[:0], c.queue[n:]...)
	return batch
}

// lead commits one batch, whose first request is the leader's own, wakes
// its requests, and passes leadership to the oldest queued request.
func (c *committer) lead() {
	// A detached context: one caller giving up must not roll back the
	// others' writes, and a caller waits for its commit whatever its own
	// context says (it may hold stripes that must outlive the commit).
	ctx := context.Background()
	// Let the attempts that are ready to run reach the queue first: with
	// as many goroutines as cores, a flood's attempts are mostly busy
	// reading and deciding, so without yielding a batch holds only what the
	// other cores finished during the previous commit (1.4 requests on two
	// cores), and each commit costs a WAL write and the write lock's round
	// trips. Yielding costs nothing when nobody else is runnable, so a
	// lone attempt is not delayed.
	runtime.Gosched()
	var batch []*commitReq
	err := c.db.WithTx(ctx, func(tx *store.Tx) error {
		// The batch is taken once the transaction has begun, not before:
		// requests that arrive while BEGIN waits for the write lock join
		// this commit rather than the next.
		batch = c.take()
		if c.first != nil {
			c.first(ctx, tx)
		}
		return tx.MergeRefusals(ctx, func() error {
			for _, r := range batch {
				if err := r.fn(tx); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if batch == nil {
		// BEGIN failed before the batch was taken: take it now, so that
		// its requests are answered like those of any failed batch.
		batch = c.take()
	}
	if err == nil {
		c.batches.Add(1)
		c.requests.Add(int64(len(batch)))
	}
	// A retried request writes its refusal at once, in a transaction of
	// its own: nothing of the failed batch's merge survived its rollback,
	// so nothing is counted twice.
	if err != nil && len(batch) > 1 {
		for _, r := range batch {
			r.err = c.db.WithTx(ctx, func(tx *store.Tx) error {
				// Checked again: the failed batch may have failed before
				// its check (at BEGIN).
				if c.first != nil {
					c.first(ctx, tx)
				}
				return r.fn(tx)
			})
		}
	} else {
		for _, r := range batch {
			r.err = err
		}
	}

	c.mu.Lock()
	if len(c.queue) > 0 {
		c.queue[0].wake <- true
	} else {
		c.leading = false
	}
	c.mu.Unlock()
	// The leader's own request is batch[0]; it is not waiting.
	for _, r := range batch[1:] {
		r.wake <- false
	}
}
