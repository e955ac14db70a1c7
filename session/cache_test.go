package session_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/session/sessiontest"
	"github.com/redis/go-redis/v9"
)

func TestMemoryCacheConformance(t *testing.T) {
	sessiontest.RunCacheTests(t, func(t *testing.T, cfg session.CacheConfig) *session.UserCache {
		return session.NewMemoryCache(cfg)
	})
}

func redisCacheFunc(router func() (*session.Router, redis.UniversalClient)) sessiontest.NewCacheFunc {
	return func(t *testing.T, cfg session.CacheConfig) *session.UserCache {
		r, c := router()
		cfg.Prefix = testredis.Prefix(t, c)
		uc, err := session.NewRedisCache(context.Background(), r, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return uc
	}
}

func TestRedisCacheConformance(t *testing.T) {
	c := testredis.Client(t)
	sessiontest.RunCacheTests(t, redisCacheFunc(func() (*session.Router, redis.UniversalClient) { return session.Single(c), c }))
}

func TestRedisClusterCacheConformance(t *testing.T) {
	c := testredis.Cluster(t)
	sessiontest.RunCacheTests(t, redisCacheFunc(func() (*session.Router, redis.UniversalClient) { return session.Single(c), c }))
}

func TestRoutedCacheConformance(t *testing.T) {
	shared := testredis.Client(t)
	r, err := session.NewRouter([]redis.UniversalClient{shared, privateRedis(t)}, session.RouterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sessiontest.RunCacheTests(t, redisCacheFunc(func() (*session.Router, redis.UniversalClient) { return r, shared }))
}

// waitFor polls cond until it holds, failing after 10s (a bound for a
// failure, not a speed assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRedisCacheResetAcrossProcesses: a reset on one instance reaches the
// others by pub/sub, and by the periodic refresh when a message was lost.
func TestRedisCacheResetAcrossProcesses(t *testing.T) {
	c := testredis.Client(t)
	prefix := testredis.Prefix(t, c)
	ctx := context.Background()
	open := func(refresh time.Duration) *session.UserCache {
		uc, err := session.NewRedisCache(ctx, session.Single(c), session.CacheConfig{Prefix: prefix, VersionRefresh: refresh})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = uc.Close() })
		return uc
	}
	a, b := open(time.Hour), open(time.Hour)
	if err := a.Set(ctx, 1, "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, 1, "k"); err != nil || string(got) != "v" {
		t.Fatalf("b sees %q, %v", got, err)
	}
	if err := b.ResetAll(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a learns the new version", func() bool { return a.Version() == b.Version() })
	if _, err := a.Get(ctx, 1, "k"); !errors.Is(err, session.ErrCacheMiss) {
		t.Fatalf("a after b's reset: %v", err)
	}
	// A new instance starts with the current version.
	if v := open(time.Hour).Version(); v != b.Version() {
		t.Fatalf("new instance at version %d, want %d", v, b.Version())
	}
	// A bump whose message is lost (written without PUBLISH) is picked up by
	// the refresh.
	d := open(10 * time.Millisecond)
	if err := c.Incr(ctx, prefix+"cache:version").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "refresh picks up a silent bump", func() bool { return d.Version() == b.Version()+1 })
}

// TestCacheFetchSingleflight: concurrent misses fill once (synctest makes
// "all callers are waiting" observable).
func TestCacheFetchSingleflight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := session.NewMemoryCache(session.CacheConfig{})
		defer c.Close()
		gate := make(chan struct{})
		var fills atomic.Int32
		fill := func(context.Context) ([]byte, error) {
			fills.Add(1)
			<-gate
			return []byte("v"), nil
		}
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				got, err := c.Fetch(context.Background(), 1, "k", time.Minute, fill)
				if err != nil || string(got) != "v" {
					t.Errorf("Fetch: %q, %v", got, err)
				}
			})
		}
		synctest.Wait() // all 20 blocked: one in fill, the rest waiting for it
		close(gate)
		wg.Wait()
		if n := fills.Load(); n != 1 {
			t.Fatalf("fill ran %d times for 20 concurrent misses, want 1", n)
		}
	})
}

// TestRedisCacheConnectionCut: a cut gives ErrUnavailable; Fetch still
// serves the filled value; the cache works again afterwards.
func TestRedisCacheConnectionCut(t *testing.T) {
	addr := needRedis(t)
	p := newProxy(t, addr)
	c := redis.NewClient(&redis.Options{Addr: p.addr(), MaxRetries: 1})
	defer c.Close()
	ctx := context.Background()
	uc, err := session.NewRedisCache(ctx, session.Single(c), session.CacheConfig{Prefix: testredis.Prefix(t, testredis.Client(t))})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if err := uc.Set(ctx, 1, "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	p.stalled.Store(true)
	res := make(chan error, 1)
	go func() { _, err := uc.Get(ctx, 1, "k"); res <- err }()
	<-p.sawBytes
	p.cut()
	if err := <-res; !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("Get during the cut: %v", err)
	}
	got, err := uc.Fetch(ctx, 1, "k", time.Hour, func(context.Context) ([]byte, error) { return []byte("from db"), nil })
	if err != nil || string(got) != "from db" {
		t.Fatalf("Fetch while down: %q, %v", got, err)
	}
	// Errors: the Get during the cut, and the get and set around the fill.
	if st := uc.Stats(); st.Errors != 3 || st.Fills != 1 {
		t.Fatalf("stats after the cut: %+v, want 3 errors and 1 fill", st)
	}
	p.restore()
	if got, err := uc.Get(ctx, 1, "k"); err != nil || string(got) != "v" {
		t.Fatalf("Get after the connection is back: %q, %v", got, err)
	}
}
