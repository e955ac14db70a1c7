package realtime_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
)

// Environment of the loopback benchmark's child process.
const (
	loopNodesEnv  = "MADANG_RT_BENCH_NODES"  // hubs in the child: 1 or 2
	loopBrokerEnv = "MADANG_RT_BENCH_BROKER" // "memory" or "redis"
	loopPrefixEnv = "MADANG_RT_BENCH_PREFIX" // Redis key prefix
)

// loopChannel is the channel every benchmark client subscribes to.
const loopChannel = "bench"

// runLoopServer is the child process of BenchmarkLoopback: one or two hubs
// (sharing a memory session store, and Redis through one RedisBroker each
// when MADANG_RT_BENCH_BROKER=redis), each on its own loopback port. The
// first line of stdout lists the hubs' addresses. Node 0 also serves
// /login?user=N (a session token) and /publish?i=N (publishes a 1 KB
// message on loopChannel stamped with the time, answered after Publish
// returns). It exits when stdin closes.
func runLoopServer() error {
	nodes, _ := strconv.Atoi(os.Getenv(loopNodesEnv))
	nodes = max(nodes, 1)
	store := session.NewMemoryStore(session.Config{})
	defer store.Close()
	var rc *redis.Client
	if os.Getenv(loopBrokerEnv) == "redis" {
		rc = redis.NewClient(&redis.Options{Addr: os.Getenv("MADANG_REDIS_ADDR"), PoolSize: 64})
		defer rc.Close()
	}
	allow := func(context.Context, *protocol.Principal, string, realtime.Action) error { return nil }
	var hubs []*realtime.Hub
	var addrs []string
	var srvs []*http.Server
	for i := range nodes {
		cfg := realtime.Config{Authorize: allow, NodeID: "n" + strconv.Itoa(i)}
		if rc != nil {
			b, err := realtime.NewRedisBroker(rc, realtime.RedisBrokerConfig{Prefix: os.Getenv(loopPrefixEnv)})
			if err != nil {
				return err
			}
			defer b.Close()
			p, err := realtime.NewRedisPresence(rc, realtime.PresenceConfig{Prefix: os.Getenv(loopPrefixEnv)})
			if err != nil {
				return err
			}
			cfg.Broker, cfg.Presence = b, p
		}
		hub, err := realtime.NewHub(store, cfg)
		if err != nil {
			return err
		}
		hubs = append(hubs, hub)
		mux := http.NewServeMux()
		mux.Handle("GET /ws", hub)
		if i == 0 {
			mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
				u, _ := strconv.ParseInt(r.URL.Query().Get("user"), 10, 64)
				s, err := store.Create(r.Context(), session.CreateParams{UserKey: u})
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				io.WriteString(w, s.Token)
			})
			var pad [750]byte
			_, _ = rand.Read(pad[:])
			padding := base64.RawStdEncoding.EncodeToString(pad[:]) // 1,000 bytes, barely compressible
			mux.HandleFunc("GET /publish", func(w http.ResponseWriter, r *http.Request) {
				payload := fmt.Appendf(nil, `{"i":%s,"t":%d,"pad":"%s"}`, r.URL.Query().Get("i"), time.Now().UnixNano(), padding)
				if _, err := hub.Publish(r.Context(), loopChannel, "b", payload); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
				}
			})
			mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
				var slow int64
				for _, h := range hubs {
					slow += h.Stats().SlowClosed
				}
				fmt.Fprint(w, slow)
			})
			mux.HandleFunc("GET /cost", func(w http.ResponseWriter, r *http.Request) {
				var ru syscall.Rusage
				_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				fmt.Fprint(w, ru.Utime.Nano()+ru.Stime.Nano(), " ", ms.TotalAlloc, " ", ms.Mallocs)
			})
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: mux}
		go srv.Serve(ln)
		srvs = append(srvs, srv)
		addrs = append(addrs, ln.Addr().String())
	}
	fmt.Println(strings.Join(addrs, " "))
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, h := range hubs {
		_ = h.Shutdown(ctx)
		_ = srvs[i].Shutdown(ctx)
	}
	return nil
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkLoopback measures end-to-end fan-out with real websocket
// clients: the hubs run in a child process (this test binary re-executed),
// the benchmark process opens MADANG_RT_BENCH_CONNS (default 2,000)
// connections on loopback, all subscribed to one channel, and publishes
// MADANG_RT_BENCH_MSGS (default 200) 1 KB messages through node 0's
// /publish, at most 16 in flight (a message is done when every client got
// it): deliveries per second. Then MSGS/4 more, one at a time: the p50/p99
// latency from Publish on the server to the client's read of the push
// (the last of a fan-out to 2,000 clients waits for the 1,999 before it),
// and first-p50-ms, the median over messages of the earliest delivery: the
// trip alone, which shows the cost of a hop through Redis. The server
// process's cost per delivery in the throughput phase: srv-cpu-ns/deliv
// (user + system CPU time of the child, which runs the hubs only),
// srv-B/deliv and srv-allocs/deliv (its heap allocations).
//
// Setups, run in turn: node1-memory (one hub, memory broker; the
// baseline), and with MADANG_REDIS_ADDR node1-redis (one hub, Redis broker
// and presence) and node2-redis (two hubs through Redis, clients split
// between them, publishing on node 0: half the deliveries cross Redis to
// the other node). b.N is ignored: one measurement per run.
func BenchmarkLoopback(b *testing.B) {
	setups := []struct {
		name   string
		nodes  int
		broker string
	}{{"node1-memory", 1, "memory"}, {"node1-redis", 1, "redis"}, {"node2-redis", 2, "redis"}}
	for _, s := range setups {
		b.Run(s.name, func(b *testing.B) {
			var env []string
			env = append(env, loopNodesEnv+"="+strconv.Itoa(s.nodes), loopBrokerEnv+"="+s.broker)
			if s.broker == "redis" {
				rc := testredis.Client(b)
				env = append(env, loopPrefixEnv+"="+testredis.Prefix(b, rc))
			}
			runLoopback(b, env, envInt("MADANG_RT_BENCH_CONNS", 2000), envInt("MADANG_RT_BENCH_MSGS", 200))
		})
	}
}

