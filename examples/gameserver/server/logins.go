package server

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
)

// Defaults of the login limit (Config.MaxLogins, Config.LoginQueueWait).
const (
	// DefaultMaxLogins is how many logins run at once by default: half
	// of the common database's pool in MySQL mode (CommonMaxOpenConns),
	// so the other commands' anti-cheat and live-ops lookups keep
	// connections while logins storm.
	DefaultMaxLogins = CommonMaxOpenConns / 2
	// DefaultLoginQueueWait is how long a login waits for a slot by
	// default before it is refused.
	DefaultLoginQueueWait = time.Second
	// LoginRetryAfter is the retry hint (Response.RetryAfterMs) of a
	// refused login; a random part of up to the same again is added, so
	// refused clients do not come back together.
	LoginRetryAfter = time.Second
)

// loginGate bounds the logins the server runs at once. A login past the
// limit waits for a slot up to a bound and is then refused with
// protocol.CodeRateLimited (retryable, with a retry hint), before anything
// else runs: under a login storm the server answers the excess at once
// instead of queueing every login on the common database past the
// clients' timeouts. It also gives each login it admits a memo for the
// account lookup (findAccount), which the anti-cheat guard, the live-ops
// middleware and the login handler all make.
type loginGate struct {
	command string
	slots   chan struct{} // nil: no limit
	wait    time.Duration
	refused atomic.Uint64
}

// newLoginGate limits command to max concurrent requests (max < 0: no
// limit, 0: DefaultMaxLogins), each waiting at most wait (0:
// DefaultLoginQueueWait, < 0: not at all) for a slot.
func newLoginGate(command string, max int, wait time.Duration) *loginGate {
	g := &loginGate{command: command, wait: wait}
	if max == 0 {
		max = DefaultMaxLogins
	}
	if max > 0 {
		g.slots = make(chan struct{}, max)
	}
	if wait == 0 {
		g.wait = DefaultLoginQueueWait
	}
	return g
}

// middleware is the gate as the chain's outermost middleware.
func (g *loginGate) middleware() protocol.Middleware {
	return func(next protocol.Handler) protocol.Handler {
		return protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
			if req.Command != g.command {
				return next.Serve(ctx, req)
			}
			if g.slots != nil {
				if !g.acquire(ctx) {
					g.refused.Add(1)
					return nil, &protocol.Error{Code: protocol.CodeRateLimited, Message: "too many logins at once; retry later",
						RetryAfter: LoginRetryAfter + rand.N(LoginRetryAfter)}
				}
				defer func() { <-g.slots }()
			}
			return next.Serve(context.WithValue(ctx, loginMemoKey{}, &loginMemo{}), req)
		})
	}
}

// acquire takes a slot, waiting at most g.wait.
func (g *loginGate) acquire(ctx context.Context) bool {
	select {
	case g.slots <- struct{}{}:
		return true
	default:
	}
	if g.wait < 0 {
		return false
	}
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

type loginMemoKey struct{}

// loginMemo is one login request's account lookup, made once for the
// middlewares and the handler that ask (they run one after the other,
// never at once).
type loginMemo struct {
	done  bool
	found shard.Found

	// The payload loginUser decoded last (the anti-cheat guard's and the
	// live-ops middleware's calls pass the same request payload) and what
	// it read from it: decoded once per login.
	payload  []byte
	parsed   bool
	deviceID string // "" when the payload is not a usable auth.guest one
}
