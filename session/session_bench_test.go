package session_test

import (
	"context"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/session"
)

// BenchmarkRedisGet compares Store.Get (one Lua script: validate, slide the
// TTL) and GetFrame (plus the counter check) with a raw go-redis GET of a
// value of similar size on the same client, in the same run. Goal: Get at
// most 1.3x the raw GET.
func BenchmarkRedisGet(b *testing.B) {
	c := testredis.Client(b)
	ctx := context.Background()
	s, err := session.NewRedisStore(session.Single(c), session.Config{Prefix: testredis.Prefix(b, c)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	sess, err := s.Create(ctx, session.CreateParams{UserKey: 10000001, ShardID: 1, ClientVersion: "1.2.3.4",
		Platform: "android", DeviceID: "device-0123456789", Country: "KR", Language: "ko",
		Attrs: map[string]string{"tier": "gold"}})
	if err != nil {
		b.Fatal(err)
	}
	rawKey := testredis.Prefix(b, c) + "raw"
	if err := c.Set(ctx, rawKey, make([]byte, 160), 0).Err(); err != nil {
		b.Fatal(err)
	}
	b.Run("raw-GET", func(b *testing.B) {
		for b.Loop() {
			if err := c.Get(ctx, rawKey).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Get(ctx, sess.Token); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Interleaved: each iteration times one raw GET and one Get, in
	// alternating order, so both see the same machine load; the ratio is
	// reported as get/raw.
	b.Run("interleaved", func(b *testing.B) {
		var raw, get time.Duration
		i := 0
		rawGet := func() {
			t0 := time.Now()
			if err := c.Get(ctx, rawKey).Err(); err != nil {
				b.Fatal(err)
			}
			raw += time.Since(t0)
		}
		sessGet := func() {
			t0 := time.Now()
			if _, err := s.Get(ctx, sess.Token); err != nil {
				b.Fatal(err)
			}
			get += time.Since(t0)
		}
		for b.Loop() {
			if i++; i%2 == 0 {
				rawGet()
				sessGet()
			} else {
				sessGet()
				rawGet()
			}
		}
		b.ReportMetric(float64(raw.Nanoseconds())/float64(b.N), "raw-ns/op")
		b.ReportMetric(float64(get.Nanoseconds())/float64(b.N), "get-ns/op")
		b.ReportMetric(float64(get)/float64(raw), "get/raw")
	})
	// Parallel: throughput with concurrent callers, where Redis' own CPU
	// (the Lua script) counts more than the network round trip.
	b.Run("parallel-raw-GET", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.Get(ctx, rawKey).Err(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("parallel-Get", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Get(ctx, sess.Token); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	var n uint64 = 1 << 32 // shared by the benchmark's runs: counters only grow
	b.Run("GetFrame", func(b *testing.B) {
		for b.Loop() {
			n++
			if _, err := s.GetFrame(ctx, sess.ID, n); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMemoryGet is the memory store's Get, for reference.
func BenchmarkMemoryGet(b *testing.B) {
	s := session.NewMemoryStore(session.Config{})
	defer s.Close()
	sess, err := s.Create(context.Background(), session.CreateParams{UserKey: 1, Attrs: map[string]string{"tier": "gold"}})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Get(context.Background(), sess.Token); err != nil {
			b.Fatal(err)
		}
	}
}
