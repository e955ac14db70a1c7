package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/madang-io/madang/protocol"
)

// DefaultLimiterEntries is LimiterConfig.MaxEntries's default: how many
// (user, limit) states a MemoryLimiter keeps at most.
const DefaultLimiterEntries = 1 << 18

// MaxLimitNameLen bounds Limit.Name.
const MaxLimitNameLen = 64

// Limit is one per-user rate limit: Rate events per second on average and
// up to Burst at once. A user who has been idle for Burst/Rate seconds may
// send Burst events at once; after that one every 1/Rate seconds.
type Limit struct {
	// Name tells the limit apart from the user's other limits; it is part
	// of the state's key ("rt.chat", "cmd"). 1 to MaxLimitNameLen bytes,
	// no '{' or '}'.
	Name string
	// Rate is the sustained rate, events per second. Must be positive.
	Rate float64
	// Burst is how many events may come at once. Must be positive.
	Burst int
}

func (l Limit) check() error {
	switch {
	case l.Name == "" || len(l.Name) > MaxLimitNameLen || strings.ContainsAny(l.Name, "{}"):
		return fmt.Errorf("%w: limit name %q", ErrInvalid, l.Name)
	case !(l.Rate > 0) || math.IsInf(l.Rate, 0) || l.Rate > 1e6:
		return fmt.Errorf("%w: limit %q rate %v (want 0 < rate <= 1e6)", ErrInvalid, l.Name, l.Rate)
	case l.Burst <= 0 || l.Burst > 1<<20:
		return fmt.Errorf("%w: limit %q burst %d (want 1..%d)", ErrInvalid, l.Name, l.Burst, 1<<20)
	}
	return nil
}

// interval is the time one event costs: 1/Rate.
func (l Limit) interval() time.Duration {
	return max(time.Duration(float64(time.Second)/l.Rate), time.Microsecond)
}

// LimitResult is a Limiter's answer.
type LimitResult struct {
	// Allowed: the event is within the limit (and was counted).
	Allowed bool
	// RetryAfter is, when refused, how long until one more event is
	// allowed. Zero when allowed.
	RetryAfter time.Duration
}

// Limiter is a per-user rate limiter (GCRA, the generic cell rate
// algorithm: one theoretical arrival time per user and limit). Its state
// belongs to the user, not to a connection: closing and reopening
// connections, or moving to another server sharing the backend, gives
// nothing back. A refused event is not counted. MemoryLimiter limits
// per process; RedisLimiter shares the state between servers.
//
// Allow answers ErrInvalid for a bad user key (<= 0) or Limit, and
// ErrUnavailable when the backend failed: whether to let the event through
// then (fail open) is the caller's choice (RateLimitMiddleware and the
// realtime hub do, and count it).
type Limiter interface {
	// Allow counts one event of the user under l when it is within the
	// limit.
	Allow(ctx context.Context, userKey int64, l Limit) (LimitResult, error)
}

// LimiterConfig configures NewMemoryLimiter and NewRedisLimiter. The zero
// value works.
type LimiterConfig struct {
	// Prefix starts every Redis key (RedisLimiter); no braces. Default
	// "madang:", the session store's.
	Prefix string
	// MaxEntries bounds the states a MemoryLimiter keeps. A state whose
	// user is back to a full burst is dropped when room is needed (that
	// forgets nothing); past MaxEntries users inside their refill time,
	// arbitrary states are dropped (Stats.Evicted), which lets those users
	// start afresh. Default DefaultLimiterEntries (262,144: about 30 MB at
	// most).
	MaxEntries int
	// Now is the clock. Nil: time.Now. In Redis the state is computed from
	// this clock, like the session store's expiry: servers whose clocks
	// differ by d disagree about a limit by about d.
	Now func() time.Time
}

