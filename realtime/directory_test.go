package realtime_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/realtime/realtimetest"
	"github.com/redis/go-redis/v9"
)

func TestMemoryDirectory(t *testing.T) {
	realtimetest.RunDirectoryTests(t, func(t *testing.T) []realtime.Directory {
		return []realtime.Directory{realtime.NewMemoryDirectory(realtime.DirectoryConfig{})}
	})
}

func redisDirectories(c redis.UniversalClient) func(t *testing.T) []realtime.Directory {
	return func(t *testing.T) []realtime.Directory {
		return redisInstances(t, c, 2, func(prefix string) (realtime.Directory, error) {
			return realtime.NewRedisDirectory(c, realtime.DirectoryConfig{Prefix: prefix})
		})
	}
}

func TestRedisDirectory(t *testing.T) {
	realtimetest.RunDirectoryTests(t, redisDirectories(testredis.Client(t)))
}

func TestRedisDirectoryCluster(t *testing.T) {
	realtimetest.RunDirectoryTests(t, redisDirectories(testredis.Cluster(t)))
}

func TestRedisDirectoryUnavailable(t *testing.T) {
	c := deadRedis(t)
	if _, err := realtime.NewRedisDirectory(c, realtime.DirectoryConfig{Prefix: "{"}); err == nil {
		t.Error("prefix with a brace accepted")
	}
	d, err := realtime.NewRedisDirectory(c, realtime.DirectoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := d.Claim(ctx, "r", "n", time.Second); !errors.Is(err, realtime.ErrUnavailable) {
		t.Errorf("Claim: %v, want ErrUnavailable", err)
	}
	if _, err := d.Lookup(ctx, "r"); !errors.Is(err, realtime.ErrUnavailable) {
		t.Errorf("Lookup: %v, want ErrUnavailable", err)
	}
}

// The memory directory forgets expired leases without a goroutine, and
// follows its clock.
func TestMemoryDirectoryClock(t *testing.T) {
	clk := realtimetest.NewClock(time.Unix(1_000_000, 0))
	d := realtime.NewMemoryDirectory(realtime.DirectoryConfig{Now: clk.Now})
	ctx := context.Background()
	l, err := d.Claim(ctx, "r", "a", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Expires.Equal(clk.Now().Add(10 * time.Second)) {
		t.Fatalf("Expires = %v", l.Expires)
	}
	clk.Advance(9 * time.Second)
	if _, err := d.Lookup(ctx, "r"); err != nil {
		t.Fatalf("Lookup before expiry: %v", err)
	}
	for i := range 100 {
		if _, err := d.Claim(ctx, "other"+string(rune('a'+i%26))+string(rune('a'+i/26)), "a", time.Second); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(2 * time.Second)
	if _, err := d.Lookup(ctx, "r"); !errors.Is(err, realtime.ErrRoomNotFound) {
		t.Fatalf("Lookup after expiry: %v", err)
	}
	if n := realtime.DirectorySize(d); n != 0 {
		t.Fatalf("%d expired leases kept", n)
	}
}
