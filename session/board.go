package session

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/internal/clock"
	"github.com/madang-io/madang/protocol"
)

// The leaderboard errors: *Error values carrying a protocol result code,
// like the package's other errors. Compare with errors.Is; returned errors
// wrap them with detail and the "session: " prefix.
var (
	// ErrBoardNotFound: the user has no score in the season (Rank, Score,
	// Around). CodeBadRequest.
	ErrBoardNotFound = &Error{protocol.CodeBadRequest, "session: user not on the board"}
	// ErrScoreRange: a score, an increment or an increment's result is
	// outside [ScoreMin, ScoreMax]. Nothing is written for that submission.
	ErrScoreRange = &Error{protocol.CodeBadRequest, "session: score out of range"}
	// ErrBoardLimit: n of Top or Around is ≤ 0 or above BoardMaxPage /
	// BoardMaxAround, or a batch is longer than BoardMaxBatch.
	ErrBoardLimit = &Error{protocol.CodeBadRequest, "session: board request over limit"}
	// ErrBoardCursor: Top got a cursor it did not issue.
	ErrBoardCursor = &Error{protocol.CodeBadRequest, "session: bad board cursor"}
	// ErrBoardInvalid: a bad board name, season id, operator or config.
	ErrBoardInvalid = &Error{protocol.CodeBadRequest, "session: invalid board input"}
	// ErrSeasonTooLong: a season is longer than the score encoding can order
	// (ScoreTimeSlots × BoardConfig.TieResolution).
	ErrSeasonTooLong = &Error{protocol.CodeBadRequest, "session: season too long for the tie-break encoding"}
	// ErrSeasonClosed: no season is open at this time (a custom schedule with
	// a gap), or a write went to a season that is not the current one.
	ErrSeasonClosed = &Error{protocol.CodeBadRequest, "session: season closed"}
	// ErrBoardUnavailable: the backend failed or could not be reached; the
	// call may be retried. CodeUnavailable.
	ErrBoardUnavailable = &Error{protocol.CodeUnavailable, "session: board backend unavailable"}
)

// Limits of the leaderboard API. Calls over them fail with ErrBoardLimit.
const (
	// BoardMaxPage is the largest n of Board.Top.
	BoardMaxPage = 1000
	// BoardMaxAround is the largest n of Board.Around (a window of up to
	// 2n+1 entries).
	BoardMaxAround = 100
	// BoardMaxBatch is the longest batch of Board.SubmitBatch.
	BoardMaxBatch = 10000
	// BoardMaxNameLen bounds board names and custom season ids.
	BoardMaxNameLen = 64
)

// The score encoding. A stored value is
//
//	score × ScoreTimeSlots + (ScoreTimeSlots − 1 − slot)
//
// where slot is the submission time since the season start in units of
// BoardConfig.TieResolution. Every such value is an integer of magnitude
// below 2^53, so a float64 (a Redis sorted-set score) holds it exactly, and
// ordering values descending orders by score descending, then by submission
// time ascending: the earlier submission wins a tie.
const (
	// ScoreTimeBits is the number of low bits of the stored value that hold
	// the submission time.
	ScoreTimeBits = 22
	// ScoreTimeSlots is 2^ScoreTimeBits = 4,194,304 time slots per season:
	// 48 days 13 h 5 min 4 s at the default 1 s resolution.
	ScoreTimeSlots = 1 << ScoreTimeBits
	// ScoreMax is the largest score: 2^31 − 1 = 2,147,483,647.
	ScoreMax = 1<<(53-ScoreTimeBits) - 1
	// ScoreMin is the smallest score: −(2^31 − 1).
	ScoreMin = -ScoreMax
)

// ScoreEncode returns the stored value for score submitted in time slot
// slot (0 ≤ slot < ScoreTimeSlots). It fails with ErrScoreRange when score is
// outside [ScoreMin, ScoreMax] and ErrSeasonTooLong when slot is out of range.
func ScoreEncode(score, slot int64) (float64, error) {
	if score < ScoreMin || score > ScoreMax {
		return 0, fmt.Errorf("%w: %d not in [%d, %d]", ErrScoreRange, score, int64(ScoreMin), int64(ScoreMax))
	}
	if slot < 0 || slot >= ScoreTimeSlots {
		return 0, fmt.Errorf("%w: time slot %d not in [0, %d)", ErrSeasonTooLong, slot, ScoreTimeSlots)
	}
	return float64(score*ScoreTimeSlots + (ScoreTimeSlots - 1 - slot)), nil
}

