package anticheat

import (
	"sync"
	"time"

	"github.com/madang-io/madang/internal/clock"
)

// Speed-check reasons.
const (
	// ReasonDriftAhead: the client's clock ran ahead of the server's by more
	// than SpeedConfig.Threshold, gradually (a speed hack).
	ReasonDriftAhead Reason = "drift_ahead"
	// ReasonDriftBehind: the client's clock fell behind by more than
	// SpeedConfig.SlowThreshold, gradually, on SlowConfirm requests in a row
	// (a slow-motion hack).
	ReasonDriftBehind Reason = "drift_behind"
	// ReasonClockJumps: more sudden clock changes than
	// SpeedConfig.MaxJumps within SpeedConfig.JumpWindow.
	ReasonClockJumps Reason = "clock_jumps"
)

// SpeedConfig tunes the speed check. The zero value is usable; every default
// is on its field.
type SpeedConfig struct {
	// Threshold is how far the client's clock may run ahead of the server's,
	// relative to the session's reference, before it is a verdict.
	// Default 3 s (the talk: "a drift of several seconds").
	Threshold time.Duration
	// SlowThreshold is how far it may fall behind. Network delay only ever
	// makes a client look behind, so this is larger. Default 30 s; negative
	// disables the slow check.
	SlowThreshold time.Duration
	// SlowConfirm is how many requests in a row must be behind before the
	// slow check counts (one stalled request is not a hack). Default 3.
	SlowConfirm int
	// Window bounds how old the reference may get: a new reference is
	// started every Window/2 and replaces the old one once the old is Window
	// old, so quartz drift of honest phones (tens of ppm) never adds up.
	// Default 10 min.
	Window time.Duration
	// MaxJumps is how many sudden clock changes (a legitimate clock set or
	// NTP correction) a session may have within JumpWindow; one more is a
	// verdict. Default 1; at most 7.
	MaxJumps int
	// JumpWindow: see MaxJumps. Default 1 h.
	JumpWindow time.Duration
	// MaxSessions bounds the sessions tracked per process. When full, idle
	// sessions are dropped first, then the least recently seen. Default
	// 100,000 (about 150 bytes each).
	MaxSessions int
	// IdleTTL: a session not seen for this long starts afresh. Default 30 min.
	IdleTTL time.Duration
	// Now returns the current time; nil means time.Now. It is the server
	// clock used when a request has no ReceivedAt.
	Now func() time.Time
}

const (
	maxJumpRing = 8  // jump timestamps kept per session
	speedShards = 64 // lock shards
)

func (c SpeedConfig) withDefaults() SpeedConfig {
	if c.Threshold <= 0 {
		c.Threshold = 3 * time.Second
	}
	if c.SlowThreshold == 0 {
		c.SlowThreshold = 30 * time.Second
	}
	if c.SlowConfirm <= 0 {
		c.SlowConfirm = 3
	}
	if c.Window <= 0 {
		c.Window = 10 * time.Minute
	}
	if c.MaxJumps <= 0 {
		c.MaxJumps = 1
	}
	if c.MaxJumps > maxJumpRing-1 {
		c.MaxJumps = maxJumpRing - 1
	}
	if c.JumpWindow <= 0 {
		c.JumpWindow = time.Hour
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 100_000
	}
	if c.IdleTTL <= 0 {
		c.IdleTTL = 30 * time.Minute
	}
	c.Now = clock.OrNow(c.Now)
	return c
}

// SpeedResult is the outcome of one observation. The zero value means "no
// verdict".
type SpeedResult struct {
	// Reason is empty when the request is fine; otherwise the verdict.
	Reason Reason
	// Drift is the client's offset change against the session's reference:
	// positive when the client runs ahead.
	Drift time.Duration
	// Jumped is set when this request was taken as a sudden clock change and
	// the session re-anchored (tolerated up to MaxJumps).
	Jumped bool
}

// Flagged reports whether r is a verdict.
func (r SpeedResult) Flagged() bool { return r.Reason != "" }

