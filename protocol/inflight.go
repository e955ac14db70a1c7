package protocol

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
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
	// DefaultInFlightWait is the longest expected wait for a turn a
	// request is queued for by default (InFlightConfig.Wait). Measured on
	// the reference game server at 1,000 closed-loop clients
	// (BENCHMARKS.md, "plateau under concurrency, part 2"): a request
	// refused there comes back to the end of the queue after its retry
	// hint, so a bound below the queue's length (1,000 clients over the
	// calls served per second: 1.5-3 s on 2 cores) turned a third of the
	// requests into refusals and re-sends, which cost CPU per answered
	// call, throughput and p99; 5 s refused none.
	DefaultInFlightWait = 5 * time.Second
	// MaxInFlightRetryAfter bounds the retry hint of a refusal.
	MaxInFlightRetryAfter = 10 * time.Second
)

// ErrServerBusy is the error for a request that gets no turn: the server is
// serving as many requests as it allows and the queue in front of them is
// longer than it lets a request wait (InFlightConfig.Wait). It is answered
// unavailable (retryable: nothing ran) with a retry hint of about the wait
// the queue would have cost, at least 1 s; errors.Is matches the *Error
// values the limit returns, which carry the hint.
var ErrServerBusy = &Error{Code: CodeUnavailable, Message: "protocol: server busy; retry later", RetryAfter: time.Second}

// InFlightConfig configures an InFlightLimit. The zero value works: every
// default is on its field.
type InFlightConfig struct {
	// Max is the most requests served at once by everything sharing the
	// limit. Default DefaultMaxInFlight (64); negative: no limit.
	Max int
	// Wait is the longest wait for a turn a request is queued for. A
	// request past Max is expected to wait its place in the queue times
	// the time a turn is held (a moving average of the served requests),
	// divided by Max; when that is longer than Wait it is refused at once
	// with unavailable (ErrServerBusy) and a retry hint of that expected
	// wait (1 s to MaxInFlightRetryAfter, spread), instead of waiting in
	// vain and being refused then. Default DefaultInFlightWait (5 s);
	// negative: no wait, a request past Max is refused at once.
	Wait time.Duration
	// MaxWait bounds the wait of a queued request (the estimate can be
	// wrong when requests suddenly take longer); it is then refused.
	// Default 3 × Wait (15 s).
	MaxWait time.Duration
}

// InFlightLimit bounds the requests a server serves at once: the queue is
// at the door, in arrival order, not in the database pools behind the
// handlers (where a request holds its goroutine and buffers anyway, and
// waiters are served in no particular order, so tail latency and CPU per
// request grow with the number of clients). Past the limit a request
// queues when its expected wait is within Config.Wait and is refused at
// once with ErrServerBusy otherwise, before anything ran. Share one limit
// between the HTTP handler (HTTPConfig.InFlight) and a websocket hub's
// handler chain (Middleware). Safe for concurrent use.
type InFlightLimit struct {
	cfg InFlightConfig

	// free and waiting are read and changed without mu on the fast paths
	// (a turn taken while nobody queues, a turn freed while nobody
	// queues); a request that queues adds itself to waiting before it
	// looks at free again, and a release adds to free before it looks at
	// waiting, so one of the two always sees the other (the atomics are
	// sequentially consistent) and no waiter sleeps next to a free turn.
	free    atomic.Int64 // turns not held
	waiting atomic.Int64 // queued waiters that did not leave (changed under mu)
	hold    atomic.Int64 // moving average of a turn's hold time, ns (0: none yet)

	mu    sync.Mutex
	queue []*inFlightWaiter // first come first; from head on
	head  int
	// expiry answers the queued requests whose MaxWait passed: one timer
	// for the whole queue (every waiter waits the same MaxWait, so the
	// first in the queue is the first to expire), armed for the first
	// live waiter's deadline while armed is true; nil until first needed.
	expiry *time.Timer
	armed  bool

	inFlight, peak            atomic.Int64
	admitted, waited, refused atomic.Uint64
}

// inFlightWaiter is a queued request. Its answer comes on ready (buffered):
// true when it was handed a turn, false when its MaxWait passed (expired);
// both are marked under the limit's mutex. gone marks one that left the
// queue (gave up or expired) for the next hand-over to drop.
type inFlightWaiter struct {
	ready    chan bool
	deadline time.Time // MaxWait after it queued
	gone     bool
	handed   bool
	expired  bool
}