// ScoreDecode splits a stored value into the score and the time slot. It fails
// with ErrScoreRange for values ScoreEncode cannot produce (NaN, infinities,
// fractions, magnitudes of 2^53 and above).
func ScoreDecode(v float64) (score, slot int64, err error) {
	if math.IsNaN(v) || math.IsInf(v, 0) || v != math.Trunc(v) || math.Abs(v) >= 1<<53 {
		return 0, 0, fmt.Errorf("%w: stored value %v is not an encoded score", ErrScoreRange, v)
	}
	n := int64(v)
	score = n >> ScoreTimeBits // arithmetic shift: floor division, also for negatives
	slot = ScoreTimeSlots - 1 - (n - score*ScoreTimeSlots)
	if score < ScoreMin {
		return 0, 0, fmt.Errorf("%w: stored value %v is not an encoded score", ErrScoreRange, v)
	}
	return score, slot, nil
}

// ScoreFromFloat converts a score that arrived as a float64 (a JSON number
// from a client) to the integer Submit takes. It refuses NaN, infinities,
// fractions and values outside [ScoreMin, ScoreMax] with ErrScoreRange.
func ScoreFromFloat(f float64) (int64, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) || f < ScoreMin || f > ScoreMax {
		return 0, fmt.Errorf("%w: %v is not an integer in [%d, %d]", ErrScoreRange, f, int64(ScoreMin), int64(ScoreMax))
	}
	return int64(f), nil
}

// ScoreOp says how Submit combines a new score with the stored one.
type ScoreOp uint8

// The operators.
const (
	// ScoreBest keeps the higher score. An equal score submitted later
	// changes nothing, so the first to reach it keeps the better rank.
	ScoreBest ScoreOp = iota
	// ScoreSet replaces the score (and its submission time) unconditionally.
	ScoreSet
	// ScoreIncr adds the submitted value (which may be negative) to the
	// stored score, 0 when absent; the result takes the submission time.
	ScoreIncr
)

// String returns "best", "set" or "incr".
func (op ScoreOp) String() string {
	switch op {
	case ScoreBest:
		return "best"
	case ScoreSet:
		return "set"
	case ScoreIncr:
		return "incr"
	}
	return "op(" + strconv.Itoa(int(op)) + ")"
}

// ScoreSubmit is one submission of a batch.
type ScoreSubmit struct {
	User  int64   // the user key
	Score int64   // the score, or the increment for ScoreIncr
	Op    ScoreOp // how to combine it with the stored score
}

// BoardEntry is one user's place on a board.
type BoardEntry struct {
	User  int64     // the user key
	Score int64     // the score
	Rank  int64     // 1-based; 1 is the best
	At    time.Time // when the score was reached, truncated to TieResolution
}

// BoardConfig configures a Board. The zero value works: a daily board in UTC.
type BoardConfig struct {
	// Period is how seasons follow each other. Default SeasonDaily.
	Period SeasonPeriod
	// Location is the time zone in which days, weeks and months begin.
	// Default UTC.
	Location *time.Location
	// WeekStart is the first day of a SeasonWeekly week. Default (the zero
	// value) Sunday; set time.Monday for ISO weeks.
	WeekStart time.Weekday
	// Seasons is the schedule of a SeasonCustom board: seasons in time
	// order, not overlapping, each at most ScoreTimeSlots × TieResolution
	// long. Ignored by the other periods.
	Seasons []Season
	// Retention is how long a season's data is kept after the season ends;
	// then it expires (Redis EXPIRE; the memory store drops it). Default 7
	// days.
	Retention time.Duration
	// TieResolution is the time unit of the tie-break: submissions of an
	// equal score within one unit tie and are ordered by the user key's
	// decimal string, descending (Redis order). It bounds the season length
	// to ScoreTimeSlots × TieResolution. Default 1 s (48.5 days); at least
	// 1 ms.
	TieResolution time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger, when set, receives backend failures at debug level.
	Logger *slog.Logger
}

