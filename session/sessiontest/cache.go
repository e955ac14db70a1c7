package sessiontest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
)

// NewCacheFunc returns a fresh, empty cache configured with cfg (keep its
// fields, in particular Now; add your own, such as a random Prefix). The
// suite closes it.
type NewCacheFunc func(t *testing.T, cfg session.CacheConfig) *session.UserCache

// RunCacheTests runs the per-user cache suite against caches from newCache.
//
// Time: the memory cache expires entries by CacheConfig.Now (a Clock's Now
// here) and Redis by its own real clock, so the expiry test sets a 50ms TTL,
// advances the fake clock past it and then polls (bounded) until the entry
// is gone: it passes on either kind of backend without asserting a speed.
func RunCacheTests(t *testing.T, newCache NewCacheFunc) {
	t.Run("SetGetDelete", func(t *testing.T) { testCacheSetGet(t, newCache) })
	t.Run("TTL", func(t *testing.T) { testCacheTTL(t, newCache) })
	t.Run("Fetch", func(t *testing.T) { testCacheFetch(t, newCache) })
	t.Run("ResetAll", func(t *testing.T) { testCacheReset(t, newCache) })
	t.Run("BadInput", func(t *testing.T) { testCacheBadInput(t, newCache) })
	t.Run("Stats", func(t *testing.T) { testCacheStats(t, newCache) })
}

func testCacheStats(t *testing.T, newCache NewCacheFunc) {
	c, _ := cacheSetup(t, newCache)
	ctx := context.Background()
	if got := c.Stats(); got != (session.CacheStats{}) {
		t.Fatalf("stats of a new cache: %+v", got)
	}
	if _, err := c.Get(ctx, 1, "a"); !errors.Is(err, session.ErrCacheMiss) { // miss
		t.Fatal(err)
	}
	if err := c.Set(ctx, 1, "a", []byte("x"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, 1, "a"); err != nil { // hit
		t.Fatal(err)
	}
	fill := func(context.Context) ([]byte, error) { return []byte("f"), nil }
	for range 2 { // a miss and a fill, then a hit
		if _, err := c.Fetch(ctx, 2, "b", time.Hour, fill); err != nil {
			t.Fatal(err)
		}
	}
	boom := errors.New("database down")
	if _, err := c.Fetch(ctx, 3, "c", time.Hour, func(context.Context) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatal(err) // a miss, a fill and a fill error
	}
	if _, err := c.Get(ctx, 0, "bad"); !errors.Is(err, session.ErrInvalid) { // not counted
		t.Fatal(err)
	}
	want := session.CacheStats{Hits: 2, Misses: 3, Fills: 2, FillErrors: 1}
	if got := c.Stats(); got != want {
		t.Fatalf("stats: %+v, want %+v", got, want)
	}
}

func cacheSetup(t *testing.T, newCache NewCacheFunc) (*session.UserCache, *Clock) {
	t.Helper()
	clk := NewClock(time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC))
	c := newCache(t, session.CacheConfig{Now: clk.Now})
	t.Cleanup(func() { _ = c.Close() })
	return c, clk
}

