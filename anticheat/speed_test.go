package anticheat_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
)

var t0 = time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)

// simClient simulates one session: the client's clock runs at rate× the
// server's from offset, requests are sent every gap (randomised), delayed by
// base + jitter on the way, and a fraction is lost.
type simClient struct {
	rng    *rand.Rand
	rate   float64
	offset time.Duration
	jitter time.Duration
	loss   float64
}

// run sends requests for dur of server time and returns the server time
// elapsed at the first verdict (or -1).
func (sc simClient) run(c *anticheat.SpeedChecker, user int64, dur time.Duration, step func(elapsed time.Duration) time.Duration) (time.Duration, anticheat.SpeedResult) {
	var elapsed time.Duration
	for elapsed < dur {
		elapsed += 300*time.Millisecond + time.Duration(sc.rng.Int64N(int64(1200*time.Millisecond)))
		if sc.rng.Float64() < sc.loss {
			continue
		}
		sent := t0.Add(elapsed)
		clientAt := t0.Add(sc.offset + time.Duration(float64(elapsed)*sc.rate))
		if step != nil {
			clientAt = clientAt.Add(step(elapsed))
		}
		delay := 30*time.Millisecond + time.Duration(sc.rng.Int64N(int64(sc.jitter)+1))
		res := c.Observe(user, "s", clientAt.UnixMilli(), sent.Add(delay))
		if res.Flagged() {
			return elapsed, res
		}
	}
	return -1, anticheat.SpeedResult{}
}

func TestSpeedCatchesDoubleSpeed(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var worst time.Duration
	defer func() { t.Logf("slowest catch: %v of server time", worst) }()
	for i := range 1000 {
		c := anticheat.NewSpeedChecker(anticheat.SpeedConfig{})
		sc := simClient{rng: rng, rate: 2, offset: time.Duration(rng.Int64N(int64(time.Hour))), jitter: 200 * time.Millisecond, loss: 0.05}
		at, res := sc.run(c, int64(i), time.Minute, nil)
		if at < 0 || at > 10*time.Second {
			t.Fatalf("session %d: 2x client caught at %v (want within 10 s)", i, at)
		}
		worst = max(worst, at)
		if res.Reason != anticheat.ReasonDriftAhead && res.Reason != anticheat.ReasonClockJumps {
			t.Fatalf("reason %q", res.Reason)
		}
	}
}

func TestSpeedCatchesSparseDoubleSpeed(t *testing.T) {
	// A 2x client that sends only every 8 s: each request looks like a
	// sudden jump; the second one is a verdict.
	c := anticheat.NewSpeedChecker(anticheat.SpeedConfig{})
	var got anticheat.SpeedResult
	for i := range 10 {
		el := time.Duration(i) * 8 * time.Second
		got = c.Observe(1, "s", t0.Add(2*el).UnixMilli(), t0.Add(el))
		if got.Flagged() {
			if el > 30*time.Second {
				t.Fatalf("caught late: %v", el)
			}
			break
		}
	}
	if got.Reason != anticheat.ReasonClockJumps {
		t.Fatalf("got %+v", got)
	}
}

func TestSpeedHonestSessions(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	flagged := 0
	for i := range 1000 {
		c := anticheat.NewSpeedChecker(anticheat.SpeedConfig{})
		// Phones' quartz is off by up to ±100 ppm; offsets are arbitrary.
		ppm := (rng.Float64()*2 - 1) * 100e-6
		sc := simClient{rng: rng, rate: 1 + ppm, offset: time.Duration(rng.Int64N(int64(48*time.Hour))) - 24*time.Hour, jitter: 200 * time.Millisecond, loss: 0.05}
		if at, res := sc.run(c, int64(i), 20*time.Minute, nil); at >= 0 {
			flagged++
			t.Logf("session %d flagged at %v: %+v", i, at, res)
		}
	}
	if flagged > 1 { // 0.1% of 1,000
		t.Fatalf("%d of 1000 honest sessions flagged", flagged)
	}
}

func TestSpeedToleratesOneClockChange(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, step := range []time.Duration{time.Hour, -time.Hour, 10 * time.Second, -45 * time.Second} {
		c := anticheat.NewSpeedChecker(anticheat.SpeedConfig{})
		sc := simClient{rng: rng, rate: 1, jitter: 200 * time.Millisecond, loss: 0.05}
		jumped := false
		at, res := sc.run(c, 1, 5*time.Minute, func(el time.Duration) time.Duration {
			if el > time.Minute {
				jumped = true
				return step
			}
			return 0
		})
		if !jumped || at >= 0 {
			t.Fatalf("step %v: flagged at %v: %+v", step, at, res)
		}
	}
}

