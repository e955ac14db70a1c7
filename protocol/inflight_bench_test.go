package protocol

import (
	"context"
	"runtime"
	"testing"
)

// BenchmarkInFlightLimitContended: 16 goroutines per P take and release
// turns of a limit of 4, so most Acquires queue (the door at many clients).
func BenchmarkInFlightLimitContended(b *testing.B) {
	l := NewInFlightLimit(InFlightConfig{Max: 4})
	ctx := context.Background()
	b.SetParallelism(16)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			release, err := l.Acquire(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			release()
		}
	})
}

// BenchmarkInFlightLimitManyClients: 500 goroutines per P share a limit of
// 64 (the default), each holding its turn briefly, so the queue is long and
// every release hands a turn over (the door at 1,000 clients).
func BenchmarkInFlightLimitManyClients(b *testing.B) {
	l := NewInFlightLimit(InFlightConfig{Max: 64})
	ctx := context.Background()
	b.SetParallelism(500)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			release, err := l.Acquire(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			runtime.Gosched()
			release()
		}
	})
}

// BenchmarkInFlightLimitUncontended: 500 goroutines per P share a limit
// larger than them, so no Acquire queues (the door below its limit).
func BenchmarkInFlightLimitUncontended(b *testing.B) {
	l := NewInFlightLimit(InFlightConfig{Max: 1 << 20})
	ctx := context.Background()
	b.SetParallelism(500)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			release, err := l.Acquire(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			release()
		}
	})
}
