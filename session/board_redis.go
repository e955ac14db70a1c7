package session

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// BoardRedisConfig configures a BoardRedisStore. The zero value works.
type BoardRedisConfig struct {
	// Prefix starts every key. Default "madang:". It may not contain '{' or
	// '}', which would break the hash tag.
	Prefix string
	// ResendWindow is how long Redis keeps the record of each write script
	// call (see BoardRedisStore), so that go-redis resending a call whose
	// reply was lost gets the recorded result instead of applying it again.
	// It must exceed the longest time between a call's first send and its
	// last resend in go-redis: about MaxRetries × (ReadTimeout +
	// MaxRetryBackoff + DialTimeout), under 30 s with go-redis's defaults.
	// Each record is one small key (its call id and one byte per
	// submission) that Redis expires by itself. Default 1 minute.
	ResendWindow time.Duration
}

// BoardRedisStore is a BoardStore on Redis sorted sets. A season's key is
//
//	<prefix>{b:<board>}:<season>
//
// so all seasons of a board share one Cluster hash slot, and every command
// and script touches keys of that one slot. Given several clients (hand-sharded Redis
// nodes, as the talk ran them), a board lives on the one chosen by
// BoardNodeIndex. Each client may itself be a single node, Sentinel or a
// Cluster. Safe for concurrent use.
//
// Writes are exactly once, also when go-redis resends a command or a whole
// pipeline whose reply was lost (its default MaxRetries). A write without
// increments is a pipeline of ZADD GT (ScoreBest) and ZADD (ScoreSet): sent
// twice, such a sequence leaves the same set as sent once (against another
// caller's write in between, a resent one lands like a late request). A
// write with increments goes through a Lua script, one call per run of up
// to 256 submissions in order, which decodes the stored value, adds, checks
// the range and encodes again with the new time slot atomically (and does
// the batch's ZADDs in their place). Each script call carries an id unique to
// it (a random per-store prefix and a counter) and records its result under
//
//	<prefix>{b:<board>}:~<id>
//
// (the board's hash tag: one Cluster slot with the set) for
// ResendWindow; a resend of the call finds the record and returns it
// without applying anything. Then PEXPIRE sets the season's TTL. SubmitBatch
// sends all of that as one pipeline. Reads: Rank is ZREVRANK and ZSCORE
// pipelined, Top is ZREVRANGE WITHSCORES, Around is one Lua script
// (ZREVRANK, ZCARD, ZREVRANGE), Count is ZCARD: one round trip each.
type BoardRedisStore struct {
	clients []redis.UniversalClient
	loaded  []atomic.Bool // the write script is loaded on clients[i]
	prefix  string
	window  string // ResendWindow in ms, for the script

	// idPrefix (random per store) and idSeq make each script call's id
	// unique.
	idPrefix string
	idSeq    atomic.Uint64
}

var _ BoardStore = (*BoardRedisStore)(nil)

// NewBoardRedisStore returns a store over clients (at least one). It does
// not close them.
func NewBoardRedisStore(clients []redis.UniversalClient, cfg BoardRedisConfig) (*BoardRedisStore, error) {
	if len(clients) == 0 {
		return nil, fmt.Errorf("%w: no redis clients", ErrBoardInvalid)
	}
	for i, c := range clients {
		if c == nil {
			return nil, fmt.Errorf("%w: redis client %d is nil", ErrBoardInvalid, i)
		}
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "madang:"
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("%w: prefix %q has a brace", ErrBoardInvalid, cfg.Prefix)
	}
	if cfg.ResendWindow < 0 {
		return nil, fmt.Errorf("%w: negative resend window", ErrBoardInvalid)
	}
	if cfg.ResendWindow == 0 {
		cfg.ResendWindow = time.Minute
	}
	var nb [8]byte
	_, _ = rand.Read(nb[:]) // crypto/rand.Read never fails (Go 1.24+)
	return &BoardRedisStore{
		clients:  append([]redis.UniversalClient(nil), clients...),
		loaded:   make([]atomic.Bool, len(clients)),
		prefix:   cfg.Prefix,
		window:   strconv.FormatInt(max(cfg.ResendWindow.Milliseconds(), 1), 10),
		idPrefix: b64.EncodeToString(nb[:]) + ".",
	}, nil
}

