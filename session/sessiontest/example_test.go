package sessiontest_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/session/sessiontest"
)

// A Clock drives expiry in a test without sleeping: its Now is the
// config's Now, and Advance moves past a TTL at once.
func ExampleClock() {
	ctx := context.Background()
	clk := sessiontest.NewClock(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC))
	cache := session.NewMemoryCache(session.CacheConfig{Now: clk.Now})
	defer cache.Close()

	_ = cache.Set(ctx, 7, "profile", []byte(`{"level":3}`), time.Minute)
	v, _ := cache.Get(ctx, 7, "profile")
	fmt.Println(string(v))

	fmt.Println(clk.Advance(time.Minute).Format(time.TimeOnly))
	_, err := cache.Get(ctx, 7, "profile")
	fmt.Println(errors.Is(err, session.ErrCacheMiss))
	// Output:
	// {"level":3}
	// 09:01:00
	// true
}