func runLoopback(b *testing.B, env []string, conns, msgs int) {
	line, stop := startChild(b, append([]string{childEnv + "=loop"}, env...)...)
	defer stop()
	addrs := strings.Fields(line)
	base := "http://" + addrs[0]
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	get := func(path string) string {
		resp, err := hc.Get(base + path)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		return string(body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	clients := make([]*realtime.Client, conns)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range clients {
		token := get(fmt.Sprintf("/login?user=%d", i+1))
		c, err := realtime.Dial(ctx, "ws://"+addrs[i%len(addrs)]+"/ws", token, &realtime.DialOptions{PushBuffer: 256})
		if err != nil {
			b.Fatal(err)
		}
		clients[i] = c
		if _, err := c.Subscribe(ctx, loopChannel, nil); err != nil {
			b.Fatal(err)
		}
	}

	// Phase 1, throughput: msgs messages, up to 16 in flight. Phase 2,
	// latency: msgs/4 messages one at a time (the next is published when
	// every client has the previous one), so queueing behind earlier
	// messages is not counted.
	cost := func() (cpu, alloc, mallocs float64) {
		_, err := fmt.Sscan(get("/cost"), &cpu, &alloc, &mallocs)
		if err != nil {
			b.Fatal(err)
		}
		return cpu, alloc, mallocs
	}
	cpu0, alloc0, mallocs0 := cost()
	tput, _, _ := loopPhase(b, ctx, clients, get, msgs, 16, 0)
	cpu1, alloc1, mallocs1 := cost()
	deliveries := float64(conns * msgs)
	_, lat, firsts := loopPhase(b, ctx, clients, get, max(msgs/4, 1), 1, msgs)
	pct := func(l []time.Duration, q float64) float64 { return float64(l[int(q*float64(len(l)-1))]) / 1e6 }
	b.ReportMetric(tput, "deliveries/s")
	b.ReportMetric(pct(lat, 0.5), "p50-ms")
	b.ReportMetric(pct(lat, 0.99), "p99-ms")
	b.ReportMetric(pct(firsts, 0.5), "first-p50-ms")
	b.ReportMetric((cpu1-cpu0)/deliveries, "srv-cpu-ns/deliv")
	b.ReportMetric((alloc1-alloc0)/deliveries, "srv-B/deliv")
	b.ReportMetric((mallocs1-mallocs0)/deliveries, "srv-allocs/deliv")
	b.ReportMetric(0, "ns/op")
}

// loopPhase publishes msgs messages (numbered from first) with at most
// window in flight and returns the deliveries per second and every
// delivery's latency, sorted, and each message's first delivery latency
// (the earliest client to get it: the trip without the fan-out's queue),
// sorted.
func loopPhase(b *testing.B, ctx context.Context, clients []*realtime.Client, get func(string) string, msgs, window, first int) (float64, []time.Duration, []time.Duration) {
	conns := len(clients)
	got := make([]atomic.Int32, msgs)
	firsts := make([]atomic.Int64, msgs)
	done := make([]chan struct{}, msgs)
	for i := range done {
		done[i] = make(chan struct{})
	}
	lat := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	var failed atomic.Value
	for ci, c := range clients {
		lat[ci] = make([]time.Duration, 0, msgs)
		wg.Go(func() {
			for range msgs {
				p, err := c.Next(ctx)
				if err != nil {
					failed.Store(err)
					return
				}
				now := time.Now().UnixNano()
				i, t, ok := parseLoopPayload(p.Payload)
				i -= first
				if !ok || i < 0 || i >= msgs {
					failed.Store(fmt.Errorf("bad push %q", p.Payload))
					return
				}
				lat[ci] = append(lat[ci], time.Duration(now-t))
				for {
					f := firsts[i].Load()
					if (f != 0 && f <= now-t) || firsts[i].CompareAndSwap(f, now-t) {
						break
					}
				}
				if int(got[i].Add(1)) == conns {
					close(done[i])
				}
			}
		})
	}
	start := time.Now()
	for i := range msgs {
		if i >= window {
			select {
			case <-done[i-window]:
			case <-ctx.Done():
				b.Fatalf("message %d not delivered to every client (%d of %d; %v)", i-window, got[i-window].Load(), conns, failed.Load())
			}
		}
		get(fmt.Sprintf("/publish?i=%d", first+i))
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := failed.Load(); err != nil {
		b.Fatalf("client: %v (slow-closed %s)", err, get("/stats"))
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	fs := make([]time.Duration, msgs)
	for i := range firsts {
		fs[i] = time.Duration(firsts[i].Load())
	}
	slices.Sort(fs)
	return float64(len(all)) / elapsed.Seconds(), all, fs
}

// parseLoopPayload reads i and t from {"i":<i>,"t":<t>,...} without
// decoding the whole message.
func parseLoopPayload(p []byte) (i int, t int64, ok bool) {
	s := string(p)
	rest, found := strings.CutPrefix(s, `{"i":`)
	if !found {
		return 0, 0, false
	}
	is, rest, found := strings.Cut(rest, `,"t":`)
	if !found {
		return 0, 0, false
	}
	ts, _, found := strings.Cut(rest, `,`)
	if !found {
		return 0, 0, false
	}
	i, err1 := strconv.Atoi(is)
	t, err2 := strconv.ParseInt(ts, 10, 64)
	return i, t, err1 == nil && err2 == nil
}
