package sessiontest

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/session"
)

// NewLimiterFunc returns a fresh limiter configured with cfg (keep its
// fields, in particular Now; add your own, such as a random Prefix). Two
// calls within one test may return limiters sharing state (Redis under
// one prefix) or not (memory); the suite does not rely on either.
type NewLimiterFunc func(t *testing.T, cfg session.LimiterConfig) session.Limiter

// RunLimiterTests runs the rate limiter conformance suite against limiters
// from newLimiter.
//
// Time: the suite passes a Clock's Now in LimiterConfig.Now and moves it;
// a limiter must compute its state from that clock (RedisLimiter passes it
// to its script; the Redis TTLs, here minutes, only collect garbage).
// Nothing sleeps.
func RunLimiterTests(t *testing.T, newLimiter NewLimiterFunc) {
	t.Run("Burst", func(t *testing.T) { testLimiterBurst(t, newLimiter) })
	t.Run("Refill", func(t *testing.T) { testLimiterRefill(t, newLimiter) })
	t.Run("RefusedNotCounted", func(t *testing.T) { testLimiterRefused(t, newLimiter) })
	t.Run("Independent", func(t *testing.T) { testLimiterIndependent(t, newLimiter) })
	t.Run("FastRate", func(t *testing.T) { testLimiterFast(t, newLimiter) })
	t.Run("Concurrent", func(t *testing.T) { testLimiterConcurrent(t, newLimiter) })
	t.Run("BadInput", func(t *testing.T) { testLimiterBadInput(t, newLimiter) })
}

func limiterSetup(t *testing.T, newLimiter NewLimiterFunc) (session.Limiter, *Clock) {
	t.Helper()
	clk := NewClock(time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC))
	return newLimiter(t, session.LimiterConfig{Now: clk.Now}), clk
}

// perMinute3 allows 3 at once, then one a minute.
var perMinute3 = session.Limit{Name: "suite", Rate: 1.0 / 60, Burst: 3}

// allow calls Allow and checks the answer: want allowed, or refused with
// the retry hint wantWait (to the microsecond).
func allow(t *testing.T, l session.Limiter, uk int64, lim session.Limit, want bool, wantWait time.Duration) {
	t.Helper()
	r, err := l.Allow(context.Background(), uk, lim)
	if err != nil {
		t.Fatalf("Allow(%d, %q): %v", uk, lim.Name, err)
	}
	if r.Allowed != want {
		t.Fatalf("Allow(%d, %q): allowed %v, want %v", uk, lim.Name, r.Allowed, want)
	}
	if d := r.RetryAfter - wantWait; d < -time.Microsecond || d > time.Microsecond {
		t.Fatalf("Allow(%d, %q): retry after %v, want %v", uk, lim.Name, r.RetryAfter, wantWait)
	}
}

// spend expects n events of uk under lim allowed at once, and the next
// one refused with the retry hint wait.
func spend(t *testing.T, l session.Limiter, uk int64, lim session.Limit, n int, wait time.Duration) {
	t.Helper()
	for range n {
		allow(t, l, uk, lim, true, 0)
	}
	allow(t, l, uk, lim, false, wait)
}

func testLimiterBurst(t *testing.T, newLimiter NewLimiterFunc) {
	l, _ := limiterSetup(t, newLimiter)
	uk := limiterUser()
	spend(t, l, uk, perMinute3, 3, time.Minute)
}

func testLimiterRefill(t *testing.T, newLimiter NewLimiterFunc) {
	l, clk := limiterSetup(t, newLimiter)
	uk := limiterUser()
	for range 3 {
		allow(t, l, uk, perMinute3, true, 0)
	}
	clk.Advance(20 * time.Second)
	allow(t, l, uk, perMinute3, false, 40*time.Second)
	clk.Advance(40 * time.Second) // one minute: one more
	allow(t, l, uk, perMinute3, true, 0)
	allow(t, l, uk, perMinute3, false, time.Minute)
	clk.Advance(10 * time.Minute) // idle past the refill time: a full burst again, no more
	spend(t, l, uk, perMinute3, 3, time.Minute)
}

