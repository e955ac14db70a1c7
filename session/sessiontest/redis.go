package sessiontest

import (
	"testing"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// Environment variables naming the Redis servers for integration tests.
// When one is unset, the tests that need it skip with a message, except in
// CI (MADANG_CI set), where they fail.
const (
	// EnvRedisAddr is the host:port of a single Redis node, such as
	// "127.0.0.1:6379".
	EnvRedisAddr = "MADANG_REDIS_ADDR"
	// EnvRedisCluster is a comma-separated list of Redis Cluster seeds,
	// such as "127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002".
	EnvRedisCluster = "MADANG_REDIS_CLUSTER"
)

// Redis returns a client of the single Redis node at MADANG_REDIS_ADDR,
// closed when the test ends. It skips the test when the variable is unset
// (fails in CI, MADANG_CI set) and fails it when the node does not answer
// PING. The server is shared with other tests running at the same time:
// keep keys under a RedisPrefix and never FLUSHALL.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	return testredis.Client(t)
}

// RedisCluster returns a Redis Cluster client seeded from
// MADANG_REDIS_CLUSTER, closed when the test ends; it skips (or fails) like
// Redis.
func RedisCluster(t testing.TB) *redis.ClusterClient {
	t.Helper()
	return testredis.Cluster(t)
}

// RedisPrefix returns a random key prefix for one test, such as
// "t:3fa9c01b:". The keys under it are deleted from c when the test ends
// (by SCAN of the prefix on every master: fine for tests, never for
// production code).
func RedisPrefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	return testredis.Prefix(t, c)
}

// PrivateRedis starts a redis-server of the test's own — found in PATH, no
// persistence, loopback only, its files in t.TempDir() — on a free random
// port whose cluster bus port (port+10000) is free too, with the extra
// arguments appended (such as "--cluster-enabled", "yes"). It returns the
// server's address and a func that kills it (kill -9; safe to call more than
// once); the server is killed when the test ends at the latest. Fault tests
// stop their private servers, never the shared ones. It skips the test when
// redis-server is not installed, except in CI (MADANG_CI set), where it
// fails.
func PrivateRedis(t testing.TB, extra ...string) (addr string, kill func()) {
	t.Helper()
	return testredis.Private(t, extra...)
}
