package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/session/sessiontest"
)

// benchPayload is a chat message of about 200 bytes (above the compression
// threshold, so the subject compresses it once per publication).
var benchPayload = json.RawMessage(`{"from":10000042,"data":"` + strings.Repeat("gg wp, raid at 9 in the usual place ", 5) + `"}`)

// round waits for n deliveries.
type round struct {
	left atomic.Int64
	done chan struct{}
}

func (r *round) start(n int) { r.left.Store(int64(n)) }
func (r *round) one() {
	if r.left.Add(-1) == 0 {
		r.done <- struct{}{}
	}
}

// BenchmarkFanout publishes through a Hub (Hub.Publish → MemoryBroker →
// shard goroutine → per-connection queues) to n subscribers whose writer
// stand-ins encode each frame (AppendPrepared) into their own buffer, and
// compares with a baseline that sends the same frame bytes to n buffered
// channels whose readers copy them into their own buffer. One op is one
// publication delivered to all n; deliveries/s = n / (s/op).
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, mode := range []protocol.Mode{protocol.ModePlain, protocol.ModeXOR} {
			b.Run(fmt.Sprintf("hub/%s/subs=%d", mode, n), func(b *testing.B) { benchHub(b, n, mode) })
		}
		b.Run(fmt.Sprintf("baseline/subs=%d", n), func(b *testing.B) { benchBaseline(b, n) })
	}
}

func benchHub(b *testing.B, n int, mode protocol.Mode) {
	store := session.NewMemoryStore(session.Config{})
	defer store.Close()
	h, err := NewHub(store, Config{SendQueueLen: 64, Codec: protocol.Config{XORKey: []byte("bench-xor-key")}})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Shutdown(context.Background())
	ctx := context.Background()
	r := &round{done: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	conns := make([]*conn, n)
	for i := range conns {
		sess := sessiontest.Login(b, store, int64(i+1))
		c := &conn{hub: h, sess: sess, principal: sess.Principal(), mode: mode,
			out: make(chan *protocol.Prepared, h.cfg.SendQueueLen), closing: make(chan struct{}), subs: map[string]*sub{}}
		c.ctx, c.cancel = context.WithCancel(h.ctx)
		if err := h.addSub(ctx, &sub{c: c, channel: "world.0"}); err != nil {
			b.Fatal(err)
		}
		conns[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			opts := protocol.EncodeOptions{Mode: mode}
			buf := make([]byte, 0, 4096)
			for {
				select {
				case p := <-c.out:
					buf, _ = h.codec.AppendPrepared(buf[:0], p, opts)
					r.one()
				case <-c.ctx.Done():
					return
				}
			}
		}()
	}
	publish := func() {
		r.start(n)
		if _, err := h.Publish(ctx, "world.0", "chat", benchPayload); err != nil {
			b.Fatal(err)
		}
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			b.Fatalf("deliveries missing: %d of %d", r.left.Load(), n)
		}
	}
	publish() // warm up
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		publish()
	}
	b.StopTimer()
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	if s := h.Stats(); s.SlowClosed != 0 {
		b.Fatalf("slow consumers in the benchmark: %+v", s)
	}
	for _, c := range conns {
		c.cancel()
	}
	wg.Wait()
}

func benchBaseline(b *testing.B, n int) {
	codec, err := protocol.NewCodec(protocol.Config{})
	if err != nil {
		b.Fatal(err)
	}
	body := protocol.AppendPush(nil, &protocol.Push{Topic: "chat", Channel: "world.0", ID: 1, ServerTime: 1, Payload: benchPayload})
	frame, err := codec.Encode(body, protocol.EncodeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	r := &round{done: make(chan struct{}, 1)}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	chans := make([]chan []byte, n)
	for i := range chans {
		ch := make(chan []byte, 64)
		chans[i] = ch
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 4096)
			for {
				select {
				case f := <-ch:
					buf = append(buf[:0], f...)
					r.one()
				case <-stop:
					return
				}
			}
		}()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.start(n)
		for _, ch := range chans {
			ch <- frame
		}
		<-r.done
	}
	b.StopTimer()
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	close(stop)
	wg.Wait()
}
