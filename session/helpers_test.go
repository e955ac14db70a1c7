package session_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/session"
	"github.com/redis/go-redis/v9"
)

// redisStore returns a RedisStore on c with a key prefix of the test's
// own; the caller closes it.
func redisStore(t testing.TB, c redis.UniversalClient) *session.RedisStore {
	t.Helper()
	s, err := session.NewRedisStore(session.Single(c), session.Config{Prefix: testredis.Prefix(t, c)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// memoryAndRedis runs run as subtests "memory" (a MemoryStore) and "redis"
// (a RedisStore on the shared Redis server).
func memoryAndRedis(t *testing.T, run func(t *testing.T, s session.Store)) {
	t.Run("memory", func(t *testing.T) {
		s := session.NewMemoryStore(session.Config{})
		defer s.Close()
		run(t, s)
	})
	t.Run("redis", func(t *testing.T) {
		s := redisStore(t, testredis.Client(t))
		defer s.Close()
		run(t, s)
	})
}

// needRedis skips (or, in CI, fails) like testredis does when Redis tests
// are not enabled, and returns the shared server's address.
func needRedis(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(testredis.EnvAddr)
	if addr == "" {
		if os.Getenv("MADANG_CI") != "" {
			t.Fatalf("%s is not set, and CI must not skip Redis tests", testredis.EnvAddr)
		}
		t.Skipf("set %s (e.g. 127.0.0.1:6379) to run against Redis", testredis.EnvAddr)
	}
	return addr
}

// privateRedis starts a redis-server of the test's own (testredis.Private),
// stopped when the test ends. It is a second real node for routing tests
// (the shared server is never stopped or flushed).
func privateRedis(t testing.TB) *redis.Client {
	t.Helper()
	needRedis(t)
	addr, _ := testredis.Private(t)
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// proxy is a TCP proxy the test controls, to cut connections to Redis in
// the middle of a request without touching the server.
type proxy struct {
	l        net.Listener
	upstream string
	stalled  atomic.Bool   // swallow client bytes instead of forwarding
	down     atomic.Bool   // close new connections at once
	sawBytes chan struct{} // signalled when stalled bytes arrive

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newProxy(t testing.TB, upstream string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, upstream: upstream, conns: map[net.Conn]struct{}{}, sawBytes: make(chan struct{}, 1)}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		l.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down.Load() {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			continue
		}
		u, err := net.Dial("tcp", p.upstream)
		if err != nil || !p.track(u) {
			c.Close()
			if u != nil {
				u.Close()
			}
			continue
		}
		p.wg.Add(2)
		go func() { defer p.wg.Done(); p.pipe(u, c, true) }()
		go func() { defer p.wg.Done(); p.pipe(c, u, false) }()
	}
}

// pipe copies src to dst; fromClient marks the direction a stall swallows.
func (p *proxy) pipe(dst, src net.Conn, fromClient bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if fromClient && p.stalled.Load() {
				select {
				case p.sawBytes <- struct{}{}:
				default:
				}
			} else if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				return
			}
			return
		}
	}
}

// cut closes every open connection and refuses new ones until restore.
func (p *proxy) cut() {
	p.mu.Lock()
	p.down.Store(true)
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.mu.Unlock()
}

func (p *proxy) restore() {
	p.stalled.Store(false)
	p.down.Store(false)
}

// roundTrips counts commands and pipelines sent by a client.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}
