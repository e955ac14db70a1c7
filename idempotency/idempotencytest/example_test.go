package idempotencytest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/idempotency/idempotencytest"
)

// A Clock drives a MemoryStore's leases in a test without sleeping: a lease
// taken by a call that never finished runs out when the clock moves past
// it, and the key can be taken again.
func ExampleClock() {
	ctx := context.Background()
	clk := idempotencytest.NewClock(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC))
	store := idempotency.NewMemoryStore(clk.Now)
	scope := idempotency.Scope{UserKey: 7, Command: "shop.buy"}
	fp := idempotency.FingerprintOf([]byte(`{"item":1}`))

	state := func(b idempotency.Begin, err error) string {
		switch {
		case err != nil:
			return err.Error()
		case b.State == idempotency.Acquired:
			return "acquired"
		case b.State == idempotency.InFlight:
			return fmt.Sprintf("in flight, retry after %v", b.RetryAfter)
		}
		return "other"
	}

	fmt.Println(state(store.Begin(ctx, scope, "req-1", fp, "first", 30*time.Second)))
	clk.Advance(10 * time.Second)
	fmt.Println(state(store.Begin(ctx, scope, "req-1", fp, "second", 30*time.Second)))
	clk.Advance(20 * time.Second) // the first call's lease ran out
	fmt.Println(state(store.Begin(ctx, scope, "req-1", fp, "third", 30*time.Second)))
	// Output:
	// acquired
	// in flight, retry after 20s
	// acquired
}
