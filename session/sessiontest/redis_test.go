package sessiontest_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
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

// A server of StartRedisServer restarts empty on the same port after
// kill -9, answers nothing while frozen and again after Thaw, and is gone
// after Stop.
func TestStartRedisServer(t *testing.T) {
	ctx := context.Background()
	s, err := sessiontest.StartRedisServer(ctx, sessiontest.RedisServerConfig{Dir: t.TempDir(), Args: []string{"--maxmemory", "10mb"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(time.Second)
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 500 * time.Millisecond})
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	addr, pid := s.Addr(), s.PID()
	s.Kill()
	if err := s.Ping(ctx); err == nil {
		t.Fatal("the server answers after Kill")
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Addr() != addr || s.PID() == pid {
		t.Fatalf("after Restart: %s pid %d, before %s pid %d", s.Addr(), s.PID(), addr, pid)
	}
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("after Restart the server is not empty: %d, %v", n, err)
	}
	if got, err := c.ConfigGet(ctx, "maxmemory").Result(); err != nil || got["maxmemory"] != "10485760" {
		t.Fatalf("the extra arguments were not applied after Restart: %v, %v", got, err)
	}
	if err := s.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("a frozen server answered")
	}
	if err := s.Thaw(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("after Thaw: %v", err)
	}
	s.Stop(5 * time.Second)
	s.Stop(5 * time.Second)
	if err := s.Ping(ctx); err == nil {
		t.Fatal("the server answers after Stop")
	}
}

// Bad configurations and a missing binary are errors.
func TestStartRedisServerErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := sessiontest.StartRedisServer(ctx, sessiontest.RedisServerConfig{}); err == nil {
		t.Fatal("no Dir: no error")
	}
	if _, err := sessiontest.StartRedisServer(ctx, sessiontest.RedisServerConfig{Dir: t.TempDir(), Port: -1}); err == nil {
		t.Fatal("port -1: no error")
	}
	_, err := sessiontest.StartRedisServer(ctx, sessiontest.RedisServerConfig{Dir: t.TempDir(), Bin: filepath.Join(t.TempDir(), "no-redis-server")})
	if !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("missing binary: %v, want exec.ErrNotFound", err)
	}
}