// BoardStore keeps the sorted sets behind Boards: one set per (board, season)
// of user keys and encoded values (see ScoreEncode). Implementations order a
// set by value descending, then by the member's decimal string descending
// (Redis ZREVRANGE order), and must be safe for concurrent use. Board
// validates every argument before calling a store. BoardMemoryStore and
// BoardRedisStore implement it; sessiontest.RunBoardTests checks an
// implementation.
type BoardStore interface {
	// Write applies ws in order. It refuses (skips) an increment whose result
	// leaves [ScoreMin, ScoreMax] and reports it, wrapping ErrScoreRange, in
	// errs at its index (errs is nil when every write applied). err is a
	// backend failure. After writing, the set expires ref.TTL from now.
	Write(ctx context.Context, ref BoardRef, ws []BoardWrite) (errs []error, err error)
	// Rank returns the 0-based rank and the value of user, or ErrBoardNotFound.
	Rank(ctx context.Context, ref BoardRef, user int64) (rank int64, value float64, err error)
	// Range returns the members at 0-based ranks start..stop inclusive.
	Range(ctx context.Context, ref BoardRef, start, stop int64) ([]BoardMember, error)
	// Around returns the window of up to 2n+1 members around user (see
	// Board.Around) and the rank of its first member, or ErrBoardNotFound.
	Around(ctx context.Context, ref BoardRef, user int64, n int) (first int64, ms []BoardMember, err error)
	// Remove deletes user, reporting whether it was there.
	Remove(ctx context.Context, ref BoardRef, user int64) (bool, error)
	// Count returns the number of members.
	Count(ctx context.Context, ref BoardRef) (int64, error)
}

// BoardRef names one season's set in a BoardStore.
type BoardRef struct {
	Board  string        // the board name
	Season string        // the season id
	TTL    time.Duration // on writes: how long from now the set lives; 0 = forever
	// ExpireAt is, on writes with a TTL, the same moment by the Board's
	// clock. A store that keeps time by that clock (BoardMemoryStore) uses it,
	// so a clock moving during the call cannot stretch the season's life.
	ExpireAt time.Time
}

// BoardWrite is one write to a BoardStore.
type BoardWrite struct {
	User int64
	Op   ScoreOp
	// Value is the encoded value for ScoreBest and ScoreSet (ZADD GT / ZADD).
	Value float64
	// Delta and Slot are the increment and the time slot for ScoreIncr: the
	// store decodes the stored value, adds Delta to the score and encodes it
	// again with Slot, atomically.
	Delta, Slot int64
}

// BoardMember is one stored member: a user key and its encoded value.
type BoardMember struct {
	User  int64
	Value float64
}

