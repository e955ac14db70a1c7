package testredis

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelMaster is the master name the Sentinel of Sentinel monitors.
const SentinelMaster = "madang"

// redisServerBin is where the tests expect redis-server.
const redisServerBin = "/usr/bin/redis-server"

// Sentinel starts, in t.TempDir(), a private redis-server master and one
// Sentinel monitoring it (as SentinelMaster), each on a free random port,
// both killed when the test ends, and returns a failover client that finds
// the master through the Sentinel, closed when the test ends. The servers
// are the test's own, so it needs no environment variable: it skips when
// /usr/bin/redis-server is missing, except in CI (MADANG_CI set), where it
// fails.
func Sentinel(t testing.TB) *redis.Client {
	t.Helper()
	if _, err := os.Stat(redisServerBin); err != nil {
		if os.Getenv("MADANG_CI") != "" {
			t.Fatalf("%s is missing, and CI must not skip Redis tests: %v", redisServerBin, err)
		}
		t.Skipf("Sentinel tests need %s: %v", redisServerBin, err)
	}
	dir := t.TempDir()
	masterPort := startServer(t, func(port int) []string {
		return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", dir}
	})
	sentinelPort := startServer(t, func(port int) []string {
		// Sentinel rewrites its config file, so each attempt writes a fresh one.
		conf := filepath.Join(dir, "sentinel-"+strconv.Itoa(port)+".conf")
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\nsentinel monitor %s 127.0.0.1 %d 1\n",
			port, dir, SentinelMaster, masterPort)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{conf, "--sentinel"}
	})
	sentinelAddr := "127.0.0.1:" + strconv.Itoa(sentinelPort)
	masterAddr := "127.0.0.1:" + strconv.Itoa(masterPort)

	// Wait (bounded) until the Sentinel reports the master and the failover
	// client reaches it through the Sentinel.
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinelAddr, MaxRetries: -1})
	defer sc.Close()
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    SentinelMaster,
		SentinelAddrs: []string{sentinelAddr},
		DialTimeout:   time.Second,
	})
	t.Cleanup(func() { c.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		got, err := sc.GetMasterAddrByName(ctx, SentinelMaster).Result()
		if err == nil && len(got) == 2 && net.JoinHostPort(got[0], got[1]) == masterAddr {
			err = c.Ping(ctx).Err()
		} else if err == nil {
			err = fmt.Errorf("sentinel reports master %v, want %s", got, masterAddr)
		}
		cancel()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("sentinel at %s did not serve master %s within 10s: %v", sentinelAddr, masterAddr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startServer runs redis-server with the arguments args(port) on a free
// port, retrying on another port when the chosen one was taken meanwhile,
// waits until it answers PING, kills it when the test ends, and returns the
// port.
func startServer(t testing.TB, args func(port int) []string) int {
	t.Helper()
	var lastErr error
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		cmd := exec.Command(redisServerBin, args(port)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Kill()
			<-exited
		}
		c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1, DialTimeout: time.Second})
		lastErr = waitPing(c, exited)
		c.Close()
		if lastErr == nil {
			t.Cleanup(stop)
			return port
		}
		stop()
	}
	t.Fatalf("could not start redis-server: %v", lastErr)
	return 0
}

// waitPing polls c until it answers PING (nil), the server exits, or 10s
// pass.
func waitPing(c *redis.Client, exited <-chan struct{}) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("redis-server at %s exited", c.Options().Addr)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
