package game

import (
	"context"
	"errors"
	"fmt"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
)

// Ranking limits and defaults.
const (
	// DefaultRankTop and MaxRankTop: rank.top's n when 0, and its largest.
	DefaultRankTop = 10
	MaxRankTop     = 100
	// DefaultRankAround and MaxRankAround: rank.around's n when 0 (entries
	// above and below the player), and its largest.
	DefaultRankAround = 5
	MaxRankAround     = 50
)

// SeasonView is a ranking season.
type SeasonView struct {
	ID    string `json:"id"`    // "w" + YYYYMMDD of its Monday
	Start int64  `json:"start"` // Unix ms
	End   int64  `json:"end"`   // Unix ms, first instant after it
}

// RankEntry is one place on the ranking.
type RankEntry struct {
	UserKey int64 `json:"user_key"`
	Score   int64 `json:"score"`
	Rank    int64 `json:"rank"` // 1 is the best
	At      int64 `json:"at"`   // when the score was reached, Unix ms
}

// RankTop is rank.top's payload.
type RankTop struct {
	N      int    `json:"n"`      // 1..MaxRankTop, 0: DefaultRankTop
	Cursor string `json:"cursor"` // "" for the first page, then next
}

// RankPage is the answer of rank.top and rank.around.
type RankPage struct {
	Season  SeasonView  `json:"season"`
	Entries []RankEntry `json:"entries"`
	// Next (rank.top) is the cursor of the next page, "" after the last.
	Next string `json:"next,omitempty"`
}

// RankAround is rank.around's payload.
type RankAround struct {
	N int `json:"n"` // 1..MaxRankAround, 0: DefaultRankAround
}

// RankMe is rank.me's answer.
type RankMe struct {
	Season SeasonView `json:"season"`
	Ranked bool       `json:"ranked"` // false: no score this season
	Entry  *RankEntry `json:"entry,omitempty"`
}

func (g *Game) season() (SeasonView, error) {
	s, err := g.board.Season()
	if err != nil {
		return SeasonView{}, fmt.Errorf("game: season: %w", err)
	}
	return SeasonView{ID: s.ID, Start: s.Start.UnixMilli(), End: s.End.UnixMilli()}, nil
}

func entries(es []session.BoardEntry) []RankEntry {
	out := make([]RankEntry, len(es))
	for i, e := range es {
		out[i] = RankEntry{UserKey: e.User, Score: e.Score, Rank: e.Rank, At: e.At.UnixMilli()}
	}
	return out
}

func (g *Game) rankTop(ctx context.Context, req *protocol.Request, in RankTop) (RankPage, error) {
	if _, err := userOf(req); err != nil {
		return RankPage{}, err
	}
	if in.N == 0 {
		in.N = DefaultRankTop
	}
	if in.N < 0 || in.N > MaxRankTop {
		return RankPage{}, badRequest("n must be 1..%d", MaxRankTop)
	}
	season, err := g.season()
	if err != nil {
		return RankPage{}, err
	}
	es, next, err := g.board.Top(ctx, in.N, in.Cursor)
	if err != nil {
		return RankPage{}, fmt.Errorf("game: rank.top: %w", err) // a bad cursor carries CodeBadRequest
	}
	return RankPage{Season: season, Entries: entries(es), Next: next}, nil
}

func (g *Game) rankMe(ctx context.Context, req *protocol.Request, _ struct{}) (RankMe, error) {
	userKey, err := userOf(req)
	if err != nil {
		return RankMe{}, err
	}
	season, err := g.season()
	if err != nil {
		return RankMe{}, err
	}
	e, err := g.board.Rank(ctx, userKey)
	if errors.Is(err, session.ErrBoardNotFound) {
		return RankMe{Season: season}, nil
	}
	if err != nil {
		return RankMe{}, fmt.Errorf("game: rank.me: %w", err)
	}
	mine := entries([]session.BoardEntry{e})[0]
	return RankMe{Season: season, Ranked: true, Entry: &mine}, nil
}

func (g *Game) rankAround(ctx context.Context, req *protocol.Request, in RankAround) (RankPage, error) {
	userKey, err := userOf(req)
	if err != nil {
		return RankPage{}, err
	}
	if in.N == 0 {
		in.N = DefaultRankAround
	}
	if in.N < 0 || in.N > MaxRankAround {
		return RankPage{}, badRequest("n must be 1..%d", MaxRankAround)
	}
	season, err := g.season()
	if err != nil {
		return RankPage{}, err
	}
	es, err := g.board.Around(ctx, userKey, in.N)
	if errors.Is(err, session.ErrBoardNotFound) {
		return RankPage{Season: season, Entries: []RankEntry{}}, nil
	}
	if err != nil {
		return RankPage{}, fmt.Errorf("game: rank.around: %w", err)
	}
	return RankPage{Season: season, Entries: entries(es)}, nil
}
