package realtime_test

import (
	"context"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/realtime/realtimetest"
	"github.com/redis/go-redis/v9"
)

func TestMemoryPresence(t *testing.T) {
	realtimetest.RunPresenceTests(t, func(t *testing.T, ttl time.Duration) []realtime.Presence {
		return []realtime.Presence{realtime.NewMemoryPresence(realtime.PresenceConfig{TTL: ttl})}
	})
}

func redisPresence(c redis.UniversalClient) func(t *testing.T, ttl time.Duration) []realtime.Presence {
	return func(t *testing.T, ttl time.Duration) []realtime.Presence {
		return redisInstances(t, c, 2, func(prefix string) (realtime.Presence, error) {
			return realtime.NewRedisPresence(c, realtime.PresenceConfig{TTL: ttl, Prefix: prefix})
		})
	}
}

func TestRedisPresence(t *testing.T) {
	realtimetest.RunPresenceTests(t, redisPresence(testredis.Client(t)))
}

func TestRedisPresenceCluster(t *testing.T) {
	realtimetest.RunPresenceTests(t, redisPresence(testredis.Cluster(t)))
}

func TestRedisPresenceConfig(t *testing.T) {
	c := deadRedis(t)
	if _, err := realtime.NewRedisPresence(c, realtime.PresenceConfig{Prefix: "}"}); err == nil {
		t.Error("prefix with a brace accepted")
	}
	if _, err := realtime.NewRedisPresence(nil, realtime.PresenceConfig{}); err == nil {
		t.Error("nil client accepted")
	}
	p, err := realtime.NewRedisPresence(c, realtime.PresenceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := p.Count(ctx, "x"); !isCode(err, realtime.ErrUnavailable) {
		t.Errorf("Count on a dead server: %v, want ErrUnavailable", err)
	}
	if err := p.Touch(ctx, realtime.PresenceEntry{Channels: []string{"x"}}); !isCode(err, realtime.ErrUnavailable) {
		t.Errorf("Touch on a dead server: %v, want ErrUnavailable", err)
	}
}

// The memory backend forgets users and channels whose entries all expired,
// without a goroutine: its maps do not grow with users who came and went.
func TestMemoryPresenceForgets(t *testing.T) {
	clk := realtimetest.NewClock(time.Unix(1_000_000, 0))
	p := realtime.NewMemoryPresence(realtime.PresenceConfig{TTL: time.Minute, Now: clk.Now})
	ctx := context.Background()
	for i := range 1000 {
		e := realtime.PresenceEntry{PresenceConn: realtime.PresenceConn{UserKey: int64(i), Node: "n", ConnID: "c"}, Channels: []string{"ch" + string(rune('a'+i%20))}}
		if err := p.Touch(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if u, c := realtime.PresenceSizes(p); u != 1000 || c != 20 {
		t.Fatalf("sizes %d users %d channels, want 1000, 20", u, c)
	}
	clk.Advance(2 * time.Minute)
	if err := p.Touch(ctx, realtime.PresenceEntry{PresenceConn: realtime.PresenceConn{UserKey: 1, Node: "n", ConnID: "c"}}); err != nil {
		t.Fatal(err)
	}
	if u, c := realtime.PresenceSizes(p); u != 1 || c != 0 {
		t.Fatalf("after expiry: %d users %d channels, want 1, 0", u, c)
	}
}
