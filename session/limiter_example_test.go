package session_test

import (
	"context"
	"fmt"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
)

// A per-user command limit in front of the game's handlers: 2 commands at
// once, then one a second. The limit belongs to the user, whatever
// connection or server the commands come from (NewRedisLimiter shares it
// between servers).
func ExampleRateLimitMiddleware() {
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	limiter := session.NewMemoryLimiter(session.LimiterConfig{Now: func() time.Time { return now }})
	game := protocol.HandlerFunc(func(context.Context, *protocol.Request) (*protocol.Response, error) {
		return &protocol.Response{}, nil
	})
	// In a server: protocol.Chain(mux, session.Middleware(store, ...), session.RateLimitMiddleware(...)).
	h := protocol.Chain(game, session.RateLimitMiddleware(limiter, session.RateLimitConfig{
		Limit: session.Limit{Name: "cmd", Rate: 1, Burst: 2},
	}))
	req := &protocol.Request{Command: "player.load", Principal: &protocol.Principal{UserKey: 10000042}}
	for range 3 {
		resp := protocol.Dispatch(context.Background(), h, req, nil)
		fmt.Println(resp.Code, resp.RetryAfterMs)
	}
	now = now.Add(time.Second)
	resp := protocol.Dispatch(context.Background(), h, req, nil)
	fmt.Println(resp.Code, resp.RetryAfterMs)
	// Output:
	// ok 0
	// ok 0
	// rate_limited 1000
	// ok 0
}
