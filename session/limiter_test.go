package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/session/sessiontest"
	"github.com/redis/go-redis/v9"
)

func TestMemoryLimiterConformance(t *testing.T) {
	sessiontest.RunLimiterTests(t, func(t *testing.T, cfg session.LimiterConfig) session.Limiter {
		return session.NewMemoryLimiter(cfg)
	})
}

func redisLimiterFunc(r *session.Router, c redis.UniversalClient) sessiontest.NewLimiterFunc {
	return func(t *testing.T, cfg session.LimiterConfig) session.Limiter {
		cfg.Prefix = testredis.Prefix(t, c)
		l, err := session.NewRedisLimiter(r, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
}

func TestRedisLimiterConformance(t *testing.T) {
	c := testredis.Client(t)
	sessiontest.RunLimiterTests(t, redisLimiterFunc(session.Single(c), c))
}

func TestRedisClusterLimiterConformance(t *testing.T) {
	c := testredis.Cluster(t)
	sessiontest.RunLimiterTests(t, redisLimiterFunc(session.Single(c), c))
}

func TestRoutedLimiterConformance(t *testing.T) {
	shared := testredis.Client(t)
	r, err := session.NewRouter([]redis.UniversalClient{shared, privateRedis(t)}, session.RouterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sessiontest.RunLimiterTests(t, redisLimiterFunc(r, shared))
}

var minuteLimit = session.Limit{Name: "t", Rate: 1.0 / 60, Burst: 2}

// TestRedisLimiterShared: two servers (two limiters on one Redis) share
// each user's state: what one allowed, the other counts.
func TestRedisLimiterShared(t *testing.T) {
	c := testredis.Client(t)
	prefix := testredis.Prefix(t, c)
	clk := sessiontest.NewClock(time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC))
	ctx := context.Background()
	var ls [2]*session.RedisLimiter
	for i := range ls {
		l, err := session.NewRedisLimiter(session.Single(c), session.LimiterConfig{Prefix: prefix, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		ls[i] = l
	}
	for i := range 2 {
		if r, err := ls[i].Allow(ctx, 7, minuteLimit); err != nil || !r.Allowed {
			t.Fatalf("node %d: %+v, %v", i, r, err)
		}
	}
	for i := range 2 {
		if r, err := ls[i].Allow(ctx, 7, minuteLimit); err != nil || r.Allowed || r.RetryAfter != time.Minute {
			t.Fatalf("node %d after the burst spent on both: %+v, %v; want refused, retry 1m", i, r, err)
		}
	}
	if got := ls[0].Stats(); got.Allowed != 1 || got.Limited != 1 || got.Errors != 0 {
		t.Fatalf("stats: %+v", got)
	}
}

// TestRedisLimiterKey: the state is one key with the user's hash tag, one
// round trip per Allow, expiring when the user is back to a full burst.
func TestRedisLimiterKey(t *testing.T) {
	c := testredis.Client(t)
	prefix := testredis.Prefix(t, c)
	rt := &roundTrips{}
	hooked := redis.NewClient(&redis.Options{Addr: c.Options().Addr})
	t.Cleanup(func() { hooked.Close() })
	hooked.AddHook(rt)
	ctx := context.Background()
	if err := hooked.Ping(ctx).Err(); err != nil { // dial first
		t.Fatal(err)
	}
	// Load the script so the counted call is the EVALSHA alone.
	l, err := session.NewRedisLimiter(session.Single(hooked), session.LimiterConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Allow(ctx, 41, minuteLimit); err != nil {
		t.Fatal(err)
	}
	before := rt.n.Load()
	if _, err := l.Allow(ctx, 41, minuteLimit); err != nil {
		t.Fatal(err)
	}
	if n := rt.n.Load() - before; n != 1 {
		t.Fatalf("Allow took %d round trips, want 1", n)
	}
	key := prefix + "{u:41}:rl:t"
	ttl, err := c.PTTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= time.Minute || ttl > 2*time.Minute {
		t.Fatalf("TTL of %s after 2 events of 1/min: %v, want about 2m (the refill time)", key, ttl)
	}
	if n, err := c.Exists(ctx, prefix+"{u:42}:rl:t").Result(); err != nil || n != 0 {
		t.Fatalf("a user who sent nothing has a key: %d, %v", n, err)
	}
}

// TestRedisLimiterDown: a dead Redis answers ErrUnavailable (retryable),
// counted in Stats.Errors.
func TestRedisLimiterDown(t *testing.T) {
	needRedis(t)
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { dead.Close() })
	l, err := session.NewRedisLimiter(session.Single(dead), session.LimiterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Allow(context.Background(), 1, minuteLimit)
	if !errors.Is(err, session.ErrUnavailable) || protocol.CodeOf(err) != protocol.CodeUnavailable {
		t.Fatalf("Allow on a dead Redis: %v, want ErrUnavailable", err)
	}
	if got := l.Stats(); got.Errors != 1 {
		t.Fatalf("stats: %+v", got)
	}
	if _, err := session.NewRedisLimiter(session.Single(dead), session.LimiterConfig{Prefix: "a{"}); err == nil {
		t.Fatal("a prefix with a brace was accepted")
	}
}

// TestMemoryLimiterBounded: the memory limiter keeps at most MaxEntries
// states; states back to a full burst go first (forgetting nothing), and
// only past MaxEntries users inside their refill time are others dropped.
func TestMemoryLimiterBounded(t *testing.T) {
	clk := sessiontest.NewClock(time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC))
	const maxEntries = 64 * 16 // 16 per shard
	l := session.NewMemoryLimiter(session.LimiterConfig{MaxEntries: maxEntries, Now: clk.Now})
	ctx := context.Background()
	// The first user spends its burst; then 10 rounds of many users who
	// each send one event and go idle (full again after 30 s).
	for range 2 {
		if _, err := l.Allow(ctx, 1, minuteLimit); err != nil {
			t.Fatal(err)
		}
	}
	uk := int64(2)
	for range 10 {
		for range maxEntries / 4 {
			if r, err := l.Allow(ctx, uk, minuteLimit); err != nil || !r.Allowed {
				t.Fatalf("user %d: %+v, %v", uk, r, err)
			}
			uk++
		}
		clk.Advance(31 * time.Second)
		if st := l.Stats(); st.Entries > maxEntries {
			t.Fatalf("%d entries, max %d", st.Entries, maxEntries)
		}
	}
	st := l.Stats()
	if st.Evicted != 0 {
		t.Fatalf("%d states evicted, though every user but the first was back to full: %+v", st.Evicted, st)
	}
	// The first user's state went with the others only if it was full; it
	// is (5 minutes passed), so it has its burst again either way.
	for range 2 {
		if r, _ := l.Allow(ctx, 1, minuteLimit); !r.Allowed {
			t.Fatal("user 1 not allowed after 5 minutes")
		}
	}
	// Past MaxEntries users inside their refill time, states are evicted
	// and the count stays bounded.
	for range 2 * maxEntries {
		if _, err := l.Allow(ctx, uk, minuteLimit); err != nil {
			t.Fatal(err)
		}
		uk++
	}
	if st := l.Stats(); st.Entries > maxEntries || st.Evicted == 0 {
		t.Fatalf("after %d active users: %+v, want at most %d entries and some evicted", 2*maxEntries, st, maxEntries)
	}
}

// failingLimiter fails every call, like a RedisLimiter whose Redis is down.
type failingLimiter struct{}

func (failingLimiter) Allow(context.Context, int64, session.Limit) (session.LimitResult, error) {
	return session.LimitResult{}, session.ErrUnavailable
}

// TestRateLimitMiddleware: one user's flood is answered rate_limited with a
// retry hint while another user is served; public requests (no Principal)
// and exempt commands are not counted; a failing limiter lets requests
// through.
func TestRateLimitMiddleware(t *testing.T) {
	clk := sessiontest.NewClock(time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC))
	l := session.NewMemoryLimiter(session.LimiterConfig{Now: clk.Now})
	ran := 0
	h := protocol.Chain(protocol.HandlerFunc(func(context.Context, *protocol.Request) (*protocol.Response, error) {
		ran++
		return &protocol.Response{}, nil
	}), session.RateLimitMiddleware(l, session.RateLimitConfig{Limit: session.Limit{Rate: 4, Burst: 8}, Exempt: []string{"sys.ping"}}))
	ctx := context.Background()
	send := func(uk int64, cmd string) *protocol.Response {
		req := &protocol.Request{Command: cmd, Seq: 1}
		if uk != 0 {
			req.Principal = &protocol.Principal{UserKey: uk}
		}
		return protocol.Dispatch(ctx, h, req, nil)
	}
	for i := range 8 {
		if r := send(1, "player.load"); r.Code != protocol.CodeOK {
			t.Fatalf("request %d of the burst: %+v", i, r)
		}
	}
	r := send(1, "player.load")
	if r.Code != protocol.CodeRateLimited || r.RetryAfterMs != 250 {
		t.Fatalf("request 9 at 4/s burst 8: %+v, want rate_limited with retry_ms 250", r)
	}
	if r := send(2, "player.load"); r.Code != protocol.CodeOK {
		t.Fatalf("another user: %+v", r)
	}
	for range 20 {
		if r := send(0, "auth.guest"); r.Code != protocol.CodeOK {
			t.Fatalf("a public request: %+v", r)
		}
		if r := send(1, "sys.ping"); r.Code != protocol.CodeOK {
			t.Fatalf("an exempt command: %+v", r)
		}
	}
	if ran != 8+1+40 {
		t.Fatalf("handler ran %d times, want 49", ran)
	}
	clk.Advance(250 * time.Millisecond)
	if r := send(1, "player.load"); r.Code != protocol.CodeOK {
		t.Fatalf("after the retry hint: %+v", r)
	}

	open := protocol.Chain(protocol.HandlerFunc(func(context.Context, *protocol.Request) (*protocol.Response, error) {
		return &protocol.Response{}, nil
	}), session.RateLimitMiddleware(failingLimiter{}, session.RateLimitConfig{}))
	if r := protocol.Dispatch(ctx, open, &protocol.Request{Command: "x", Principal: &protocol.Principal{UserKey: 1}}, nil); r.Code != protocol.CodeOK {
		t.Fatalf("with the limiter down: %+v, want the command to run (fail open)", r)
	}
}

func TestRateLimited(t *testing.T) {
	for _, c := range []struct {
		in   time.Duration
		want int64
	}{{0, 1}, {time.Microsecond, 1}, {time.Millisecond, 1}, {1500 * time.Microsecond, 2}, {time.Minute, 60000}} {
		resp := protocol.Dispatch(context.Background(), protocol.HandlerFunc(func(context.Context, *protocol.Request) (*protocol.Response, error) {
			return nil, session.RateLimited(c.in)
		}), &protocol.Request{}, nil)
		if resp.Code != protocol.CodeRateLimited || resp.RetryAfterMs != c.want {
			t.Errorf("RateLimited(%v): %+v, want retry_ms %d", c.in, resp, c.want)
		}
	}
}
