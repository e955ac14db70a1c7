package anticheat_test

import (
	"context"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/anticheat/anticheattest"
	"github.com/madang-io/madang/internal/testdb"
)

// cachedStore is a Store whose Blocks go through a BlockCache.
type cachedStore struct {
	anticheat.Store
	*anticheat.BlockCache
}

func (s cachedStore) PutBlock(ctx context.Context, b anticheat.Block) error {
	return s.BlockCache.PutBlock(ctx, b)
}
func (s cachedStore) DeleteBlock(ctx context.Context, u int64) error {
	return s.BlockCache.DeleteBlock(ctx, u)
}
func (s cachedStore) GetBlock(ctx context.Context, u int64, now time.Time) (anticheat.Block, bool, error) {
	return s.BlockCache.GetBlock(ctx, u, now)
}

func TestBlockCacheConformance(t *testing.T) {
	anticheattest.RunStoreTests(t, func(t *testing.T) anticheat.Store {
		m := anticheat.NewMemoryStore(anticheat.MemoryConfig{})
		return cachedStore{m, anticheat.NewBlockCache(m, anticheat.BlockCacheConfig{})}
	})
}

// Two game servers share one SQL block list, each with its own cache.
func TestBlockCacheTwoServers(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			store := newSQLStore(t, b)
			a := anticheat.NewBlockCache(store, anticheat.BlockCacheConfig{TTL: 10 * time.Second})
			bc := anticheat.NewBlockCache(store, anticheat.BlockCacheConfig{TTL: 10 * time.Second})
			if _, ok, err := bc.GetBlock(ctx, 5, t0); ok || err != nil { // caches "not blocked"
				t.Fatal(ok, err)
			}
			if err := a.PutBlock(ctx, anticheat.Block{UserKey: 5, Reason: "speed", At: t0}); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := a.GetBlock(ctx, 5, t0.Add(time.Second)); !ok {
				t.Fatal("server A does not see its own block")
			}
			if _, ok, _ := bc.GetBlock(ctx, 5, t0.Add(5*time.Second)); ok {
				t.Fatal("server B saw the block before its cache expired (the test would not show the cache)")
			}
			if _, ok, _ := bc.GetBlock(ctx, 5, t0.Add(11*time.Second)); !ok {
				t.Fatal("server B does not see the block after TTL")
			}
			if err := bc.DeleteBlock(ctx, 5); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := bc.GetBlock(ctx, 5, t0.Add(12*time.Second)); ok {
				t.Fatal("unblock not seen at once on B")
			}
		})
	}
}

func TestBlockCacheBounded(t *testing.T) {
	m := anticheat.NewMemoryStore(anticheat.MemoryConfig{})
	c := anticheat.NewBlockCache(m, anticheat.BlockCacheConfig{MaxEntries: 640})
	ctx := context.Background()
	_ = m.PutBlock(ctx, anticheat.Block{UserKey: 3, At: t0})
	for u := range int64(5000) {
		_, ok, err := c.GetBlock(ctx, u, t0)
		if err != nil || ok != (u == 3) {
			t.Fatalf("user %d: %v %v", u, ok, err)
		}
	}
	if n := c.Len(); n > 640 || n < 320 {
		t.Fatalf("cached %d users, limit 640", n)
	}
	allocs := testing.AllocsPerRun(100, func() { _, _, _ = c.GetBlock(ctx, 4999, t0) })
	if allocs != 0 {
		t.Fatalf("%v allocs on a hit", allocs)
	}
}
