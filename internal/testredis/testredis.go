// Package testredis connects tests to real Redis: the shared single node
// named by MADANG_REDIS_ADDR and the local cluster named by
// MADANG_REDIS_CLUSTER. Tests skip with a message when the variable is unset,
// except in CI (MADANG_CI set), where they fail. Tests share these servers
// with other packages running at the same time, so every test gets its own
// random key prefix and must never FLUSHALL or stop the server. Private
// starts a redis-server of a test's own (through internal/privateserver,
// the one starter of private servers).
//
// Package sessiontest makes these helpers public (Redis, RedisCluster,
// RedisPrefix, PrivateRedis) for tests outside the module, such as an
// example copied into a studio's own; tests of the library packages, some
// of which cannot import sessiontest, use this package.
package testredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Environment variables naming the test servers.
const (
	EnvAddr    = "MADANG_REDIS_ADDR"    // host:port of a single node
	EnvCluster = "MADANG_REDIS_CLUSTER" // comma-separated seed host:ports
)

func need(t testing.TB, env, example string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		if os.Getenv("MADANG_CI") != "" {
			t.Fatalf("%s is not set, and CI must not skip Redis tests", env)
		}
		t.Skipf("set %s (e.g. %s) to run against Redis", env, example)
	}
	return v
}

// Client returns a client of the single node at MADANG_REDIS_ADDR, closed
// when the test ends, or skips the test.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: need(t, EnvAddr, "127.0.0.1:6379")})
	t.Cleanup(func() { c.Close() })
	ping(t, c)
	return c
}

// Cluster returns a cluster client seeded from MADANG_REDIS_CLUSTER, closed
// when the test ends, or skips the test.
func Cluster(t testing.TB) *redis.ClusterClient {
	t.Helper()
	seeds := strings.Split(need(t, EnvCluster, "127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002"), ",")
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: seeds})
	t.Cleanup(func() { c.Close() })
	ping(t, c)
	return c
}

func ping(t testing.TB, c redis.UniversalClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis ping: %v", err)
	}
}

// Prefix returns a random key prefix for one test, such as "t:3fa9c01b:". Keys
// a test creates under it are deleted when it ends (on client c, by SCAN of
// the prefix: fine for tests, never for production code).
func Prefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	p := "t:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() { deletePrefix(c, p) })
	return p
}

func deletePrefix(c redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	del := func(ctx context.Context, node redis.UniversalClient) error {
		iter := node.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			node.Del(ctx, iter.Val())
		}
		return iter.Err()
	}
	if cc, ok := c.(*redis.ClusterClient); ok {
		_ = cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return del(ctx, n) })
		return
	}
	_ = del(ctx, c)
}