// SpeedChecker judges clock drift per session. It keeps bounded per-session
// state in memory (a real single-node store: behind a load balancer each
// game server judges the requests it sees, which is enough because every
// node's clock is the server time). Safe for concurrent use; Observe does
// not allocate once a session is known.
//
// The rule, per session, with o = client ms − server ms for each request:
//
//   - The reference offset is o of the first request after (re-)anchoring.
//     A fresh reference is started every Window/2 and takes over when the
//     current one is Window old. Network delay only lowers o, so jitter
//     never looks like a client running ahead; a reference request that was
//     delayed by more than Threshold costs one jump (below).
//   - drift = o − reference. drift > Threshold is a verdict (drift_ahead)
//     when it built up gradually, that is when the previous request's drift
//     was above Threshold/3. If instead the previous drift was small, the
//     change happened between two requests: a jump. The session re-anchors
//     at this request and the jump is counted; more than MaxJumps jumps in
//     JumpWindow is a verdict (clock_jumps). So one legitimate clock change
//     is absorbed, while a 2× client is caught as soon as its drift passes
//     Threshold (or, if it sends rarely, at its second jump). For JumpWindow
//     after a jump the threshold is halved: a real clock change leaves the
//     drift flat (within network jitter), a speed hack does not.
//   - drift < −SlowThreshold on SlowConfirm requests in a row is drift_behind
//     (gradual) or a jump (sudden), likewise. One delayed request never
//     counts.
//   - After a verdict the session re-anchors and its jump count clears, so a
//     hacker produces one verdict per Threshold of drift, not one per
//     request. A session idle for IdleTTL starts afresh.
//   - Requests without a client time (0) are not judged.
type SpeedChecker struct {
	cfg      SpeedConfig
	perShard int
	shards   [speedShards]speedShard
}

type speedKey struct {
	user    int64
	session string
}

type speedShard struct {
	mu sync.Mutex
	m  map[speedKey]*speedState
	_  [48]byte // 64 bytes: shards on separate cache lines
}

type anchor struct {
	s, o int64 // server ms when started; reference offset
	n    int8  // 0: none
}

type speedState struct {
	a, b      anchor // reference; next reference (n == 0: none)
	lastS     int64  // server ms of the last request
	lastDrift int64
	runStart  int64 // drift before the current run of slow requests
	slowRun   int
	jumps     [maxJumpRing]int64
	nextJump  int
}

// NewSpeedChecker returns a checker with cfg's defaults filled in.
func NewSpeedChecker(cfg SpeedConfig) *SpeedChecker {
	cfg = cfg.withDefaults()
	c := &SpeedChecker{cfg: cfg, perShard: (cfg.MaxSessions + speedShards - 1) / speedShards}
	for i := range c.shards {
		c.shards[i].m = make(map[speedKey]*speedState)
	}
	return c
}

// Config returns the effective configuration (defaults filled in).
func (c *SpeedChecker) Config() SpeedConfig { return c.cfg }

func shardOf(user int64) int {
	return int((uint64(user) * 0x9E3779B97F4A7C15) >> (64 - 6))
}

