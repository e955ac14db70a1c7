package anticheat_test

import (
	"context"
	"sync"
	"sync/atomic"
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
			store := newSQLStore(t, b)
			cfg := anticheat.BlockCacheConfig{TTL: 10 * time.Second}
			twoServers(t, anticheat.NewBlockCache(store, cfg), anticheat.NewBlockCache(store, cfg))
		})
	}
}

// twoServers plays two game servers, A and B, sharing one block list, each
// through its own cache with a TTL of 10 s: B has cached user 5 as not
// blocked at t0; a block of user 5 through A (ending at t0+1h) is seen at
// once on A, not on B before B's TTL and on B after it; lifting it through
// B is seen at once on B; the ended block does not answer.
func twoServers(t *testing.T, a, b *anticheat.BlockCache) {
	t.Helper()
	ctx := context.Background()
	if _, ok, err := b.GetBlock(ctx, 5, t0); ok || err != nil { // caches "not blocked"
		t.Fatal(ok, err)
	}
	if err := a.PutBlock(ctx, anticheat.Block{UserKey: 5, Reason: "speed", At: t0, Until: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.GetBlock(ctx, 5, t0.Add(time.Second)); !ok {
		t.Fatal("server A does not see its own block")
	}
	if _, ok, _ := b.GetBlock(ctx, 5, t0.Add(5*time.Second)); ok {
		t.Fatal("server B saw the block before its cache expired (the test would not show the cache)")
	}
	if _, ok, _ := b.GetBlock(ctx, 5, t0.Add(11*time.Second)); !ok {
		t.Fatal("server B does not see the block after TTL")
	}
	if err := b.DeleteBlock(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := b.GetBlock(ctx, 5, t0.Add(12*time.Second)); ok {
		t.Fatal("unblock not seen at once on B")
	}
	if _, ok, _ := b.GetBlock(ctx, 5, t0.Add(2*time.Hour)); ok {
		t.Fatal("an ended block still answered")
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

func TestBlockCacheWholeListConformance(t *testing.T) {
	anticheattest.RunStoreTests(t, func(t *testing.T) anticheat.Store {
		m := anticheat.NewMemoryStore(anticheat.MemoryConfig{})
		return cachedStore{m, anticheat.NewBlockCache(m, anticheat.BlockCacheConfig{WholeList: true})}
	})
}

// countingBlocks counts a backend's block reads.
type countingBlocks struct {
	*anticheat.SQLStore
	gets, lists atomic.Int64
}

func (c *countingBlocks) GetBlock(ctx context.Context, u int64, now time.Time) (anticheat.Block, bool, error) {
	c.gets.Add(1)
	return c.SQLStore.GetBlock(ctx, u, now)
}

func (c *countingBlocks) ActiveBlocks(ctx context.Context, now time.Time, limit int) ([]anticheat.Block, error) {
	c.lists.Add(1)
	return c.SQLStore.ActiveBlocks(ctx, now, limit)
}

// With WholeList, two servers sharing one SQL block list answer first
// checks of many users with one list query per TTL, see the other's
// blocks within TTL and their own at once, and fall back to per-user
// reads while the list is longer than MaxEntries.
func TestBlockCacheWholeList(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			store := &countingBlocks{SQLStore: newSQLStore(t, b)}
			cfg := anticheat.BlockCacheConfig{TTL: 10 * time.Second, WholeList: true, MaxEntries: 3}
			a := anticheat.NewBlockCache(store, cfg)
			bc := anticheat.NewBlockCache(store, cfg)
			if err := store.PutBlock(ctx, anticheat.Block{UserKey: 7, Reason: "ban", At: t0}); err != nil {
				t.Fatal(err)
			}
			if err := store.PutBlock(ctx, anticheat.Block{UserKey: 8, Reason: "was", At: t0, Until: t0.Add(-time.Second)}); err != nil {
				t.Fatal(err)
			}
			for u := range int64(100) {
				_, ok, err := bc.GetBlock(ctx, u, t0)
				if err != nil || ok != (u == 7) {
					t.Fatalf("user %d: %v %v", u, ok, err)
				}
			}
			if g, l := store.gets.Load(), store.lists.Load(); g != 0 || l != 1 {
				t.Fatalf("100 first checks: %d per-user reads, %d list loads; want 0, 1", g, l)
			}
			// A block through server A: at once on A, within TTL on B.
			twoServers(t, a, bc)
			// More blocks in force than MaxEntries: user by user.
			for u := int64(20); u < 24; u++ {
				if err := store.PutBlock(ctx, anticheat.Block{UserKey: u, Reason: "bot", At: t0}); err != nil {
					t.Fatal(err)
				}
			}
			later := t0.Add(3 * time.Hour)
			gets := store.gets.Load()
			for _, u := range []int64{7, 21, 99} {
				if _, ok, err := bc.GetBlock(ctx, u, later); err != nil || ok != (u != 99) {
					t.Fatalf("long list, user %d: %v %v", u, ok, err)
				}
			}
			if n := store.gets.Load() - gets; n != 3 {
				t.Fatalf("long list: %d per-user reads, want 3", n)
			}
			lists := store.lists.Load()
			for range 10 {
				_, _, _ = bc.GetBlock(ctx, 50, later.Add(time.Second))
			}
			if n := store.lists.Load() - lists; n != 0 {
				t.Fatalf("long list: %d list loads within a TTL, want 0 (one per TTL)", n)
			}
			_, _, _ = bc.GetBlock(ctx, 51, later.Add(11*time.Second))
			if n := store.lists.Load() - lists; n != 1 {
				t.Fatalf("long list: %d list loads after a TTL, want 1", n)
			}
		})
	}
}

// Concurrent checks, loads and changes through a WholeList cache (run
// with -race): a block put through the cache is seen by the checks that
// start after it, whatever loads are under way.
func TestBlockCacheWholeListConcurrent(t *testing.T) {
	ctx := context.Background()
	m := anticheat.NewMemoryStore(anticheat.MemoryConfig{})
	c := anticheat.NewBlockCache(m, anticheat.BlockCacheConfig{TTL: time.Millisecond, WholeList: true})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				u := int64(w*1000 + i)
				now := t0.Add(time.Duration(i) * time.Millisecond)
				if _, ok, err := c.GetBlock(ctx, u, now); err != nil || ok {
					t.Errorf("user %d before its block: %v %v", u, ok, err)
					return
				}
				if err := c.PutBlock(ctx, anticheat.Block{UserKey: u, At: t0}); err != nil {
					t.Error(err)
					return
				}
				if _, ok, err := c.GetBlock(ctx, u, now); err != nil || !ok {
					t.Errorf("user %d after its block: %v %v", u, ok, err)
					return
				}
				if err := c.DeleteBlock(ctx, u); err != nil {
					t.Error(err)
					return
				}
				if _, ok, err := c.GetBlock(ctx, u, now); err != nil || ok {
					t.Errorf("user %d after lifting: %v %v", u, ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
