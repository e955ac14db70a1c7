package testredis

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/madang-io/madang/internal/privateserver"
)

// Private starts a redis-server of the test's own (no persistence, loopback
// only, its directory in t.TempDir()) on a free random port, with the extra
// arguments appended (such as "--cluster-enabled", "yes"), and returns its
// address and a func that kills it (kill -9; safe to call more than once).
// It is killed when the test ends at the latest. The port's cluster bus
// port (port+10000) was free as well. For fault tests: never stop the
// shared servers. It skips when redis-server is not in PATH, except in CI
// (MADANG_CI set), where it fails.
//
// It is the one place tests start a private redis-server (through
// privateserver, as sessiontest.StartRedisServer does); Sentinel uses it
// too.
func Private(t testing.TB, extra ...string) (addr string, kill func()) {
	t.Helper()
	r := start(t, privateserver.RedisConfig{Dir: t.TempDir(), Args: extra})
	return r.Addr(), r.Kill
}

// start starts a private redis-server of cfg (its port chosen, its binary
// found in PATH), killed when the test ends. It skips the test when
// redis-server is not installed, except in CI (MADANG_CI set), where it
// fails.
func start(t testing.TB, cfg privateserver.RedisConfig) *privateserver.Redis {
	t.Helper()
	r, err := privateserver.NewRedis(cfg)
	if errors.Is(err, privateserver.ErrNotInstalled) {
		if os.Getenv("MADANG_CI") != "" {
			t.Fatalf("redis-server is not installed, and CI must not skip Redis tests: %v", err)
		}
		t.Skipf("this test starts a redis-server of its own: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Kill)
	if err := r.Start(context.Background()); err != nil {
		t.Fatalf("could not start redis-server: %v", err)
	}
	return r
}
