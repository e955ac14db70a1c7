package testredis

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/privateserver"
	"github.com/redis/go-redis/v9"
)

// SentinelMaster is the master name the Sentinel of Sentinel monitors.
const SentinelMaster = "madang"

// Sentinel starts, in t.TempDir(), a private redis-server master and one
// Sentinel monitoring it (as SentinelMaster), each on a free random port,
// both killed when the test ends, and returns a failover client that finds
// the master through the Sentinel, closed when the test ends. The servers
// are the test's own, so it needs no environment variable: it skips when
// redis-server is not in PATH, except in CI (MADANG_CI set), where it
// fails.
func Sentinel(t testing.TB) *redis.Client {
	t.Helper()
	c, _ := startSentinel(t, false)
	return c
}

// SentinelFailover is Sentinel with a replica of the master as well (known
// to the Sentinel from the start). It returns the failover client and a
// func that waits until the replica has every write (WAIT), makes the
// Sentinel promote it (SENTINEL FAILOVER), waits (bounded) until the
// Sentinel reports it as the master, and returns its address.
func SentinelFailover(t testing.TB) (c *redis.Client, failover func() string) {
	t.Helper()
	return startSentinel(t, true)
}

func startSentinel(t testing.TB, withReplica bool) (*redis.Client, func() string) {
	t.Helper()
	dir := t.TempDir()
	// No delay before the replica's first (diskless) sync: the default
	// waits 5s for more replicas.
	master := start(t, privateserver.RedisConfig{Dir: filepath.Join(dir, "master"), Args: []string{"--repl-diskless-sync-delay", "0"}})
	masterAddr := master.Addr()
	_, masterPort, _ := net.SplitHostPort(masterAddr)
	replicaAddr := ""
	if withReplica {
		replica := start(t, privateserver.RedisConfig{Dir: filepath.Join(dir, "replica"), Args: []string{"--replicaof", "127.0.0.1", masterPort}})
		replicaAddr = replica.Addr()
	}
	sentinel := start(t, privateserver.RedisConfig{Dir: dir, Log: filepath.Join(dir, "sentinel.log"), Argv: func(port int) []string {
		// Sentinel rewrites its config file, so each attempt writes a fresh one.
		conf := filepath.Join(dir, "sentinel-"+strconv.Itoa(port)+".conf")
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\nsentinel monitor %s 127.0.0.1 %s 1\n",
			port, dir, SentinelMaster, masterPort)
		if replicaAddr != "" {
			host, port, _ := net.SplitHostPort(replicaAddr)
			body += fmt.Sprintf("sentinel known-replica %s %s %s\n", SentinelMaster, host, port)
		}
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{conf, "--sentinel"}
	}})
	sentinelAddr := sentinel.Addr()

	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinelAddr, MaxRetries: -1})
	t.Cleanup(func() { sc.Close() })
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    SentinelMaster,
		SentinelAddrs: []string{sentinelAddr},
		DialTimeout:   time.Second,
	})
	t.Cleanup(func() { c.Close() })
	// masterIs polls (bounded) until the Sentinel reports want as the master
	// and check passes.
	masterIs := func(want string, check func(context.Context) error) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			got, err := sc.GetMasterAddrByName(ctx, SentinelMaster).Result()
			if err == nil && len(got) == 2 && net.JoinHostPort(got[0], got[1]) == want {
				err = check(ctx)
			} else if err == nil {
				err = fmt.Errorf("sentinel reports master %v, want %s", got, want)
			}
			cancel()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("sentinel at %s did not serve master %s within 10s: %v", sentinelAddr, want, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	masterIs(masterAddr, func(ctx context.Context) error { return c.Ping(ctx).Err() })
	if replicaAddr == "" {
		return c, nil
	}
	failover := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		if n, err := c.Do(ctx, "WAIT", 1, 5000).Int64(); err != nil || n != 1 {
			t.Fatalf("WAIT for the replica: %d, %v", n, err)
		}
		// SENTINEL FAILOVER fails (NOGOODSLAVE) until the Sentinel has heard
		// from the replica: retry, bounded.
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := sc.Failover(ctx, SentinelMaster).Err()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("SENTINEL FAILOVER: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("SENTINEL FAILOVER accepted after %v", time.Since(start))
		rc := redis.NewClient(&redis.Options{Addr: replicaAddr, MaxRetries: -1})
		defer rc.Close()
		// Done when the Sentinel names the replica, the replica is a master
		// and the failover client's writes land on it. (The Sentinel turns
		// the old master into a replica only at its next INFO of it, up to
		// 10s later; until the client has switched, writes can still reach
		// the old master and be lost then: Sentinel's replication is
		// asynchronous.)
		probe := "testredis:failover-probe"
		masterIs(replicaAddr, func(ctx context.Context) error {
			if err := hasRole(ctx, rc, "master"); err != nil {
				return err
			}
			v := strconv.FormatInt(time.Now().UnixNano(), 10)
			if err := c.Set(ctx, probe, v, 0).Err(); err != nil {
				return err
			}
			if got, err := rc.Get(ctx, probe).Result(); err != nil || got != v {
				return fmt.Errorf("the failover client still writes elsewhere than %s (%q, %v)", replicaAddr, got, err)
			}
			return nil
		})
		t.Logf("failover done after %v", time.Since(start))
		return replicaAddr
	}
	return c, failover
}

// hasRole checks that the first element of c's ROLE reply is want.
func hasRole(ctx context.Context, c *redis.Client, want string) error {
	role, err := c.Do(ctx, "ROLE").Slice()
	if err == nil && (len(role) == 0 || role[0] != want) {
		err = fmt.Errorf("ROLE of %s: %v, want %s", c.Options().Addr, role, want)
	}
	return err
}
