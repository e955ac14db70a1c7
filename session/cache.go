package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/internal/clock"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
)

// CacheConfig configures a UserCache. The zero value works.
type CacheConfig struct {
	// Prefix starts every Redis key and channel of the cache; no braces.
	// Default "madang:". The memory cache ignores it.
	Prefix string
	// DefaultTTL is used when a call passes ttl <= 0. Default 10 minutes.
	DefaultTTL time.Duration
	// MaxKeyLen bounds cache keys; longer ones get ErrInvalid. Default 200.
	MaxKeyLen int
	// MaxValueLen bounds values; larger ones get ErrInvalid. Default 1 MiB.
	MaxValueLen int
	// VersionRefresh is how often the Redis cache re-reads the global
	// version, a safety net for reset messages lost while its pub/sub
	// connection was down. Default 1 minute.
	VersionRefresh time.Duration
	// ProbeInterval is how often the Redis cache checks that its reset
	// subscription still hears what the first node's client publishes, and
	// moves it when not (after a Sentinel failover: to the new master), as
	// Config.ProbeInterval does for a store's events. Default 1 s; negative:
	// no probes (VersionRefresh then bounds how late a reset is seen).
	ProbeInterval time.Duration
	// JanitorInterval is how often the memory cache drops expired entries.
	// Default 1 minute.
	JanitorInterval time.Duration
	// Now returns the current time; nil means time.Now. The memory cache
	// expires entries by it (Redis expires cache entries itself, in real
	// time).
	Now func() time.Time
	// Logger receives backend failures. Nil: silent.
	Logger *slog.Logger
}

func (c CacheConfig) withDefaults() CacheConfig {
	if c.Prefix == "" {
		c.Prefix = "madang:"
	}
	if c.DefaultTTL <= 0 {
		c.DefaultTTL = 10 * time.Minute
	}
	if c.MaxKeyLen <= 0 {
		c.MaxKeyLen = 200
	}
	if c.MaxValueLen <= 0 {
		c.MaxValueLen = 1 << 20
	}
	if c.VersionRefresh <= 0 {
		c.VersionRefresh = time.Minute
	}
	if c.JanitorInterval <= 0 {
		c.JanitorInterval = time.Minute
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = time.Second
	}
	c.Now = clock.OrNow(c.Now)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// UserCache is a per-user key/value cache with TTLs: data derived from a
// user's game database (profile, inventory summary) kept close to the game
// servers. Fetch fills a miss once per process however many requests ask
// at the same time (singleflight). ResetAll empties the whole cache at once
// (after a game data change) by bumping a global version that is part of
// every key: no key is scanned or deleted, old entries just expire. Safe for
// concurrent use.
type UserCache struct {
	cfg CacheConfig
	b   cacheBackend
	sf  singleflight.Group

	hits, misses, fills, fillErrors, errors atomic.Uint64
}

// CacheStats are a UserCache's counters since it was created, for metrics
// (this process only).
type CacheStats struct {
	Hits   uint64 // Get and Fetch calls answered from the cache
	Misses uint64 // Get and Fetch calls that found nothing
	// Fills counts fill functions Fetch ran (once for all concurrent
	// callers of a key); FillErrors, those that returned an error.
	Fills, FillErrors uint64
	// Errors counts calls whose cache backend failed (ErrUnavailable),
	// including the get and set a Fetch does around its fill.
	Errors uint64
	// Resubscribed counts moves of the Redis cache's reset subscription to
	// another server (see CacheConfig.ProbeInterval). 0 in memory.
	Resubscribed uint64
}

// Stats returns the cache's counters.
func (c *UserCache) Stats() CacheStats {
	return CacheStats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Fills: c.fills.Load(), FillErrors: c.fillErrors.Load(),
		Errors: c.errors.Load(), Resubscribed: c.b.resubscriptions(),
	}
}

// cacheBackend stores entries under a version; entries of other versions
// are invisible.
type cacheBackend interface {
	get(ctx context.Context, ver, uk int64, key string) ([]byte, bool, error)
	set(ctx context.Context, ver, uk int64, key string, val []byte, ttl time.Duration) error
	del(ctx context.Context, ver, uk int64, key string) error
	version() int64
	reset(ctx context.Context) (int64, error)
	resubscriptions() uint64
	close()
}

// NewMemoryCache returns a cache kept in this process; one janitor goroutine
// drops expired entries until Close.
func NewMemoryCache(cfg CacheConfig) *UserCache {
	cfg = cfg.withDefaults()
	m := &memCache{now: cfg.Now, entries: make(map[memCacheKey]memCacheEntry)}
	m.jan = startJanitor(cfg.JanitorInterval, m.sweep)
	return &UserCache{cfg: cfg, b: m}
}

