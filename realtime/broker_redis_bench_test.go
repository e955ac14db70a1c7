package realtime_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/realtime"
	"github.com/redis/go-redis/v9"
)

// The broker benchmarks compare, in one run, a publication's trip from one
// node to another through RedisBroker with the same trip through bare
// go-redis PUBLISH and a pub/sub receive (the floor Redis sets), and with an
// in-process hand-off over a Go channel (what a single node pays). Run:
//
//	MADANG_REDIS_ADDR=127.0.0.1:6379 go test -run '^$' -bench BrokerTrip -benchtime 3s ./realtime/

// trip is one way of carrying a publication to a subscriber.
type trip struct {
	publish func(ctx context.Context, data []byte) error
	got     <-chan struct{} // one receive per delivered publication
}

var benchPayload = make([]byte, 200)

func benchTrips(b *testing.B) map[string]trip {
	c := testredis.Client(b)
	prefix := testredis.Prefix(b, c)
	ctx := context.Background()
	trips := map[string]trip{}

	// In process: a buffered channel hand-off to another goroutine.
	{
		in := make(chan []byte, 4096)
		got := make(chan struct{}, 1<<16)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range in {
				got <- struct{}{}
			}
		}()
		b.Cleanup(func() { close(in); <-done })
		trips["inprocess"] = trip{publish: func(_ context.Context, d []byte) error { in <- d; return nil }, got: got}
	}

	// Bare go-redis.
	{
		topic := prefix + "raw"
		ps := c.Subscribe(ctx, topic)
		if _, err := ps.Receive(ctx); err != nil {
			b.Fatal(err)
		}
		got := make(chan struct{}, 1<<16)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range ps.Channel(redis.WithChannelSize(4096)) {
				got <- struct{}{}
			}
		}()
		b.Cleanup(func() { ps.Close(); <-done })
		trips["raw-redis"] = trip{publish: func(ctx context.Context, d []byte) error { return c.Publish(ctx, topic, d).Err() }, got: got}
	}

	// RedisBroker, two nodes.
	for _, name := range []string{"broker-history", "broker-live"} {
		cfg := realtime.RedisBrokerConfig{Prefix: prefix + name + ":"}
		pub, err := realtime.NewRedisBroker(c, cfg)
		if err != nil {
			b.Fatal(err)
		}
		sub, err := realtime.NewRedisBroker(c, cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { pub.Close(); sub.Close() })
		got := make(chan struct{}, 1<<16)
		_ = pub.Start(ctx, func(realtime.Publication) {})
		_ = sub.Start(ctx, func(realtime.Publication) { got <- struct{}{} })
		if err := sub.Subscribe(ctx, "chat"); err != nil {
			b.Fatal(err)
		}
		opts := realtime.PublishOptions{}
		if name == "broker-history" {
			opts = realtime.PublishOptions{HistorySize: 100, HistoryTTL: time.Minute}
		}
		trips[name] = trip{publish: func(ctx context.Context, d []byte) error {
			_, err := pub.Publish(ctx, "chat", d, opts)
			return err
		}, got: got}
	}
	return trips
}

var tripOrder = []string{"inprocess", "raw-redis", "broker-live", "broker-history"}

// BenchmarkBrokerTripLatency: one publication at a time, publish to
// delivery; reports p50 and p99.
func BenchmarkBrokerTripLatency(b *testing.B) {
	trips := benchTrips(b)
	for _, name := range tripOrder {
		tr := trips[name]
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				if err := tr.publish(ctx, benchPayload); err != nil {
					b.Fatal(err)
				}
				<-tr.got
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
		})
	}
}

// BenchmarkBrokerTripThroughput: 16 concurrent publishers; ns/op is per
// publication delivered, pubs/s the delivery rate.
func BenchmarkBrokerTripThroughput(b *testing.B) {
	trips := benchTrips(b)
	for _, name := range tripOrder {
		tr := trips[name]
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			received := make(chan struct{})
			go func() {
				for range b.N {
					<-tr.got
				}
				close(received)
			}()
			start := time.Now()
			b.ResetTimer()
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := tr.publish(ctx, benchPayload); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			<-received
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pubs/s")
		})
	}
}

// BenchmarkBrokerTripInterleaved runs the four trips in turn within each
// iteration, so a noisy shared machine's slow spells hit them alike: one
// op is one latency probe of each trip followed by a burst of 256
// publications from 16 publishers on each. It reports each trip's p50/p99
// latency (µs) and its burst delivery rate (pubs/s).
func BenchmarkBrokerTripInterleaved(b *testing.B) {
	trips := benchTrips(b)
	ctx := context.Background()
	lat := map[string][]time.Duration{}
	busy := map[string]time.Duration{}
	const burst = 256
	b.ResetTimer()
	for range b.N {
		for _, name := range tripOrder {
			tr := trips[name]
			t0 := time.Now()
			if err := tr.publish(ctx, benchPayload); err != nil {
				b.Fatal(err)
			}
			<-tr.got
			lat[name] = append(lat[name], time.Since(t0))

			var next atomic.Int64
			var wg sync.WaitGroup
			t0 = time.Now()
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= burst {
						if err := tr.publish(ctx, benchPayload); err != nil {
							b.Error(err)
						}
					}
				}()
			}
			wg.Wait()
			for range burst {
				<-tr.got
			}
			busy[name] += time.Since(t0)
		}
	}
	b.StopTimer()
	for _, name := range tripOrder {
		l := lat[name]
		slices.Sort(l)
		b.ReportMetric(float64(l[len(l)/2].Nanoseconds())/1e3, name+"-p50-µs")
		b.ReportMetric(float64(l[len(l)*99/100].Nanoseconds())/1e3, name+"-p99-µs")
		b.ReportMetric(float64(b.N*burst)/busy[name].Seconds(), name+"-pubs/s")
	}
}
