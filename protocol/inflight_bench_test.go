package protocol

import (
	"context"
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