// NewRedisCache returns a cache on the router's nodes: each user's entries
// on the user's node (no fallback during a migration: a moved user just
// misses once). It reads the global version from the router's first node
// and subscribes to resets there, waiting for the subscription until ctx
// ends; Close stops the subscription's goroutine and the version re-read.
func NewRedisCache(ctx context.Context, r *Router, cfg CacheConfig) (*UserCache, error) {
	if r == nil {
		return nil, errors.New("session: nil router")
	}
	cfg = cfg.withDefaults()
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("session: prefix %q contains a brace", cfg.Prefix)
	}
	rc := &redisCache{
		r: r, prefix: cfg.Prefix, verKey: cfg.Prefix + "cache:version",
		ch: cfg.Prefix + "cache:reset", log: cfg.Logger,
	}
	global := r.Nodes()[0]
	if err := rc.refresh(ctx, global); err != nil {
		return nil, unavailable("cache version", err)
	}
	sub, err := subscribe(ctx, global, []string{rc.ch}, cfg.Prefix+"cache:probe:", cfg.ProbeInterval, func(m *redis.Message) {
		if n, err := strconv.ParseInt(m.Payload, 10, 64); err == nil {
			raiseTo(&rc.ver, n)
		}
	}, cfg.Logger, &rc.resubscribed)
	if err != nil {
		sub.stop()
		return nil, unavailable("cache subscribe", err)
	}
	rc.sub = sub
	rc.jan = startJanitor(cfg.VersionRefresh, func() {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.VersionRefresh)
		defer cancel()
		if err := rc.refresh(ctx, global); err != nil {
			rc.log.Warn("session: cache version refresh", "err", err)
		}
	})
	return &UserCache{cfg: cfg, b: rc}, nil
}

// Close stops the cache's goroutine and waits for it. Redis clients stay
// open.
func (c *UserCache) Close() error {
	c.b.close()
	return nil
}

// Version returns the cache version this process uses now.
func (c *UserCache) Version() int64 { return c.b.version() }

func (c *UserCache) check(uk int64, key string) error {
	if uk <= 0 {
		return fmt.Errorf("%w: user key %d", ErrInvalid, uk)
	}
	if key == "" || len(key) > c.cfg.MaxKeyLen {
		return fmt.Errorf("%w: cache key of %d bytes, want 1..%d", ErrInvalid, len(key), c.cfg.MaxKeyLen)
	}
	return nil
}

// Get returns the value of the user's key, or ErrCacheMiss.
func (c *UserCache) Get(ctx context.Context, userKey int64, key string) ([]byte, error) {
	if err := c.check(userKey, key); err != nil {
		return nil, err
	}
	v, ok, err := c.b.get(ctx, c.b.version(), userKey, key)
	if err != nil {
		c.errors.Add(1)
		return nil, unavailable("cache get", err)
	}
	if !ok {
		c.misses.Add(1)
		return nil, ErrCacheMiss
	}
	c.hits.Add(1)
	return v, nil
}

// Set stores val for the user's key for ttl (DefaultTTL when ttl <= 0).
func (c *UserCache) Set(ctx context.Context, userKey int64, key string, val []byte, ttl time.Duration) error {
	return c.set(ctx, c.b.version(), userKey, key, val, ttl)
}

// set stores val under version ver: a fill that started before a ResetAll
// stores its (possibly stale) value under the old version, where no one
// reads it.
func (c *UserCache) set(ctx context.Context, ver, userKey int64, key string, val []byte, ttl time.Duration) error {
	if err := c.check(userKey, key); err != nil {
		return err
	}
	if len(val) > c.cfg.MaxValueLen {
		return fmt.Errorf("%w: value of %d bytes, limit %d", ErrInvalid, len(val), c.cfg.MaxValueLen)
	}
	if ttl <= 0 {
		ttl = c.cfg.DefaultTTL
	}
	if err := c.b.set(ctx, ver, userKey, key, val, ttl); err != nil {
		c.errors.Add(1)
		return unavailable("cache set", err)
	}
	return nil
}

// Delete removes the user's key (after the game changed the data behind
// it).
func (c *UserCache) Delete(ctx context.Context, userKey int64, key string) error {
	if err := c.check(userKey, key); err != nil {
		return err
	}
	if err := c.b.del(ctx, c.b.version(), userKey, key); err != nil {
		c.errors.Add(1)
		return unavailable("cache delete", err)
	}
	return nil
}

// Fetch returns the cached value of the user's key or, on a miss, calls fill
// once for all concurrent callers in this process, caches its result for
// ttl and returns it. An error from fill is returned and nothing is cached.
// If the cache backend fails, Fetch still returns fill's value (the cache
// is an optimisation) and logs the failure. fill runs with the context of
// the caller that started it.
func (c *UserCache) Fetch(ctx context.Context, userKey int64, key string, ttl time.Duration, fill func(ctx context.Context) ([]byte, error)) ([]byte, error) {
	ver := c.b.version()
	v, err := c.Get(ctx, userKey, key)
	switch {
	case err == nil:
		return v, nil
	case errors.Is(err, ErrInvalid):
		return nil, err
	case !errors.Is(err, ErrCacheMiss):
		c.cfg.Logger.Warn("session: cache get failed; filling", "user", userKey, "key", key, "err", err)
	}
	sfKey := strconv.FormatInt(ver, 10) + ":" + strconv.FormatInt(userKey, 10) + ":" + key
	out, err, _ := c.sf.Do(sfKey, func() (any, error) {
		c.fills.Add(1)
		v, err := fill(ctx)
		if err != nil {
			c.fillErrors.Add(1)
			return nil, err
		}
		if err := c.set(ctx, ver, userKey, key, v, ttl); err != nil {
			c.cfg.Logger.Warn("session: cache set failed", "user", userKey, "key", key, "err", err)
		}
		return v, nil
	})
	if err != nil {
		return nil, err
	}
	return out.([]byte), nil
}

