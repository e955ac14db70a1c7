package session_test

import (
	"context"
	"fmt"
	"time"

	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/session/sessiontest"
)

// A weekly PvP board kept in memory: submit scores, read the top, a user's
// rank and their neighbourhood.
func ExampleBoard() {
	ctx := context.Background()
	store := session.NewBoardMemoryStore(session.BoardMemoryConfig{})
	board, err := session.NewBoard(store, "pvp", session.BoardConfig{Period: session.SeasonWeekly, WeekStart: time.Monday})
	if err != nil {
		panic(err)
	}
	// Users 101..105 report their best scores.
	for user, score := range map[int64]int64{101: 1500, 102: 900, 103: 2100, 104: 1200, 105: 1800} {
		if err := board.Submit(ctx, user, score, session.ScoreBest); err != nil {
			panic(err)
		}
	}
	_ = board.Submit(ctx, 102, 800, session.ScoreBest)  // lower than 900: kept at 900
	_ = board.Submit(ctx, 104, 1000, session.ScoreIncr) // 1200 + 1000 = 2200: now first

	top, _, _ := board.Top(ctx, 3, "")
	for _, e := range top {
		fmt.Printf("#%d user %d: %d\n", e.Rank, e.User, e.Score)
	}
	me, _ := board.Rank(ctx, 101)
	fmt.Printf("user 101 is #%d of %d\n", me.Rank, boardMust(board.Count(ctx)))
	near, _ := board.Around(ctx, 102, 1) // the last: the window shifts up
	for _, e := range near {
		fmt.Printf("near: #%d user %d\n", e.Rank, e.User)
	}
	// Output:
	// #1 user 104: 2200
	// #2 user 103: 2100
	// #3 user 105: 1800
	// user 101 is #4 of 5
	// near: #3 user 105
	// near: #4 user 101
	// near: #5 user 102
}

// Paging through a board with the cursor Top returns.
func ExampleBoard_Top() {
	ctx := context.Background()
	board, _ := session.NewBoard(session.NewBoardMemoryStore(session.BoardMemoryConfig{}), "stage-7", session.BoardConfig{})
	subs := make([]session.ScoreSubmit, 0, 5)
	for user := int64(1); user <= 5; user++ {
		subs = append(subs, session.ScoreSubmit{User: user, Score: user * 100})
	}
	_ = board.SubmitBatch(ctx, subs) // one call, one pipeline on Redis

	cursor := ""
	for page := 1; ; page++ {
		entries, next, err := board.Top(ctx, 2, cursor)
		if err != nil {
			panic(err)
		}
		fmt.Print("page ", page, ":")
		for _, e := range entries {
			fmt.Print(" ", e.User)
		}
		fmt.Println()
		if next == "" {
			break
		}
		cursor = next
	}
	// Output:
	// page 1: 5 4
	// page 2: 3 2
	// page 3: 1
}

// Seasons switch by time: at midnight in the board's zone a daily board
// starts empty, and yesterday's results stay readable until they expire.
func ExampleBoard_seasons() {
	ctx := context.Background()
	clk := sessiontest.NewClock(time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC))
	store := session.NewBoardMemoryStore(session.BoardMemoryConfig{Now: clk.Now})
	board, _ := session.NewBoard(store, "daily-dungeon", session.BoardConfig{Now: clk.Now, Retention: 48 * time.Hour})

	// Equal scores: the earlier submission ranks first.
	_ = board.Submit(ctx, 7, 300, session.ScoreBest)
	clk.Advance(time.Minute)
	_ = board.Submit(ctx, 8, 300, session.ScoreBest)
	yesterday, _ := board.Season()

	clk.Advance(time.Hour) // past midnight UTC
	today, _ := board.Season()
	fmt.Println("today:", today.ID, "users:", boardMust(board.Count(ctx)))

	top, _, _ := board.In(yesterday).Top(ctx, 10, "")
	for _, e := range top {
		fmt.Printf("%s #%d user %d at %s\n", yesterday.ID, e.Rank, e.User, e.At.Format("15:04"))
	}
	// Output:
	// today: d20261126 users: 0
	// d20261125 #1 user 7 at 23:00
	// d20261125 #2 user 8 at 23:01
}

func boardMust[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
