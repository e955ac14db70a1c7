package session_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/session/sessiontest"
	"github.com/redis/go-redis/v9"
)

// closingVerified closes the wrapped store too, as a Store's Close must.
type closingVerified struct {
	*session.VerifiedCache
	inner session.Store
}

func (c closingVerified) Close() error {
	return errors.Join(c.VerifiedCache.Close(), c.inner.Close())
}

// A VerifiedCache in front of a store keeps every property of the store
// contract: expiry on the same clock, kicks, revocations, frame counters.
func TestVerifiedCacheConformance(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		sessiontest.RunStoreTests(t, func(t *testing.T, cfg session.Config) session.Store {
			inner := session.NewMemoryStore(cfg)
			return closingVerified{session.NewVerifiedCache(inner, session.VerifiedCacheConfig{Now: cfg.Now}), inner}
		})
	})
	t.Run("redis", func(t *testing.T) {
		c := testredis.Client(t)
		newRedis := redisStoreFunc(func(*testing.T) (*session.Router, redis.UniversalClient) { return session.Single(c), c })
		sessiontest.RunStoreTests(t, func(t *testing.T, cfg session.Config) session.Store {
			inner := newRedis(t, cfg)
			return closingVerified{session.NewVerifiedCache(inner, session.VerifiedCacheConfig{Now: cfg.Now}), inner}
		})
	})
}

// countingStore counts Get calls that reach the store, and can hold them
// (hold set: each Get waits until release is closed after it started) or
// lose the store's events (deaf).
type countingStore struct {
	session.Store
	gets    atomic.Int64
	deaf    bool
	hold    chan struct{} // closed by Get when it started, if set
	release chan struct{}
}

func (c *countingStore) Get(ctx context.Context, token string) (*session.Session, error) {
	c.gets.Add(1)
	s, err := c.Store.Get(ctx, token)
	if c.hold != nil {
		close(c.hold)
		c.hold = nil
		<-c.release
	}
	return s, err
}

func (c *countingStore) Stats() session.Stats { return c.Store.(*session.MemoryStore).Stats() }

func (c *countingStore) Subscribe(fn func(session.Event)) func() {
	if c.deaf { // a pub/sub connection that loses every event
		return func() {}
	}
	return c.Store.Subscribe(fn)
}

func verifiedSetup(t *testing.T, deaf bool) (*session.VerifiedCache, *countingStore, *sessiontest.Clock) {
	t.Helper()
	clk := sessiontest.NewClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	inner := session.NewMemoryStore(session.Config{Now: clk.Now})
	t.Cleanup(func() { inner.Close() })
	cs := &countingStore{Store: inner, deaf: deaf}
	v := session.NewVerifiedCache(cs, session.VerifiedCacheConfig{MaxAge: time.Second, Now: clk.Now})
	t.Cleanup(func() { v.Close() })
	return v, cs, clk
}

func wantGet(t *testing.T, s session.Store, token string, want error) {
	t.Helper()
	_, err := s.Get(context.Background(), token)
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("Get: %v, want %v", err, want)
	}
}

func TestVerifiedCacheAnswersFromMemory(t *testing.T) {
	v, cs, clk := verifiedSetup(t, false)
	sess := sessiontest.Login(t, v, 42)
	for range 5 {
		got, err := v.Get(context.Background(), sess.Token)
		if err != nil || got.UserKey != 42 || got.ID != sess.ID {
			t.Fatalf("Get: %+v, %v", got, err)
		}
		got.Attrs = map[string]string{"x": "changed"} // a copy: the cache keeps its own
	}
	if n := cs.gets.Load(); n != 1 {
		t.Fatalf("store asked %d times for 5 Gets within MaxAge, want 1", n)
	}
	if st := v.Stats(); st.Cached != 4 || st.Validated != 5 {
		t.Fatalf("stats %+v, want 4 cached of 5 validated", st)
	}
	clk.Advance(time.Second) // MaxAge passed: the store again
	wantGet(t, v, sess.Token, nil)
	if n := cs.gets.Load(); n != 2 {
		t.Fatalf("store asked %d times after MaxAge, want 2", n)
	}
	// A bad token is never cached.
	for range 2 {
		wantGet(t, v, sess.Token[:len(sess.Token)-1]+"A", session.ErrNotFound)
	}
	if n := cs.gets.Load(); n != 4 {
		t.Fatalf("store asked %d times, want 4 (refusals are not cached)", n)
	}
}

