package anticheat

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/internal/backend"
	"github.com/madang-io/madang/protocol"
	"golang.org/x/sync/singleflight"
)

// BlockCacheConfig configures a BlockCache. The zero value works.
type BlockCacheConfig struct {
	// TTL is how long a looked-up answer (blocked or not) is reused before
	// the backend is asked again: how late a block put by another game
	// server takes effect here. Default 10 s.
	TTL time.Duration
	// MaxEntries bounds the users cached; when full, expired entries are
	// dropped, then arbitrary ones. Default 100,000. With WholeList it
	// also bounds the blocks kept.
	MaxEntries int
	// WholeList keeps every block in force in process when the backend is
	// a BlockLister (SQLStore and MemoryStore are): one ActiveBlocks query
	// loads the list, again once it is TTL old (in request time), and a
	// user who is not on it is answered "not blocked" from memory — a
	// first check of a user costs no query, as a repeated one does not. A
	// block put or lifted by another server takes effect here within TTL,
	// as without WholeList; one through this cache at once. While more
	// than MaxEntries blocks are in force, the cache works user by user
	// as without WholeList (and tries the list again every TTL). A failed
	// load fails the checks waiting for it (they fail closed). Default
	// false: user by user.
	WholeList bool
	// MaxStale is how old a last-known answer may be and still be served
	// when the backend is out (an error that the one classification calls
	// unavailable or timeout: a refused or dead connection, a frozen
	// database past the context's deadline, a full pool): the check then
	// answers what the backend said last instead of failing, so players
	// keep playing while the common database is down, and a player blocked
	// stays blocked. A user (or a whole list) never fetched still fails
	// closed, and any other error (a statement the database refuses) is
	// returned as before. While the whole list is stale, a new load is
	// tried at most once per min(TTL, 1 s). Counted in Stats. Default
	// 10 min; negative: never serve a stale answer.
	MaxStale time.Duration
}

// BlockCacheStats counts a BlockCache's answers given from stale data.
type BlockCacheStats struct {
	// StaleAnswers counts checks answered from an answer older than TTL
	// because the backend was out (BlockCacheConfig.MaxStale).
	StaleAnswers uint64
	// BackendOutages counts backend reads (a user's block, or the whole
	// list) that failed as unavailable and were covered by a stale answer.
	BackendOutages uint64
}

// BlockCache puts a per-process cache in front of a shared Blocks backend
// (SQLStore), so the per-request block check costs a map lookup instead of
// a query. Blocks and unblocks made through the cache take effect here at
// once and on other servers within TTL. GetBlock does not allocate on a
// hit. Safe for concurrent use.
type BlockCache struct {
	next     Blocks
	ttl      int64 // ns
	maxStale int64 // ns; 0: never
	retry    int64 // ns between whole-list loads while the list is stale
	perShard int
	shards   [speedShards]blockCacheShard

	// The whole list (BlockCacheConfig.WholeList); lister is nil without.
	lister   BlockLister
	maxWhole int
	wmu      sync.RWMutex
	whole    map[int64]Block // nil: not loaded, or too long
	tooLong  bool            // the last load found more than maxWhole
	wholeAt  int64           // request time (Unix ns) of the last load
	wholeGen uint64          // bumped by every change through the cache
	retryAt  int64           // request time before which a stale list is not loaded again
	loads    singleflight.Group

	staleAnswers, outages atomic.Uint64
}

type blockCacheShard struct {
	mu sync.RWMutex
	m  map[int64]cachedBlock
	_  [32]byte
}

type cachedBlock struct {
	b       Block
	ok      bool
	fetched int64 // Unix ns of the request time it was fetched at
	retryAt int64 // while stale (the backend out): no read before this
}

var (
	_ Blocks      = (*BlockCache)(nil)
	_ BlockLister = (*SQLStore)(nil)
	_ BlockLister = (*MemoryStore)(nil)
)

