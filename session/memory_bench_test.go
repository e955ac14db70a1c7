package session_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/madang-io/madang/session"
)

// BenchmarkMemoryGetFrameManyUsers: 500 goroutines per P, each a user of
// its own with a session, send frames (GetFrame with a growing counter)
// and a Get, as the game server's 1,000 clients do.
func BenchmarkMemoryGetFrameManyUsers(b *testing.B) {
	s := session.NewMemoryStore(session.Config{})
	defer s.Close()
	ctx := context.Background()
	const parallelism = 500
	users := make([]*session.Session, parallelism*runtime.GOMAXPROCS(0))
	for i := range users {
		sess, err := s.Create(ctx, session.CreateParams{UserKey: int64(i + 1)})
		if err != nil {
			b.Fatal(err)
		}
		users[i] = sess
	}
	var next atomic.Int64
	b.SetParallelism(parallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		sess := users[next.Add(1)-1]
		var n uint64
		for pb.Next() {
			n++
			if _, err := s.GetFrame(ctx, sess.ID, n); err != nil {
				b.Error(err)
				return
			}
			if n%4 == 0 {
				if _, err := s.Get(ctx, sess.Token); err != nil {
					b.Error(err)
					return
				}
			}
		}
	})
}
