package session_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/session/sessiontest"
	"github.com/redis/go-redis/v9"
)

func TestMemoryStoreConformance(t *testing.T) {
	sessiontest.RunStoreTests(t, func(t *testing.T, cfg session.Config) session.Store {
		return session.NewMemoryStore(cfg)
	})
}

func redisStoreFunc(r func(t *testing.T) (*session.Router, redis.UniversalClient)) sessiontest.NewStoreFunc {
	return func(t *testing.T, cfg session.Config) session.Store {
		router, c := r(t)
		cfg.Prefix = testredis.Prefix(t, c)
		s, err := session.NewRedisStore(router, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestRedisStoreConformance(t *testing.T) {
	c := testredis.Client(t)
	sessiontest.RunStoreTests(t, redisStoreFunc(func(*testing.T) (*session.Router, redis.UniversalClient) {
		return session.Single(c), c
	}))
}

func TestRedisClusterStoreConformance(t *testing.T) {
	c := testredis.Cluster(t)
	sessiontest.RunStoreTests(t, redisStoreFunc(func(*testing.T) (*session.Router, redis.UniversalClient) {
		return session.Single(c), c
	}))
}

// TestRoutedStoreConformance runs the suite over two real Redis servers
// routed by user key: the shared one and a private one.
func TestRoutedStoreConformance(t *testing.T) {
	shared := testredis.Client(t)
	private := privateRedis(t)
	r, err := session.NewRouter([]redis.UniversalClient{shared, private}, session.RouterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sessiontest.RunStoreTests(t, redisStoreFunc(func(t *testing.T) (*session.Router, redis.UniversalClient) {
		// Keys on the private node go with the server.
		return r, shared
	}))
}

// TestRedisGetOneRoundTrip: Get and GetFrame are one round trip each.
func TestRedisGetOneRoundTrip(t *testing.T) {
	addr := needRedis(t)
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	var rt roundTrips
	c.AddHook(&rt)
	s := redisStore(t, c)
	defer s.Close()
	ctx := context.Background()
	sess, err := s.Create(ctx, session.CreateParams{UserKey: 42})
	if err != nil {
		t.Fatal(err)
	}
	// The first calls may load the script (EVALSHA, then EVAL on NOSCRIPT).
	if _, err := s.Get(ctx, sess.Token); err != nil {
		t.Fatal(err)
	}
	for i, call := range []func() error{
		func() error { _, err := s.Get(ctx, sess.Token); return err },
		func() error { _, err := s.GetFrame(ctx, sess.ID, 7); return err },
		func() error { _, err := s.GetFrame(ctx, sess.ID, 7); return err }, // replayed
		func() error { _, err := s.Get(ctx, "42.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"); return err },
	} {
		before := rt.n.Load()
		err := call()
		if i < 2 && err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if i >= 2 && err == nil {
			t.Fatalf("call %d: no error", i)
		}
		if got := rt.n.Load() - before; got != 1 {
			t.Fatalf("call %d took %d round trips, want 1", i, got)
		}
	}
}

// TestRedisTTLCollectsGarbage: Redis TTLs remove what the logical expiry
// ended (real time, short TTLs: the one test here that waits). The TTL is
// long enough for a loaded machine to look at the keys before they expire.
func TestRedisTTLCollectsGarbage(t *testing.T) {
	c := testredis.Client(t)
	prefix := testredis.Prefix(t, c)
	const ttl = time.Second
	s, err := session.NewRedisStore(session.Single(c), session.Config{Prefix: prefix, TTL: ttl, Tombstone: ttl})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Create(ctx, session.CreateParams{UserKey: 7}); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys after Create: %v, %v; want 2 (session hash, user set)", keys, err)
	}
	for _, k := range keys {
		if got := c.PTTL(ctx, k).Val(); got <= 0 || got > 3*ttl {
			t.Fatalf("key %s has TTL %v, want (0, 2*TTL+Tombstone]", k, got)
		}
	}
	// Wait (bounded) until Redis expired them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := c.Exists(ctx, keys...).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d keys still there", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRouterMigration: adding a node logs nobody out. Two real servers: the
// shared one ("old") and a private one ("new").
func TestRouterMigration(t *testing.T) {
	oldNode := testredis.Client(t)
	newNode := privateRedis(t)
	prefix := testredis.Prefix(t, oldNode)
	ctx := context.Background()
	clk := sessiontest.NewClock(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	cfg := session.Config{Prefix: prefix, Now: clk.Now}

	before := session.Single(oldNode)
	s1, err := session.NewRedisStore(before, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	sessions := map[int64]*session.Session{}
	for uk := int64(1); uk <= 10; uk++ {
		if sessions[uk], err = s1.Create(ctx, session.CreateParams{UserKey: uk}); err != nil {
			t.Fatal(err)
		}
	}

	// Without Previous, the users whose home moved are unknown on the new
	// node: this is what the fallback prevents.
	bare, err := session.NewRouter([]redis.UniversalClient{oldNode, newNode}, session.RouterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sBare, _ := session.NewRedisStore(bare, cfg)
	defer sBare.Close()
	if _, err := sBare.Get(ctx, sessions[1].Token); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("without fallback: %v, want ErrNotFound", err)
	}

	after, err := session.NewRouter([]redis.UniversalClient{oldNode, newNode}, session.RouterConfig{Previous: before})
	if err != nil {
		t.Fatal(err)
	}
	if after.Node(1) != newNode || after.Node(2) != oldNode || after.Moving(1) != oldNode || after.Moving(2) != nil {
		t.Fatal("unexpected layout")
	}
	s2, err := session.NewRedisStore(after, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	ev := make(chan session.Event, 16)
	defer s2.Subscribe(func(e session.Event) { ev <- e })()

	for uk, sess := range sessions {
		if _, err := s2.Get(ctx, sess.Token); err != nil {
			t.Fatalf("user %d logged out by the new layout: %v", uk, err)
		}
		if _, err := s2.GetFrame(ctx, sess.ID, 1); err != nil {
			t.Fatalf("user %d GetFrame: %v", uk, err)
		}
	}
	// A new login of a moved user lands on the new node and kicks the old
	// session on the old node.
	fresh, err := s2.Create(ctx, session.CreateParams{UserKey: 1})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := newNode.Exists(ctx, prefix+"{u:1}:u").Result(); n != 1 {
		t.Fatal("the new login is not on the new node")
	}
	if _, err := s2.Get(ctx, sessions[1].Token); !errors.Is(err, session.ErrKicked) {
		t.Fatalf("old session of a moved user after a new login: %v, want ErrKicked", err)
	}
	if got := <-ev; got.Kind != session.EventKicked || got.SessionID != sessions[1].ID {
		t.Fatalf("event %+v", got)
	}
	if _, err := s2.Get(ctx, fresh.Token); err != nil {
		t.Fatal(err)
	}
	// Revocation reaches a moved user's session on the old node.
	if err := s2.RevokeUser(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Get(ctx, sessions[3].Token); !errors.Is(err, session.ErrRevoked) {
		t.Fatalf("after RevokeUser: %v, want ErrRevoked", err)
	}
	if err := s2.Revoke(ctx, sessions[5].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Get(ctx, sessions[5].Token); !errors.Is(err, session.ErrRevoked) {
		t.Fatalf("after Revoke: %v, want ErrRevoked", err)
	}
}

// TestRedisConnectionCut: a connection cut in the middle of a request gives
// ErrUnavailable (CodeUnavailable through the middleware), nothing panics,
// and the store works again once the connection is back.
func TestRedisConnectionCut(t *testing.T) {
	addr := needRedis(t)
	p := newProxy(t, addr)
	c := redis.NewClient(&redis.Options{Addr: p.addr(), MaxRetries: 1, DialTimeout: time.Second})
	defer c.Close()
	s, err := session.NewRedisStore(session.Single(c), session.Config{Prefix: testredis.Prefix(t, testredis.Client(t))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	sess, err := s.Create(ctx, session.CreateParams{UserKey: 99})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, sess.Token); err != nil {
		t.Fatal(err)
	}

	p.stalled.Store(true)
	res := make(chan error, 1)
	go func() { _, err := s.Get(ctx, sess.Token); res <- err }()
	<-p.sawBytes // the request is on the wire, unanswered
	p.cut()
	err = <-res
	if !errors.Is(err, session.ErrUnavailable) || protocol.CodeOf(err) != protocol.CodeUnavailable {
		t.Fatalf("Get during the cut: %v, want ErrUnavailable", err)
	}
	if _, err := s.Create(ctx, session.CreateParams{UserKey: 99}); !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("Create while down: %v", err)
	}
	if st := s.Stats(); st.Failures != 2 {
		t.Fatalf("Stats.Failures %d after two failed calls", st.Failures)
	}
	h := session.Middleware(s, session.MiddlewareConfig{})(protocol.HandlerFunc(func(context.Context, *protocol.Request) (*protocol.Response, error) {
		t.Error("handler ran without a session")
		return nil, nil
	}))
	if resp := protocol.Dispatch(ctx, h, &protocol.Request{Command: "x", Token: sess.Token}, nil); resp.Code != protocol.CodeUnavailable {
		t.Fatalf("middleware while down: code %v", resp.Code)
	}

	p.restore()
	got, err := s.Get(ctx, sess.Token)
	if err != nil {
		t.Fatalf("Get after the connection is back: %v", err)
	}
	if got.ID != sess.ID {
		t.Fatalf("got session %s, want %s", got.ID, sess.ID)
	}
}

func TestClosedStore(t *testing.T) {
	s := session.NewMemoryStore(session.Config{})
	sess, err := s.Create(context.Background(), session.CreateParams{UserKey: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(context.Background(), sess.Token); !errors.Is(err, session.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
}

func TestMemoryJanitor(t *testing.T) {
	clk := sessiontest.NewClock(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	s := session.NewMemoryStore(session.Config{Now: clk.Now, TTL: time.Minute, Tombstone: time.Minute, JanitorInterval: time.Millisecond})
	defer s.Close()
	for uk := int64(1); uk <= 100; uk++ {
		if _, err := s.Create(context.Background(), session.CreateParams{UserKey: uk}); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Len(); n != 100 {
		t.Fatalf("Len %d", n)
	}
	clk.Advance(2 * time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for s.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("janitor left %d sessions", s.Len())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRedisKeepAliveRenewal: a Get renews the keys' Redis TTLs only when
// they would end before the session's new expiry plus tombstone.
func TestRedisKeepAliveRenewal(t *testing.T) {
	c := testredis.Client(t)
	prefix := testredis.Prefix(t, c)
	clk := sessiontest.NewClock(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	const ttl, tomb = time.Hour, time.Hour
	s, err := session.NewRedisStore(session.Single(c), session.Config{Prefix: prefix, Now: clk.Now, TTL: ttl, Tombstone: tomb})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	sess, err := s.Create(ctx, session.CreateParams{UserKey: 8})
	if err != nil {
		t.Fatal(err)
	}
	hash := prefix + "{u:8}:s:" + sess.ID[len("8."):]
	gc := func() int64 {
		v, err := c.HGet(ctx, hash, "gc").Int64()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	start := clk.Now()
	if got, want := gc(), start.Add(2*ttl+tomb).UnixMilli(); got != want {
		t.Fatalf("gc after Create %d, want %d", got, want)
	}
	clk.Advance(ttl / 2)
	if _, err := s.Get(ctx, sess.Token); err != nil {
		t.Fatal(err)
	}
	if got, want := gc(), start.Add(2*ttl+tomb).UnixMilli(); got != want {
		t.Fatalf("gc renewed too early: %d, want %d", got, want)
	}
	now := clk.Advance(ttl - time.Minute)
	if _, err := s.Get(ctx, sess.Token); err != nil {
		t.Fatal(err)
	}
	if got, want := gc(), now.Add(2*ttl+tomb).UnixMilli(); got != want {
		t.Fatalf("gc not renewed: %d, want %d", got, want)
	}
	if pttl := c.PTTL(ctx, prefix+"{u:8}:u").Val(); pttl < 2*ttl+tomb-time.Minute {
		t.Fatalf("user set TTL %v not renewed", pttl)
	}
}

func TestStats(t *testing.T) {
	type statser interface {
		session.Store
		Stats() session.Stats
	}
	run := func(t *testing.T, store session.Store) {
		s := store.(statser) // both stores count
		ctx := context.Background()
		a, err := s.Create(ctx, session.CreateParams{UserKey: 5})
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Create(ctx, session.CreateParams{UserKey: 5}) // kicks a
		if err != nil {
			t.Fatal(err)
		}
		_, _ = s.Get(ctx, b.Token)                  // validated
		_, _ = s.GetFrame(ctx, b.ID, 1)             // validated
		_, _ = s.GetFrame(ctx, b.ID, 1)             // rejected: replayed
		_, _ = s.Get(ctx, a.Token)                  // rejected: kicked
		_, _ = s.Get(ctx, "garbage")                // rejected: malformed
		if err := s.Revoke(ctx, b.ID); err != nil { // revoked
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, b.ID); err != nil { // already ended: not counted
			t.Fatal(err)
		}
		want := session.Stats{Created: 2, Validated: 2, Rejected: 3, Kicked: 1, Revoked: 1}
		if got := s.Stats(); got != want {
			t.Fatalf("Stats %+v, want %+v", got, want)
		}
	}
	memoryAndRedis(t, run)
}

// A session written by a version before the replay window (no cw or fc
// field) keeps the strict rule below its counter, and opens the window as
// its counter moves on.
func TestRedisWindowOfOlderSession(t *testing.T) {
	c := testredis.Client(t)
	ctx := context.Background()
	prefix := testredis.Prefix(t, c)
	s, err := session.NewRedisStore(session.Single(c), session.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sess, err := s.Create(ctx, session.CreateParams{UserKey: 77})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetFrame(ctx, sess.ID, 50); err != nil {
		t.Fatal(err)
	}
	_, sid, _ := strings.Cut(sess.ID, ".")
	if n, err := c.HDel(ctx, prefix+"{u:77}:s:"+sid, "cw", "fc").Result(); err != nil || n != 2 {
		t.Fatalf("HDEL cw fc: %d, %v", n, err)
	}
	for _, st := range []struct {
		c  uint64
		ok bool
	}{{49, false}, {50, false}, {51, true}, {49, false}, {53, true}, {52, true}, {51, false}, {50, false}} {
		_, err := s.GetFrame(ctx, sess.ID, st.c)
		if (err == nil) != st.ok || (err != nil && protocol.CodeOf(err) != protocol.CodeReplayed) {
			t.Fatalf("GetFrame(%d): %v, want ok %v", st.c, err, st.ok)
		}
	}
}
