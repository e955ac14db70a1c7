package realtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/redis/go-redis/v9"
)

// Defaults of RedisMatchmakerConfig.
const (
	// DefaultMatchWaitTTL is how long a waiting player's entry lives in
	// Redis without a refresh.
	DefaultMatchWaitTTL = 15 * time.Second
	// DefaultMatchKinds bounds the kinds one player waits for at once
	// through one node.
	DefaultMatchKinds = 8
	// minMatchWaitTTL keeps the refresh period (WaitTTL/3) sane.
	minMatchWaitTTL = 30 * time.Millisecond
	// matchRefreshBatch bounds the players of one refresh script.
	matchRefreshBatch = 500
)

// ErrMatchTooManyKinds: the player already waits for RedisMatchmakerConfig.
// MaxKinds other kinds (through this node).
var ErrMatchTooManyKinds = &protocol.Error{Code: protocol.CodeRateLimited, Message: "realtime: waiting for too many kinds of match"}

// ErrMatchKind: the kind is not a valid room kind (1 to 32 characters of
// [A-Za-z0-9_.:-]).
var ErrMatchKind = &protocol.Error{Code: protocol.CodeBadRequest, Message: "realtime: invalid match kind"}

// RedisMatchmakerConfig configures a RedisMatchmaker. The zero value works;
// use the same Prefix, Size, MaxQueue and WaitTTL on every node.
type RedisMatchmakerConfig struct {
	// Prefix starts every key; it must not contain '{' or '}'. Default
	// "madang:rt:".
	Prefix string
	// Size is how many players form a group. Default DefaultMatchRoomSize
	// (2).
	Size int
	// MaxQueue bounds the players waiting for one kind, all nodes
	// together; an Add over it answers ErrMatchQueueFull. Default
	// DefaultMatchQueueLen (10,000).
	MaxQueue int
	// MaxKinds bounds the kinds one player waits for at once through this
	// matchmaker; an Add of one more answers ErrMatchTooManyKinds. Each
	// costs a refresh every WaitTTL/3 while the player waits. Default
	// DefaultMatchKinds (8).
	MaxKinds int
	// WaitTTL is how long a waiting entry lives without a refresh. The
	// matchmaker refreshes the entries it queued every WaitTTL/3, so a
	// player waits as long as its node lives and it stays connected; the
	// players of a node that died stop being matched WaitTTL after its
	// last refresh. Default DefaultMatchWaitTTL (15 s); at least 30 ms.
	WaitTTL time.Duration
	// Logger receives refresh and Remove failures. Nil: silent.
	Logger *slog.Logger
}

