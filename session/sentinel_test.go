package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/session/sessiontest"
	"github.com/redis/go-redis/v9"
)

// The conformance suites over a client that finds its master through Redis
// Sentinel (a private master and Sentinel of the test's own): the hash tag
// {u:<userKey>} and single-node commands are all a Sentinel setup needs.

func TestSentinelStoreConformance(t *testing.T) {
	c := testredis.Sentinel(t)
	sessiontest.RunStoreTests(t, redisStoreFunc(func(*testing.T) (*session.Router, redis.UniversalClient) {
		return session.Single(c), c
	}))
}

func TestSentinelCacheConformance(t *testing.T) {
	c := testredis.Sentinel(t)
	sessiontest.RunCacheTests(t, redisCacheFunc(func() (*session.Router, redis.UniversalClient) { return session.Single(c), c }))
}

func TestSentinelBoardConformance(t *testing.T) {
	c := testredis.Sentinel(t)
	sessiontest.RunBoardTests(t, func(t *testing.T, _ func() time.Time) session.BoardStore {
		return boardNewRedisStore(t, c)
	})
}

// TestSentinelClientIsFailover: the Sentinel client reaches a master (the
// address it got from SENTINEL get-master-addr-by-name), and a session made
// through it validates.
func TestSentinelClientIsFailover(t *testing.T) {
	c := testredis.Sentinel(t)
	ctx := context.Background()
	role, err := c.Do(ctx, "ROLE").Slice()
	if err != nil || len(role) == 0 || role[0] != "master" {
		t.Fatalf("ROLE through the failover client: %v, %v; want master", role, err)
	}
	s := redisStore(t, c)
	defer s.Close()
	sess, err := s.Create(ctx, session.CreateParams{UserKey: 12})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, sess.Token); err != nil || got.ID != sess.ID {
		t.Fatalf("Get: %v, %v", got, err)
	}
}

// TestSentinelFailover: the Sentinel promotes the replica; the store, the
// cache and a board over the failover client follow it to the new master
// without a restart. Calls during the switch succeed or fail with the typed
// unavailable error; afterwards they succeed, the data written before is
// there and new writes land on the new master. The store's event
// subscription and the cache's reset subscription move to the new master too
// (go-redis itself moves only command connections on +switch-master): a
// kick and a cache reset published there reach them.
func TestSentinelFailover(t *testing.T) {
	c, failover := testredis.SentinelFailover(t)
	ctx := context.Background()
	prefix := testredis.Prefix(t, c)
	s, uc, board := redisStoreCacheBoard(t, ctx, c, prefix, "failover")
	events := make(chan session.Event, 64)
	cancelSub := s.Subscribe(func(ev session.Event) {
		select {
		case events <- ev:
		default:
		}
	})
	defer cancelSub()
	sess, err := s.Create(ctx, session.CreateParams{UserKey: 21})
	if err != nil {
		t.Fatal(err)
	}
	if err := uc.Set(ctx, 21, "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := board.Submit(ctx, 21, 500, session.ScoreBest); err != nil {
		t.Fatal(err)
	}

	// The Sentinel may not reconfigure the old master: as when a partition
	// hides it from the Sentinel but not from the game servers, it stays a
	// master with the subscriptions on it (a demotion would kill them and
	// hide the gap: the Sentinel runs CLIENT KILL TYPE pubsub on it).
	port, err := c.ConfigGet(ctx, "port").Result()
	if err != nil {
		t.Fatal(err)
	}
	oldMaster := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + port["port"]})
	defer oldMaster.Close()
	if err := oldMaster.Do(ctx, "ACL", "SETUSER", "default", "-replicaof", "-slaveof").Err(); err != nil {
		t.Fatal(err)
	}

	newMaster := failover()

	// eventually retries call (bounded) while the client moves to the new
	// master; only success or the typed unavailable errors are acceptable.
	eventually := func(what string, call func() error) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := call()
			if err == nil {
				return
			}
			if !errors.Is(err, session.ErrUnavailable) && !errors.Is(err, session.ErrBoardUnavailable) {
				t.Fatalf("%s during the failover: %v, want success or ErrUnavailable", what, err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: still failing 10s after the failover: %v", what, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	eventually("Get", func() error {
		got, err := s.Get(ctx, sess.Token)
		if err == nil && got.ID != sess.ID {
			t.Fatalf("got session %s, want %s", got.ID, sess.ID)
		}
		return err
	})
	var fresh *session.Session
	eventually("Create", func() error { var err error; fresh, err = s.Create(ctx, session.CreateParams{UserKey: 21}); return err })
	if _, err := s.Get(ctx, sess.Token); !errors.Is(err, session.ErrKicked) {
		t.Fatalf("old session after a new login on the new master: %v, want ErrKicked", err)
	}
	eventually("cache Get", func() error {
		got, err := uc.Get(ctx, 21, "k")
		if err == nil && string(got) != "v" {
			t.Fatalf("cache value %q", got)
		}
		return err
	})
	eventually("Submit", func() error { return board.Submit(ctx, 22, 7, session.ScoreBest) })
	if got, err := board.Score(ctx, 21); err != nil || got != 500 {
		t.Fatalf("score after the failover: %d, %v; want 500", got, err)
	}

	direct := redis.NewClient(&redis.Options{Addr: newMaster})
	defer direct.Close()
	if n, err := direct.Exists(ctx, prefix+"{u:21}:s:"+fresh.ID[len("21."):]).Result(); err != nil || n != 1 {
		t.Fatalf("the new login is not on the new master %s: %d, %v", newMaster, n, err)
	}

	// The subscriptions move to the new master (bounded: the stores probe
	// their subscriptions about once a second).
	evCh, resetCh := prefix+"session:events", prefix+"cache:reset"
	deadline := time.Now().Add(15 * time.Second)
	for {
		n, err := direct.PubSubNumSub(ctx, evCh, resetCh).Result()
		if err == nil && n[evCh] >= 1 && n[resetCh] >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscribers on the new master 15s after the failover: %v, %v; want the events and the cache reset channels", n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := s.Stats().Resubscribed; n < 1 {
		t.Fatalf("Stats().Resubscribed = %d after the subscription moved, want at least 1", n)
	}
	// A kick published on the new master reaches the subscriber.
	if _, err := s.Create(ctx, session.CreateParams{UserKey: 21}); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(15 * time.Second)
	for got := false; !got; {
		select {
		case ev := <-events:
			got = ev.Kind == session.EventKicked && ev.SessionID == fresh.ID
		case <-timeout:
			t.Fatalf("no kick event for %s within 15s of a login on the new master", fresh.ID)
		}
	}
	// So does a cache reset by another process (INCR and PUBLISH as
	// ResetAll does, straight on the new master).
	v, err := direct.Incr(ctx, prefix+"cache:version").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := direct.Publish(ctx, resetCh, v).Err(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); uc.Version() < v; {
		if time.Now().After(deadline) {
			t.Fatalf("cache version %d 15s after a reset to %d on the new master", uc.Version(), v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
