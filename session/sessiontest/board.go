package sessiontest

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
)

// BoardStoreFunc returns a fresh, empty board store. A store that keeps time
// itself (BoardMemoryStore's expiry) must take it from now, the suite's
// clock (see Clock). Stores may share a backend between calls as long as
// each call's store sees only its own data (e.g. a random key prefix).
type BoardStoreFunc func(t *testing.T, now func() time.Time) session.BoardStore

// BoardSuiteStart is the fake clock's start in every board test: a
// Wednesday, 10:00 in UTC (19:00 in Seoul).
var BoardSuiteStart = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// RunBoardTests runs the leaderboard conformance suite: operators, ties,
// pagination, Around at the edges, Remove and Count, batches, season
// switching by time, expiry of old seasons, concurrent increments and bad
// input, all through session.Board on stores from newStore.
func RunBoardTests(t *testing.T, newStore BoardStoreFunc) {
	type env struct {
		clk   *Clock
		store session.BoardStore
		ctx   context.Context
	}
	setup := func(t *testing.T) env {
		clk := NewClock(BoardSuiteStart)
		return env{clk: clk, store: newStore(t, clk.Now), ctx: context.Background()}
	}
	board := func(t *testing.T, e env, name string, cfg session.BoardConfig) *session.Board {
		t.Helper()
		cfg.Now = e.clk.Now
		b, err := session.NewBoard(e.store, name, cfg)
		if err != nil {
			t.Fatalf("NewBoard: %v", err)
		}
		return b
	}

	t.Run("Operators", func(t *testing.T) {
		e := setup(t)
		b := board(t, e, "ops", session.BoardConfig{})
		steps := []struct {
			op    session.ScoreOp
			score int64
			want  int64
		}{
			{session.ScoreBest, 100, 100},
			{session.ScoreBest, 50, 100}, // lower: kept
			{session.ScoreBest, 120, 120},
			{session.ScoreSet, 30, 30}, // set may lower
			{session.ScoreIncr, 15, 45},
			{session.ScoreIncr, -50, -5},
			{session.ScoreBest, -10, -5},
			{session.ScoreSet, session.ScoreMax, session.ScoreMax},
			{session.ScoreSet, session.ScoreMin, session.ScoreMin},
		}
		for i, s := range steps {
			e.clk.Advance(time.Second)
			if err := b.Submit(e.ctx, 7, s.score, s.op); err != nil {
				t.Fatalf("step %d: %v %d: %v", i, s.op, s.score, err)
			}
			got, err := b.Score(e.ctx, 7)
			if err != nil || got != s.want {
				t.Fatalf("step %d: %v %d: score %d, %v; want %d", i, s.op, s.score, got, err, s.want)
			}
		}
		// Incr on an absent user starts from 0.
		if err := b.Submit(e.ctx, 8, 9, session.ScoreIncr); err != nil {
			t.Fatal(err)
		}
		if got, _ := b.Score(e.ctx, 8); got != 9 {
			t.Fatalf("incr from absent: %d, want 9", got)
		}
	})

	t.Run("Ties", func(t *testing.T) {
		e := setup(t)
		b := board(t, e, "ties", session.BoardConfig{})
		// 3, 1, 2 reach 100 in that order, one second apart.
		for _, u := range []int64{3, 1, 2} {
			if err := b.Submit(e.ctx, u, 100, session.ScoreBest); err != nil {
				t.Fatal(err)
			}
			e.clk.Advance(time.Second)
		}
		// 3 submitting 100 again later changes nothing: it keeps first place.
		if err := b.Submit(e.ctx, 3, 100, session.ScoreBest); err != nil {
			t.Fatal(err)
		}
		// 4 reaches 100 by increments, last.
		e.clk.Advance(time.Second)
		for _, d := range []int64{60, 40} {
			if err := b.Submit(e.ctx, 4, d, session.ScoreIncr); err != nil {
				t.Fatal(err)
			}
		}
		// 5 is higher, later: first.
		if err := b.Submit(e.ctx, 5, 101, session.ScoreBest); err != nil {
			t.Fatal(err)
		}
		wantOrder(t, b, []int64{5, 3, 1, 2, 4})
		top, _, err := b.Top(e.ctx, 10, "")
		if err != nil {
			t.Fatal(err)
		}
		if !top[1].At.Equal(BoardSuiteStart) || !top[2].At.Equal(BoardSuiteStart.Add(time.Second)) {
			t.Fatalf("submission times: %v, %v", top[1].At, top[2].At)
		}
		// 1 being Set to 100 again now takes the new time: behind 2 and 4.
		if err := b.Submit(e.ctx, 1, 100, session.ScoreSet); err != nil {
			t.Fatal(err)
		}
		wantOrder(t, b, []int64{5, 3, 2, 4, 1})

		// Equal scores in the same time slot: by the user key's decimal
		// string, descending ("9" > "10" > "1"), the same in every store.
		b2 := board(t, e, "ties2", session.BoardConfig{})
		if err := b2.SubmitBatch(e.ctx, []session.ScoreSubmit{{User: 1, Score: 5}, {User: 10, Score: 5}, {User: 9, Score: 5}}); err != nil {
			t.Fatal(err)
		}
		wantOrder(t, b2, []int64{9, 10, 1})
	})

	t.Run("RankScoreRemoveCount", func(t *testing.T) {
		e := setup(t)
		b := board(t, e, "rank", session.BoardConfig{})
		for u := int64(1); u <= 5; u++ {
			if err := b.Submit(e.ctx, u, u*10, session.ScoreBest); err != nil {
				t.Fatal(err)
			}
		}
		for u := int64(1); u <= 5; u++ {
			en, err := b.Rank(e.ctx, u)
			if err != nil || en.Rank != 6-u || en.Score != u*10 || en.User != u {
				t.Fatalf("Rank(%d) = %+v, %v", u, en, err)
			}
		}
		if _, err := b.Rank(e.ctx, 99); !errors.Is(err, session.ErrBoardNotFound) {
			t.Fatalf("Rank(absent): %v, want ErrBoardNotFound", err)
		}
		if _, err := b.Score(e.ctx, 99); !errors.Is(err, session.ErrBoardNotFound) || protocol.CodeOf(err) != protocol.CodeBadRequest {
			t.Fatalf("Score(absent): %v (code %v)", err, protocol.CodeOf(err))
		}
		wantCount(t, b, 5)
		if ok, err := b.Remove(e.ctx, 4); !ok || err != nil {
			t.Fatalf("Remove(4) = %v, %v", ok, err)
		}
		if ok, err := b.Remove(e.ctx, 4); ok || err != nil {
			t.Fatalf("Remove(4) again = %v, %v", ok, err)
		}
		wantCount(t, b, 4)
		if en, _ := b.Rank(e.ctx, 3); en.Rank != 2 {
			t.Fatalf("after remove, Rank(3) = %d, want 2", en.Rank)
		}
		wantOrder(t, b, []int64{5, 3, 2, 1})
		// Other boards are separate.
		other := board(t, e, "rank-other", session.BoardConfig{})
		wantCount(t, other, 0)
		if _, err := other.Rank(e.ctx, 5); !errors.Is(err, session.ErrBoardNotFound) {
			t.Fatalf("other board: %v", err)
		}
	})

	t.Run("TopPagination", func(t *testing.T) {
		e := setup(t)
		b := board(t, e, "top", session.BoardConfig{})
		var subs []session.ScoreSubmit
		for u := int64(1); u <= 25; u++ {
			subs = append(subs, session.ScoreSubmit{User: u, Score: (u * 37) % 101})
		}
		if err := b.SubmitBatch(e.ctx, subs); err != nil {
			t.Fatal(err)
		}
		want := make([]int64, 0, 25)
		for u := int64(1); u <= 25; u++ {
			want = append(want, u)
		}
		sort.Slice(want, func(i, j int) bool { return (want[i]*37)%101 > (want[j]*37)%101 })
		var got []int64
		cursor, pages := "", 0
		for {
			page, next, err := b.Top(e.ctx, 10, cursor)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for i, en := range page {
				if en.Rank != int64(len(got)+1) {
					t.Fatalf("page %d entry %d: rank %d, want %d", pages, i, en.Rank, len(got)+1)
				}
				got = append(got, en.User)
			}
			if next == "" {
				break
			}
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
			cursor = next
		}
		if pages != 3 || !slices.Equal(got, want) {
			t.Fatalf("%d pages: %v, want 3 pages: %v", pages, got, want)
		}
		// Exactly one full page: no next cursor.
		if page, next, err := b.Top(e.ctx, 25, ""); err != nil || len(page) != 25 || next != "" {
			t.Fatalf("Top(25) = %d entries, next %q, %v", len(page), next, err)
		}
		// Past the end: empty.
		if page, next, err := b.Top(e.ctx, 10, "100"); err != nil || len(page) != 0 || next != "" {
			t.Fatalf("Top past end = %v, %q, %v", page, next, err)
		}
		empty := board(t, e, "top-empty", session.BoardConfig{})
		if page, next, err := empty.Top(e.ctx, 10, ""); err != nil || len(page) != 0 || next != "" {
			t.Fatalf("empty board Top = %v, %q, %v", page, next, err)
		}
	})

	t.Run("Around", func(t *testing.T) {
		e := setup(t)
		b := board(t, e, "around", session.BoardConfig{})
		var subs []session.ScoreSubmit
		for u := int64(1); u <= 20; u++ { // user u has rank u
			subs = append(subs, session.ScoreSubmit{User: u, Score: 1000 - u})
		}
		if err := b.SubmitBatch(e.ctx, subs); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			user     int64
			n        int
			from, to int64 // expected ranks (= users)
		}{
			{10, 2, 8, 12},  // middle
			{1, 2, 1, 5},    // top: shifted down
			{2, 2, 1, 5},    // near the top
			{20, 2, 16, 20}, // bottom: shifted up
			{19, 3, 14, 20}, // near the bottom
			{5, 100, 1, 20}, // larger than the board
		}
		for _, c := range cases {
			got, err := b.Around(e.ctx, c.user, c.n)
			if err != nil {
				t.Fatalf("Around(%d, %d): %v", c.user, c.n, err)
			}
			if len(got) != int(c.to-c.from+1) {
				t.Fatalf("Around(%d, %d): %d entries, want ranks %d..%d", c.user, c.n, len(got), c.from, c.to)
			}
			for i, en := range got {
				if r := c.from + int64(i); en.Rank != r || en.User != r || en.Score != 1000-r {
					t.Fatalf("Around(%d, %d)[%d] = %+v, want rank/user %d", c.user, c.n, i, en, r)
				}
			}
		}
		if _, err := b.Around(e.ctx, 99, 2); !errors.Is(err, session.ErrBoardNotFound) {
			t.Fatalf("Around(absent): %v", err)
		}
		small := board(t, e, "around-small", session.BoardConfig{})
		if err := small.Submit(e.ctx, 42, 1, session.ScoreBest); err != nil {
			t.Fatal(err)
		}
		if got, err := small.Around(e.ctx, 42, 3); err != nil || len(got) != 1 || got[0].User != 42 || got[0].Rank != 1 {
			t.Fatalf("one-entry Around = %+v, %v", got, err)
		}
		if err := small.Submit(e.ctx, 43, 2, session.ScoreBest); err != nil {
			t.Fatal(err)
		}
		if got, err := small.Around(e.ctx, 42, 3); err != nil || len(got) != 2 || got[0].User != 43 || got[1].User != 42 || got[1].Rank != 2 {
			t.Fatalf("two-entry Around = %+v, %v", got, err)
		}
	})

	t.Run("Batch", func(t *testing.T) {
		e := setup(t)
		b := board(t, e, "batch", session.BoardConfig{})
		model := map[int64]int64{}
		var subs []session.ScoreSubmit
		for i := int64(0); i < 600; i++ {
			u := (i * 7919) % 97
			op := session.ScoreOp(i % 3)
			sc := (i*31)%500 - 100
			subs = append(subs, session.ScoreSubmit{User: u, Score: sc, Op: op})
			old, ok := model[u]
			switch op {
			case session.ScoreBest:
				if !ok || sc > old {
					model[u] = sc
				}
			case session.ScoreSet:
				model[u] = sc
			case session.ScoreIncr:
				model[u] = old + sc
			}
		}
		if err := b.SubmitBatch(e.ctx, subs); err != nil {
			t.Fatal(err)
		}
		wantCount(t, b, int64(len(model)))
		for u, want := range model {
			if got, err := b.Score(e.ctx, u); err != nil || got != want {
				t.Fatalf("user %d: %d, %v; want %d", u, got, err, want)
			}
		}
		if err := b.SubmitBatch(e.ctx, nil); err != nil {
			t.Fatalf("empty batch: %v", err)
		}
		// A long run of increments (stores may split it into chunks), with
		// one overflowing increment in the middle that alone is refused.
		e.clk.Advance(time.Second)
		var incrs []session.ScoreSubmit
		for i := int64(0); i < 1000; i++ {
			incrs = append(incrs, session.ScoreSubmit{User: 1000 + i%3, Score: i, Op: session.ScoreIncr})
		}
		incrs[500].Score = session.ScoreMax // user 1000 + 500%3 = 1002
		err := b.SubmitBatch(e.ctx, incrs)
		if !errors.Is(err, session.ErrScoreRange) {
			t.Fatalf("long incr run with one overflow: %v", err)
		}
		sums := map[int64]int64{}
		for i, s := range incrs {
			if i != 500 {
				sums[s.User] += s.Score
			}
		}
		for u, want := range sums {
			if got, err := b.Score(e.ctx, u); err != nil || got != want {
				t.Fatalf("incr run, user %d: %d, %v; want %d", u, got, err, want)
			}
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		e := setup(t)
		b := board(t, e, "bad", session.BoardConfig{})
		if err := b.Submit(e.ctx, 1, 500, session.ScoreBest); err != nil {
			t.Fatal(err)
		}
		for _, sc := range []int64{session.ScoreMax + 1, session.ScoreMin - 1, 1 << 62, -1 << 63} {
			for _, op := range []session.ScoreOp{session.ScoreBest, session.ScoreSet, session.ScoreIncr} {
				err := b.Submit(e.ctx, 1, sc, op)
				if !errors.Is(err, session.ErrScoreRange) || protocol.CodeOf(err) != protocol.CodeBadRequest {
					t.Fatalf("Submit(%d, %v): %v, want ErrScoreRange", sc, op, err)
				}
			}
		}
		if err := b.Submit(e.ctx, 1, 5, session.ScoreOp(9)); !errors.Is(err, session.ErrBoardInvalid) {
			t.Fatalf("bad operator: %v", err)
		}
		// An increment past the maximum is refused and changes nothing.
		if err := b.Submit(e.ctx, 1, session.ScoreMax, session.ScoreIncr); !errors.Is(err, session.ErrScoreRange) {
			t.Fatalf("overflowing incr: %v", err)
		}
		if err := b.Submit(e.ctx, 2, session.ScoreMin, session.ScoreSet); err != nil {
			t.Fatal(err)
		}
		if err := b.Submit(e.ctx, 2, -1, session.ScoreIncr); !errors.Is(err, session.ErrScoreRange) {
			t.Fatalf("underflowing incr: %v", err)
		}
		// A batch with one bad score writes nothing.
		err := b.SubmitBatch(e.ctx, []session.ScoreSubmit{{User: 3, Score: 1}, {User: 4, Score: session.ScoreMax + 1}})
		if !errors.Is(err, session.ErrScoreRange) {
			t.Fatalf("bad batch: %v", err)
		}
		if _, err := b.Score(e.ctx, 3); !errors.Is(err, session.ErrBoardNotFound) {
			t.Fatalf("bad batch wrote its good part: %v", err)
		}
		// An overflowing increment inside a batch is skipped; the rest applies.
		err = b.SubmitBatch(e.ctx, []session.ScoreSubmit{
			{User: 5, Score: 10},
			{User: 1, Score: session.ScoreMax, Op: session.ScoreIncr},
			{User: 6, Score: 20},
		})
		if !errors.Is(err, session.ErrScoreRange) {
			t.Fatalf("batch with overflowing incr: %v", err)
		}
		for u, want := range map[int64]int64{1: 500, 2: session.ScoreMin, 5: 10, 6: 20} {
			if got, err := b.Score(e.ctx, u); err != nil || got != want {
				t.Fatalf("after refused input, user %d: %d, %v; want %d", u, got, err, want)
			}
		}
		if err := b.SubmitBatch(e.ctx, make([]session.ScoreSubmit, session.BoardMaxBatch+1)); !errors.Is(err, session.ErrBoardLimit) {
			t.Fatalf("oversized batch: %v", err)
		}
		wantCount(t, b, 4)
		for _, n := range []int{0, -1, session.BoardMaxPage + 1} {
			if _, _, err := b.Top(e.ctx, n, ""); !errors.Is(err, session.ErrBoardLimit) {
				t.Fatalf("Top(%d): %v", n, err)
			}
		}
		for _, n := range []int{0, -1, session.BoardMaxAround + 1} {
			if _, err := b.Around(e.ctx, 1, n); !errors.Is(err, session.ErrBoardLimit) {
				t.Fatalf("Around(%d): %v", n, err)
			}
		}
		if _, _, err := b.Top(e.ctx, session.BoardMaxPage, ""); err != nil {
			t.Fatalf("Top(max): %v", err)
		}
		for _, c := range []string{"x", "-1", "01", " 1", "1e3"} {
			if _, _, err := b.Top(e.ctx, 10, c); !errors.Is(err, session.ErrBoardCursor) {
				t.Fatalf("cursor %q: %v", c, err)
			}
		}
		for _, name := range []string{"", "a{b}", "a:b", "a b", string(make([]byte, session.BoardMaxNameLen+1))} {
			if _, err := session.NewBoard(e.store, name, session.BoardConfig{}); !errors.Is(err, session.ErrBoardInvalid) {
				t.Fatalf("name %q: %v", name, err)
			}
		}
	})

	t.Run("Seasons", func(t *testing.T) {
		e := setup(t)
		seoul := time.FixedZone("KST", 9*3600)
		b := board(t, e, "daily", session.BoardConfig{Location: seoul})
		// 10:00 UTC is 19:00 in Seoul; the day ends at 15:00 UTC.
		s, err := b.Season()
		if err != nil || s.ID != "d20261125" || !s.End.Equal(time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)) {
			t.Fatalf("season %+v, %v", s, err)
		}
		if err := b.Submit(e.ctx, 1, 10, session.ScoreBest); err != nil {
			t.Fatal(err)
		}
		e.clk.Set(time.Date(2026, 11, 25, 14, 59, 59, 0, time.UTC))
		if err := b.Submit(e.ctx, 2, 20, session.ScoreBest); err != nil {
			t.Fatal(err)
		}
		wantCount(t, b, 2)
		e.clk.Set(time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)) // midnight in Seoul
		if s2, _ := b.Season(); s2.ID != "d20261126" {
			t.Fatalf("next season %q", s2.ID)
		}
		wantCount(t, b, 0)
		if _, err := b.Rank(e.ctx, 1); !errors.Is(err, session.ErrBoardNotFound) {
			t.Fatalf("new season Rank: %v", err)
		}
		if err := b.Submit(e.ctx, 3, 5, session.ScoreBest); err != nil {
			t.Fatal(err)
		}
		// Yesterday is still readable, and closed for writes.
		old := b.In(s)
		wantOrder(t, old, []int64{2, 1})
		if err := old.Submit(e.ctx, 1, 99, session.ScoreBest); !errors.Is(err, session.ErrSeasonClosed) {
			t.Fatalf("write to closed season: %v", err)
		}
		if _, err := b.In(session.Season{ID: "bad{id}", Start: s.Start, End: s.End}).Count(e.ctx); !errors.Is(err, session.ErrBoardInvalid) {
			t.Fatalf("pinned to a bad season id: %v", err)
		}
		wantOrder(t, b, []int64{3})
		if en, err := b.Rank(e.ctx, 3); err != nil || !en.At.Equal(e.clk.Now()) {
			t.Fatalf("new season entry %+v, %v", en, err)
		}

		// Weekly and monthly ids, and the week start.
		for _, c := range []struct {
			cfg  session.BoardConfig
			id   string
			from time.Time
		}{
			{session.BoardConfig{Period: session.SeasonWeekly}, "w20261122", time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)},
			{session.BoardConfig{Period: session.SeasonWeekly, WeekStart: time.Monday}, "w20261123", time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)},
			{session.BoardConfig{Period: session.SeasonMonthly, Location: seoul}, "m202611", time.Date(2026, 11, 1, 0, 0, 0, 0, seoul)},
		} {
			bb := board(t, e, "periodic", c.cfg)
			s, err := bb.Season()
			if err != nil || s.ID != c.id || !s.Start.Equal(c.from) {
				t.Fatalf("%v: season %+v, %v; want %s from %v", c.cfg.Period, s, err, c.id, c.from)
			}
		}

		// A custom schedule with a gap.
		t0 := e.clk.Now()
		cb := board(t, e, "custom", session.BoardConfig{Period: session.SeasonCustom, Seasons: []session.Season{
			{ID: "s1", Start: t0, End: t0.Add(time.Hour)},
			{ID: "s2", Start: t0.Add(2 * time.Hour), End: t0.Add(3 * time.Hour)},
		}})
		if err := cb.Submit(e.ctx, 1, 1, session.ScoreBest); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(90 * time.Minute)
		if err := cb.Submit(e.ctx, 1, 1, session.ScoreBest); !errors.Is(err, session.ErrSeasonClosed) {
			t.Fatalf("submit in a gap: %v", err)
		}
		if _, err := cb.Count(e.ctx); !errors.Is(err, session.ErrSeasonClosed) {
			t.Fatalf("count in a gap: %v", err)
		}
		e.clk.Advance(time.Hour)
		if s, _ := cb.Season(); s.ID != "s2" {
			t.Fatalf("custom season %q", s.ID)
		}
		wantCount(t, cb, 0)
		if _, err := session.NewBoard(e.store, "long", session.BoardConfig{Period: session.SeasonCustom, Seasons: []session.Season{
			{ID: "x", Start: t0, End: t0.Add(session.ScoreTimeSlots*time.Second + time.Second)},
		}}); !errors.Is(err, session.ErrSeasonTooLong) {
			t.Fatalf("too long season: %v", err)
		}
		if _, err := session.NewBoard(e.store, "fine", session.BoardConfig{Period: session.SeasonDaily, TieResolution: time.Millisecond}); !errors.Is(err, session.ErrSeasonTooLong) {
			t.Fatalf("daily at 1ms resolution: %v", err)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		e := setup(t)
		b := board(t, e, "exp", session.BoardConfig{Retention: time.Hour})
		day1, _ := b.Season()
		if err := b.Submit(e.ctx, 1, 10, session.ScoreBest); err != nil {
			t.Fatal(err)
		}
		e.clk.Set(day1.End.Add(59 * time.Minute))
		wantCount(t, b.In(day1), 1)
		e.clk.Set(day1.End.Add(time.Hour))
		if err := b.Submit(e.ctx, 2, 10, session.ScoreBest); err != nil { // a write in the new season
			t.Fatal(err)
		}
		wantCount(t, b.In(day1), 0)
		if _, err := b.In(day1).Rank(e.ctx, 1); !errors.Is(err, session.ErrBoardNotFound) {
			t.Fatalf("expired season Rank: %v", err)
		}
		if page, _, err := b.In(day1).Top(e.ctx, 10, ""); err != nil || len(page) != 0 {
			t.Fatalf("expired season Top: %v, %v", page, err)
		}
		wantCount(t, b, 1)
	})

	t.Run("ConcurrentIncr", func(t *testing.T) {
		e := setup(t)
		b := board(t, e, "conc", session.BoardConfig{})
		const workers, each = 4, 50
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					if err := b.Submit(e.ctx, int64(i%5), 1, session.ScoreIncr); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for u := int64(0); u < 5; u++ {
			if got, err := b.Score(e.ctx, u); err != nil || got != workers*each/5 {
				t.Fatalf("user %d: %d, %v; want %d", u, got, err, workers*each/5)
			}
		}
	})
}

