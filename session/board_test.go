package session_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/session/sessiontest"
	"github.com/redis/go-redis/v9"
)

func TestBoardMemory(t *testing.T) {
	sessiontest.RunBoardTests(t, func(t *testing.T, now func() time.Time) session.BoardStore {
		return session.NewBoardMemoryStore(session.BoardMemoryConfig{Now: now})
	})
}

func boardNewRedisStore(t *testing.T, clients ...redis.UniversalClient) *session.BoardRedisStore {
	t.Helper()
	s, err := session.NewBoardRedisStore(clients, session.BoardRedisConfig{Prefix: testredis.Prefix(t, clients[0])})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBoardRedis(t *testing.T) {
	c := testredis.Client(t)
	sessiontest.RunBoardTests(t, func(t *testing.T, _ func() time.Time) session.BoardStore {
		return boardNewRedisStore(t, c)
	})
}

func TestBoardRedisCluster(t *testing.T) {
	c := testredis.Cluster(t)
	sessiontest.RunBoardTests(t, func(t *testing.T, _ func() time.Time) session.BoardStore {
		return boardNewRedisStore(t, c)
	})
}

// TestBoardMemoryDropsExpiredSeasons checks that the memory store frees a
// season after its TTL (the suite sees only that reads come back empty).
func TestBoardMemoryDropsExpiredSeasons(t *testing.T) {
	ctx := context.Background()
	clk := sessiontest.NewClock(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	store := session.NewBoardMemoryStore(session.BoardMemoryConfig{Now: clk.Now})
	b, err := session.NewBoard(store, "drop", session.BoardConfig{Now: clk.Now, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for day := 0; day < 3; day++ {
		if err := b.Submit(ctx, 1, 1, session.ScoreBest); err != nil {
			t.Fatal(err)
		}
		clk.Advance(24 * time.Hour)
	}
	// Days 1 and 2 ended more than an hour ago; the next write sweeps them.
	if err := b.Submit(ctx, 1, 1, session.ScoreBest); err != nil {
		t.Fatal(err)
	}
	if n := store.Seasons(); n != 1 {
		t.Fatalf("%d seasons kept, want 1", n)
	}
}

// TestBoardRedisSetsTTL checks the Redis key's TTL: season end + retention.
func TestBoardRedisSetsTTL(t *testing.T) {
	ctx := context.Background()
	c := testredis.Client(t)
	prefix := testredis.Prefix(t, c)
	store, err := session.NewBoardRedisStore([]redis.UniversalClient{c}, session.BoardRedisConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	clk := sessiontest.NewClock(time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)) // 2 h before the day ends
	b, err := session.NewBoard(store, "ttl", session.BoardConfig{Now: clk.Now, Retention: 3 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Submit(ctx, 1, 1, session.ScoreBest); err != nil {
		t.Fatal(err)
	}
	ttl, err := c.PTTL(ctx, prefix+"{b:ttl}:d20261125").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl > 5*time.Hour || ttl < 5*time.Hour-time.Minute {
		t.Fatalf("TTL %v, want 5h", ttl)
	}
}

// TestBoardRedisNodeChoice checks that a board's commands all go to the
// client BoardNodeIndex names, with two clients told apart by a hook.
func TestBoardRedisNodeChoice(t *testing.T) {
	ctx := context.Background()
	addr := testredis.Client(t).Options().Addr
	var clients []redis.UniversalClient
	counts := make([]int, 2)
	for i := range 2 {
		c := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { c.Close() })
		c.AddHook(boardCountHook{n: &counts[i]})
		clients = append(clients, c)
	}
	store := boardNewRedisStore(t, clients...)
	for _, name := range []string{"alpha", "beta", "gamma", "delta"} {
		counts[0], counts[1] = 0, 0
		b, err := session.NewBoard(store, name, session.BoardConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Submit(ctx, 1, 1, session.ScoreBest); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Rank(ctx, 1); err != nil {
			t.Fatal(err)
		}
		want := session.BoardNodeIndex(name, 2)
		if counts[want] < 2 || counts[1-want] != 0 {
			t.Fatalf("board %q: calls per client %v, want all on %d", name, counts, want)
		}
	}
}

type boardCountHook struct{ n *int }

func (h boardCountHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h boardCountHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { *h.n++; return next(ctx, cmd) }
}
func (h boardCountHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { *h.n++; return next(ctx, cmds) }
}

func TestBoardNodeIndex(t *testing.T) {
	// 32-bit FNV-1a of "alpha" is 0x...; the rule must never change, so
	// compare against the hash computed by hand from its definition.
	fnv := func(s string) uint32 {
		h := uint32(2166136261)
		for i := 0; i < len(s); i++ {
			h ^= uint32(s[i])
			h *= 16777619
		}
		return h
	}
	for _, name := range []string{"alpha", "weekly-pvp", "x"} {
		for _, n := range []int{2, 3, 7} {
			if got, want := session.BoardNodeIndex(name, n), int(fnv(name)%uint32(n)); got != want {
				t.Fatalf("BoardNodeIndex(%q, %d) = %d, want %d", name, n, got, want)
			}
		}
	}
	if session.BoardNodeIndex("alpha", 1) != 0 || session.BoardNodeIndex("alpha", 0) != 0 {
		t.Fatal("one node")
	}
}

// TestBoardRedisCorruptValue: a value no Board wrote (an infinity) is
// reported as ErrScoreRange, not decoded into a wrong score.
func TestBoardRedisCorruptValue(t *testing.T) {
	ctx := context.Background()
	c := testredis.Client(t)
	prefix := testredis.Prefix(t, c)
	store, err := session.NewBoardRedisStore([]redis.UniversalClient{c}, session.BoardRedisConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	clk := sessiontest.NewClock(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	b, err := session.NewBoard(store, "corrupt", session.BoardConfig{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	c.ZAdd(ctx, prefix+"{b:corrupt}:d20261125", redis.Z{Score: 1e300, Member: "5"})
	if _, err := b.Rank(ctx, 5); !errors.Is(err, session.ErrScoreRange) {
		t.Fatalf("Rank of a corrupt value: %v", err)
	}
	if err := b.Submit(ctx, 5, 1, session.ScoreIncr); !errors.Is(err, session.ErrScoreRange) {
		t.Fatalf("Incr of a corrupt value: %v", err)
	}
}

func TestScoreEncodeDecode(t *testing.T) {
	for _, c := range []struct{ score, slot int64 }{
		{0, 0}, {1, 0}, {-1, 0}, {session.ScoreMax, 0}, {session.ScoreMin, session.ScoreTimeSlots - 1},
		{session.ScoreMax, session.ScoreTimeSlots - 1}, {-12345, 777}, {987654321, 4000000},
	} {
		v, err := session.ScoreEncode(c.score, c.slot)
		if err != nil {
			t.Fatal(err)
		}
		if float64(int64(v)) != v || v >= 1<<53 || v <= -(1<<53) {
			t.Fatalf("encode(%d, %d) = %v: not an exact integer below 2^53", c.score, c.slot, v)
		}
		s, sl, err := session.ScoreDecode(v)
		if err != nil || s != c.score || sl != c.slot {
			t.Fatalf("decode(encode(%d, %d)) = %d, %d, %v", c.score, c.slot, s, sl, err)
		}
		// Order: a higher score beats any slot; an earlier slot beats a later.
		if c.slot > 0 {
			earlier, _ := session.ScoreEncode(c.score, c.slot-1)
			if earlier <= v {
				t.Fatalf("earlier slot does not rank higher at %+v", c)
			}
		}
		if c.score < session.ScoreMax {
			higher, _ := session.ScoreEncode(c.score+1, session.ScoreTimeSlots-1)
			if higher <= v {
				t.Fatalf("higher score does not rank higher at %+v", c)
			}
		}
	}
	for _, bad := range []struct{ score, slot int64 }{
		{session.ScoreMax + 1, 0}, {session.ScoreMin - 1, 0}, {0, -1}, {0, session.ScoreTimeSlots},
	} {
		if _, err := session.ScoreEncode(bad.score, bad.slot); err == nil {
			t.Fatalf("encode(%d, %d) accepted", bad.score, bad.slot)
		}
	}
	nan := 0.0
	for _, v := range []float64{nan / nan, 1 / nan, -1 / nan, 0.5, 1 << 53, -(1 << 53), 1e300} {
		if _, _, err := session.ScoreDecode(v); !errors.Is(err, session.ErrScoreRange) {
			t.Fatalf("decode(%v): %v", v, err)
		}
	}
}

func TestScoreFromFloat(t *testing.T) {
	zero := 0.0
	for _, f := range []float64{zero / zero, 1 / zero, -1 / zero, 0.5, -1.25, session.ScoreMax + 1, session.ScoreMin - 1, 1e300} {
		if _, err := session.ScoreFromFloat(f); !errors.Is(err, session.ErrScoreRange) || protocol.CodeOf(err) != protocol.CodeBadRequest {
			t.Fatalf("ScoreFromFloat(%v): %v", f, err)
		}
	}
	for _, f := range []float64{0, -7, 1500, session.ScoreMax, session.ScoreMin} {
		if got, err := session.ScoreFromFloat(f); err != nil || float64(got) != f {
			t.Fatalf("ScoreFromFloat(%v) = %d, %v", f, got, err)
		}
	}
}

// FuzzBoardScoreDecode: decoding any float64 never panics, and whatever
// decodes encodes back to the same value.
func FuzzBoardScoreDecode(f *testing.F) {
	for _, v := range []float64{0, 1, -1, 4194303, 4194304, -4194305, 9007199254740991, -9007199254740991, 0.5, 1e300} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		score, slot, err := session.ScoreDecode(v)
		if err != nil {
			if !errors.Is(err, session.ErrScoreRange) {
				t.Fatalf("decode(%v): untyped error %v", v, err)
			}
			return
		}
		back, err := session.ScoreEncode(score, slot)
		if err != nil || back != v {
			t.Fatalf("decode(%v) = %d, %d; encodes to %v, %v", v, score, slot, back, err)
		}
	})
}

// TestBoardMemoryConcurrentSeasons runs writers and readers on two boards
// while the clock moves through many days, so seasons are created and swept
// under load (run with -race). Every call must succeed, and in the end only
// the seasons within retention are kept.
func TestBoardMemoryConcurrentSeasons(t *testing.T) {
	ctx := context.Background()
	clk := sessiontest.NewClock(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	store := session.NewBoardMemoryStore(session.BoardMemoryConfig{Now: clk.Now})
	var boards []*session.Board
	for _, name := range []string{"a", "b"} {
		b, err := session.NewBoard(store, name, session.BoardConfig{Now: clk.Now, Retention: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		boards = append(boards, b)
	}
	done := make(chan struct{})
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				b := boards[(w+i)%2]
				user := int64(w*1000 + i%50)
				if err := b.Submit(ctx, user, int64(i), session.ScoreOp(i%3)); err != nil {
					errs <- err
					return
				}
				if _, err := b.Rank(ctx, user); err != nil && !errors.Is(err, session.ErrBoardNotFound) {
					errs <- err // the season may have just turned
					return
				}
				if _, _, err := b.Top(ctx, 10, ""); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for day := 0; day < 40; day++ {
		clk.Advance(6 * time.Hour)
		time.Sleep(time.Millisecond)
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// A final write sweeps: at most today's and yesterday's season per board
	// remain (yesterday's only within its hour of retention).
	clk.Advance(2 * time.Hour)
	if err := boards[0].Submit(ctx, 1, 1, session.ScoreBest); err != nil {
		t.Fatal(err)
	}
	if n := store.Seasons(); n > 2 {
		t.Fatalf("%d seasons kept, want at most 2 (one per board)", n)
	}
}

// TestBoardRedisRoundTrips counts the calls each Board operation makes on
// the Redis client (a pipeline counts once): one each, once scripts are
// loaded.
func TestBoardRedisRoundTrips(t *testing.T) {
	ctx := context.Background()
	addr := testredis.Client(t).Options().Addr
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	n := 0
	c.AddHook(boardCountHook{n: &n})
	store := boardNewRedisStore(t, c)
	b, err := session.NewBoard(store, "trips", session.BoardConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// Warm up: connect, load the scripts.
	if err := b.Submit(ctx, 1, 1, session.ScoreIncr); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Around(ctx, 1, 1); err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		name string
		run  func() error
	}{
		{"submit best", func() error { return b.Submit(ctx, 2, 5, session.ScoreBest) }},
		{"submit incr", func() error { return b.Submit(ctx, 2, 5, session.ScoreIncr) }},
		{"batch", func() error {
			return b.SubmitBatch(ctx, []session.ScoreSubmit{{User: 3, Score: 1}, {User: 4, Score: 2, Op: session.ScoreIncr}, {User: 5, Score: 3, Op: session.ScoreSet}})
		}},
		{"rank", func() error { _, err := b.Rank(ctx, 2); return err }},
		{"top", func() error { _, _, err := b.Top(ctx, 10, ""); return err }},
		{"around", func() error { _, err := b.Around(ctx, 2, 2); return err }},
		{"count", func() error { _, err := b.Count(ctx); return err }},
		{"remove", func() error { _, err := b.Remove(ctx, 5); return err }},
	}
	for _, op := range ops {
		n = 0
		if err := op.run(); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		if n != 1 {
			t.Fatalf("%s: %d calls, want 1", op.name, n)
		}
	}
}

func TestBoardForTest(t *testing.T) {
	ctx := context.Background()
	b, clk := sessiontest.BoardForTest(t, "game", session.BoardConfig{})
	if err := b.Submit(ctx, 1, 10, session.ScoreBest); err != nil {
		t.Fatal(err)
	}
	clk.Advance(24 * time.Hour)
	if n, err := b.Count(ctx); err != nil || n != 0 {
		t.Fatalf("next day: %d, %v; want an empty season", n, err)
	}
}

// TestBoardRedisStoreConfig: bad configurations fail with ErrBoardInvalid
// (no Redis needed: the constructor does not connect).
func TestBoardRedisStoreConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for _, tc := range []struct {
		name    string
		clients []redis.UniversalClient
		cfg     session.BoardRedisConfig
	}{
		{"no clients", nil, session.BoardRedisConfig{}},
		{"nil client", []redis.UniversalClient{nil}, session.BoardRedisConfig{}},
		{"brace in prefix", []redis.UniversalClient{c}, session.BoardRedisConfig{Prefix: "a{"}},
		{"negative resend window", []redis.UniversalClient{c}, session.BoardRedisConfig{ResendWindow: -time.Second}},
	} {
		if _, err := session.NewBoardRedisStore(tc.clients, tc.cfg); !errors.Is(err, session.ErrBoardInvalid) {
			t.Errorf("%s: %v, want ErrBoardInvalid", tc.name, err)
		}
	}
}

// TestBoardRedisResendRecord: each increment call leaves one record key,
// in the board's hash tag, that Redis expires after ResendWindow; a batch
// without increments leaves none.
func TestBoardRedisResendRecord(t *testing.T) {
	c := testredis.Client(t)
	ctx := context.Background()
	prefix := testredis.Prefix(t, c)
	store, err := session.NewBoardRedisStore([]redis.UniversalClient{c}, session.BoardRedisConfig{Prefix: prefix, ResendWindow: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b, err := session.NewBoard(store, "rec", session.BoardConfig{})
	if err != nil {
		t.Fatal(err)
	}
	records := func() []string {
		t.Helper()
		var keys []string
		it := c.Scan(ctx, 0, prefix+"{b:rec}:~*", 1000).Iterator()
		for it.Next(ctx) {
			keys = append(keys, it.Val())
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		return keys
	}
	if err := b.Submit(ctx, 1, 5, session.ScoreBest); err != nil {
		t.Fatal(err)
	}
	if keys := records(); len(keys) != 0 {
		t.Fatalf("records after a ZADD-only write: %v", keys)
	}
	if err := b.Submit(ctx, 1, 5, session.ScoreIncr); err != nil {
		t.Fatal(err)
	}
	keys := records()
	if len(keys) != 1 {
		t.Fatalf("records after one increment: %v, want 1", keys)
	}
	if ttl, err := c.PTTL(ctx, keys[0]).Result(); err != nil || ttl <= 0 || ttl > 10*time.Second {
		t.Fatalf("record TTL %v, %v; want within (0, 10s]", ttl, err)
	}
	if v, err := c.Get(ctx, keys[0]).Result(); err != nil || v != "1" {
		t.Fatalf("record %q, %v; want \"1\" (one applied submission)", v, err)
	}
}