// Observe judges one request of the session (userKey, sessionID): clientMs
// is protocol.Request.ClientTime, serverAt its ReceivedAt (zero: the
// checker's clock).
func (c *SpeedChecker) Observe(userKey int64, sessionID string, clientMs int64, serverAt time.Time) SpeedResult {
	if clientMs == 0 {
		return SpeedResult{}
	}
	if serverAt.IsZero() {
		serverAt = c.cfg.Now()
	}
	s := serverAt.UnixMilli()
	o := clientMs - s
	sh := &c.shards[shardOf(userKey)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	k := speedKey{userKey, sessionID}
	st := sh.m[k]
	if st == nil {
		c.makeRoom(sh, s)
		st = &speedState{}
		sh.m[k] = st
		st.reset(s, o)
		return SpeedResult{}
	}
	if s-st.lastS > c.cfg.IdleTTL.Milliseconds() {
		st.reset(s, o)
		st.jumps = [maxJumpRing]int64{}
		return SpeedResult{}
	}
	return c.judge(st, s, o)
}

func (st *speedState) reset(s, o int64) {
	st.a = anchor{s: s, o: o, n: 1}
	st.b = anchor{}
	st.lastS, st.lastDrift, st.slowRun, st.runStart = s, 0, 0, 0
}

func (c *SpeedChecker) judge(st *speedState, s, o int64) SpeedResult {
	st.lastS = s
	win := c.cfg.Window.Milliseconds()
	// Rotate references.
	if st.b.n > 0 {
		if s-st.a.s >= win {
			st.a, st.b = st.b, anchor{}
		}
	} else if s-st.a.s >= win/2 {
		st.b = anchor{s: s, o: o, n: 1}
	}
	d := o - st.a.o
	thr := c.cfg.Threshold.Milliseconds()
	if last := st.jumps[(st.nextJump+maxJumpRing-1)%maxJumpRing]; last != 0 && s-last < c.cfg.JumpWindow.Milliseconds() {
		thr /= 2 // confirming a recent jump: a real clock change stays flat
	}
	res := SpeedResult{Drift: time.Duration(d) * time.Millisecond}
	prev := st.lastDrift
	st.lastDrift = d
	switch {
	case d > thr:
		st.slowRun = 0
		if prev > thr/3 {
			res.Reason = ReasonDriftAhead
			st.verdictReset(s, o)
			return res
		}
		return c.jump(st, s, o, res)
	case c.cfg.SlowThreshold > 0 && d < -c.cfg.SlowThreshold.Milliseconds():
		if st.slowRun == 0 {
			st.runStart = prev
		}
		st.slowRun++
		if st.slowRun < c.cfg.SlowConfirm {
			return res
		}
		st.slowRun = 0
		if st.runStart < -thr/3 {
			res.Reason = ReasonDriftBehind
			st.verdictReset(s, o)
			return res
		}
		return c.jump(st, s, o, res)
	default:
		st.slowRun = 0
	}
	return res
}

// jump records a sudden clock change and re-anchors, or returns the
// clock_jumps verdict when there were too many.
func (c *SpeedChecker) jump(st *speedState, s, o int64, res SpeedResult) SpeedResult {
	st.jumps[st.nextJump] = s
	st.nextJump = (st.nextJump + 1) % maxJumpRing
	since := s - c.cfg.JumpWindow.Milliseconds()
	n := 0
	for _, t := range st.jumps {
		if t != 0 && t > since {
			n++
		}
	}
	if n > c.cfg.MaxJumps {
		res.Reason = ReasonClockJumps
		st.verdictReset(s, o)
		return res
	}
	res.Jumped = true
	st.reset(s, o)
	return res
}

func (st *speedState) verdictReset(s, o int64) {
	st.reset(s, o)
	st.jumps = [maxJumpRing]int64{}
}

// makeRoom drops idle sessions, or the least recently seen one, when the
// shard is full. The caller holds sh.mu.
func (c *SpeedChecker) makeRoom(sh *speedShard, now int64) {
	if len(sh.m) < c.perShard {
		return
	}
	idle := now - c.cfg.IdleTTL.Milliseconds()
	var oldestK speedKey
	oldest := int64(1<<63 - 1)
	for k, st := range sh.m {
		if st.lastS < idle {
			delete(sh.m, k)
			continue
		}
		if st.lastS < oldest {
			oldest, oldestK = st.lastS, k
		}
	}
	if len(sh.m) >= c.perShard {
		delete(sh.m, oldestK)
	}
}

// Forget drops a session's state (at logout or kick).
func (c *SpeedChecker) Forget(userKey int64, sessionID string) {
	sh := &c.shards[shardOf(userKey)]
	sh.mu.Lock()
	delete(sh.m, speedKey{userKey, sessionID})
	sh.mu.Unlock()
}

// Len returns how many sessions are tracked.
func (c *SpeedChecker) Len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