// BoardNodeIndex returns the index in [0, nodes) of the Redis node that keeps
// the board called name: the 32-bit FNV-1a hash of the name, modulo nodes.
// The rule is stable: changing it, or the number or order of nodes, moves
// boards.
func BoardNodeIndex(name string, nodes int) int {
	if nodes <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % uint32(nodes))
}

func (s *BoardRedisStore) client(ref BoardRef) redis.UniversalClient {
	return s.clients[BoardNodeIndex(ref.Board, len(s.clients))]
}

func (s *BoardRedisStore) key(ref BoardRef) string {
	return s.prefix + "{b:" + ref.Board + "}:" + ref.Season
}

// boardWriteScript: KEYS[1] the set, KEYS[2] the call's record; ARGV[1]
// the time slot, ARGV[2] the record's TTL in ms, then triples of operator (i
// increment, b best, s set), member and argument (the delta, or the encoded
// value). If the record exists the call is a resend of one that ran: it
// returns the recorded result and changes nothing. Else, for each triple in
// order: b is ZADD GT, s is ZADD; i decodes the stored value (score =
// floor(v / slots)), adds delta and, when the result is within ±max, ZADDs
// its new encoding. The result, recorded and returned, is one character per
// triple: 1 applied, 0 result out of range, - stored value not an encoded
// score (both skipped). Every number stays an integer below 2^53, exact in
// Lua's doubles.
var boardWriteScript = redis.NewScript(`
local done = redis.call('GET', KEYS[2])
if done then return done end
local slots = ` + strconv.Itoa(ScoreTimeSlots) + `
local max = ` + strconv.Itoa(ScoreMax) + `
local tie = slots - 1 - tonumber(ARGV[1])
local out = {}
for i = 3, #ARGV, 3 do
  local op, m, a = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local st = '1'
  if op == 'b' then
    redis.call('ZADD', KEYS[1], 'GT', a, m)
  elseif op == 's' then
    redis.call('ZADD', KEYS[1], a, m)
  else
    local score = 0
    local old = redis.call('ZSCORE', KEYS[1], m)
    if old then
      local v = tonumber(old)
      if not v or v ~= v or v >= 2^53 or v <= -2^53 or v ~= math.floor(v) then
        st = '-'
      else
        score = math.floor(v / slots)
      end
    end
    if st == '1' then
      score = score + tonumber(a)
      if score > max or score < -max then
        st = '0'
      else
        redis.call('ZADD', KEYS[1], string.format('%.0f', score * slots + tie), m)
      end
    end
  end
  out[#out + 1] = st
end
local r = table.concat(out)
redis.call('SET', KEYS[2], r, 'PX', ARGV[2])
return r
`)

// boardWriteChunk is the most submissions one script call applies: long
// batches are split so one call keeps Redis busy for well under a
// millisecond.
const boardWriteChunk = 256

// boardAroundScript: KEYS[1] the set; ARGV member, n. Returns false when the
// member is absent, else {first rank, {member, score, ...}} for the window
// Board.Around describes (the same arithmetic as BoardWindow).
var boardAroundScript = redis.NewScript(`
local r = redis.call('ZREVRANK', KEYS[1], ARGV[1])
if not r then return false end
local c = redis.call('ZCARD', KEYS[1])
local n = tonumber(ARGV[2])
local start, stop = r - n, r + n
if start < 0 then stop = stop - start; start = 0 end
if stop > c - 1 then
  start = start - (stop - (c - 1)); stop = c - 1
  if start < 0 then start = 0 end
end
return {start, redis.call('ZREVRANGE', KEYS[1], start, stop, 'WITHSCORES')}
`)

func boardRedisErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrBoardUnavailable, err)
}