// NewBlockCache returns a cache in front of next.
func NewBlockCache(next Blocks, cfg BlockCacheConfig) *BlockCache {
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100_000
	}
	switch {
	case cfg.MaxStale == 0:
		cfg.MaxStale = 10 * time.Minute
	case cfg.MaxStale < 0:
		cfg.MaxStale = 0
	}
	c := &BlockCache{next: next, ttl: int64(cfg.TTL), maxStale: int64(cfg.MaxStale),
		retry:    int64(min(cfg.TTL, time.Second)),
		perShard: (cfg.MaxEntries + speedShards - 1) / speedShards, maxWhole: cfg.MaxEntries}
	if l, ok := next.(BlockLister); ok && cfg.WholeList {
		c.lister = l
	}
	for i := range c.shards {
		c.shards[i].m = make(map[int64]cachedBlock)
	}
	return c
}

// outage reports whether err means the backend is out (not a bug), so a
// stale answer may cover it.
func outage(err error) bool {
	c := backend.Code(err)
	return c == protocol.CodeUnavailable || c == protocol.CodeTimeout
}

// standsIn reports whether an answer fetched at request time fetched is
// young enough (MaxStale) to stand in for the backend's at t.
func (c *BlockCache) standsIn(fetched, t int64) bool {
	return c.maxStale > 0 && t-fetched < c.maxStale && t >= fetched-c.ttl
}

// usable reports whether an answer fetched at request time fetched may
// stand in for the backend's at t when the backend fails with err.
func (c *BlockCache) usable(fetched, t int64, err error) bool {
	return c.standsIn(fetched, t) && outage(err)
}

// Stats returns the counts of stale answers (BlockCacheConfig.MaxStale).
func (c *BlockCache) Stats() BlockCacheStats {
	return BlockCacheStats{StaleAnswers: c.staleAnswers.Load(), BackendOutages: c.outages.Load()}
}

// GetBlock implements Blocks: a cached answer younger than TTL (measured
// in request time, now), else the backend's; when the backend is out, a
// cached answer younger than MaxStale.
func (c *BlockCache) GetBlock(ctx context.Context, userKey int64, now time.Time) (Block, bool, error) {
	if c.lister != nil {
		b, ok, complete, err := c.fromWhole(ctx, userKey, now)
		if err != nil || complete {
			return b, ok, err
		}
	}
	sh := &c.shards[shardOf(userKey)]
	t := now.UnixNano()
	sh.mu.RLock()
	e, hit := sh.m[userKey]
	sh.mu.RUnlock()
	expired := !hit || t-e.fetched >= c.ttl || t < e.fetched-c.ttl
	if expired && hit && t < e.retryAt && c.standsIn(e.fetched, t) {
		c.staleAnswers.Add(1) // the backend was out a moment ago
	} else if expired {
		b, ok, err := c.next.GetBlock(ctx, userKey, now)
		switch {
		case err == nil:
			e = cachedBlock{b: b, ok: ok, fetched: t}
			sh.mu.Lock()
			c.makeRoom(sh, t)
			sh.m[userKey] = e
			sh.mu.Unlock()
		case hit && c.usable(e.fetched, t, err):
			c.outages.Add(1)
			c.staleAnswers.Add(1)
			e.retryAt = t + c.retry
			sh.mu.Lock()
			if cur, ok := sh.m[userKey]; ok && cur.fetched == e.fetched {
				sh.m[userKey] = e
			}
			sh.mu.Unlock()
		default:
			return Block{}, false, err
		}
	}
	if !e.ok || (!e.b.Permanent() && !now.Before(e.b.Until)) {
		return Block{}, false, nil
	}
	return e.b, true, nil
}

func (c *BlockCache) makeRoom(sh *blockCacheShard, now int64) {
	if len(sh.m) < c.perShard {
		return
	}
	for k, e := range sh.m {
		if now-e.fetched >= c.ttl {
			delete(sh.m, k)
		}
	}
	for k := range sh.m {
		if len(sh.m) < c.perShard {
			break
		}
		delete(sh.m, k)
	}
}