var inFlightWaiters = sync.Pool{New: func() any { return &inFlightWaiter{ready: make(chan bool, 1)} }}

// InFlightStats are an InFlightLimit's counters, for metrics.
type InFlightStats struct {
	Max      int    // the limit: Config.Max (negative: none)
	InFlight int64  // requests being served now
	Peak     int64  // the most served at once since the limit was made
	Admitted uint64 // requests let through
	Waited   uint64 // of those and the refused, requests that found no free turn
	Refused  uint64 // requests refused (ErrServerBusy)
	Queued   int    // requests waiting for a turn now
	// Hold is the moving average of the time a turn is held (0 before
	// the first request ends).
	Hold time.Duration
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
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 3 * max(cfg.Wait, 0)
	}
	l := &InFlightLimit{cfg: cfg}
	l.free.Store(int64(cfg.Max))
	return l
}

// Config returns the limit's configuration with its defaults applied.
func (l *InFlightLimit) Config() InFlightConfig { return l.cfg }

// Stats returns the limit's counters.
func (l *InFlightLimit) Stats() InFlightStats {
	return InFlightStats{Max: l.cfg.Max, InFlight: l.inFlight.Load(), Peak: l.peak.Load(),
		Admitted: l.admitted.Load(), Waited: l.waited.Load(), Refused: l.refused.Load(),
		Queued: int(l.waiting.Load()), Hold: time.Duration(l.hold.Load())}
}

// takeFree takes a free turn if there is one.
func (l *InFlightLimit) takeFree() bool {
	for n := l.free.Load(); n > 0; n = l.free.Load() {
		if l.free.CompareAndSwap(n, n-1) {
			return true
		}
	}
	return false
}

// Acquire takes a turn: at once when one is free and nobody queues, else
// in first-come order when the expected wait is within Config.Wait (up to
// Config.MaxWait, or until ctx ends). Call release, once, when the request
// is done. The error is ErrServerBusy (with a retry hint) when the request
// gets no turn, or ctx's error when ctx ended first; nothing is held then.
func (l *InFlightLimit) Acquire(ctx context.Context) (release func(), err error) {
	if l.cfg.Max < 0 {
		return l.admit(time.Time{}), nil
	}
	if l.waiting.Load() == 0 && l.takeFree() {
		return l.admit(time.Now()), nil
	}
	l.mu.Lock()
	if l.waiting.Load() == 0 && l.head > 0 {
		// Only waiters that left are queued: drop them.
		clear(l.queue)
		l.queue, l.head = l.queue[:0], 0
	}
	queued := l.waiting.Add(1) // before looking at free again (see free)
	if queued == 1 && l.takeFree() {
		l.waiting.Add(-1)
		l.mu.Unlock()
		return l.admit(time.Now()), nil
	}
	l.waited.Add(1)
	expect := time.Duration(queued * l.hold.Load() / int64(l.cfg.Max))
	if l.cfg.Wait < 0 || expect > l.cfg.Wait {
		l.waiting.Add(-1)
		l.mu.Unlock() // a release that saw it queued hands over after this
		return nil, l.busy(expect)
	}
	w := inFlightWaiters.Get().(*inFlightWaiter)
	w.gone, w.handed, w.expired = false, false, false
	now := time.Now()
	w.deadline = now.Add(l.cfg.MaxWait)
	if l.head > 0 && len(l.queue) == cap(l.queue) {
		n := copy(l.queue, l.queue[l.head:])
		clear(l.queue[n:])
		l.queue, l.head = l.queue[:n], 0
	}
	l.queue = append(l.queue, w)
	if !l.armed {
		// Nothing earlier is waiting to expire: this one is the first.
		l.armLocked(l.cfg.MaxWait)
	}
	handed := l.handOverLocked()
	l.mu.Unlock()
	if handed != nil {
		handed.ready <- true
	}

	// One channel to park on (and the caller's ctx): no timer per waiter,
	// the limit's expiry timer answers the ones whose MaxWait passed.
	var turn bool
	if done := ctx.Done(); done == nil {
		turn = <-w.ready
	} else {
		select {
		case turn = <-w.ready:
		case <-done:
			l.mu.Lock()
			switch {
			case w.handed: // handed a turn as it left
				l.mu.Unlock()
				<-w.ready // sent just after the hand-over
				inFlightWaiters.Put(w)
				l.release(time.Time{}) // pass it on
			case w.expired: // answered by the expiry as it left
				l.mu.Unlock()
			default:
				w.gone = true // left in the queue for the next hand-over to drop
				l.waiting.Add(-1)
				l.mu.Unlock()
			}
			return nil, ctx.Err()
		}
	}
	if !turn {
		// Expired: out of the queue and the count already; left in the
		// queue's slice (gone) for the next hand-over to drop.
		return nil, l.busy(l.cfg.MaxWait)
	}
	inFlightWaiters.Put(w)
	return l.admit(time.Now()), nil
}