// Board is a leaderboard: scores of users (int64 user keys) ranked best
// first, in seasons that follow each other by time.
//
// # Scores and ties
//
// Scores are integers in [ScoreMin, ScoreMax] (±2,147,483,647). Submit
// combines a score with the stored one by a ScoreOp: ScoreBest keeps the
// higher, ScoreSet replaces, ScoreIncr adds (atomically, in the store). Equal
// scores rank by submission time: the earlier reaches the better rank. The
// time is measured from the season start in units of TieResolution (1 s by
// default) and packed into the low 22 bits of the stored float64 (see
// ScoreEncode), which keeps every value an exact integer below 2^53: scores
// need 31 bits and a season may last 2^22 units (48.5 days at 1 s). Longer
// seasons are refused with ErrSeasonTooLong, larger scores with
// ErrScoreRange. Two equal scores in the same time unit are ordered by the
// user key's decimal string, descending (Redis order), in every store. A
// score that arrives as a float64 (a JSON number) goes through
// ScoreFromFloat, which refuses NaN, infinities and fractions.
//
// # Seasons
//
// A season is named by an id computed from the time in BoardConfig.Location
// (UTC by default): SeasonDaily "d20261125" (midnight to midnight),
// SeasonWeekly "w20261122" (the date its week starts, on
// BoardConfig.WeekStart, Sunday by default), SeasonMonthly "m202611", or a
// custom schedule of named seasons. A new season starts by using a new key,
// never by deleting the old one, so there is no reset job and no moment
// without a board. Every write sets the season to expire
// BoardConfig.Retention (7 days by default) after the season ends; reads of
// a season past that see an empty board. Board reads and writes the current
// season; In returns a view of another (last week's results).
//
// # Reads
//
// Rank returns a user's 1-based rank, Top pages through the board from the
// best with an opaque cursor, Around returns the neighbourhood of a user,
// Score, Remove and Count do what they say. Each is one store call (one
// Redis round trip); SubmitBatch sends a batch as one pipeline.
//
// # Stores
//
// BoardMemoryStore keeps sets in process (an order-statistic B+tree: rank
// operations are O(log n)). BoardRedisStore keeps them in Redis sorted sets,
// a board on one node chosen by a hash of its name (BoardNodeIndex), keys
// hash-tagged by the board name so Redis Cluster works.
//
// A Board is safe for concurrent use.
type Board struct {
	store  BoardStore
	name   string
	cfg    BoardConfig
	pinned *Season
	last   *atomic.Pointer[Season] // the season SeasonAt found last; shared by views
}

// NewBoard returns the board called name kept in store. Names are 1 to
// BoardMaxNameLen characters of [A-Za-z0-9_.-]. It fails with
// ErrBoardInvalid for a bad name or config and ErrSeasonTooLong when the
// period can be longer than the tie-break encoding allows.
func NewBoard(store BoardStore, name string, cfg BoardConfig) (*Board, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrBoardInvalid)
	}
	if err := boardCheckName("board name", name); err != nil {
		return nil, err
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Retention == 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	if cfg.Retention < 0 {
		return nil, fmt.Errorf("%w: negative retention", ErrBoardInvalid)
	}
	if cfg.TieResolution == 0 {
		cfg.TieResolution = time.Second
	}
	if cfg.TieResolution < time.Millisecond {
		return nil, fmt.Errorf("%w: tie resolution %v below 1ms", ErrBoardInvalid, cfg.TieResolution)
	}
	if cfg.WeekStart < time.Sunday || cfg.WeekStart > time.Saturday {
		return nil, fmt.Errorf("%w: week start %d", ErrBoardInvalid, cfg.WeekStart)
	}
	cfg.Now = clock.OrNow(cfg.Now)
	maxLen := cfg.TieResolution * ScoreTimeSlots
	if cfg.TieResolution > time.Duration(math.MaxInt64)/ScoreTimeSlots {
		maxLen = time.Duration(math.MaxInt64)
	}
	switch cfg.Period {
	case SeasonDaily, SeasonWeekly, SeasonMonthly:
		// The longest of each: a 25 h DST day, 7 days + 1 h, 31 days + 1 h.
		longest := map[SeasonPeriod]time.Duration{
			SeasonDaily:   25 * time.Hour,
			SeasonWeekly:  7*24*time.Hour + time.Hour,
			SeasonMonthly: 31*24*time.Hour + time.Hour,
		}[cfg.Period]
		if longest > maxLen {
			return nil, fmt.Errorf("%w: %v seasons need up to %v, %v resolution allows %v",
				ErrSeasonTooLong, cfg.Period, longest, cfg.TieResolution, maxLen)
		}
	case SeasonCustom:
		if len(cfg.Seasons) == 0 {
			return nil, fmt.Errorf("%w: custom period without seasons", ErrBoardInvalid)
		}
		seen := make(map[string]bool, len(cfg.Seasons))
		for i, s := range cfg.Seasons {
			if err := boardCheckName("season id", s.ID); err != nil {
				return nil, err
			}
			if seen[s.ID] {
				return nil, fmt.Errorf("%w: season id %q twice", ErrBoardInvalid, s.ID)
			}
			seen[s.ID] = true
			if !s.End.After(s.Start) {
				return nil, fmt.Errorf("%w: season %q ends before it starts", ErrBoardInvalid, s.ID)
			}
			if i > 0 && s.Start.Before(cfg.Seasons[i-1].End) {
				return nil, fmt.Errorf("%w: season %q overlaps or precedes %q", ErrBoardInvalid, s.ID, cfg.Seasons[i-1].ID)
			}
			if s.End.Sub(s.Start) > maxLen {
				return nil, fmt.Errorf("%w: season %q lasts %v, %v resolution allows %v",
					ErrSeasonTooLong, s.ID, s.End.Sub(s.Start), cfg.TieResolution, maxLen)
			}
		}
		cfg.Seasons = append([]Season(nil), cfg.Seasons...)
	default:
		return nil, fmt.Errorf("%w: period %d", ErrBoardInvalid, cfg.Period)
	}
	return &Board{store: store, name: name, cfg: cfg, last: new(atomic.Pointer[Season])}, nil
}

