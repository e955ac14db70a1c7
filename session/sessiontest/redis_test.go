package sessiontest_test

import (
	"context"
	"testing"
	"time"

	"github.com/madang-io/madang/session/sessiontest"
	"github.com/redis/go-redis/v9"
)

// A private server answers until it is killed; kill may be called twice.
func TestPrivateRedis(t *testing.T) {
	ctx := context.Background()
	addr, kill := sessiontest.PrivateRedis(t, "--maxmemory", "10mb")
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ConfigGet(ctx, "maxmemory").Result(); err != nil || got["maxmemory"] != "10485760" {
		t.Fatalf("the extra arguments were not applied: %v, %v", got, err)
	}
	kill()
	kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("the server still answers after kill")
	}
}

// Keys under a test's prefix are gone when the test ends.
func TestRedisPrefix(t *testing.T) {
	ctx := context.Background()
	c := sessiontest.Redis(t)
	var prefix string
	t.Run("inner", func(t *testing.T) {
		prefix = sessiontest.RedisPrefix(t, c)
		if err := c.Set(ctx, prefix+"k", "v", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	})
	if n, err := c.Exists(ctx, prefix+"k").Result(); err != nil || n != 0 {
		t.Fatalf("key under the prefix after the test: %d, %v", n, err)
	}
}