// ResetAll empties the cache of every user on every node by bumping the
// global version. This process uses the new version at once; other
// processes switch when the reset message reaches them (normally
// milliseconds; at worst CacheConfig.VersionRefresh).
func (c *UserCache) ResetAll(ctx context.Context) error {
	if _, err := c.b.reset(ctx); err != nil {
		c.errors.Add(1)
		return unavailable("cache reset", err)
	}
	return nil
}

// raiseTo sets v to n if n is larger.
func raiseTo(v *atomic.Int64, n int64) {
	for {
		cur := v.Load()
		if n <= cur || v.CompareAndSwap(cur, n) {
			return
		}
	}
}

// ---------------------------------------------------------------------------
// Memory backend.

type memCacheKey struct {
	ver, uk int64
	key     string
}

type memCacheEntry struct {
	val []byte
	exp time.Time
}

type memCache struct {
	now func() time.Time
	jan *janitor
	ver atomic.Int64

	mu      sync.Mutex
	entries map[memCacheKey]memCacheEntry
}

func (m *memCache) get(_ context.Context, ver, uk int64, key string) ([]byte, bool, error) {
	k := memCacheKey{ver, uk, key}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[k]
	if !ok {
		return nil, false, nil
	}
	if !m.now().Before(e.exp) {
		delete(m.entries, k)
		return nil, false, nil
	}
	return append([]byte(nil), e.val...), true, nil
}

func (m *memCache) set(_ context.Context, ver, uk int64, key string, val []byte, ttl time.Duration) error {
	e := memCacheEntry{val: append([]byte(nil), val...), exp: m.now().Add(ttl)}
	m.mu.Lock()
	m.entries[memCacheKey{ver, uk, key}] = e
	m.mu.Unlock()
	return nil
}

func (m *memCache) del(_ context.Context, ver, uk int64, key string) error {
	m.mu.Lock()
	delete(m.entries, memCacheKey{ver, uk, key})
	m.mu.Unlock()
	return nil
}

func (m *memCache) version() int64 { return m.ver.Load() }

func (m *memCache) resubscriptions() uint64 { return 0 }

// reset bumps the version and drops every entry at once (one process: no
// need to wait for them to expire).
func (m *memCache) reset(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.entries)
	return m.ver.Add(1), nil
}

func (m *memCache) sweep() {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, e := range m.entries {
		if !now.Before(e.exp) {
			delete(m.entries, k)
		}
	}
}

func (m *memCache) close() { m.jan.stop() }

// ---------------------------------------------------------------------------
// Redis backend.

type redisCache struct {
	r              *Router
	prefix, verKey string
	ch             string
	log            *slog.Logger
	ver            atomic.Int64
	resubscribed   atomic.Uint64
	sub            *subscription // the reset channel
	jan            *janitor      // the version's periodic re-read
}

func (c *redisCache) key(ver, uk int64, key string) string {
	return c.prefix + "{u:" + strconv.FormatInt(uk, 10) + "}:c:" + strconv.FormatInt(ver, 10) + ":" + key
}

func (c *redisCache) get(ctx context.Context, ver, uk int64, key string) ([]byte, bool, error) {
	v, err := c.r.Node(uk).Get(ctx, c.key(ver, uk, key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

func (c *redisCache) set(ctx context.Context, ver, uk int64, key string, val []byte, ttl time.Duration) error {
	return c.r.Node(uk).Set(ctx, c.key(ver, uk, key), val, ttl).Err()
}

func (c *redisCache) del(ctx context.Context, ver, uk int64, key string) error {
	return c.r.Node(uk).Del(ctx, c.key(ver, uk, key)).Err()
}

func (c *redisCache) version() int64 { return c.ver.Load() }

func (c *redisCache) resubscriptions() uint64 { return c.resubscribed.Load() }

func (c *redisCache) refresh(ctx context.Context, global redis.UniversalClient) error {
	n, err := global.Get(ctx, c.verKey).Int64()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return err
	}
	raiseTo(&c.ver, n)
	return nil
}

// resetScript bumps the version and announces it in one step.
var resetScript = redis.NewScript(`
local v = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], v)
return v
`)

func (c *redisCache) reset(ctx context.Context) (int64, error) {
	n, err := resetScript.Run(ctx, c.r.Nodes()[0], []string{c.verKey}, c.ch).Int64()
	if err != nil {
		return 0, err
	}
	raiseTo(&c.ver, n)
	return n, nil
}

func (c *redisCache) close() {
	c.sub.stop()
	c.jan.stop()
}
