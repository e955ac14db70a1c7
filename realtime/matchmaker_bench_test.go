package realtime_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/realtime"
	"github.com/redis/go-redis/v9"
)

// benchParallelism: goroutines per GOMAXPROCS, so a Redis round trip's wait
// does not leave the cores idle (many players ask room.match at once).
const benchParallelism = 8

// BenchmarkMatchmakerAdd: room.match's Matchmaker.Add from many goroutines,
// each a new player of one kind, groups of 2 (every second Add pops a
// group). fifo is the in-memory FIFOMatchmaker (one node only); redis and
// cluster the RedisMatchmaker (MADANG_REDIS_ADDR, MADANG_REDIS_CLUSTER);
// rpush-lpop the floor of a Redis queue: one pipeline of RPUSH and LPOP
// per Add on one key (one round trip, no dedupe, bound, expiry or groups).
func BenchmarkMatchmakerAdd(b *testing.B) {
	b.Run("fifo", func(b *testing.B) {
		benchMatchAdd(b, realtime.NewFIFOMatchmaker(2, 0))
	})
	b.Run("redis", func(b *testing.B) {
		benchMatchAdd(b, redisMatchmakers(b, testredis.Client(b), 1, realtime.RedisMatchmakerConfig{Size: 2})[0])
	})
	b.Run("cluster", func(b *testing.B) {
		benchMatchAdd(b, redisMatchmakers(b, testredis.Cluster(b), 1, realtime.RedisMatchmakerConfig{Size: 2})[0])
	})
	b.Run("rpush-lpop", func(b *testing.B) {
		c := testredis.Client(b)
		benchRPushLPop(b, c, testredis.Prefix(b, c)+"{mm:raid}:q")
	})
	b.Run("rpush-lpop-cluster", func(b *testing.B) {
		c := testredis.Cluster(b)
		benchRPushLPop(b, c, testredis.Prefix(b, c)+"{mm:raid}:q")
	})
}

func benchMatchAdd(b *testing.B, m realtime.Matchmaker) {
	var next atomic.Int64
	ctx := context.Background()
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Add(ctx, "raid", next.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func benchRPushLPop(b *testing.B, c redis.UniversalClient, key string) {
	var next atomic.Int64
	ctx := context.Background()
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u := strconv.FormatInt(next.Add(1), 10)
			_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.RPush(ctx, key, u)
				p.LPop(ctx, key)
				return nil
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
