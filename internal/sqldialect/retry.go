package sqldialect

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"time"
)

// Retry is madang's one retry loop for database work that failed only
// because of concurrency (a deadlock victim, a lock wait timeout, a busy
// SQLite database): shard.Router.Tx, shard.Accounts.Register, the anticheat
// SQL store and the public shard.RetryPolicy all run through it. The values
// are taken as they are (no defaults): the callers apply theirs.
type Retry struct {
	// Retries is how many more times Do runs fn after a retryable failure;
	// 0 or less: none.
	Retries int
	// Backoff is the wait before the first retry, doubled for each next
	// one, with up to 50% random jitter added. 0: no wait.
	Backoff time.Duration
	// Retryable says which errors run fn again. Nil: IsRetryable.
	Retryable func(error) bool
	// OnRetry, when set, is called before each retry (counters).
	OnRetry func(err error)
}

// Do runs fn, and runs it again after a wait while it fails with a
// retryable error, at most r.Retries more times. It returns fn's last error
// (nil once fn succeeded). The end of ctx stops the retries: the error of
// the last run is returned.
func (r Retry) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	retryable := r.Retryable
	if retryable == nil {
		retryable = IsRetryable
	}
	backoff := r.Backoff
	for attempt := 0; ; attempt++ {
		err := fn(ctx)
		if err == nil || attempt >= r.Retries || ctx.Err() != nil || !retryable(err) {
			return err
		}
		if r.OnRetry != nil {
			r.OnRetry(err)
		}
		if backoff > 0 {
			tm := time.NewTimer(backoff + time.Duration(rand.Int64N(int64(backoff)/2+1)))
			select {
			case <-ctx.Done():
				tm.Stop()
				return err
			case <-tm.C:
			}
			backoff *= 2
		}
	}
}

// BeginError marks a failed BeginTx in RunTx's error: the database is
// unreachable or busy, and nothing ran.
type BeginError struct{ Err error }

func (e *BeginError) Error() string { return "begin: " + e.Err.Error() }
func (e *BeginError) Unwrap() error { return e.Err }

// CommitError marks a failed COMMIT in RunTx's error: fn succeeded, and
// whether the transaction committed depends on the cause (see
// backend.CommitUnknown).
type CommitError struct{ Err error }

func (e *CommitError) Error() string { return "commit: " + e.Err.Error() }
func (e *CommitError) Unwrap() error { return e.Err }

// RunTx runs fn in one transaction on db: it begins, runs fn, and commits
// when fn returns nil (rolls back otherwise, and when fn panics, letting the
// panic go on). fn's error is returned as it is; a failed begin or commit
// as a *BeginError or *CommitError. Wrap it in Retry.Do to retry.
func RunTx(ctx context.Context, db *sql.DB, fn func(ctx context.Context, tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return &BeginError{err}
	}
	done := false
	defer func() {
		if !done {
			_ = tx.Rollback() // fn panicked: release the connection
		}
	}()
	if err := fn(ctx, tx); err != nil {
		done = true
		_ = tx.Rollback()
		return err
	}
	done = true
	if err := tx.Commit(); err != nil {
		return &CommitError{err}
	}
	return nil
}
