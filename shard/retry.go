package shard

import (
	"context"
	"time"

	"github.com/madang-io/madang/internal/sqldialect"
)

// Defaults of RetryPolicy (and of Config.TxRetries and Config.TxBackoff).
const (
	DefaultTxRetries = 3
	DefaultTxBackoff = 10 * time.Millisecond
)

// RetryPolicy is madang's one policy for database work that failed only
// because of concurrency: a deadlock victim or a lock wait timeout on
// MySQL/MariaDB (errors 1213, 1205), a busy or locked SQLite database.
// Router.Tx (Config.TxRetries, Config.TxBackoff), Accounts.Register and the
// anticheat SQL store retry with it; Do gives the same loop to work of your
// own that is not a Router.Tx (migrations at start-up, a directory change).
//
// The zero value is the default: 3 retries (4 runs in all), 10 ms before
// the first, doubled for each next one, with up to 50% random jitter added
// so that the victims of one deadlock do not meet again.
type RetryPolicy struct {
	// Retries is how many more times the work runs after a retryable
	// failure. Default DefaultTxRetries (3); negative means no retry.
	Retries int
	// Backoff is the wait before the first retry, doubled for each next
	// one, plus up to 50% jitter. Default DefaultTxBackoff (10 ms).
	Backoff time.Duration
}

// internal returns p with its defaults applied, as the shared loop.
func (p RetryPolicy) internal() sqldialect.Retry {
	r := sqldialect.Retry{Retries: p.Retries, Backoff: p.Backoff}
	if r.Retries == 0 {
		r.Retries = DefaultTxRetries
	}
	if r.Backoff <= 0 {
		r.Backoff = DefaultTxBackoff
	}
	return r
}

// Do runs fn, and runs it again after a wait while it fails with a
// retryable error (IsRetryable), at most p.Retries more times. It returns
// fn's last error unchanged (nil once fn succeeded); the end of ctx stops
// the retries. fn must leave nothing behind when it fails: run a
// transaction in it, or work that is safe to repeat.
func (p RetryPolicy) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	return p.internal().Do(ctx, fn)
}

// IsRetryable reports whether err says the work failed only because of
// concurrency — a deadlock or lock wait timeout on MySQL/MariaDB, a busy or
// locked database on SQLite — so running it again from the start may
// succeed. RetryPolicy retries exactly these.
func IsRetryable(err error) bool { return sqldialect.IsRetryable(err) }
