package game

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/shard"
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
	UserKey int64  `json:"user_key"`
	Name    string `json:"name"` // the player's name ("" if it could not be read)
	Score   int64  `json:"score"`
	Rank    int64  `json:"rank"` // 1 is the best
	At      int64  `json:"at"`   // when the score was reached, Unix ms
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

// withNames fills the entries' names: one query per game database holding
// some of them (on its read replica when there is one). A failure is logged
// and leaves names empty: the ranking is still served.
func (g *Game) withNames(ctx context.Context, es []RankEntry) []RankEntry {
	byDB := map[int][]int{} // database id → entry indexes
	for i, e := range es {
		id, ok := g.cfg.Router.LookupID(e.UserKey)
		if !ok {
			continue
		}
		byDB[id] = append(byDB[id], i)
	}
	for _, idx := range byDB {
		if err := g.namesOn(ctx, es, idx); err != nil {
			g.log.Warn("game: ranking names", "err", err)
		}
	}
	return es
}

func (g *Game) namesOn(ctx context.Context, es []RankEntry, idx []int) error {
	db, err := g.cfg.Router.ReadDB(ctx, es[idx[0]].UserKey)
	if err != nil {
		return err
	}
	q := "SELECT user_key, name FROM players WHERE user_key IN (?" + strings.Repeat(", ?", len(idx)-1) + ")"
	args := make([]any, len(idx))
	at := make(map[int64]int, len(idx))
	for k, i := range idx {
		args[k] = es[i].UserKey
		at[es[i].UserKey] = i
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var user int64
		var name string
		if err := rows.Scan(&user, &name); err != nil {
			return err
		}
		if i, ok := at[user]; ok {
			es[i].Name = name
		}
	}
	return rows.Err()
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
	return RankPage{Season: season, Entries: g.withNames(ctx, entries(es)), Next: next}, nil
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
	mine := g.withNames(ctx, entries([]session.BoardEntry{e}))[0]
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
	return RankPage{Season: season, Entries: g.withNames(ctx, entries(es))}, nil
}

// RebuildRanking submits, from every game database, each player's best win
// score of the current season (dungeon_runs) to the ranking, keeping better
// scores already there (session.ScoreBest), and returns how many players it
// submitted. Run it at start with a board store that does not survive a
// restart (the embedded memory store) or after a board backend lost its
// data; scores are also lost when a submission after a finish's commit
// fails, and this puts them back. Ties among rebuilt scores are ordered by
// the rebuild's time, not the original finish times.
func (g *Game) RebuildRanking(ctx context.Context) (int, error) {
	s, err := g.board.Season()
	if err != nil {
		return 0, fmt.Errorf("game: rebuild ranking: %w", err)
	}
	var mu sync.Mutex
	total := 0
	err = g.cfg.Router.ForEach(ctx, func(ctx context.Context, _ shard.Database, db *sql.DB) error {
		rows, err := db.QueryContext(ctx, "SELECT user_key, MAX(score) FROM dungeon_runs WHERE result = ? AND score > 0 AND finished_at >= ? AND finished_at < ? GROUP BY user_key",
			ResultWin, s.Start.UnixMilli(), s.End.UnixMilli())
		if err != nil {
			return err
		}
		var subs []session.ScoreSubmit
		for rows.Next() {
			var sub session.ScoreSubmit
			if err := rows.Scan(&sub.User, &sub.Score); err != nil {
				rows.Close()
				return err
			}
			sub.Op = session.ScoreBest
			subs = append(subs, sub)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for len(subs) > 0 {
			n := min(len(subs), session.BoardMaxBatch)
			if err := g.board.SubmitBatch(ctx, subs[:n]); err != nil {
				return err
			}
			mu.Lock()
			total += n
			mu.Unlock()
			subs = subs[n:]
		}
		return nil
	})
	if err != nil {
		return total, fmt.Errorf("game: rebuild ranking: %w", err)
	}
	return total, nil
}
