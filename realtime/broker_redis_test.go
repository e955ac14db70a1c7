package realtime_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/realtime/realtimetest"
	"github.com/redis/go-redis/v9"
)

// redisBrokers returns a factory of two brokers over c sharing a fresh
// prefix.
func redisBrokers(c redis.UniversalClient, cfg realtime.RedisBrokerConfig) func(t *testing.T) []realtime.Broker {
	return func(t *testing.T) []realtime.Broker {
		return redisInstances(t, c, 2, func(prefix string) (realtime.Broker, error) {
			cfg := cfg
			cfg.Prefix = prefix
			return realtime.NewRedisBroker(c, cfg)
		})
	}
}

func TestRedisBroker(t *testing.T) {
	c := testredis.Client(t)
	realtimetest.RunBrokerTests(t, redisBrokers(c, realtime.RedisBrokerConfig{}))
}

func TestRedisBrokerCluster(t *testing.T) {
	c := testredis.Cluster(t)
	realtimetest.RunBrokerTests(t, redisBrokers(c, realtime.RedisBrokerConfig{}))
}

// One bucket: every channel of the cluster shares one sharded pub/sub
// channel, so a node receives (and must drop) the others' publications.
func TestRedisBrokerClusterOneBucket(t *testing.T) {
	c := testredis.Cluster(t)
	realtimetest.RunBrokerTests(t, redisBrokers(c, realtime.RedisBrokerConfig{Buckets: 1}))
}

func TestRedisBrokerSentinel(t *testing.T) {
	c := testredis.Sentinel(t)
	realtimetest.RunBrokerTests(t, func(t *testing.T) []realtime.Broker {
		var bs []realtime.Broker
		for range 2 {
			b, err := realtime.NewRedisBroker(c, realtime.RedisBrokerConfig{Prefix: "s:"})
			if err != nil {
				t.Fatal(err)
			}
			bs = append(bs, b)
		}
		// The private server is the test's own: empty it between subtests.
		t.Cleanup(func() { c.FlushAll(context.Background()) })
		return bs
	})
}

func TestRedisBrokerConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := realtime.NewRedisBroker(c, realtime.RedisBrokerConfig{Prefix: "a{b"}); err == nil {
		t.Error("prefix with a brace accepted")
	}
	if _, err := realtime.NewRedisBroker(c, realtime.RedisBrokerConfig{Buckets: 16385}); err == nil {
		t.Error("16385 buckets accepted")
	}
	if _, err := realtime.NewRedisBroker(nil, realtime.RedisBrokerConfig{}); err == nil {
		t.Error("nil client accepted")
	}
	r := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	defer r.Close()
	if _, err := realtime.NewRedisBroker(r, realtime.RedisBrokerConfig{}); err == nil {
		t.Error("ring accepted")
	}
}

