package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
	"github.com/redis/go-redis/v9"
)

// boardPrivateRedis starts a redis-server of this test's own
// (testredis.Private; never touching the shared one) and returns a client
// and a func that stops the server. It skips where the shared Redis tests
// skip.
func boardPrivateRedis(t *testing.T) (*redis.Client, func()) {
	t.Helper()
	testredis.Client(t) // skip (or fail in CI) like every Redis test
	addr, stop := testredis.Private(t)
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	return c, stop
}

// TestBoardRedisScriptFlush: increments still apply, once each, when Redis
// loses its script cache (restart, SCRIPT FLUSH) after the store loaded the
// script.
func TestBoardRedisScriptFlush(t *testing.T) {
	ctx := context.Background()
	c, _ := boardPrivateRedis(t)
	store, err := session.NewBoardRedisStore([]redis.UniversalClient{c}, session.BoardRedisConfig{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := session.NewBoard(store, "flush", session.BoardConfig{Now: func() time.Time { return time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Submit(ctx, 1, 5, session.ScoreIncr); err != nil {
		t.Fatal(err)
	}
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	err = b.SubmitBatch(ctx, []session.ScoreSubmit{
		{User: 1, Score: 2, Op: session.ScoreIncr},
		{User: 2, Score: 7, Op: session.ScoreBest},
		{User: 1, Score: 3, Op: session.ScoreIncr},
	})
	if err != nil {
		t.Fatal(err)
	}
	for u, want := range map[int64]int64{1: 10, 2: 7} {
		if got, err := b.Score(ctx, u); err != nil || got != want {
			t.Fatalf("user %d: %d, %v; want %d", u, got, err, want)
		}
	}
}

// TestBoardRedisUnavailable: with the server gone, every call fails with
// ErrBoardUnavailable (CodeUnavailable), and nothing panics.
func TestBoardRedisUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, stop := boardPrivateRedis(t)
	store, err := session.NewBoardRedisStore([]redis.UniversalClient{c}, session.BoardRedisConfig{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := session.NewBoard(store, "gone", session.BoardConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Submit(ctx, 1, 5, session.ScoreBest); err != nil {
		t.Fatal(err)
	}
	stop()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, session.ErrBoardUnavailable) || protocol.CodeOf(err) != protocol.CodeUnavailable {
			t.Fatalf("%s: %v (code %v), want ErrBoardUnavailable", what, err, protocol.CodeOf(err))
		}
	}
	check("submit", b.Submit(ctx, 1, 6, session.ScoreBest))
	check("incr", b.Submit(ctx, 1, 6, session.ScoreIncr))
	_, err = b.Rank(ctx, 1)
	check("rank", err)
	_, _, err = b.Top(ctx, 10, "")
	check("top", err)
	_, err = b.Around(ctx, 1, 2)
	check("around", err)
	_, err = b.Count(ctx)
	check("count", err)
	_, err = b.Remove(ctx, 1)
	check("remove", err)
}