// Write implements BoardStore: one pipeline. Without increments it is ZADD
// GT (ScoreBest) and ZADD (ScoreSet) in order. With increments, every
// submission goes through the write script, one EVALSHA per
// boardWriteChunk of them in order (a chunk also ends where the time slot
// of the increments changes), after loading the script once per client
// (SCRIPT LOAD reaches every Cluster shard). Should Redis lose its script
// cache between the load and the pipeline, the calls that got NOSCRIPT (and
// so did nothing) are sent again, in order, after reloading; as every
// later call of the pipeline got NOSCRIPT too, the order holds.
func (s *BoardRedisStore) Write(ctx context.Context, ref BoardRef, ws []BoardWrite) ([]error, error) {
	idx := BoardNodeIndex(ref.Board, len(s.clients))
	c, key := s.clients[idx], s.key(ref)
	type call struct {
		from, to int    // ws[from:to] are the submissions of one script call
		slot     int64  // the increments' time slot, -1 before the first
		id       string // the call's record key
		cmd      *redis.Cmd
	}
	scripted := false
	for _, w := range ws {
		switch w.Op {
		case ScoreBest, ScoreSet:
		case ScoreIncr:
			scripted = true
		default:
			return nil, fmt.Errorf("%w: operator %d", ErrBoardInvalid, w.Op)
		}
	}
	var calls []*call
	if scripted {
		idBase := s.key(BoardRef{Board: ref.Board, Season: "~"}) + s.idPrefix
		var cur *call
		for i, w := range ws {
			if cur != nil && i-cur.from < boardWriteChunk && (w.Op != ScoreIncr || cur.slot < 0 || cur.slot == w.Slot) {
				cur.to++
				if w.Op == ScoreIncr {
					cur.slot = w.Slot
				}
				continue
			}
			cur = &call{from: i, to: i + 1, slot: -1, id: idBase + strconv.FormatUint(s.idSeq.Add(1), 36)}
			if w.Op == ScoreIncr {
				cur.slot = w.Slot
			}
			calls = append(calls, cur)
		}
		if !s.loaded[idx].Load() {
			if err := boardWriteScript.Load(ctx, c).Err(); err != nil {
				return nil, boardRedisErr(err)
			}
			s.loaded[idx].Store(true)
		}
	}
	eval := func(p redis.Pipeliner, cl *call) {
		args := make([]any, 0, 2+3*(cl.to-cl.from))
		args = append(args, max(cl.slot, 0), s.window)
		for _, w := range ws[cl.from:cl.to] {
			m := strconv.FormatInt(w.User, 10)
			switch w.Op {
			case ScoreBest:
				args = append(args, "b", m, w.Value)
			case ScoreSet:
				args = append(args, "s", m, w.Value)
			default:
				args = append(args, "i", m, w.Delta)
			}
		}
		cl.cmd = boardWriteScript.EvalSha(ctx, p, []string{key, cl.id}, args...)
	}
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		if scripted {
			for _, cl := range calls {
				eval(p, cl)
			}
		} else {
			for _, w := range ws {
				z := redis.Z{Score: w.Value, Member: strconv.FormatInt(w.User, 10)}
				if w.Op == ScoreBest {
					p.ZAddGT(ctx, key, z)
				} else {
					p.ZAdd(ctx, key, z)
				}
			}
		}
		if ref.TTL > 0 {
			p.PExpire(ctx, key, ref.TTL)
		} else {
			p.Persist(ctx, key)
		}
		return nil
	})
	if err != nil {
		// Script calls that got NOSCRIPT are sent again; any other failure
		// is the backend's.
		var retry []*call
		for _, cl := range calls {
			if cerr := cl.cmd.Err(); cerr != nil && redis.HasErrorPrefix(cerr, "NOSCRIPT") {
				retry = append(retry, cl)
			}
		}
		for _, cmd := range cmds {
			if cerr := cmd.Err(); cerr != nil && !redis.HasErrorPrefix(cerr, "NOSCRIPT") {
				return nil, boardRedisErr(cerr)
			}
		}
		if len(retry) == 0 {
			return nil, boardRedisErr(err)
		}
		s.loaded[idx].Store(false)
		if err := boardWriteScript.Load(ctx, c).Err(); err != nil {
			return nil, boardRedisErr(err)
		}
		s.loaded[idx].Store(true)
		if _, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, cl := range retry {
				eval(p, cl)
			}
			return nil
		}); err != nil {
			return nil, boardRedisErr(err)
		}
	}
	var errs []error
	for _, cl := range calls {
		st, err := cl.cmd.Text()
		if err != nil || len(st) != cl.to-cl.from {
			return nil, fmt.Errorf("%w: unexpected write script reply %q: %v", ErrBoardUnavailable, st, err)
		}
		for j := 0; j < len(st); j++ {
			if st[j] == '1' {
				continue
			}
			if errs == nil {
				errs = make([]error, len(ws))
			}
			i := cl.from + j
			if st[j] == '0' {
				errs[i] = fmt.Errorf("%w: user %d: increment by %d leaves [%d, %d]", ErrScoreRange, ws[i].User, ws[i].Delta, int64(ScoreMin), int64(ScoreMax))
			} else {
				errs[i] = fmt.Errorf("%w: user %d: stored value is not an encoded score", ErrScoreRange, ws[i].User)
			}
		}
	}
	return errs, nil
}

