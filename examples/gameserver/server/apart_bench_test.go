package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/session/sessiontest"
	"github.com/madang-io/madang/shard/shardtest"
)

// BenchmarkFullStackApart is BenchmarkFullStack's stack path with the load
// generator in a process of its own (this test binary, started again with
// benchClientEnv set), so the server's CPU time and the load generator's
// are measured apart: cpu-µs/req is the server process's alone,
// client-cpu-µs/req the generator's (its HTTP client, frame and JSON
// codec). The two processes still share the machine's cores, as the
// server and its generator share the process in BenchmarkFullStack/stack;
// the ratio goal of issue 17 is BenchmarkFullStack's.
func BenchmarkFullStackApart(b *testing.B) {
	b.Run("stack", func(b *testing.B) { benchStackApart(b, benchServer(b, false)) })
	if os.Getenv(sessiontest.EnvRedisAddr) == "" || os.Getenv(shardtest.EnvMySQLDSN) == "" {
		b.Logf("Redis + MariaDB mode not run: set %s and %s", sessiontest.EnvRedisAddr, shardtest.EnvMySQLDSN)
		return
	}
	b.Run("redis-mariadb/stack", func(b *testing.B) { benchStackApart(b, benchServer(b, true)) })
}

// benchClientEnv, when set, makes the test binary the load generator of
// benchStackApart instead of running tests: "<base URL> <requests>
// <session token>...", one player (worker) per token.
const benchClientEnv = "MADANG_BENCH_STACK_CLIENT"

func TestMain(m *testing.M) {
	if os.Getenv(benchClientEnv) != "" {
		os.Exit(runBenchClient(os.Getenv(benchClientEnv)))
	}
	os.Exit(m.Run())
}

// benchStackApart logs in benchWorkers players, starts the load generator
// process with their tokens, and times b.N requests from its "go" to its
// "done".
func benchStackApart(b *testing.B, srv *Server) {
	base := benchServe(b, srv.Handler())
	hc := benchHTTPClient(b)
	args := []string{base, strconv.Itoa(b.N)}
	for w := range benchWorkers {
		c := benchPlayer(b, srv, benchClient(b, base, hc), fmt.Sprintf("bench-apart-%d", w))
		args = append(args, c.Token())
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), benchClientEnv+"="+strings.Join(args, " "))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		b.Fatalf("load generator: %q %v", lines.Text(), lines.Err())
	}
	released0, checks0 := srv.store.idem.Stats().Released, srv.sessionBackend().Stats().Validated
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	start := time.Now()
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		b.Fatal(err)
	}
	if !lines.Scan() {
		b.Fatalf("load generator: no result: %v", lines.Err())
	}
	elapsed := time.Since(start)
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	done := lines.Text()
	err = cmd.Wait()
	exited = true
	clientNs, perr := strconv.ParseInt(strings.TrimPrefix(done, "done "), 10, 64)
	if err != nil || !strings.HasPrefix(done, "done ") || perr != nil {
		b.Fatalf("load generator: %q, %v", done, err)
	}
	server := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(server.Microseconds())/float64(b.N), "cpu-µs/req")
	b.ReportMetric(float64(clientNs)/1e3/float64(b.N), "client-cpu-µs/req")
	b.ReportMetric(float64(srv.store.idem.Stats().Released-released0)/float64(b.N), "retries/req")
	b.ReportMetric(float64(srv.sessionBackend().Stats().Validated-checks0)/float64(b.N), "store-checks/req")
}

// runBenchClient is the load generator's process (see benchClientEnv): it
// warms one connection per player, says "ready", waits for "go" on stdin,
// sends the requests from one goroutine per player as runWorkers does, and
// prints "done <its CPU nanoseconds over the run>". It returns the exit code.
func runBenchClient(spec string) int {
	f := strings.Fields(spec)
	n, err := 0, errors.New("want: <base> <requests> <token>...")
	if len(f) >= 3 {
		n, err = strconv.Atoi(f[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench client:", err)
		return 2
	}
	ctx := context.Background()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchWorkers * 2}}
	defer hc.CloseIdleConnections()
	var players []*stackPlayer
	for _, tok := range f[2:] {
		c, err := newBenchClient(f[0], hc)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench client:", err)
			return 1
		}
		c.SetSession(tok, nil)
		if _, err := c.Call(ctx, game.CmdLoad, nil, nil); err != nil {
			fmt.Fprintln(os.Stderr, "bench client: warm-up:", err)
			return 1
		}
		players = append(players, &stackPlayer{c: c})
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Fprintln(os.Stderr, "bench client:", err)
		return 1
	}
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for _, p := range players {
		wg.Go(func() {
			for i := 0; ; i++ {
				if next.Add(1) > int64(n) || failed.Load() != nil {
					return
				}
				if err := p.step(ctx, i); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	if e := failed.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "bench client:", *e)
		fmt.Println("failed")
		return 1
	}
	fmt.Printf("done %d\n", ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano())
	return 0
}
