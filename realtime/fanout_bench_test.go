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

// BenchmarkFanout measures one node's fan-out of a publication to n
// subscribers, side by side with a baseline, alternating in the same loop
// (the machine is shared and noisy, so both see the same conditions):
//
//   - hub: Hub.Publish → MemoryBroker → the channel's shard goroutine → the
//     n connections' send queues, where writer stand-ins encode each frame
//     (AppendPrepared: a copy in plain mode, XOR in xor mode) into their own
//     buffer, as the real writer does before the socket write;
//   - baseline: the same frame bytes sent to n buffered channels whose
//     readers copy them into their own buffer.
//
// One op is one publication delivered to all n by each side. Metrics:
// hub-ns/pub, base-ns/pub, ratio (hub/base), hub-deliv/s, base-deliv/s;
// allocs/op are the hub's (the baseline allocates nothing).
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, mode := range []protocol.Mode{protocol.ModePlain, protocol.ModeXOR} {
			b.Run(fmt.Sprintf("%s/subs=%d", mode, n), func(b *testing.B) {
				hub, stopHub := setupHub(b, n, mode)
				base, stopBase := setupBaseline(b, n)
				hub()
				base() // warm up
				var th, tb time.Duration
				b.ReportAllocs()
				b.ResetTimer()
				i := 0
				for b.Loop() {
					if i%2 == 0 {
						th += timed(hub)
						tb += timed(base)
					} else {
						tb += timed(base)
						th += timed(hub)
					}
					i++
				}
				b.StopTimer()
				b.ReportMetric(float64(th.Nanoseconds())/float64(i), "hub-ns/pub")
				b.ReportMetric(float64(tb.Nanoseconds())/float64(i), "base-ns/pub")
				b.ReportMetric(float64(th)/float64(tb), "ratio")
				b.ReportMetric(float64(n)*float64(i)/th.Seconds(), "hub-deliv/s")
				b.ReportMetric(float64(n)*float64(i)/tb.Seconds(), "base-deliv/s")
				stopHub()
				stopBase()
			})
		}
	}
}

func timed(f func()) time.Duration {
	t := time.Now()
	f()
	return time.Since(t)
}

func setupHub(b *testing.B, n int, mode protocol.Mode) (publish, stop func()) {
	store := session.NewMemoryStore(session.Config{})
	h, err := NewHub(store, Config{SendQueueLen: 64, Codec: protocol.Config{XORKey: []byte("bench-xor-key")}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	r := &round{done: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	conns := make([]*conn, n)
	for i := range conns {
		sess := sessiontest.Login(b, store, int64(i+1))
		c := &conn{hub: h, sess: sess, principal: sess.Principal(), mode: mode,
			closing: make(chan struct{}), subs: map[string]*sub{}}
		c.ctx, c.cancel = context.WithCancel(h.ctx)
		if err := h.addSub(ctx, &sub{c: c, channel: "world.0"}); err != nil {
			b.Fatal(err)
		}
		conns[i] = c
		out := c.queue()
		wg.Add(1)
		go func() {
			defer wg.Done()
			opts := protocol.EncodeOptions{Mode: mode}
			buf := make([]byte, 0, 4096)
			for {
				select {
				case p := <-out:
					buf, _ = h.codec.AppendPrepared(buf[:0], p, opts)
					r.one()
				case <-c.ctx.Done():
					return
				}
			}
		}()
	}
	publish = func() {
		r.start(n)
		if _, err := h.Publish(ctx, "world.0", "chat", benchPayload); err != nil {
			b.Fatal(err)
		}
		<-r.done // a lost delivery hangs here: the test binary's timeout reports it
	}
	stop = func() {
		if s := h.Stats(); s.SlowClosed != 0 {
			b.Fatalf("slow consumers in the benchmark: %+v", s)
		}
		for _, c := range conns {
			c.cancel()
		}
		wg.Wait()
		h.Shutdown(ctx)
		store.Close()
	}
	return publish, stop
}

func setupBaseline(b *testing.B, n int) (publish, stop func()) {
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
	done := make(chan struct{})
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
				case <-done:
					return
				}
			}
		}()
	}
	publish = func() {
		r.start(n)
		for _, ch := range chans {
			ch <- frame
		}
		<-r.done
	}
	stop = func() {
		close(done)
		wg.Wait()
	}
	return publish, stop
}
