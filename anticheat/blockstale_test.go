package anticheat_test

import (
	"context"
	"database/sql"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/internal/testdb"
	"github.com/madang-io/madang/protocol"
)

// switchedBlocks routes to one of two real SQL stores: the live one, or
// one whose database refuses connections (the common database down).
type switchedBlocks struct {
	live, down *anticheat.SQLStore
	out        atomic.Bool
	reads      atomic.Int64 // reads that reached the store out
}

func (s *switchedBlocks) cur() *anticheat.SQLStore {
	if s.out.Load() {
		s.reads.Add(1)
		return s.down
	}
	return s.live
}
func (s *switchedBlocks) GetBlock(ctx context.Context, u int64, now time.Time) (anticheat.Block, bool, error) {
	return s.cur().GetBlock(ctx, u, now)
}
func (s *switchedBlocks) PutBlock(ctx context.Context, b anticheat.Block) error {
	return s.cur().PutBlock(ctx, b)
}
func (s *switchedBlocks) DeleteBlock(ctx context.Context, u int64) error {
	return s.cur().DeleteBlock(ctx, u)
}
func (s *switchedBlocks) ActiveBlocks(ctx context.Context, now time.Time, limit int) ([]anticheat.Block, error) {
	return s.cur().ActiveBlocks(ctx, now, limit)
}

// refusingStore is a SQL store on a port nothing listens on.
func refusingStore(t *testing.T) *anticheat.SQLStore {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	db, err := sql.Open("mysql", "root@tcp("+addr+")/test?timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := anticheat.NewSQLStore(t.Context(), db, anticheat.SQLConfig{Dialect: "mysql"})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// While the common database is down, the block check answers what it
// knew last (a blocked player stays blocked, the others keep playing)
// for up to MaxStale, trying the database again at most once a second;
// a user it never looked up, or an answer older than MaxStale, fails
// as unavailable; a database that refuses the statement (a bug) is not
// covered. Before MaxStale, every check past TTL failed.
func TestBlockCacheServesLastAnswerWhileBackendIsOut(t *testing.T) {
	ctx := context.Background()
	for _, whole := range []bool{false, true} {
		name := "per-user"
		if whole {
			name = "whole-list"
		}
		t.Run(name, func(t *testing.T) {
			sw := &switchedBlocks{live: newSQLStore(t, testdb.Backends()[0]), down: refusingStore(t)}
			cfg := anticheat.BlockCacheConfig{TTL: 10 * time.Second, WholeList: whole, MaxStale: time.Minute}
			c := anticheat.NewBlockCache(sw, cfg)
			if err := c.PutBlock(ctx, anticheat.Block{UserKey: 7, Reason: "bot", At: t0}); err != nil {
				t.Fatal(err)
			}
			for _, u := range []int64{7, 8} {
				if _, ok, err := c.GetBlock(ctx, u, t0); err != nil || ok != (u == 7) {
					t.Fatalf("user %d before the outage: %v %v", u, ok, err)
				}
			}
			sw.out.Store(true)
			at := t0.Add(11 * time.Second) // past TTL
			for i := range 5 {
				now := at.Add(time.Duration(i) * 100 * time.Millisecond)
				for _, u := range []int64{7, 8} {
					if _, ok, err := c.GetBlock(ctx, u, now); err != nil || ok != (u == 7) {
						t.Fatalf("user %d, database down, %v after the last read: blocked %v, err %v; want the last answer",
							u, now.Sub(t0), ok, err)
					}
				}
			}
			// One try for the list, or one per user, within the second.
			want := int64(2)
			if whole {
				want = 1
			}
			if n := sw.reads.Load(); n != want {
				t.Fatalf("%d reads of the down database within a second, want %d", n, want)
			}
			if st := c.Stats(); st.StaleAnswers != 10 || st.BackendOutages != uint64(want) {
				t.Fatalf("stats %+v, want 10 stale answers and %d outages", st, want)
			}
			_, _, err := c.GetBlock(ctx, 8, at.Add(1100*time.Millisecond))
			if err != nil || sw.reads.Load() != want+1 {
				t.Fatalf("after a second: %v, %d reads (want %d: tried again)", err, sw.reads.Load(), want+1)
			}
			// A user never looked up: nothing to stand in (the whole list
			// knows every user).
			_, ok, err := c.GetBlock(ctx, 9, at.Add(3*time.Second))
			if whole {
				if err != nil || ok {
					t.Fatalf("whole list, unknown user while down: %v %v, want not blocked", ok, err)
				}
			} else if protocol.CodeOf(err) != protocol.CodeUnavailable {
				t.Fatalf("per user, unknown user while down: %v, want unavailable", err)
			}
			// Older than MaxStale: unavailable.
			if _, _, err := c.GetBlock(ctx, 7, t0.Add(2*time.Minute)); protocol.CodeOf(err) != protocol.CodeUnavailable {
				t.Fatalf("past MaxStale: %v, want unavailable", err)
			}
			// Back: a block put meanwhile on the database is read.
			sw.out.Store(false)
			if err := sw.live.PutBlock(ctx, anticheat.Block{UserKey: 8, Reason: "bot", At: t0}); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := c.GetBlock(ctx, 8, t0.Add(3*time.Minute)); err != nil || !ok {
				t.Fatalf("database back: user 8 %v %v, want blocked", ok, err)
			}
		})
	}

	t.Run("off", func(t *testing.T) {
		sw := &switchedBlocks{live: newSQLStore(t, testdb.Backends()[0]), down: refusingStore(t)}
		c := anticheat.NewBlockCache(sw, anticheat.BlockCacheConfig{TTL: 10 * time.Second, MaxStale: -1})
		if _, _, err := c.GetBlock(ctx, 7, t0); err != nil {
			t.Fatal(err)
		}
		sw.out.Store(true)
		if _, _, err := c.GetBlock(ctx, 7, t0.Add(11*time.Second)); protocol.CodeOf(err) != protocol.CodeUnavailable {
			t.Fatalf("MaxStale < 0, database down: %v, want unavailable", err)
		}
	})

	t.Run("bug", func(t *testing.T) {
		// A store without its tables: the database refuses the statement.
		bug, err := anticheat.NewSQLStore(t.Context(), testdb.SQLite(t, "notables"), anticheat.SQLConfig{})
		if err != nil {
			t.Fatal(err)
		}
		sw := &switchedBlocks{live: newSQLStore(t, testdb.Backends()[0]), down: bug}
		c := anticheat.NewBlockCache(sw, anticheat.BlockCacheConfig{TTL: 10 * time.Second, WholeList: true})
		if _, _, err := c.GetBlock(ctx, 7, t0); err != nil {
			t.Fatal(err)
		}
		sw.out.Store(true)
		if _, _, err := c.GetBlock(ctx, 7, t0.Add(11*time.Second)); err == nil {
			t.Fatal("a statement the database refuses was covered by the last answer")
		}
	})
}
