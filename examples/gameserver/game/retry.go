package game

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/internal/sqldialect"
)

// Defaults of the deadlock retry (Config.DeadlockRetries).
const (
	// DefaultDeadlockRetries is how many more runs a deadlock victim gets.
	DefaultDeadlockRetries = 2
	// deadlockBackoff is the wait before the first rerun, doubled for
	// each next one, with up to 50% random jitter added.
	deadlockBackoff = 5 * time.Millisecond
)

// deadlockRetry runs an idempotent command again, in a new transaction with
// the same key, when the database picked its transaction as a deadlock
// victim. That is safe: the victim's writes and its key row rolled back
// with it, its after-commit hooks never ran (a new run registers its own),
// and the game's handlers have no other effects. A lock wait timeout is not
// retried here (it already waited innodb_lock_wait_timeout), nor is
// anything else: those reach the client as before.
type deadlockRetry struct {
	idempotency.Doer
	retries int
	backoff time.Duration
	retried atomic.Uint64
}

// isDeadlock reports whether err is a deadlock victim's error: MySQL and
// MariaDB error 1213 (or SQLite's SQLITE_LOCKED).
func isDeadlock(err error) bool {
	return sqldialect.IsRetryable(err) && !sqldialect.IsLockWaitTimeout(err)
}

// Do implements idempotency.Doer.
func (d *deadlockRetry) Do(ctx context.Context, scope idempotency.Scope, key string, fp idempotency.Fingerprint, fn idempotency.Func) (idempotency.Outcome, error) {
	backoff := d.backoff
	for attempt := 0; ; attempt++ {
		out, err := d.Doer.Do(ctx, scope, key, fp, fn)
		if err == nil || attempt >= d.retries || !isDeadlock(err) || ctx.Err() != nil {
			return out, err
		}
		d.retried.Add(1)
		tm := time.NewTimer(backoff + time.Duration(rand.Int64N(int64(backoff)/2+1)))
		select {
		case <-ctx.Done():
			tm.Stop()
			return out, err
		case <-tm.C:
		}
		backoff *= 2
	}
}

// DeadlockRetries returns how many times a mutating command was run again
// after its transaction was picked as a deadlock victim (see
// Config.DeadlockRetries).
func (g *Game) DeadlockRetries() uint64 { return g.once.retried.Load() }