func wantCount(t *testing.T, b *session.Board, want int64) {
	t.Helper()
	n, err := b.Count(context.Background())
	if err != nil || n != want {
		t.Fatalf("Count = %d, %v; want %d", n, err, want)
	}
}

// wantOrder checks the whole board against users in rank order, through Top
// and Rank.
func wantOrder(t *testing.T, b *session.Board, users []int64) {
	t.Helper()
	ctx := context.Background()
	top, _, err := b.Top(ctx, session.BoardMaxPage, "")
	if err != nil {
		t.Fatalf("Top: %v", err)
	}
	got := make([]int64, len(top))
	for i, en := range top {
		got[i] = en.User
		if en.Rank != int64(i+1) {
			t.Fatalf("Top[%d].Rank = %d", i, en.Rank)
		}
	}
	if !slices.Equal(got, users) {
		t.Fatalf("order %v, want %v", got, users)
	}
	for i, u := range users {
		en, err := b.Rank(ctx, u)
		if err != nil || en.Rank != int64(i+1) {
			t.Fatalf("Rank(%d) = %d, %v; want %d", u, en.Rank, err, i+1)
		}
	}
	wantCount(t, b, int64(len(users)))
}

// BoardForTest returns a board called name on a fresh memory store, for game
// tests, with a Clock set to BoardSuiteStart that the test moves (to end a
// season, to order ties). cfg.Now is replaced by the Clock's Now.
func BoardForTest(t testing.TB, name string, cfg session.BoardConfig) (*session.Board, *Clock) {
	t.Helper()
	clk := NewClock(BoardSuiteStart)
	cfg.Now = clk.Now
	b, err := session.NewBoard(session.NewBoardMemoryStore(session.BoardMemoryConfig{Now: clk.Now}), name, cfg)
	if err != nil {
		t.Fatalf("sessiontest: board %q: %v", name, err)
	}
	return b, clk
}
