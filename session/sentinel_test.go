package session_test

import (
	"context"
	"testing"

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
	sessiontest.RunBoardTests(t, func(t *testing.T, _ sessiontest.BoardClock) session.BoardStore {
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
	s, err := session.NewRedisStore(session.Single(c), session.Config{Prefix: testredis.Prefix(t, c)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sess, err := s.Create(ctx, session.NewSession{UserKey: 12})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, sess.Token); err != nil || got.ID != sess.ID {
		t.Fatalf("Get: %v, %v", got, err)
	}
}