func (c RedisMatchmakerConfig) withDefaults() RedisMatchmakerConfig {
	if c.Prefix == "" {
		c.Prefix = "madang:rt:"
	}
	if c.Size <= 0 {
		c.Size = DefaultMatchRoomSize
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = DefaultMatchQueueLen
	}
	if c.MaxKinds <= 0 {
		c.MaxKinds = DefaultMatchKinds
	}
	if c.WaitTTL <= 0 {
		c.WaitTTL = DefaultMatchWaitTTL
	}
	c.WaitTTL = max(c.WaitTTL, minMatchWaitTTL)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// RedisMatchmaker is a Matchmaker in Redis (single node, Sentinel or
// Cluster) shared by every realtime node: players asking room.match on
// different nodes wait in one queue per kind and form groups together,
// first come first served across nodes (the order in which their Adds
// reached Redis). Use one RedisMatchmaker per node (per Rooms).
//
// A kind's queue is four keys with the hash tag {mm:<kind>} (P is
// RedisMatchmakerConfig.Prefix), so each operation is one Lua script on
// one Cluster slot:
//
//	P{mm:<kind>}:q   sorted set: user key scored by arrival (FIFO order)
//	P{mm:<kind>}:d   sorted set: user key scored by its deadline (Unix ms,
//	                 the Redis server's clock)
//	P{mm:<kind>}:o   hash: user key -> the instance that queued it
//	P{mm:<kind>}:s   counter of arrivals
//
// Add is one script: it drops the expired entries, refreshes a player
// already waiting (keeping its place), refuses a full queue, and pops a
// full group at once when this player completes one, so two nodes never
// form overlapping groups. The instance that queued a player owns its
// entry: it refreshes the deadline every WaitTTL/3 while the player waits
// (one script per kind for all its players), and its Remove (the player's
// connection closed on this node) deletes only the entries it owns, so a
// late Remove from the node a player left does not undo the room.match it
// sent again through another node. Which kinds a player waits for is kept
// in this process only, bounded by MaxKinds per player.
//
// When Rooms cannot create a matched room it puts the group's other
// players back (at the back of the queue) through its own matchmaker: that
// node then owns and refreshes their entries, so their own node's Remove no
// longer takes them out; they wait until matched, or until WaitTTL after
// that node stops.
//
// When a node dies, its waiting players stay in the queues until their
// deadlines pass (WaitTTL at most): a group formed meanwhile may name a
// player who never joins its room (the room runs without it). Close (on a
// graceful shutdown) removes this node's waiting players at once. While
// Redis is unreachable Add fails with ErrUnavailable and the deadlines are
// not refreshed: a player may drop out of the queue without being told
// (the client should ask room.match again when no match comes).
type RedisMatchmaker struct {
	rc    redis.UniversalClient
	cfg   RedisMatchmakerConfig
	owner string // this instance, in the :o hashes

	locks [64]sync.Mutex // per user (by key), held over an Add or Remove

	mu      sync.Mutex
	waiting map[int64]map[string]uint64 // user -> kinds it waits for, queued here -> generation
	gen     uint64                      // of the latest track
	closed  bool

	stop chan struct{}
	done chan struct{}
}

var _ Matchmaker = (*RedisMatchmaker)(nil)

// NewRedisMatchmaker returns a Matchmaker over client and starts its
// refresh goroutine (Close stops it). It does not close client.
func NewRedisMatchmaker(client redis.UniversalClient, cfg RedisMatchmakerConfig) (*RedisMatchmaker, error) {
	if client == nil {
		return nil, errors.New("realtime: nil redis client")
	}
	cfg = cfg.withDefaults()
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("realtime: matchmaker prefix %q contains a brace", cfg.Prefix)
	}
	m := &RedisMatchmaker{
		rc: client, cfg: cfg, owner: newToken()[:16],
		waiting: make(map[int64]map[string]uint64),
		stop:    make(chan struct{}), done: make(chan struct{}),
	}
	go m.refreshLoop()
	return m, nil
}

func (m *RedisMatchmaker) keys(kind string) []string {
	base := m.cfg.Prefix + "{mm:" + kind + "}:"
	return []string{base + "q", base + "d", base + "o", base + "s"}
}

func (m *RedisMatchmaker) lock(user int64) *sync.Mutex {
	return &m.locks[uint64(user)%uint64(len(m.locks))]
}

func matchUnavailable(op string, err error) error {
	return fmt.Errorf("%w: matchmaker %s: %w", ErrUnavailable, op, err)
}

func validMatchKind(kind string) bool {
	return kind != "" && len(kind) <= maxRoomKindLen && validChannel(kind)
}

// The scripts' shared head: KEYS 1 queue, 2 deadlines, 3 owners, 4
// counter; now is the server's time in ms; keep(ttl) sets the keys' TTLs
// to twice the wait TTL, so they vanish a while after every entry expired
// (the deadlines, not these TTLs, decide who waits).
const matchScriptHead = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function keep(ttl)
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], 2 * ttl) end
end
`

// matchAddScript: ARGV 1 user, 2 owner, 3 wait ttl ms, 4 size, 5 max
// queue. Returns {0} queued, {1} already waiting (refreshed, now owned by
// owner), {2} queue full, or {3, user...}: the group, in arrival order,
// the caller last.
var matchAddScript = redis.NewScript(matchScriptHead + `
local ttl = tonumber(ARGV[3])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, u in ipairs(expired) do
  redis.call('ZREM', KEYS[1], u)
  redis.call('HDEL', KEYS[3], u)
end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
  keep(ttl)
  return {1}