// boardCheckName accepts 1..BoardMaxNameLen characters of [A-Za-z0-9_.-]:
// nothing that could break a key or its hash tag.
func boardCheckName(what, s string) error {
	if len(s) == 0 || len(s) > BoardMaxNameLen {
		return fmt.Errorf("%w: %s %q must be 1 to %d characters", ErrBoardInvalid, what, s, BoardMaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return fmt.Errorf("%w: %s %q may hold only A-Z a-z 0-9 _ . -", ErrBoardInvalid, what, s)
		}
	}
	return nil
}

// Name returns the board's name.
func (b *Board) Name() string { return b.name }

// In returns a view of b pinned to season s (from SeasonAt or the custom
// schedule): its reads see s, and its writes succeed only while s is the
// current season. A season id that NewBoard would refuse makes every call
// of the view fail with ErrBoardInvalid.
func (b *Board) In(s Season) *Board {
	c := *b
	c.pinned = &s
	return &c
}

// Season returns the season b works on: the pinned one, or the current one.
// It fails with ErrSeasonClosed when a custom schedule has no season now.
func (b *Board) Season() (Season, error) {
	if b.pinned != nil {
		if err := boardCheckName("season id", b.pinned.ID); err != nil {
			return Season{}, err
		}
		return *b.pinned, nil
	}
	return b.SeasonAt(b.cfg.Now())
}

// SeasonAt returns the season that contains t, or ErrSeasonClosed when a
// custom schedule has none.
func (b *Board) SeasonAt(t time.Time) (Season, error) {
	if s := b.last.Load(); s != nil && !t.Before(s.Start) && t.Before(s.End) {
		return *s, nil
	}
	s, err := seasonAt(b.cfg.Period, b.cfg.Location, b.cfg.WeekStart, b.cfg.Seasons, t)
	if err == nil {
		b.last.Store(&s)
	}
	return s, err
}

func (b *Board) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if b.cfg.Logger != nil {
		b.cfg.Logger.Debug("session: board", "board", b.name, "op", op, "err", err)
	}
	return fmt.Errorf("session: board %s: %s: %w", b.name, op, err)
}

// readRef returns the set to read and whether it is still kept (not past its
// retention).
func (b *Board) readRef() (BoardRef, Season, bool, error) {
	s, err := b.Season()
	if err != nil {
		return BoardRef{}, s, false, err
	}
	live := b.cfg.Now().Before(s.End.Add(b.cfg.Retention))
	return BoardRef{Board: b.name, Season: s.ID}, s, live, nil
}

// Submit combines score with user's stored score by op in the current season.
// For ScoreIncr, score is the increment. Bad input fails with ErrScoreRange
// or ErrBoardInvalid and writes nothing.
func (b *Board) Submit(ctx context.Context, user, score int64, op ScoreOp) error {
	errs, err := b.submit(ctx, []ScoreSubmit{{User: user, Score: score, Op: op}})
	if err != nil {
		return b.wrap("submit", err)
	}
	if errs != nil {
		return b.wrap("submit", errs[0])
	}
	return nil
}