func testLimiterRefused(t *testing.T, newLimiter NewLimiterFunc) {
	l, clk := limiterSetup(t, newLimiter)
	uk := limiterUser()
	for range 3 {
		allow(t, l, uk, perMinute3, true, 0)
	}
	for i := range 20 { // a client that keeps trying does not push its wait out
		clk.Advance(time.Second)
		allow(t, l, uk, perMinute3, false, time.Minute-time.Duration(i+1)*time.Second)
	}
	clk.Advance(40 * time.Second)
	allow(t, l, uk, perMinute3, true, 0)
}

func testLimiterIndependent(t *testing.T, newLimiter NewLimiterFunc) {
	l, _ := limiterSetup(t, newLimiter)
	a, b := limiterUser(), limiterUser()
	other := perMinute3
	other.Name = "suite.other"
	spend(t, l, a, perMinute3, 3, time.Minute)
	// Another user, and another limit of the same user, are untouched.
	for range 3 {
		allow(t, l, b, perMinute3, true, 0)
		allow(t, l, a, other, true, 0)
	}
	allow(t, l, b, perMinute3, false, time.Minute)
	allow(t, l, a, other, false, time.Minute)
	// A limit with another burst under the same name reads the same state:
	// 3 of its 6 are spent.
	wide := perMinute3
	wide.Burst = 6
	spend(t, l, b, wide, 3, time.Minute)
}

func testLimiterFast(t *testing.T, newLimiter NewLimiterFunc) {
	l, clk := limiterSetup(t, newLimiter)
	uk := limiterUser()
	lim := session.Limit{Name: "suite.fast", Rate: 20, Burst: 40}
	spend(t, l, uk, lim, 40, 50*time.Millisecond)
	clk.Advance(time.Second) // 20 more
	spend(t, l, uk, lim, 20, 50*time.Millisecond)
	clk.Advance(10 * time.Millisecond)
	allow(t, l, uk, lim, false, 40*time.Millisecond)
}

func testLimiterConcurrent(t *testing.T, newLimiter NewLimiterFunc) {
	l, _ := limiterSetup(t, newLimiter)
	uk := limiterUser()
	lim := session.Limit{Name: "suite.race", Rate: 1.0 / 60, Burst: 10}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				r, err := l.Allow(context.Background(), uk, lim)
				if err != nil {
					errs <- err
					return
				}
				if r.Allowed {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := allowed.Load(); n != 10 {
		t.Fatalf("80 concurrent events over a burst of 10 at one instant: %d allowed, want 10", n)
	}
}

func testLimiterBadInput(t *testing.T, newLimiter NewLimiterFunc) {
	l, _ := limiterSetup(t, newLimiter)
	ctx := context.Background()
	for _, c := range []struct {
		uk  int64
		lim session.Limit
	}{
		{0, perMinute3},
		{-1, perMinute3},
		{1, session.Limit{Name: "", Rate: 1, Burst: 1}},
		{1, session.Limit{Name: "a{b}", Rate: 1, Burst: 1}},
		{1, session.Limit{Name: string(make([]byte, session.MaxLimitNameLen+1)), Rate: 1, Burst: 1}},
		{1, session.Limit{Name: "x", Rate: 0, Burst: 1}},
		{1, session.Limit{Name: "x", Rate: -1, Burst: 1}},
		{1, session.Limit{Name: "x", Rate: 1, Burst: 0}},
	} {
		if _, err := l.Allow(ctx, c.uk, c.lim); !errors.Is(err, session.ErrInvalid) {
			t.Errorf("Allow(%d, %+v): %v, want ErrInvalid", c.uk, c.lim, err)
		}
	}
}

// limiterUser returns a random user key, so suites sharing a backend do not
// meet.
func limiterUser() int64 { return rand.Int64N(1e12) + 1 }