func TestSpeedTwoClockChangesAreAVerdict(t *testing.T) {
	c := anticheat.NewSpeedChecker(anticheat.SpeedConfig{})
	var last anticheat.SpeedResult
	jumps := 0
	for i := range 200 {
		el := time.Duration(i) * time.Second
		var step time.Duration
		if i >= 50 {
			step += time.Hour
		}
		if i >= 100 {
			step += time.Hour
		}
		last = c.Observe(1, "s", t0.Add(el+step).UnixMilli(), t0.Add(el))
		if last.Jumped {
			jumps++
		}
		if last.Flagged() {
			break
		}
	}
	if jumps != 1 || last.Reason != anticheat.ReasonClockJumps {
		t.Fatalf("jumps %d, last %+v", jumps, last)
	}
}

func TestSpeedCatchesSlowMotion(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	c := anticheat.NewSpeedChecker(anticheat.SpeedConfig{})
	sc := simClient{rng: rng, rate: 0.5, jitter: 200 * time.Millisecond}
	at, res := sc.run(c, 1, 5*time.Minute, nil)
	if at < 0 || res.Reason != anticheat.ReasonDriftBehind {
		t.Fatalf("at %v: %+v", at, res)
	}
	// Disabled: never.
	c = anticheat.NewSpeedChecker(anticheat.SpeedConfig{SlowThreshold: -1})
	if at, res := sc.run(c, 1, 5*time.Minute, nil); at >= 0 {
		t.Fatalf("slow check disabled but flagged: %+v", res)
	}
}

func TestSpeedOneStalledRequest(t *testing.T) {
	c := anticheat.NewSpeedChecker(anticheat.SpeedConfig{})
	for i := range 100 {
		el := time.Duration(i) * time.Second
		recv := t0.Add(el)
		if i == 50 {
			recv = recv.Add(40 * time.Second) // stuck in a mobile network
		}
		if r := c.Observe(1, "s", t0.Add(el).UnixMilli(), recv); r.Flagged() || r.Jumped {
			t.Fatalf("request %d: %+v", i, r)
		}
	}
}

func TestSpeedVerdictReanchors(t *testing.T) {
	c := anticheat.NewSpeedChecker(anticheat.SpeedConfig{})
	verdicts := 0
	for i := range 60 {
		el := time.Duration(i) * time.Second
		if c.Observe(1, "s", t0.Add(2*el).UnixMilli(), t0.Add(el)).Flagged() {
			verdicts++
		}
	}
	// One verdict per ~Threshold of drift, not one per request.
	if verdicts < 5 || verdicts > 20 {
		t.Fatalf("%d verdicts in 60 requests", verdicts)
	}
}

func TestSpeedNoClientTimeAndIdle(t *testing.T) {
	c := anticheat.NewSpeedChecker(anticheat.SpeedConfig{IdleTTL: time.Minute})
	if r := c.Observe(1, "s", 0, t0); r.Flagged() || c.Len() != 0 {
		t.Fatalf("no ctime: %+v, len %d", r, c.Len())
	}
	c.Observe(1, "s", t0.UnixMilli(), t0)
	// Two minutes later with a clock one hour ahead: idle, starts afresh.
	at := t0.Add(2 * time.Minute)
	if r := c.Observe(1, "s", at.Add(time.Hour).UnixMilli(), at); r.Flagged() || r.Jumped {
		t.Fatalf("after idle: %+v", r)
	}
	c.Forget(1, "s")
	if c.Len() != 0 {
		t.Fatal("forget")
	}
}

func TestSpeedBounded(t *testing.T) {
	c := anticheat.NewSpeedChecker(anticheat.SpeedConfig{MaxSessions: 640})
	for i := range 10_000 {
		c.Observe(int64(i), "s", t0.UnixMilli(), t0.Add(time.Duration(i)*time.Millisecond))
	}
	if n := c.Len(); n > 640 || n < 320 {
		t.Fatalf("tracked %d sessions, limit 640", n)
	}
}

func TestSpeedLongHonestSessionWithQuartzDrift(t *testing.T) {
	// 300 ppm fast for 8 hours: 8.6 s in total, but the window keeps the
	// reference fresh.
	c := anticheat.NewSpeedChecker(anticheat.SpeedConfig{})
	for i := range 8 * 3600 / 5 {
		el := time.Duration(i) * 5 * time.Second
		if r := c.Observe(1, "s", t0.Add(time.Duration(float64(el)*1.0003)).UnixMilli(), t0.Add(el)); r.Flagged() || r.Jumped {
			t.Fatalf("at %v: %+v", el, r)
		}
	}
}