// Rank implements BoardStore: ZREVRANK and ZSCORE in one round trip.
func (s *BoardRedisStore) Rank(ctx context.Context, ref BoardRef, user int64) (int64, float64, error) {
	c, key := s.client(ref), s.key(ref)
	member := strconv.FormatInt(user, 10)
	var rank *redis.IntCmd
	var score *redis.FloatCmd
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		rank = p.ZRevRank(ctx, key, member)
		score = p.ZScore(ctx, key, member)
		return nil
	})
	if errors.Is(err, redis.Nil) || errors.Is(rank.Err(), redis.Nil) || errors.Is(score.Err(), redis.Nil) {
		return 0, 0, fmt.Errorf("%w: user %d", ErrBoardNotFound, user)
	}
	if err != nil {
		return 0, 0, boardRedisErr(err)
	}
	return rank.Val(), score.Val(), nil
}

// Range implements BoardStore: ZREVRANGE WITHSCORES.
func (s *BoardRedisStore) Range(ctx context.Context, ref BoardRef, start, stop int64) ([]BoardMember, error) {
	if start < 0 || stop < start {
		return nil, nil
	}
	zs, err := s.client(ref).ZRevRangeWithScores(ctx, s.key(ref), start, stop).Result()
	if err != nil {
		return nil, boardRedisErr(err)
	}
	out := make([]BoardMember, len(zs))
	for i, z := range zs {
		m, _ := z.Member.(string)
		u, err := strconv.ParseInt(m, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: member %q is not a user key", ErrScoreRange, m)
		}
		out[i] = BoardMember{User: u, Value: z.Score}
	}
	return out, nil
}

// Around implements BoardStore: one Lua script.
func (s *BoardRedisStore) Around(ctx context.Context, ref BoardRef, user int64, n int) (int64, []BoardMember, error) {
	res, err := boardAroundScript.Run(ctx, s.client(ref), []string{s.key(ref)}, strconv.FormatInt(user, 10), n).Slice()
	if errors.Is(err, redis.Nil) {
		return 0, nil, fmt.Errorf("%w: user %d", ErrBoardNotFound, user)
	}
	if err != nil {
		return 0, nil, boardRedisErr(err)
	}
	bad := fmt.Errorf("%w: unexpected around reply", ErrBoardUnavailable)
	if len(res) != 2 {
		return 0, nil, bad
	}
	first, ok1 := res[0].(int64)
	flat, ok2 := res[1].([]any)
	if !ok1 || !ok2 || len(flat)%2 != 0 {
		return 0, nil, bad
	}
	out := make([]BoardMember, len(flat)/2)
	for i := range out {
		m, _ := flat[2*i].(string)
		v, _ := flat[2*i+1].(string)
		u, err1 := strconv.ParseInt(m, 10, 64)
		f, err2 := strconv.ParseFloat(v, 64)
		if err1 != nil || err2 != nil {
			return 0, nil, bad
		}
		out[i] = BoardMember{User: u, Value: f}
	}
	return first, out, nil
}

// Remove implements BoardStore: ZREM.
func (s *BoardRedisStore) Remove(ctx context.Context, ref BoardRef, user int64) (bool, error) {
	n, err := s.client(ref).ZRem(ctx, s.key(ref), strconv.FormatInt(user, 10)).Result()
	if err != nil {
		return false, boardRedisErr(err)
	}
	return n > 0, nil
}

// Count implements BoardStore: ZCARD.
func (s *BoardRedisStore) Count(ctx context.Context, ref BoardRef) (int64, error) {
	n, err := s.client(ref).ZCard(ctx, s.key(ref)).Result()
	if err != nil {
		return 0, boardRedisErr(err)
	}
	return n, nil
}