// SubmitBatch applies subs in order, in one store call (one Redis pipeline).
// Every submission is validated first: if any is bad (ErrScoreRange,
// ErrBoardInvalid) or there are more than BoardMaxBatch (ErrBoardLimit),
// nothing is written. An increment whose result would leave the score range
// is skipped while the others apply; the returned error then wraps
// ErrScoreRange and says which.
func (b *Board) SubmitBatch(ctx context.Context, subs []ScoreSubmit) error {
	if len(subs) > BoardMaxBatch {
		return b.wrap("submit batch", fmt.Errorf("%w: %d submissions, at most %d", ErrBoardLimit, len(subs), BoardMaxBatch))
	}
	if len(subs) == 0 {
		return nil
	}
	errs, err := b.submit(ctx, subs)
	if err != nil {
		return b.wrap("submit batch", err)
	}
	for i, e := range errs {
		if e != nil {
			return b.wrap("submit batch", fmt.Errorf("submission %d (user %d): %w", i, subs[i].User, e))
		}
	}
	return nil
}

func (b *Board) submit(ctx context.Context, subs []ScoreSubmit) ([]error, error) {
	now := b.cfg.Now()
	cur, err := b.SeasonAt(now)
	if err != nil {
		return nil, err
	}
	if b.pinned != nil && b.pinned.ID != cur.ID {
		return nil, fmt.Errorf("%w: season %s is not current (%s is)", ErrSeasonClosed, b.pinned.ID, cur.ID)
	}
	slot := int64(now.Sub(cur.Start) / b.cfg.TieResolution)
	ws := make([]BoardWrite, len(subs))
	for i, s := range subs {
		w := BoardWrite{User: s.User, Op: s.Op}
		switch s.Op {
		case ScoreBest, ScoreSet:
			v, err := ScoreEncode(s.Score, slot)
			if err != nil {
				return nil, fmt.Errorf("submission %d (user %d): %w", i, s.User, err)
			}
			w.Value = v
		case ScoreIncr:
			if s.Score < ScoreMin || s.Score > ScoreMax {
				return nil, fmt.Errorf("submission %d (user %d): %w: increment %d", i, s.User, ErrScoreRange, s.Score)
			}
			if slot < 0 || slot >= ScoreTimeSlots {
				return nil, fmt.Errorf("%w: time slot %d", ErrSeasonTooLong, slot)
			}
			w.Delta, w.Slot = s.Score, slot
		default:
			return nil, fmt.Errorf("submission %d (user %d): %w: operator %d", i, s.User, ErrBoardInvalid, s.Op)
		}
		ws[i] = w
	}
	exp := cur.End.Add(b.cfg.Retention)
	ref := BoardRef{Board: b.name, Season: cur.ID, TTL: exp.Sub(now), ExpireAt: exp}
	return b.store.Write(ctx, ref, ws)
}

func (b *Board) entry(s Season, rank int64, m BoardMember) (BoardEntry, error) {
	score, slot, err := ScoreDecode(m.Value)
	if err != nil {
		return BoardEntry{}, err
	}
	return BoardEntry{
		User:  m.User,
		Score: score,
		Rank:  rank + 1,
		At:    s.Start.Add(time.Duration(slot) * b.cfg.TieResolution),
	}, nil
}