func testCacheSetGet(t *testing.T, newCache NewCacheFunc) {
	c, _ := cacheSetup(t, newCache)
	ctx := context.Background()
	if _, err := c.Get(ctx, 1, "profile"); !errors.Is(err, session.ErrCacheMiss) {
		t.Fatalf("Get of nothing: %v, want ErrCacheMiss", err)
	}
	if err := c.Set(ctx, 1, "profile", []byte("one"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, 2, "profile", []byte("two"), 0); err != nil {
		t.Fatal(err)
	}
	for uk, want := range map[int64]string{1: "one", 2: "two"} {
		got, err := c.Get(ctx, uk, "profile")
		if err != nil || string(got) != want {
			t.Fatalf("Get(%d): %q, %v; want %q", uk, got, err, want)
		}
	}
	if err := c.Set(ctx, 1, "profile", []byte("uno"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get(ctx, 1, "profile"); string(got) != "uno" {
		t.Fatalf("after overwrite: %q", got)
	}
	if err := c.Delete(ctx, 1, "profile"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, 1, "profile"); !errors.Is(err, session.ErrCacheMiss) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if got, _ := c.Get(ctx, 2, "profile"); string(got) != "two" {
		t.Fatalf("Delete of user 1 touched user 2: %q", got)
	}
}

func testCacheTTL(t *testing.T, newCache NewCacheFunc) {
	c, clk := cacheSetup(t, newCache)
	ctx := context.Background()
	if err := c.Set(ctx, 1, "short", []byte("x"), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, 1, "long", []byte("y"), time.Hour); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.Get(ctx, 1, "short")
		if errors.Is(err, session.ErrCacheMiss) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("entry with a 50ms TTL still there after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, err := c.Get(ctx, 1, "long"); err != nil || string(got) != "y" {
		t.Fatalf("long-lived entry: %q, %v", got, err)
	}
}

func testCacheFetch(t *testing.T, newCache NewCacheFunc) {
	c, _ := cacheSetup(t, newCache)
	ctx := context.Background()
	calls := 0
	fill := func(context.Context) ([]byte, error) { calls++; return []byte("filled"), nil }
	for i := range 3 {
		got, err := c.Fetch(ctx, 5, "inv", time.Hour, fill)
		if err != nil || string(got) != "filled" {
			t.Fatalf("Fetch %d: %q, %v", i, got, err)
		}
	}
	if calls != 1 {
		t.Fatalf("fill called %d times, want once", calls)
	}
	boom := errors.New("database down")
	_, err := c.Fetch(ctx, 6, "inv", time.Hour, func(context.Context) ([]byte, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Fetch with a failing fill: %v", err)
	}
	if _, err := c.Get(ctx, 6, "inv"); !errors.Is(err, session.ErrCacheMiss) {
		t.Fatalf("a failed fill was cached: %v", err)
	}
}

func testCacheReset(t *testing.T, newCache NewCacheFunc) {
	c, _ := cacheSetup(t, newCache)
	ctx := context.Background()
	for uk := int64(1); uk <= 3; uk++ {
		if err := c.Set(ctx, uk, "k", []byte("old"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	v := c.Version()
	if err := c.ResetAll(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Version() <= v {
		t.Fatalf("version %d after ResetAll, was %d", c.Version(), v)
	}
	for uk := int64(1); uk <= 3; uk++ {
		if _, err := c.Get(ctx, uk, "k"); !errors.Is(err, session.ErrCacheMiss) {
			t.Fatalf("user %d after ResetAll: %v", uk, err)
		}
	}
	if err := c.Set(ctx, 1, "k", []byte("new"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get(ctx, 1, "k"); string(got) != "new" {
		t.Fatalf("after reset and Set: %q", got)
	}
	// A fill that started before a reset must not leave its value behind.
	got, err := c.Fetch(ctx, 2, "k", time.Hour, func(ctx context.Context) ([]byte, error) {
		if err := c.ResetAll(ctx); err != nil {
			return nil, err
		}
		return []byte("stale"), nil
	})
	if err != nil || string(got) != "stale" {
		t.Fatalf("Fetch: %q, %v", got, err)
	}
	if _, err := c.Get(ctx, 2, "k"); !errors.Is(err, session.ErrCacheMiss) {
		t.Fatalf("a fill from before ResetAll survived it: %v", err)
	}
}

func testCacheBadInput(t *testing.T, newCache NewCacheFunc) {
	c, _ := cacheSetup(t, newCache)
	ctx := context.Background()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, session.ErrInvalid) || protocol.CodeOf(err) != protocol.CodeBadRequest {
			t.Fatalf("%s: %v, want ErrInvalid", what, err)
		}
	}
	_, err := c.Get(ctx, 0, "k")
	check("Get user 0", err)
	_, err = c.Get(ctx, 1, "")
	check("Get empty key", err)
	check("Set long key", c.Set(ctx, 1, strings.Repeat("k", 201), nil, 0))
	check("Set huge value", c.Set(ctx, 1, "k", make([]byte, 1<<20+1), 0))
	check("Delete user -1", c.Delete(ctx, -1, "k"))
	_, err = c.Fetch(ctx, 1, "", 0, func(context.Context) ([]byte, error) {
		t.Error("fill ran for an invalid key")
		return nil, nil
	})
	check("Fetch empty key", err)
}