func (c LimiterConfig) withDefaults() LimiterConfig {
	if c.Prefix == "" {
		c.Prefix = "madang:"
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = DefaultLimiterEntries
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// LimiterStats are a limiter's counters.
type LimiterStats struct {
	Allowed uint64 // events allowed
	Limited uint64 // events refused
	Errors  uint64 // calls that failed (backend down): ErrUnavailable
	Evicted uint64 // MemoryLimiter: states dropped before their refill time
	Entries int    // MemoryLimiter: states kept now
}

type limiterCounters struct {
	allowed, limited, errors, evicted atomic.Uint64
}

func (c *limiterCounters) count(r LimitResult) {
	if r.Allowed {
		c.allowed.Add(1)
	} else {
		c.limited.Add(1)
	}
}

func (c *limiterCounters) stats() LimiterStats {
	return LimiterStats{Allowed: c.allowed.Load(), Limited: c.limited.Load(), Errors: c.errors.Load(), Evicted: c.evicted.Load()}
}

// limiterShards splits a MemoryLimiter's map (and lock).
const limiterShards = 64

// MemoryLimiter is a Limiter in process memory: limits per server. Safe
// for concurrent use; it has no goroutine (nothing to close).
type MemoryLimiter struct {
	cfg      LimiterConfig
	perShard int
	shards   [limiterShards]limiterShard
	ctr      limiterCounters
}

type limiterShard struct {
	mu  sync.Mutex
	tat map[limiterKey]int64 // theoretical arrival time, Unix ns
}

type limiterKey struct {
	name    string
	userKey int64
}

var (
	_ Limiter = (*MemoryLimiter)(nil)
	_ Limiter = (*RedisLimiter)(nil)
)

// NewMemoryLimiter returns an empty MemoryLimiter.
func NewMemoryLimiter(cfg LimiterConfig) *MemoryLimiter {
	cfg = cfg.withDefaults()
	l := &MemoryLimiter{cfg: cfg, perShard: max(cfg.MaxEntries/limiterShards, 1)}
	for i := range l.shards {
		l.shards[i].tat = make(map[limiterKey]int64)
	}
	return l
}

// Allow implements Limiter.
func (l *MemoryLimiter) Allow(_ context.Context, userKey int64, lim Limit) (LimitResult, error) {
	if userKey <= 0 {
		return LimitResult{}, fmt.Errorf("%w: user key %d", ErrInvalid, userKey)
	}
	if err := lim.check(); err != nil {
		return LimitResult{}, err
	}
	now := l.cfg.Now().UnixNano()
	t := int64(lim.interval())
	tol := t * int64(lim.Burst)
	u := uint64(userKey)
	s := &l.shards[(u*0x9E3779B97F4A7C15)>>58]
	k := limiterKey{lim.Name, userKey}
	s.mu.Lock()
	tat, ok := s.tat[k]
	tat = max(tat, now)
	next := tat + t
	var r LimitResult
	if wait := next - now - tol; wait > 0 {
		r.RetryAfter = time.Duration(wait)
	} else {
		r.Allowed = true
		if !ok && len(s.tat) >= l.perShard {
			l.makeRoom(s, now)
		}
		s.tat[k] = next
	}
	s.mu.Unlock()
	l.ctr.count(r)
	return r, nil
}

// makeRoom drops the shard's states that are back to a full burst and, if
// that frees less than an eighth, arbitrary ones down to 7/8 of the
// shard's share (so the scan is paid once per perShard/8 new users).
func (l *MemoryLimiter) makeRoom(s *limiterShard, now int64) {
	for k, tat := range s.tat {
		if tat <= now {
			delete(s.tat, k)
		}
	}
	keep := l.perShard - max(l.perShard/8, 1)
	for k := range s.tat {
		if len(s.tat) <= keep {
			break
		}
		delete(s.tat, k)
		l.ctr.evicted.Add(1)
	}
}

// Stats returns the limiter's counters.
func (l *MemoryLimiter) Stats() LimiterStats {
	st := l.ctr.stats()
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		st.Entries += len(s.tat)
		s.mu.Unlock()
	}
	return st
}

// RedisLimiter is a Limiter in Redis, shared by every server on the same
// Redis: each user's state is one key on the user's node (Router),
//
//	P{u:U}:rl:<name>   string: the theoretical arrival time, Unix µs
//
// (P is LimiterConfig.Prefix, U the user key), written by one Lua script —
// one round trip per Allow — with a TTL of the time left until the user is
// back to a full burst, so an idle user holds no key. The hash tag keeps
// every key in one Redis Cluster slot. While a Router migrates
// (RouterConfig.Previous), a user who moves starts afresh on the new node
// once.
type RedisLimiter struct {
	cfg    LimiterConfig
	router *Router
	ctr    limiterCounters
}

// NewRedisLimiter returns a RedisLimiter over the router's nodes.
func NewRedisLimiter(r *Router, cfg LimiterConfig) (*RedisLimiter, error) {
	if r == nil {
		return nil, errors.New("session: nil router")
	}
	cfg = cfg.withDefaults()
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("session: prefix %q contains a brace", cfg.Prefix)
	}
	return &RedisLimiter{cfg: cfg, router: r}, nil
}