func (b *Board) entries(s Season, first int64, ms []BoardMember) ([]BoardEntry, error) {
	out := make([]BoardEntry, len(ms))
	for i, m := range ms {
		e, err := b.entry(s, first+int64(i), m)
		if err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}

// Rank returns user's entry (1-based rank, score, time) in the season, or an
// error wrapping ErrBoardNotFound.
func (b *Board) Rank(ctx context.Context, user int64) (BoardEntry, error) {
	ref, s, live, err := b.readRef()
	if err != nil {
		return BoardEntry{}, b.wrap("rank", err)
	}
	if !live {
		return BoardEntry{}, b.wrap("rank", fmt.Errorf("%w: user %d (season %s expired)", ErrBoardNotFound, user, s.ID))
	}
	r, v, err := b.store.Rank(ctx, ref, user)
	if err != nil {
		return BoardEntry{}, b.wrap("rank", err)
	}
	e, err := b.entry(s, r, BoardMember{User: user, Value: v})
	return e, b.wrap("rank", err)
}

// Score returns user's score in the season, or an error wrapping
// ErrBoardNotFound.
func (b *Board) Score(ctx context.Context, user int64) (int64, error) {
	e, err := b.Rank(ctx, user)
	return e.Score, err
}

// Top returns up to n entries (1 ≤ n ≤ BoardMaxPage) from the best, starting
// where cursor points: "" for the first page, then the next cursor returned
// by the previous call. next is "" after the last page. A cursor is a rank
// offset: scores that change between calls can move entries across pages.
func (b *Board) Top(ctx context.Context, n int, cursor string) (entries []BoardEntry, next string, err error) {
	if n <= 0 || n > BoardMaxPage {
		return nil, "", b.wrap("top", fmt.Errorf("%w: n = %d, want 1 to %d", ErrBoardLimit, n, BoardMaxPage))
	}
	var start int64
	if cursor != "" {
		start, err = strconv.ParseInt(cursor, 10, 64)
		if err != nil || start < 0 || strconv.FormatInt(start, 10) != cursor {
			return nil, "", b.wrap("top", fmt.Errorf("%w: %q", ErrBoardCursor, cursor))
		}
	}
	ref, s, live, err := b.readRef()
	if err != nil {
		return nil, "", b.wrap("top", err)
	}
	if !live {
		return nil, "", nil
	}
	ms, err := b.store.Range(ctx, ref, start, start+int64(n)) // one extra: is there a next page?
	if err != nil {
		return nil, "", b.wrap("top", err)
	}
	if len(ms) > n {
		ms = ms[:n]
		next = strconv.FormatInt(start+int64(n), 10)
	}
	entries, err = b.entries(s, start, ms)
	if err != nil {
		return nil, "", b.wrap("top", err)
	}
	return entries, next, nil
}

// Around returns the entries around user: a window of up to 2n+1 entries
// (1 ≤ n ≤ BoardMaxAround), centred on user when the board allows, shifted
// down at the top and up at the bottom so it holds 2n+1 entries whenever the
// board has that many. It fails with ErrBoardNotFound when user has no score.
func (b *Board) Around(ctx context.Context, user int64, n int) ([]BoardEntry, error) {
	if n <= 0 || n > BoardMaxAround {
		return nil, b.wrap("around", fmt.Errorf("%w: n = %d, want 1 to %d", ErrBoardLimit, n, BoardMaxAround))
	}
	ref, s, live, err := b.readRef()
	if err != nil {
		return nil, b.wrap("around", err)
	}
	if !live {
		return nil, b.wrap("around", fmt.Errorf("%w: user %d (season %s expired)", ErrBoardNotFound, user, s.ID))
	}
	first, ms, err := b.store.Around(ctx, ref, user, n)
	if err != nil {
		return nil, b.wrap("around", err)
	}
	out, err := b.entries(s, first, ms)
	return out, b.wrap("around", err)
}

// BoardWindow returns the 0-based inclusive rank window Around shows for a
// member at rank r of count members: 2n+1 wide when count allows, centred on
// r, shifted to stay inside [0, count). Stores use it.
func BoardWindow(r, count int64, n int) (start, stop int64) {
	start, stop = r-int64(n), r+int64(n)
	if start < 0 {
		stop -= start
		start = 0
	}
	if stop > count-1 {
		start -= stop - (count - 1)
		stop = count - 1
		if start < 0 {
			start = 0
		}
	}
	return start, stop
}

// Remove deletes user from the season, reporting whether it was there.
func (b *Board) Remove(ctx context.Context, user int64) (bool, error) {
	ref, _, live, err := b.readRef()
	if err != nil {
		return false, b.wrap("remove", err)
	}
	if !live {
		return false, nil
	}
	ok, err := b.store.Remove(ctx, ref, user)
	return ok, b.wrap("remove", err)
}

// Count returns the number of users with a score in the season.
func (b *Board) Count(ctx context.Context) (int64, error) {
	ref, _, live, err := b.readRef()
	if err != nil {
		return 0, b.wrap("count", err)
	}
	if !live {
		return 0, nil
	}
	n, err := b.store.Count(ctx, ref)
	return n, b.wrap("count", err)
}
