package session_test

import (
	"context"
	"fmt"
	"github.com/madang-io/madang/session/sessiontest"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/session"
	"github.com/redis/go-redis/v9"
)

// BenchmarkBoardBatchSubmit compares Board.SubmitBatch of 10,000
// submissions (one pipeline: ZADD GT per score for best, the Lua script per
// score for incr, then PEXPIRE) with a raw go-redis pipeline of 10,000 plain
// ZADDs on the same server. Each iteration runs one raw batch and one board
// batch in turn (wall time: the Redis server shares the 2 cores), so both
// share the machine's noise; it reports both throughputs and board/raw. Both
// start from the same (int64 user key, int64 score) pairs. The goal: at least
// 0.5 for best.
func BenchmarkBoardBatchSubmit(b *testing.B) {
	const batch = 10000
	ctx := context.Background()
	c := testredis.Client(b)
	prefix := testredis.Prefix(b, c)
	store, err := session.NewBoardRedisStore([]redis.UniversalClient{c}, session.BoardRedisConfig{Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	subs := make([]session.ScoreSubmit, batch)
	for i := range subs {
		subs[i] = session.ScoreSubmit{User: rng.Int64N(1_000_000), Score: rng.Int64N(1_000_000_000)}
	}
	for _, op := range []session.ScoreOp{session.ScoreBest, session.ScoreIncr} {
		b.Run(op.String(), func(b *testing.B) {
			board, err := session.NewBoard(store, "bench-"+op.String(), session.BoardConfig{})
			if err != nil {
				b.Fatal(err)
			}
			mine := make([]session.ScoreSubmit, len(subs))
			for i, s := range subs {
				s.Op = op
				if op == session.ScoreIncr {
					s.Score = 1
				}
				mine[i] = s
			}
			rawKey := prefix + "raw-" + op.String()
			var raw, ours time.Duration
			n := 0
			for b.Loop() {
				start := time.Now()
				// Raw starts from the same (user key, score) pairs.
				_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
					for _, s := range subs {
						p.ZAdd(ctx, rawKey, redis.Z{Member: strconv.FormatInt(s.User, 10), Score: float64(s.Score)})
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				mid := time.Now()
				if err := board.SubmitBatch(ctx, mine); err != nil {
					b.Fatal(err)
				}
				raw += mid.Sub(start)
				ours += time.Since(mid)
				n++
			}
			rawRate := float64(n*batch) / raw.Seconds()
			ourRate := float64(n*batch) / ours.Seconds()
			b.ReportMetric(rawRate, "raw-scores/s")
			b.ReportMetric(ourRate, "board-scores/s")
			b.ReportMetric(ourRate/rawRate, "board/raw")
		})
	}
}

// BenchmarkBoardMemory measures Rank, Top (a page of 10 at a random depth)
// and Around (n = 5) on memory boards of 10k, 100k and 1M users, built once.
// Each iteration runs a block of 64 operations on every size in turn, so the
// sizes share the machine's noise. It reports the thread's CPU time per
// operation for each size (time descheduled left out: the machine is shared)
// and the 1M/10k ratios of CPU and of wall time. The goal: 1M at most 3× 10k.
func BenchmarkBoardMemory(b *testing.B) {
	ctx := context.Background()
	sizes := []int{10_000, 100_000, 1_000_000}
	const picks = 1 << 16
	type fixture struct {
		board   *session.Board
		users   []int64
		cursors []string
	}
	fx := make([]fixture, len(sizes))
	for k, size := range sizes {
		clk := sessiontest.NewClock(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
		store := session.NewBoardMemoryStore(session.BoardMemoryConfig{Now: clk.Now})
		board, err := session.NewBoard(store, "bench", session.BoardConfig{Now: clk.Now})
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(2, uint64(size)))
		subs := make([]session.ScoreSubmit, 0, session.BoardMaxBatch)
		for u := 1; u <= size; u++ {
			subs = append(subs, session.ScoreSubmit{User: int64(u), Score: rng.Int64N(1_000_000_000)})
			if len(subs) == cap(subs) || u == size {
				if err := board.SubmitBatch(ctx, subs); err != nil {
					b.Fatal(err)
				}
				subs = subs[:0]
				clk.Advance(time.Second)
			}
		}
		// Random users and depths, precomputed so the loop measures the board.
		f := fixture{board: board, users: make([]int64, picks), cursors: make([]string, picks)}
		for i := range f.users {
			f.users[i] = 1 + rng.Int64N(int64(size))
			f.cursors[i] = strconv.Itoa(rng.IntN(size - 10))
		}
		fx[k] = f
	}
	ops := []struct {
		name string
		run  func(f *fixture, i int) error
	}{
		{"Rank", func(f *fixture, i int) error {
			_, err := f.board.Rank(ctx, f.users[i%picks])
			return err
		}},
		{"Top", func(f *fixture, i int) error {
			page, _, err := f.board.Top(ctx, 10, f.cursors[i%picks])
			if err == nil && len(page) != 10 {
				err = fmt.Errorf("page of %d", len(page))
			}
			return err
		}},
		{"Around", func(f *fixture, i int) error {
			_, err := f.board.Around(ctx, f.users[i%picks], 5)
			return err
		}},
	}
	const block = 64
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			cpuNow, release := boardThreadClock()
			defer release()
			wall := make([]time.Duration, len(sizes))
			cpu := make([]time.Duration, len(sizes))
			i, n := 0, 0
			for b.Loop() {
				for k := range fx {
					start, cstart := time.Now(), cpuNow()
					for j := 0; j < block; j++ {
						if err := op.run(&fx[k], i+j); err != nil {
							b.Fatal(err)
						}
					}
					cpu[k] += cpuNow() - cstart
					wall[k] += time.Since(start)
				}
				i += block
				n += block
			}
			per := func(d []time.Duration, k int) float64 { return float64(d[k].Nanoseconds()) / float64(n) }
			last := len(sizes) - 1
			for k, size := range sizes {
				b.ReportMetric(per(cpu, k), fmt.Sprintf("cpu-ns/op@%dk", size/1000))
			}
			b.ReportMetric(per(cpu, last)/per(cpu, 0), "cpu-ratio-1M/10k")
			b.ReportMetric(per(wall, last)/per(wall, 0), "wall-ratio-1M/10k")
		})
	}
}