end
local size = tonumber(ARGV[4])
local n = redis.call('ZCARD', KEYS[1])
if n + 1 >= size then
  local g = {}
  if size > 1 then
    g = redis.call('ZRANGE', KEYS[1], 0, size - 2)
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, size - 2)
    for _, u in ipairs(g) do
      redis.call('ZREM', KEYS[2], u)
      redis.call('HDEL', KEYS[3], u)
    end
  end
  table.insert(g, 1, 3)
  g[#g + 1] = ARGV[1]
  return g
end
if n >= tonumber(ARGV[5]) then return {2} end
redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[4]), ARGV[1])
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
keep(ttl)
return {0}
`)

// matchRefreshScript: ARGV 1 owner, 2 wait ttl ms, 3... users. Moves the
// deadlines of the users owner still owns; returns the others (matched,
// expired, removed or taken over by another instance).
var matchRefreshScript = redis.NewScript(matchScriptHead + `
local ttl = tonumber(ARGV[2])
local gone = {}
for i = 3, #ARGV do
  if redis.call('HGET', KEYS[3], ARGV[i]) == ARGV[1] and redis.call('ZSCORE', KEYS[2], ARGV[i]) then
    redis.call('ZADD', KEYS[2], 'XX', now + ttl, ARGV[i])
  else
    gone[#gone + 1] = ARGV[i]
  end
end
keep(ttl)
return gone
`)

// matchRemoveScript: ARGV 1 owner, 2... users. Removes the users owner
// owns.
var matchRemoveScript = redis.NewScript(`
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[3], ARGV[i]) == ARGV[1] then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('ZREM', KEYS[2], ARGV[i])
    redis.call('HDEL', KEYS[3], ARGV[i])
  end