// armLocked arms the expiry timer to fire after d. l.mu is held.
func (l *InFlightLimit) armLocked(d time.Duration) {
	l.armed = true
	if l.expiry == nil {
		l.expiry = time.AfterFunc(d, l.expire)
		return
	}
	l.expiry.Reset(d)
}

// expire answers the queued requests whose MaxWait passed (false on their
// ready: refused) and arms the timer for the first that is still waiting.
// The queue is in arrival order and every waiter waits the same MaxWait,
// so it stops at the first live waiter whose deadline is still ahead.
func (l *InFlightLimit) expire() {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.armed = false
	for _, w := range l.queue[l.head:] {
		if w.gone {
			continue
		}
		if d := w.deadline.Sub(now); d > 0 {
			l.armLocked(d)
			return
		}
		w.gone, w.expired = true, true
		l.waiting.Add(-1)
		w.ready <- false // buffered and empty: not handed
	}
}

// admit counts an admitted request and returns its release.
func (l *InFlightLimit) admit(start time.Time) func() {
	l.admitted.Add(1)
	now := l.inFlight.Add(1)
	for p := l.peak.Load(); now > p && !l.peak.CompareAndSwap(p, now); p = l.peak.Load() {
	}
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			l.inFlight.Add(-1)
			if l.cfg.Max >= 0 {
				l.release(start)
			}
		}
	}
}

// release frees a turn and hands it to the first queued request, if any; a
// turn taken at start (non-zero) updates the moving average of the hold
// time. Only a release that finds requests queued takes the mutex.
func (l *InFlightLimit) release(start time.Time) {
	if !start.IsZero() {
		if d := int64(time.Since(start)); d > 0 {
			// One attempt: a sample lost to a concurrent update only
			// slows the average down a little.
			h := l.hold.Load()
			nh := d
			if h != 0 {
				nh = h + (d-h)/32
			}
			l.hold.CompareAndSwap(h, nh)
		}
	}
	l.free.Add(1)
	if l.waiting.Load() == 0 { // after free (see free)
		return
	}
	l.handOver()
}

// handOver gives free turns to queued requests.
func (l *InFlightLimit) handOver() {
	l.mu.Lock()
	w := l.handOverLocked()
	l.mu.Unlock()
	if w != nil {
		w.ready <- true
	}
}

// handOverLocked takes a free turn for the first queued request that did
// not leave, if both exist, and returns it marked handed (remove from the
// queue and the count); the caller sends on its ready after unlocking.
func (l *InFlightLimit) handOverLocked() *inFlightWaiter {
	for l.head < len(l.queue) {
		w := l.queue[l.head]
		if w.gone {
			l.queue[l.head] = nil
			l.head++
			continue
		}
		if !l.takeFree() {
			return nil
		}
		l.queue[l.head] = nil
		l.head++
		l.waiting.Add(-1)
		w.handed = true
		return w
	}
	l.queue, l.head = l.queue[:0], 0
	return nil
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

// busy counts a refusal and returns ErrServerBusy with a retry hint of
// about the expected wait (1 s to MaxInFlightRetryAfter), spread by up to
// half of it so refused clients do not come back together.
func (l *InFlightLimit) busy(expect time.Duration) error {
	l.refused.Add(1)
	e := *ErrServerBusy
	base := min(max(expect, time.Second), MaxInFlightRetryAfter*2/3)
	e.RetryAfter = base + rand.N(base/2)
	return &serverBusyError{&e}
}

// serverBusyError is ErrServerBusy with its own retry hint; errors.Is
// matches ErrServerBusy, errors.As finds the *Error with the hint.
type serverBusyError struct{ e *Error }

func (e *serverBusyError) Error() string        { return e.e.Error() }
func (e *serverBusyError) Unwrap() error        { return e.e }
func (e *serverBusyError) Is(target error) bool { return target == ErrServerBusy }