// A broker over a server that does not answer fails with ErrUnavailable.
func TestRedisBrokerUnavailable(t *testing.T) {
	c := deadRedis(t)
	b, err := realtime.NewRedisBroker(c, realtime.RedisBrokerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Start(context.Background(), func(realtime.Publication) {}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, opts := range []realtime.PublishOptions{{}, {HistorySize: 1, HistoryTTL: time.Second}} {
		if _, err := b.Publish(ctx, "x", nil, opts); !isCode(err, realtime.ErrUnavailable) {
			t.Errorf("Publish %+v: %v, want ErrUnavailable", opts, err)
		}
	}
	if _, err := b.History(ctx, "x", realtime.StreamPosition{}, 1); !isCode(err, realtime.ErrUnavailable) {
		t.Errorf("History: %v, want ErrUnavailable", err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer scancel()
	if err := b.Subscribe(sctx, "x"); !isCode(err, realtime.ErrUnavailable) {
		t.Errorf("Subscribe: %v, want ErrUnavailable", err)
	}
}

func isCode(err, want error) bool { return errors.Is(err, want) }

// TestRedisBrokerResubscribes kills the broker's own pub/sub connection
// (CLIENT KILL of its id): the broker reconnects and resubscribes by itself,
// delivery resumes, and History returns what was published while it was
// cut off.
func TestRedisBrokerResubscribes(t *testing.T) {
	shared := testredis.Client(t)
	var nb [4]byte
	_, _ = rand.Read(nb[:])
	name := "rtbroker-" + hex.EncodeToString(nb[:])
	c := redis.NewClient(&redis.Options{Addr: shared.Options().Addr, ClientName: name})
	defer c.Close()
	prefix := testredis.Prefix(t, shared)
	var resubscribed atomic.Int32
	cfg := realtime.RedisBrokerConfig{Prefix: prefix, ReconnectBackoff: 20 * time.Millisecond}
	pub, err := realtime.NewRedisBroker(shared, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	cfg.OnResubscribed = func() { resubscribed.Add(1) }
	a, err := realtime.NewRedisBroker(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rec := realtimetest.NewRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Start(ctx, rec.Deliver); err != nil {
		t.Fatal(err)
	}
	if err := pub.Start(ctx, func(realtime.Publication) {}); err != nil {
		t.Fatal(err)
	}
	chans := []string{"k:1", "k:2", "k:3"}
	if err := a.Subscribe(ctx, chans...); err != nil {
		t.Fatal(err)
	}
	opts := realtime.PublishOptions{HistorySize: 1000, HistoryTTL: time.Minute}
	for _, ch := range chans {
		if _, err := pub.Publish(ctx, ch, []byte("before"), opts); err != nil {
			t.Fatal(err)
		}
		rec.WaitN(t, ch, 1)
	}

	// Find and kill the broker's pub/sub connection.
	killPubSub(t, ctx, shared, name)

	// Publish until delivery resumes on k:1; the others follow.
	deadline := time.Now().Add(15 * time.Second)
	n := 0
	for len(rec.Got("k:1")) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no delivery on k:1 within 15s after the connection was killed (%d published)", n)
		}
		for _, ch := range chans {
			if _, err := pub.Publish(ctx, ch, fmt.Appendf(nil, "p%d", n), opts); err != nil {
				t.Fatal(err)
			}
		}
		n++
		time.Sleep(20 * time.Millisecond)
	}
	for _, ch := range chans {
		last, err := pub.Publish(ctx, ch, []byte("after"), opts)
		if err != nil {
			t.Fatal(err)
		}
		// The deliveries after the cut show the gap by their offsets;
		// History fills it.
		got := rec.WaitN(t, ch, 2)
		for got[len(got)-1].Offset != last.Offset {
			got = rec.WaitN(t, ch, len(got)+1)
		}
		var have []uint64
		for _, p := range got {
			have = append(have, p.Offset)
		}
		res, err := a.History(ctx, ch, realtime.StreamPosition{Offset: 1, Epoch: last.Epoch}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Publications) != int(last.Offset)-1 {
			t.Fatalf("%s: History has %d publications after offset 1, want %d", ch, len(res.Publications), last.Offset-1)
		}
		for i, p := range res.Publications {
			if p.Offset != uint64(i+2) {
				t.Fatalf("%s: History offset %d at %d", ch, p.Offset, i)
			}
		}
		for i := 1; i < len(got); i++ {
			if got[i].Offset <= got[i-1].Offset {
				t.Fatalf("%s: delivered offsets out of order: %v", ch, have)
			}
		}
		t.Logf("%s: delivered offsets %v of 1..%d (the rest came from History)", ch, have, last.Offset)
	}
	if st := a.Stats(); st.Reconnects < 1 || st.Delivered < 6 {
		t.Fatalf("Stats after the cut = %+v, want a reconnect and the deliveries counted", st)
	}
	if n := resubscribed.Load(); n < 1 {
		t.Fatalf("OnResubscribed called %d times after the cut", n)
	}
}

// TestRedisBrokerSentinelFailover: after a Sentinel failover, delivery
// resumes from the new master and History answers there.
func TestRedisBrokerSentinelFailover(t *testing.T) {
	c, failover := testredis.SentinelFailover(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := realtime.RedisBrokerConfig{Prefix: "fo:", ReconnectBackoff: 50 * time.Millisecond}
	a, err := realtime.NewRedisBroker(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	pub, err := realtime.NewRedisBroker(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	rec := realtimetest.NewRecorder()
	if err := a.Start(ctx, rec.Deliver); err != nil {
		t.Fatal(err)
	}
	if err := pub.Start(ctx, func(realtime.Publication) {}); err != nil {
		t.Fatal(err)
	}
	if err := a.Subscribe(ctx, "notice"); err != nil {
		t.Fatal(err)
	}
	opts := realtime.PublishOptions{HistorySize: 100, HistoryTTL: time.Minute}
	first, err := pub.Publish(ctx, "notice", []byte("before"), opts)
	if err != nil {
		t.Fatal(err)
	}
	rec.WaitN(t, "notice", 1)
	newMaster := failover()
	deadline := time.Now().Add(20 * time.Second)
	var last realtime.StreamPosition
	for i := 0; len(rec.Got("notice")) < 2; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no delivery within 20s after the failover to %s; stats %+v", newMaster, a.Stats())
		}
		pos, err := pub.Publish(ctx, "notice", fmt.Appendf(nil, "after %d", i), opts)
		if err == nil {
			last = pos
		}
		time.Sleep(50 * time.Millisecond)
	}
	if last.Epoch != first.Epoch {
		t.Logf("epoch changed over the failover (%q -> %q): clients reload", first.Epoch, last.Epoch)
	}
	if _, err := a.History(ctx, "notice", realtime.StreamPosition{}, 100); err != nil {
		t.Fatalf("History after the failover: %v", err)
	}
	t.Logf("delivery resumed after the failover; stats %+v", a.Stats())
}

// freezingProxy forwards TCP connections to target; freeze makes the
// connections open at that moment stop forwarding (both ways) while staying
// open, as a half-open connection behind a dead NAT or load balancer does.
// Connections opened later forward normally.
type freezingProxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	frozen map[net.Conn]bool // client side -> frozen
	wg     sync.WaitGroup
}

func startFreezingProxy(t *testing.T, target string) *freezingProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezingProxy{l: l, target: target, frozen: map[net.Conn]bool{}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.frozen[c] = false
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				defer p.wg.Done()
				defer dst.Close()
				defer src.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if err != nil {
						return
					}
					p.mu.Lock()
					frozen := p.frozen[c]
					p.mu.Unlock()
					if frozen {
						continue // swallowed
					}
					if _, err := dst.Write(buf[:n]); err != nil {
						return
					}
				}
			}
			p.wg.Add(2)
			go pipe(s, c)
			go pipe(c, s)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		p.mu.Lock()
		for c := range p.frozen {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *freezingProxy) addr() string { return p.l.Addr().String() }

func (p *freezingProxy) freeze() {
	p.mu.Lock()
	for c := range p.frozen {
		p.frozen[c] = true
	}
	p.mu.Unlock()
}

// TestRedisBrokerHalfOpen freezes the broker's pub/sub connection without
// closing it: no error ever comes, so only the broker's unanswered ping
// shows it is dead. The broker replaces it and delivery resumes.
func TestRedisBrokerHalfOpen(t *testing.T) {
	shared := testredis.Client(t)
	proxy := startFreezingProxy(t, shared.Options().Addr)
	c := redis.NewClient(&redis.Options{Addr: proxy.addr(), MaxRetries: -1})
	defer c.Close()
	prefix := testredis.Prefix(t, shared)
	var resubscribed atomic.Int32
	cfg := realtime.RedisBrokerConfig{Prefix: prefix, PingInterval: 200 * time.Millisecond, ReconnectBackoff: 20 * time.Millisecond}
	pub, err := realtime.NewRedisBroker(shared, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	cfg.OnResubscribed = func() { resubscribed.Add(1) }
	a, err := realtime.NewRedisBroker(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := realtimetest.NewRecorder()
	if err := a.Start(ctx, rec.Deliver); err != nil {
		t.Fatal(err)
	}
	if err := a.Subscribe(ctx, "h1", "h2"); err != nil {
		t.Fatal(err)
	}
	opts := realtime.PublishOptions{HistorySize: 1000, HistoryTTL: time.Minute}
	if _, err := pub.Publish(ctx, "h1", []byte("before"), opts); err != nil {
		t.Fatal(err)
	}
	rec.WaitN(t, "h1", 1)
	proxy.freeze()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; len(rec.Got("h2")) < 1; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no delivery within 20s after the connection froze; stats %+v", a.Stats())
		}
		if _, err := pub.Publish(ctx, "h2", fmt.Appendf(nil, "p%d", i), opts); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := a.Stats(); st.Reconnects < 1 || resubscribed.Load() < 1 {
		t.Fatalf("stats %+v, OnResubscribed %d: the replaced connection was not reported", st, resubscribed.Load())
	}
	t.Logf("delivery resumed; first delivered on h2 at offset %d; stats %+v", rec.Got("h2")[0].Offset, a.Stats())
}