end
return 0
`)

// Add implements Matchmaker. A player already waiting keeps its place (its
// deadline refreshed). An invalid kind answers ErrMatchKind; a full queue
// ErrMatchQueueFull; a player waiting for MaxKinds other kinds
// ErrMatchTooManyKinds; Redis failures ErrUnavailable; after Close,
// ErrClosed.
func (m *RedisMatchmaker) Add(ctx context.Context, kind string, userKey int64) ([]int64, error) {
	if !validMatchKind(kind) {
		return nil, ErrMatchKind
	}
	l := m.lock(userKey)
	l.Lock()
	defer l.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	kinds := m.waiting[userKey]
	if _, ok := kinds[kind]; !ok && len(kinds) >= m.cfg.MaxKinds {
		m.mu.Unlock()
		return nil, ErrMatchTooManyKinds
	}
	m.mu.Unlock()
	res, err := matchAddScript.Run(ctx, m.rc, m.keys(kind), userKey, m.owner,
		m.cfg.WaitTTL.Milliseconds(), m.cfg.Size, m.cfg.MaxQueue).Int64Slice()
	if err != nil {
		return nil, matchUnavailable("add", err)
	}
	if len(res) == 0 {
		return nil, matchUnavailable("add", errors.New("empty script reply"))
	}
	switch res[0] {
	case 0, 1:
		m.track(userKey, kind)
		return nil, nil
	case 2:
		return nil, ErrMatchQueueFull
	}
	group := res[1:]
	m.forget(kind, group...) // the caller was not queued, the others no longer are
	return group, nil
}

func (m *RedisMatchmaker) track(user int64, kind string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	kinds := m.waiting[user]
	if kinds == nil {
		kinds = make(map[string]uint64, 1)
		m.waiting[user] = kinds
	}
	m.gen++
	kinds[kind] = m.gen
}

// forget drops users from this process's record of kind.
func (m *RedisMatchmaker) forget(kind string, users ...int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range users {
		if kinds := m.waiting[u]; kinds != nil {
			delete(kinds, kind)
			if len(kinds) == 0 {
				delete(m.waiting, u)
			}
		}
	}
}

// Remove implements Matchmaker: it takes the player out of the queues it
// waits in through this matchmaker (the entries this instance queued or
// refreshed last; see RedisMatchmaker). A Redis failure is logged: the
// entries then expire after WaitTTL.
func (m *RedisMatchmaker) Remove(ctx context.Context, userKey int64) {
	l := m.lock(userKey)
	l.Lock()
	defer l.Unlock()
	m.mu.Lock()
	kinds := m.waiting[userKey]
	delete(m.waiting, userKey)
	m.mu.Unlock()
	for kind := range kinds {
		if err := matchRemoveScript.Run(ctx, m.rc, m.keys(kind), m.owner, userKey).Err(); err != nil {
			m.cfg.Logger.Warn("realtime: matchmaker remove failed", "user", userKey, "kind", kind, "err", err)
		}
	}
}

// Waiting returns how many players this instance keeps waiting (queued
// through it and not yet seen matched, removed or expired).
func (m *RedisMatchmaker) Waiting() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.waiting)
}

// Close stops the refreshes and removes the players this instance queued
// (bounded by ctx); later Adds answer ErrClosed. Safe to call more than
// once.
func (m *RedisMatchmaker) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	byKind := m.byKind()
	clear(m.waiting)
	m.mu.Unlock()
	close(m.stop)
	<-m.done
	var errs []error
	for kind, users := range byKind {
		for chunk := range chunks(users, matchRefreshBatch) {
			args := append([]any{m.owner}, chunk...)
			if err := matchRemoveScript.Run(ctx, m.rc, m.keys(kind), args...).Err(); err != nil {
				errs = append(errs, matchUnavailable("close", err))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// halt stops the refreshes without removing anything, as if the node died
// (tests).
func (m *RedisMatchmaker) halt() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	close(m.stop)
	<-m.done
}

// byKind lists the waiting users per kind; m.mu held.
func (m *RedisMatchmaker) byKind() map[string][]any {
	out := make(map[string][]any)
	for u, kinds := range m.waiting {
		for k := range kinds {
			out[k] = append(out[k], u)
		}
	}
	return out
}

// generation returns the generation of a user's record of kind (0: none).
func (m *RedisMatchmaker) generation(kind string, user int64) uint64 {
	return m.waiting[user][kind]
}

func chunks(xs []any, n int) func(func([]any) bool) {
	return func(yield func([]any) bool) {
		for len(xs) > 0 {
			c := xs[:min(n, len(xs))]
			xs = xs[len(c):]
			if !yield(c) {
				return
			}
		}
	}
}

func (m *RedisMatchmaker) refreshLoop() {
	defer close(m.done)
	t := time.NewTicker(m.cfg.WaitTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-m.stop:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.WaitTTL/3)
		m.refresh(ctx)
		cancel()
	}
}

// refresh moves the deadlines of this instance's waiting players and
// forgets those no longer waiting.
func (m *RedisMatchmaker) refresh(ctx context.Context) {
	m.mu.Lock()
	byKind := m.byKind()
	gens := make(map[string]map[int64]uint64, len(byKind))
	for kind, users := range byKind {
		g := make(map[int64]uint64, len(users))
		for _, u := range users {
			g[u.(int64)] = m.generation(kind, u.(int64))
		}
		gens[kind] = g
	}
	m.mu.Unlock()
	ttl := m.cfg.WaitTTL.Milliseconds()
	for kind, users := range byKind {
		for chunk := range chunks(users, matchRefreshBatch) {
			args := append([]any{m.owner, ttl}, chunk...)
			gone, err := matchRefreshScript.Run(ctx, m.rc, m.keys(kind), args...).StringSlice()
			if err != nil {
				m.cfg.Logger.Warn("realtime: matchmaker refresh failed", "kind", kind, "err", err)
				break
			}
			for _, s := range gone {
				if u, err := strconv.ParseInt(s, 10, 64); err == nil {
					m.forgetIfSame(kind, u, gens[kind][u])
				}
			}
		}
	}
}

// forgetIfSame forgets a user the refresh found gone from kind, unless
// an Add queued it again since the refresh began (gen changed).
func (m *RedisMatchmaker) forgetIfSame(kind string, user int64, gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if kinds := m.waiting[user]; kinds != nil && kinds[kind] == gen {
		delete(kinds, kind)
		if len(kinds) == 0 {
			delete(m.waiting, user)
		}
	}
}