// Revocation and kicks through the cache, or from elsewhere with their
// events, take effect at the next request.
func TestVerifiedCacheHonoursEndedSessions(t *testing.T) {
	ctx := context.Background()
	t.Run("revoke here", func(t *testing.T) {
		v, _, _ := verifiedSetup(t, true) // deaf: only the local drop can work
		sess := sessiontest.Login(t, v, 7)
		wantGet(t, v, sess.Token, nil)
		if err := v.Revoke(ctx, sess.ID); err != nil {
			t.Fatal(err)
		}
		wantGet(t, v, sess.Token, session.ErrRevoked)
	})
	t.Run("revoke user here", func(t *testing.T) {
		v, _, _ := verifiedSetup(t, true)
		sess := sessiontest.Login(t, v, 7)
		wantGet(t, v, sess.Token, nil)
		if err := v.RevokeUser(ctx, 7); err != nil {
			t.Fatal(err)
		}
		wantGet(t, v, sess.Token, session.ErrRevoked)
	})
	t.Run("kick here", func(t *testing.T) {
		v, _, _ := verifiedSetup(t, true)
		first := sessiontest.Login(t, v, 7)
		wantGet(t, v, first.Token, nil)
		second := sessiontest.Login(t, v, 7)
		wantGet(t, v, first.Token, session.ErrKicked)
		wantGet(t, v, second.Token, nil)
	})
	t.Run("revoke elsewhere, event", func(t *testing.T) {
		v, cs, _ := verifiedSetup(t, false)
		sess := sessiontest.Login(t, v, 7)
		wantGet(t, v, sess.Token, nil)
		if err := cs.Store.Revoke(ctx, sess.ID); err != nil { // another node
			t.Fatal(err)
		}
		wantGet(t, v, sess.Token, session.ErrRevoked)
	})
	t.Run("kick elsewhere, event", func(t *testing.T) {
		v, cs, _ := verifiedSetup(t, false)
		first := sessiontest.Login(t, v, 7)
		wantGet(t, v, first.Token, nil)
		sessiontest.Login(t, cs.Store, 7) // another node's login
		wantGet(t, v, first.Token, session.ErrKicked)
	})
	// The bound: with every event lost, a session revoked on another node
	// is still accepted here until MaxAge after the store last accepted it,
	// and refused from then on.
	t.Run("revoke elsewhere, event lost", func(t *testing.T) {
		v, cs, clk := verifiedSetup(t, true)
		sess := sessiontest.Login(t, v, 7)
		wantGet(t, v, sess.Token, nil)
		if err := cs.Store.Revoke(ctx, sess.ID); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second - time.Millisecond)
		wantGet(t, v, sess.Token, nil) // within MaxAge: the documented bound
		clk.Advance(time.Millisecond)
		wantGet(t, v, sess.Token, session.ErrRevoked)
		clk.Advance(-time.Second) // the refusal dropped the entry for good
		wantGet(t, v, sess.Token, session.ErrRevoked)
	})
}

// A lookup in flight while the user's session is revoked does not cache
// the answer the store gave before the revocation.
func TestVerifiedCacheRaceWithRevocation(t *testing.T) {
	v, cs, _ := verifiedSetup(t, false)
	sess := sessiontest.Login(t, v, 7)
	cs.hold, cs.release = make(chan struct{}), make(chan struct{})
	started := cs.hold
	var wg sync.WaitGroup
	wg.Go(func() {
		// Accepted: the store answered before the revocation.
		if _, err := v.Get(context.Background(), sess.Token); err != nil {
			t.Errorf("Get in flight: %v", err)
		}
	})
	<-started
	if err := cs.Store.Revoke(context.Background(), sess.ID); err != nil { // event: drop
		t.Error(err)
	}
	close(cs.release)
	wg.Wait()
	wantGet(t, v, sess.Token, session.ErrRevoked)
}

// Authenticated frames always reach the store: each counter once.
func TestVerifiedCacheFramesReachTheStore(t *testing.T) {
	v, _, _ := verifiedSetup(t, false)
	sess := sessiontest.Login(t, v, 7)
	if _, err := v.GetFrame(context.Background(), sess.ID, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := v.GetFrame(context.Background(), sess.ID, 1); !errors.Is(err, protocol.ErrReplayed) {
		t.Fatalf("the same counter again: %v, want replayed", err)
	}
}

func TestVerifiedCacheBounded(t *testing.T) {
	clk := sessiontest.NewClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	inner := session.NewMemoryStore(session.Config{Now: clk.Now, AllowMultiple: true})
	defer inner.Close()
	v := session.NewVerifiedCache(inner, session.VerifiedCacheConfig{MaxEntries: 10, Now: clk.Now})
	defer v.Close()
	for i := range 50 {
		s := sessiontest.Login(t, v, int64(1+i%5))
		wantGet(t, v, s.Token, nil)
		if n := v.Len(); n > 10 {
			t.Fatalf("%d tokens held, MaxEntries 10", n)
		}
	}
}

// The Redis store's events reach a VerifiedCache of another store (another
// server node) sharing the same Redis.
func TestVerifiedCacheRedisEvents(t *testing.T) {
	c := testredis.Client(t)
	prefix := testredis.Prefix(t, c)
	open := func() *session.RedisStore {
		s, err := session.NewRedisStore(session.Single(c), session.Config{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	here, there := open(), open()
	v := session.NewVerifiedCache(here, session.VerifiedCacheConfig{MaxAge: session.MaxVerifiedMaxAge})
	defer v.Close()
	sess := sessiontest.Login(t, there, 9)
	wantGet(t, v, sess.Token, nil)
	if err := there.Revoke(context.Background(), sess.ID); err != nil {
		t.Fatal(err)
	}
	// The event arrives over pub/sub, well before MaxAge (10 s) would.
	deadline := time.Now().Add(session.MaxVerifiedMaxAge / 2)
	for {
		_, err := v.Get(context.Background(), sess.Token)
		if errors.Is(err, session.ErrRevoked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked on another node, still accepted after %v: %v", session.MaxVerifiedMaxAge/2, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
