package session_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/session"
)

// BenchmarkLimiter: one Allow per op on the memory limiter, the Redis
// limiter (one EVALSHA), and beside it the baseline, a bare Redis INCR
// round trip on the same client; serial (latency) and parallel
// (throughput, 8 goroutines per CPU). Users rotate over 10,000 keys; the limit is generous so
// most events are allowed (the write path).
func BenchmarkLimiter(b *testing.B) {
	lim := session.Limit{Name: "bench", Rate: 1e6, Burst: 1 << 20}
	ctx := context.Background()
	run := func(b *testing.B, op func(uk int64) error) {
		b.Run("serial", func(b *testing.B) {
			b.ReportAllocs()
			for i := range b.N {
				if err := op(int64(i%10000) + 1); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8) // 8 goroutines per CPU: requests in flight, as on a server
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := op(n.Add(1)%10000 + 1); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	b.Run("memory", func(b *testing.B) {
		l := session.NewMemoryLimiter(session.LimiterConfig{})
		run(b, func(uk int64) error { _, err := l.Allow(ctx, uk, lim); return err })
	})
	c := testredis.Client(b)
	prefix := testredis.Prefix(b, c)
	b.Run("redis", func(b *testing.B) {
		l, err := session.NewRedisLimiter(session.Single(c), session.LimiterConfig{Prefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		run(b, func(uk int64) error { _, err := l.Allow(ctx, uk, lim); return err })
	})
	b.Run("redis-incr", func(b *testing.B) { // the baseline: one bare round trip
		key := prefix + "incr"
		run(b, func(int64) error { return c.Incr(ctx, key).Err() })
	})
}
