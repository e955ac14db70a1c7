package protocol

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// Defaults for InFlightConfig.
const (
	// DefaultMaxInFlight is how many requests a server serves at once by
	// default (InFlightConfig.Max): four times a game database's pool
	// (shard.Config.MaxOpenConns, 16). Measured on the reference game
	// server on 2 cores (BENCHMARKS.md, "plateau under concurrency"):
	// from 16 to 256 at once, throughput at 100 and 1,000 clients was the
	// same within the machine's noise; 64 gave the lowest p99 at 1,000
	// clients, and without a limit one run of two at 1,000 clients failed
	// calls with a p99 of 5 s.
	DefaultMaxInFlight = 64
	// DefaultInFlightWait is how long a request waits for its turn by
	// default (InFlightConfig.Wait).
	DefaultInFlightWait = time.Second
)

// ErrServerBusy is the error for a request that did not get its turn
// within InFlightConfig.Wait: the server is serving as many requests as it
// allows and the queue in front of them is longer than the wait. It is
// answered unavailable (retryable: nothing ran) with a retry hint of 1-2 s;
// errors.Is matches the *Error values the limit returns, which carry the
// hint.
var ErrServerBusy = &Error{Code: CodeUnavailable, Message: "protocol: server busy; retry later", RetryAfter: time.Second}

// InFlightConfig configures an InFlightLimit. The zero value works: every
// default is on its field.
type InFlightConfig struct {
	// Max is the most requests served at once by everything sharing the
	// limit. Default DefaultMaxInFlight (64); negative: no limit.
	Max int
	// Wait is how long a request past Max waits, in first-come order, for
	// a request to finish before it is refused with unavailable
	// (ErrServerBusy). Default DefaultInFlightWait (1 s); negative: no
	// wait.
	Wait time.Duration
}

// InFlightLimit bounds the requests a server serves at once: the queue is
// at the door, in arrival order, not in the database pools behind the
// handlers (where a request holds its goroutine and buffers anyway, and
// waiters are served in no particular order, so tail latency and CPU per
// request grow with the number of clients). Past the limit a request waits
// up to Config.Wait and is then refused with ErrServerBusy before anything
// ran. Share one limit between the HTTP handler (HTTPConfig.InFlight) and
// a websocket hub's handler chain (Middleware). Safe for concurrent use.
type InFlightLimit struct {
	sem *semaphore.Weighted // nil: no limit
	cfg InFlightConfig

	inFlight, peak            atomic.Int64
	admitted, waited, refused atomic.Uint64
}

// InFlightStats are an InFlightLimit's counters, for metrics.
type InFlightStats struct {
	Max      int    // the limit: Config.Max (negative: none)
	InFlight int64  // requests being served now
	Peak     int64  // the most served at once since the limit was made
	Admitted uint64 // requests let through
	Waited   uint64 // of those and the refused, requests that had to queue
	Refused  uint64 // requests refused after Config.Wait (ErrServerBusy)
}

// NewInFlightLimit returns an InFlightLimit for cfg, applying defaults to
// zero fields.
func NewInFlightLimit(cfg InFlightConfig) *InFlightLimit {
	if cfg.Max == 0 {
		cfg.Max = DefaultMaxInFlight
	}
	if cfg.Wait == 0 {
		cfg.Wait = DefaultInFlightWait
	}
	l := &InFlightLimit{cfg: cfg}
	if cfg.Max > 0 {
		l.sem = semaphore.NewWeighted(int64(cfg.Max))
	}
	return l
}

// Config returns the limit's configuration with its defaults applied.
func (l *InFlightLimit) Config() InFlightConfig { return l.cfg }

// Stats returns the limit's counters.
func (l *InFlightLimit) Stats() InFlightStats {
	return InFlightStats{Max: l.cfg.Max, InFlight: l.inFlight.Load(), Peak: l.peak.Load(),
		Admitted: l.admitted.Load(), Waited: l.waited.Load(), Refused: l.refused.Load()}
}

// Acquire takes a turn, waiting in first-come order up to Config.Wait (or
// until ctx ends). Call release, once, when the request is done. The error
// is ErrServerBusy (with a retry hint) after the wait, or ctx's error when
// ctx ended first; nothing is held then.
func (l *InFlightLimit) Acquire(ctx context.Context) (release func(), err error) {
	if l.sem != nil && !l.sem.TryAcquire(1) {
		l.waited.Add(1)
		if l.cfg.Wait < 0 {
			return nil, l.busy()
		}
		wctx, cancel := context.WithTimeout(ctx, l.cfg.Wait)
		err := l.sem.Acquire(wctx, 1)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, l.busy()
		}
	}
	l.admitted.Add(1)
	now := l.inFlight.Add(1)
	for p := l.peak.Load(); now > p && !l.peak.CompareAndSwap(p, now); p = l.peak.Load() {
	}
	var done atomic.Bool
	return func() {
		if !done.CompareAndSwap(false, true) {
			return
		}
		l.inFlight.Add(-1)
		if l.sem != nil {
			l.sem.Release(1)
		}
	}, nil
}

// Middleware returns the limit as a protocol middleware: a request that
// gets no turn is answered with ErrServerBusy's code and hint (and the
// request's seq and rid). Put it first in a chain that does not already
// pass through the HTTP handler's limit, such as a websocket hub's
// (realtime's Config.Handler) when HTTPConfig.InFlight is the same limit:
// a request must take a turn only once.
func (l *InFlightLimit) Middleware() Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
			release, err := l.Acquire(ctx)
			if err != nil {
				return nil, err
			}
			defer release()
			return next.Serve(ctx, req)
		})
	}
}

// busy counts a refusal and returns ErrServerBusy with a retry hint of 1-2
// s, spread so refused clients do not come back together.
func (l *InFlightLimit) busy() error {
	l.refused.Add(1)
	e := *ErrServerBusy
	e.RetryAfter = time.Second + rand.N(time.Second)
	return &serverBusyError{&e}
}

// serverBusyError is ErrServerBusy with its own retry hint; errors.Is
// matches ErrServerBusy, errors.As finds the *Error with the hint.
type serverBusyError struct{ e *Error }

func (e *serverBusyError) Error() string        { return e.e.Error() }
func (e *serverBusyError) Unwrap() error        { return e.e }
func (e *serverBusyError) Is(target error) bool { return target == ErrServerBusy }