// gcraScript: KEYS[1] the state; ARGV 1 now, 2 interval, 3 tolerance
// (Burst intervals), all µs. Returns 0 (allowed, counted) or the wait in µs
// (refused, nothing written). Numbers are formatted with %.0f: Lua's
// default %.14g would round a Unix µs time.
var gcraScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local nxt = tat + tonumber(ARGV[2])
local wait = nxt - now - tonumber(ARGV[3])
if wait > 0 then return string.format('%.0f', wait) end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', string.format('%.0f', math.ceil((nxt - now) / 1000)))
return '0'
`)

// Allow implements Limiter: one script, one round trip.
func (l *RedisLimiter) Allow(ctx context.Context, userKey int64, lim Limit) (LimitResult, error) {
	if userKey <= 0 {
		return LimitResult{}, fmt.Errorf("%w: user key %d", ErrInvalid, userKey)
	}
	if err := lim.check(); err != nil {
		return LimitResult{}, err
	}
	t := lim.interval().Microseconds()
	key := l.cfg.Prefix + "{u:" + strconv.FormatInt(userKey, 10) + "}:rl:" + lim.Name
	now := l.cfg.Now().UnixMicro()
	s, err := gcraScript.Run(ctx, l.router.Node(userKey), []string{key}, now, t, t*int64(lim.Burst)).Text()
	if err != nil {
		l.ctr.errors.Add(1)
		return LimitResult{}, unavailable("rate limit", err)
	}
	wait, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		l.ctr.errors.Add(1)
		return LimitResult{}, unavailable("rate limit", fmt.Errorf("script answered %q", s))
	}
	r := LimitResult{Allowed: wait <= 0}
	if !r.Allowed {
		r.RetryAfter = time.Duration(wait) * time.Microsecond
	}
	l.ctr.count(r)
	return r, nil
}

// Stats returns the limiter's counters (Evicted and Entries stay zero).
func (l *RedisLimiter) Stats() LimiterStats { return l.ctr.stats() }

// RateLimitConfig configures RateLimitMiddleware.
type RateLimitConfig struct {
	// Limit is each user's command limit. Zero fields take the defaults
	// DefaultCommandRate, DefaultCommandBurst and the name "cmd".
	Limit Limit
	// Exempt lists commands that are not counted.
	Exempt []string
	// Logger receives limiter failures (at most one line a minute; the
	// limiter's Stats count them all). Nil: silent.
	Logger *slog.Logger
}

// Defaults of RateLimitConfig.Limit: generous for a real client (a game
// screen sends a few commands at once, then one every few seconds).
const (
	DefaultCommandRate  = 20
	DefaultCommandBurst = 40
)

// RateLimitMiddleware limits each user's commands: a request whose
// Principal is set (so it runs after Middleware) counts one event under
// cfg.Limit in l, and over the limit it is answered
// protocol.CodeRateLimited with Response.RetryAfterMs, the time until one
// more command is allowed, without running. Requests without a Principal
// (public commands such as login, which need their own limit) and
// cfg.Exempt commands pass uncounted. When the limiter fails (its backend
// is down) the request passes (fail open): a limiter outage must not stop
// the game.
//
// The same chain serves HTTP and websocket commands (protocol's Handler),
// so one user's commands over every transport and every connection share
// one limit; with a RedisLimiter, over every server too.
func RateLimitMiddleware(l Limiter, cfg RateLimitConfig) protocol.Middleware {
	lim := cfg.Limit
	if lim.Name == "" {
		lim.Name = "cmd"
	}
	if lim.Rate <= 0 {
		lim.Rate = DefaultCommandRate
	}
	if lim.Burst <= 0 {
		lim.Burst = DefaultCommandBurst
	}
	exempt := make(map[string]bool, len(cfg.Exempt))
	for _, c := range cfg.Exempt {
		exempt[c] = true
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var lastLog atomic.Int64
	return func(next protocol.Handler) protocol.Handler {
		return protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
			if req.Principal == nil || exempt[req.Command] {
				return next.Serve(ctx, req)
			}
			r, err := l.Allow(ctx, req.Principal.UserKey, lim)
			switch {
			case err != nil:
				if now := time.Now().UnixNano(); now-lastLog.Load() > int64(time.Minute) {
					lastLog.Store(now)
					log.Warn("session: rate limiter failed; commands pass unlimited", "err", err)
				}
			case !r.Allowed:
				return nil, RateLimited(r.RetryAfter)
			}
			return next.Serve(ctx, req)
		})
	}
}

// RateLimited is the error a refused event answers: protocol.CodeRateLimited
// with the retry hint rounded up to a whole millisecond (at least 1 ms), as
// Response.RetryAfterMs carries it.
func RateLimited(retryAfter time.Duration) *protocol.Error {
	ms := max((retryAfter+time.Millisecond-1)/time.Millisecond, 1)
	return &protocol.Error{Code: protocol.CodeRateLimited, Message: "too many requests", RetryAfter: ms * time.Millisecond}
}
