package realtime_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
)

// childEnv makes the test binary run as the hub process of
// BenchmarkIdleConnMemory ("1") or BenchmarkLoopback ("loop") instead of
// running tests.
const childEnv = "MADANG_RT_BENCH_SERVER"

func TestMain(m *testing.M) {
	var serve func() error
	switch os.Getenv(childEnv) {
	case "1":
		serve = runBenchServer
	case "loop":
		serve = runLoopServer
	}
	if serve != nil {
		if err := serve(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runBenchServer serves a hub on a loopback port (printed on stdout), a
// login endpoint for the parent's clients, and its own memory figures; it
// exits when stdin closes.
func runBenchServer() error {
	store := session.NewMemoryStore(session.Config{})
	hub, err := realtime.NewHub(store, realtime.Config{})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /ws", hub)
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		u, _ := strconv.ParseInt(r.URL.Query().Get("user"), 10, 64)
		s, err := store.Create(r.Context(), session.CreateParams{UserKey: u})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, s.Token)
	})
	mux.HandleFunc("GET /mem", func(w http.ResponseWriter, r *http.Request) {
		rss := residentBytes() // as an observer of the process sees it: before the GC below
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		alloc := ms.TotalAlloc
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		json.NewEncoder(w).Encode(map[string]uint64{
			"heap": ms.HeapInuse, "stack": ms.StackInuse, "sys": ms.Sys, "rss": rss, "alloc": alloc,
			"goroutines": uint64(runtime.NumGoroutine()), "conns": uint64(hub.Stats().Connections),
		})
	})
	mux.HandleFunc("GET /heapprofile", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		pprof.Lookup("heap").WriteTo(w, 0)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	fmt.Println(ln.Addr().String())
	io.Copy(io.Discard, os.Stdin) // until the parent closes it
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hub.Shutdown(ctx)
	return srv.Shutdown(ctx)
}

// residentBytes returns the process's resident set size (VmRSS), 0 where
// /proc is not there.
func residentBytes() uint64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkIdleConnMemory measures the hub process's memory per idle
// websocket connection: the hub runs in a child process (this test binary
// re-executed), the parent opens MADANG_RT_IDLE_CONNS (default 2,000)
// connections on loopback, and the child reports its memory before and
// after: rss-B/conn (resident memory, VmRSS, as the process's observer sees
// it: RSS with the connections minus RSS with none, divided by their
// number), heap and stack in use after GC (B/conn is their sum), and
// alloc-B/conn, the bytes allocated per connection while connecting and
// subscribing. Each connection is authenticated and subscribed to its user
// channel; in "channel" each also subscribes to one channel shared by all
// (the layout of the comparison with centrifuge: one channel, N idle
// clients), and the figures are taken once the writer goroutines the
// subscribe replies started have exited. b.N is ignored: one measurement
// per run.
func BenchmarkIdleConnMemory(b *testing.B) {
	conns := envInt("MADANG_RT_IDLE_CONNS", 2000)
	for _, shared := range []bool{false, true} {
		name := "user"
		if shared {
			name = "channel"
		}
		b.Run(name, func(b *testing.B) { idleConnMemory(b, conns, shared) })
	}
}

func idleConnMemory(b *testing.B, conns int, shared bool) {
	addr, stop := startChild(b, childEnv+"=1")
	defer stop()
	base := "http://" + strings.TrimSpace(addr)
	get := func(path string) []byte {
		resp, err := http.Get(base + path)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		return body
	}
	mem := func() map[string]uint64 {
		var m map[string]uint64
		if err := json.Unmarshal(get("/mem"), &m); err != nil {
			b.Fatal(err)
		}
		return m
	}
	before := mem()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	clients := make([]*realtime.Client, 0, conns)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for i := range conns {
		token := string(get(fmt.Sprintf("/login?user=%d", i+1)))
		c, err := realtime.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws", token, &realtime.DialOptions{PushBuffer: 1})
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, c)
		if shared {
			if _, err := c.Subscribe(ctx, "world.0", nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Idle: the writer goroutines started by the subscribe replies exit
	// after a few seconds without work.
	after := mem()
	for deadline := time.Now().Add(30 * time.Second); after["goroutines"]-before["goroutines"] > uint64(conns) && time.Now().Before(deadline); {
		time.Sleep(time.Second)
		after = mem()
	}
	if f := os.Getenv("MADANG_RT_HEAPPROFILE"); f != "" { // go tool pprof -sample_index=inuse_space f
		if err := os.WriteFile(f, get("/heapprofile"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	if after["conns"] != uint64(conns) {
		b.Fatalf("server holds %d connections, want %d", after["conns"], conns)
	}
	per := func(k string) float64 { return (float64(after[k]) - float64(before[k])) / float64(conns) }
	b.ReportMetric(per("rss"), "rss-B/conn")
	b.ReportMetric(per("alloc"), "alloc-B/conn")
	b.ReportMetric(per("heap"), "heap-B/conn")
	b.ReportMetric(per("stack"), "stack-B/conn")
	b.ReportMetric(per("heap")+per("stack"), "B/conn")
	b.ReportMetric(per("goroutines"), "goroutines/conn")
}

// startChild runs this test binary again as a benchmark's server process,
// with env added to the environment, and returns the first line it prints
// (the addresses it serves on) and a func that stops it (closes its stdin)
// and waits for it to exit.
func startChild(b *testing.B, env ...string) (firstLine string, stop func()) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop = func() {
		stdin.Close()
		cmd.Wait()
	}
	firstLine, err = bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		b.Fatal(err)
	}
	return firstLine, stop
}
