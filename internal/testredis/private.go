package testredis

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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
// It is the one place tests start a private redis-server; Sentinel uses
// it too.
func Private(t testing.TB, extra ...string) (addr string, kill func()) {
	t.Helper()
	bin := serverBin(t)
	dir := t.TempDir()
	port, stop := startServer(t, bin, func(port int) []string {
		return append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir}, extra...)
	})
	return "127.0.0.1:" + strconv.Itoa(port), stop
}

// serverBin returns the path of redis-server, found in PATH. It skips the
// test when there is none, except in CI (MADANG_CI set), where it fails.
func serverBin(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("MADANG_CI") != "" {
			t.Fatalf("redis-server is not installed, and CI must not skip Redis tests: %v", err)
		}
		t.Skipf("this test starts a redis-server of its own: %v", err)
	}
	return bin
}

// freePort returns a loopback port that is free now and whose Redis
// Cluster bus port (port+10000) is free too, so that any private server can
// run in cluster mode.
func freePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		bus.Close()
		return port
	}
	t.Fatal("no free loopback port (with a free cluster bus port) for a private redis-server")
	return 0
}

// startServer runs bin (redis-server) with the arguments args(port) on a
// free port (see freePort), retrying on another port when the chosen one
// was taken meanwhile, waits until it answers PING, kills it when the test
// ends, and returns the port and a func that kills it at once (kill -9;
// safe to call more than once).
func startServer(t testing.TB, bin string, args func(port int) []string) (int, func()) {
	t.Helper()
	var lastErr error
	for range 5 {
		port := freePort(t)
		cmd := exec.Command(bin, args(port)...)
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
			return port, stop
		}
		stop()
	}
	t.Fatalf("could not start redis-server: %v", lastErr)
	return 0, nil
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