// fromWhole answers from the whole list, loading it when it is missing or
// TTL old; complete is false when the list is too long to keep.
func (c *BlockCache) fromWhole(ctx context.Context, userKey int64, now time.Time) (b Block, ok, complete bool, err error) {
	t := now.UnixNano()
	c.wmu.RLock()
	m, at, gen := c.whole, c.wholeAt, c.wholeGen
	fresh := (m != nil || c.tooLong) && t-at < c.ttl && t >= at-c.ttl
	// After a failed load, a list still young enough to stand in is used
	// until the next try.
	stale := !fresh && m != nil && t < c.retryAt && c.standsIn(at, t)
	if fresh || stale {
		if m != nil {
			b, ok = m[userKey]
		}
		fresh = true
	}
	c.wmu.RUnlock()
	if stale {
		c.staleAnswers.Add(1)
	}
	if fresh && m == nil {
		return Block{}, false, false, nil // too long: user by user
	}
	if !fresh {
		// One load per generation: a load that began before a change
		// through the cache is neither joined nor kept.
		v, err, _ := c.loads.Do(strconv.FormatUint(gen, 10), func() (any, error) {
			bs, err := c.lister.ActiveBlocks(ctx, now, c.maxWhole+1)
			if err != nil {
				c.wmu.Lock()
				defer c.wmu.Unlock()
				if c.wholeGen == gen && c.whole != nil && c.usable(c.wholeAt, t, err) {
					// The backend is out: the last list stands in, and
					// the next load waits a moment.
					c.retryAt = t + c.retry
					c.outages.Add(1)
					return staleList{c.whole}, nil
				}
				return nil, err
			}
			var m map[int64]Block
			if len(bs) <= c.maxWhole {
				m = make(map[int64]Block, len(bs))
				for _, b := range bs {
					m[b.UserKey] = b
				}
			}
			c.wmu.Lock()
			if c.wholeGen == gen {
				c.whole, c.tooLong, c.wholeAt = m, m == nil, t
			}
			c.wmu.Unlock()
			return m, nil
		})
		if err != nil {
			return Block{}, false, false, err
		}
		if sl, ok := v.(staleList); ok {
			c.staleAnswers.Add(1)
			m = sl.m
		} else {
			m = v.(map[int64]Block)
		}
		if m == nil {
			return Block{}, false, false, nil // too long: user by user
		}
		c.wmu.RLock()
		if c.wholeGen != gen { // changed through the cache since
			m = c.whole
		}
		if m != nil {
			b, ok = m[userKey]
		}
		c.wmu.RUnlock()
		if m == nil {
			return Block{}, false, false, nil
		}
	}
	if !ok || (!b.Permanent() && !now.Before(b.Until)) {
		return Block{}, false, true, nil
	}
	return b, true, true, nil
}

// staleList is a whole-list load's result when the backend was out and
// the last list stood in.
type staleList struct{ m map[int64]Block }

// changed applies a block put (b, ok) or lifted (ok false) through the
// cache to the whole list; after a failed write (which may have happened)
// the list is dropped and loaded again.
func (c *BlockCache) changed(userKey int64, b Block, ok bool, err error) {
	if c.lister == nil {
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wholeGen++
	switch {
	case c.whole == nil:
	case err != nil:
		c.whole = nil
	case ok: // every read of the map holds wmu
		c.whole[userKey] = b
	default:
		delete(c.whole, userKey)
	}
}

func (c *BlockCache) forget(userKey int64) {
	sh := &c.shards[shardOf(userKey)]
	sh.mu.Lock()
	delete(sh.m, userKey)
	sh.mu.Unlock()
}

// PutBlock implements Blocks: written to the backend, then forgotten here
// so the next lookup reads it.
func (c *BlockCache) PutBlock(ctx context.Context, b Block) error {
	err := c.next.PutBlock(ctx, b)
	c.forget(b.UserKey)
	c.changed(b.UserKey, b, true, err)
	return err
}

// DeleteBlock implements Blocks, like PutBlock.
func (c *BlockCache) DeleteBlock(ctx context.Context, userKey int64) error {
	err := c.next.DeleteBlock(ctx, userKey)
	c.forget(userKey)
	c.changed(userKey, Block{}, false, err)
	return err
}

// Len returns how many users are cached.
func (c *BlockCache) Len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
