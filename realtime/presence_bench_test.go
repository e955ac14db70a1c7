package realtime_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/realtime"
)

// BenchmarkPresenceCount: Count of a 100-user channel while 1,000 or
// 50,000 other users are online elsewhere. Bounded cost means the two
// figures match: Count never looks at other channels' users.
//
//	MADANG_REDIS_ADDR=127.0.0.1:6379 go test -run '^$' -bench PresenceCount ./realtime/
func BenchmarkPresenceCount(b *testing.B) {
	backends := map[string]func(b *testing.B) realtime.Presence{
		"memory": func(b *testing.B) realtime.Presence {
			return realtime.NewMemoryPresence(realtime.PresenceConfig{TTL: time.Hour})
		},
		"redis": func(b *testing.B) realtime.Presence {
			c := testredis.Client(b)
			p, err := realtime.NewRedisPresence(c, realtime.PresenceConfig{TTL: time.Hour, Prefix: testredis.Prefix(b, c)})
			if err != nil {
				b.Fatal(err)
			}
			return p
		},
	}
	for _, backend := range []string{"memory", "redis"} {
		for _, others := range []int{1000, 50000} {
			b.Run(fmt.Sprintf("%s/others=%d", backend, others), func(b *testing.B) {
				p := backends[backend](b)
				ctx := context.Background()
				var es []realtime.PresenceEntry
				for i := range others + 100 {
					ch := fmt.Sprintf("world:%d", i%50)
					if i < 100 {
						ch = "guild:1"
					}
					es = append(es, realtime.PresenceEntry{
						PresenceConn: realtime.PresenceConn{UserKey: int64(i), Node: "n", ConnID: "c"},
						Channels:     []string{ch},
					})
				}
				if err := p.Touch(ctx, es...); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					n, err := p.Count(ctx, "guild:1")
					if err != nil || n != 100 {
						b.Fatalf("Count = %d, %v", n, err)
					}
				}
			})
		}
	}
}
