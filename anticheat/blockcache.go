package anticheat

import (
	"context"
	"sync"
	"time"
)

// BlockCacheConfig configures a BlockCache. The zero value works.
type BlockCacheConfig struct {
	// TTL is how long a looked-up answer (blocked or not) is reused before
	// the backend is asked again: how late a block put by another game
	// server takes effect here. Default 10 s.
	TTL time.Duration
	// MaxEntries bounds the users cached; when full, expired entries are
	// dropped, then arbitrary ones. Default 100,000.
	MaxEntries int
}

// BlockCache puts a per-process cache in front of a shared Blocks backend
// (SQLStore), so the per-request block check costs a map lookup instead of
// a query. Blocks and unblocks made through the cache take effect here at
// once and on other servers within TTL. GetBlock does not allocate on a
// hit. Safe for concurrent use.
type BlockCache struct {
	next     Blocks
	ttl      int64 // ns
	perShard int
	shards   [speedShards]blockCacheShard
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
}

var _ Blocks = (*BlockCache)(nil)

// NewBlockCache returns a cache in front of next.
func NewBlockCache(next Blocks, cfg BlockCacheConfig) *BlockCache {
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100_000
	}
	c := &BlockCache{next: next, ttl: int64(cfg.TTL), perShard: (cfg.MaxEntries + speedShards - 1) / speedShards}
	for i := range c.shards {
		c.shards[i].m = make(map[int64]cachedBlock)
	}
	return c
}

// GetBlock implements Blocks: a cached answer younger than TTL (measured
// in request time, now), else the backend's.
func (c *BlockCache) GetBlock(ctx context.Context, userKey int64, now time.Time) (Block, bool, error) {
	sh := &c.shards[shardOf(userKey)]
	t := now.UnixNano()
	sh.mu.RLock()
	e, hit := sh.m[userKey]
	sh.mu.RUnlock()
	if !hit || t-e.fetched >= c.ttl || t < e.fetched-c.ttl {
		b, ok, err := c.next.GetBlock(ctx, userKey, now)
		if err != nil {
			return Block{}, false, err
		}
		e = cachedBlock{b: b, ok: ok, fetched: t}
		sh.mu.Lock()
		c.makeRoom(sh, t)
		sh.m[userKey] = e
		sh.mu.Unlock()
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
	return err
}

// DeleteBlock implements Blocks, like PutBlock.
func (c *BlockCache) DeleteBlock(ctx context.Context, userKey int64) error {
	err := c.next.DeleteBlock(ctx, userKey)
	c.forget(userKey)
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
