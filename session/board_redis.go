package session

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// BoardRedisConfig configures a BoardRedisStore. The zero value works.
type BoardRedisConfig struct {
	// Prefix starts every key. Default "madang:". It may not contain '{' or
	// '}', which would break the hash tag.
	Prefix string
}

// BoardRedisStore is a BoardStore on Redis sorted sets. A season's key is
//
//	<prefix>{b:<board>}:<season>
//
// so all seasons of a board share one Cluster hash slot, and every command
// and script touches that one key. Given several clients (hand-sharded Redis
// nodes, as the talk ran them), a board lives on the one chosen by
// BoardNodeIndex. Each client may itself be a single node, Sentinel or a
// Cluster. Safe for concurrent use.
//
// Writes: ScoreBest is ZADD GT, ScoreSet is ZADD, ScoreIncr is a Lua script
// that decodes the stored value, adds, checks the range and encodes again
// with the new time slot atomically (one call per run of up to 256
// consecutive increments); then PEXPIRE sets the season's TTL. SubmitBatch
// sends all of that as one pipeline, in order. Reads: Rank is ZREVRANK and
// ZSCORE pipelined, Top is ZREVRANGE WITHSCORES, Around is one Lua script
// (ZREVRANK, ZCARD, ZREVRANGE), Count is ZCARD: one round trip each.
type BoardRedisStore struct {
	clients []redis.UniversalClient
	loaded  []atomic.Bool // the incr script is loaded on clients[i]
	prefix  string
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
	return &BoardRedisStore{
		clients: append([]redis.UniversalClient(nil), clients...),
		loaded:  make([]atomic.Bool, len(clients)),
		prefix:  cfg.Prefix,
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

// boardIncrScript: KEYS[1] the set; ARGV[1] the time slot, then pairs of
// member and delta. For each pair, in order: decode the stored value (score =
// floor(v / slots)), add delta and, when the result is within ±max, ZADD its
// new encoding. Returns one status per pair: 1 applied, 0 result out of
// range, -1 stored value not an encoded score (both skipped). Every number
// stays an integer below 2^53, exact in Lua's doubles.
var boardIncrScript = redis.NewScript(`
local slots = ` + strconv.Itoa(ScoreTimeSlots) + `
local max = ` + strconv.Itoa(ScoreMax) + `
local tie = slots - 1 - tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV, 2 do
  local m = ARGV[i]
  local score, st = 0, 1
  local old = redis.call('ZSCORE', KEYS[1], m)
  if old then
    local v = tonumber(old)
    if not v or v ~= v or v >= 2^53 or v <= -2^53 or v ~= math.floor(v) then
      st = -1
    else
      score = math.floor(v / slots)
    end
  end
  if st == 1 then
    score = score + tonumber(ARGV[i + 1])
    if score > max or score < -max then
      st = 0
    else
      redis.call('ZADD', KEYS[1], string.format('%.0f', score * slots + tie), m)
    end
  end
  out[#out + 1] = st
end
return out
`)

// boardIncrChunk is the most increments one script call applies: long runs
// are split so one call keeps Redis busy for well under a millisecond.
const boardIncrChunk = 256

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

// Write implements BoardStore: one pipeline, in order. ScoreBest is ZADD GT,
// ScoreSet is ZADD; a run of consecutive increments is one EVALSHA of the
// increment script per boardIncrChunk of them, after loading the script once
// per client (SCRIPT LOAD reaches every Cluster shard). Should Redis lose
// its script cache between the load and the pipeline, the calls that got
// NOSCRIPT are sent again, in order, after reloading: those increments then
// apply after the batch's other submissions.
func (s *BoardRedisStore) Write(ctx context.Context, ref BoardRef, ws []BoardWrite) ([]error, error) {
	idx := BoardNodeIndex(ref.Board, len(s.clients))
	c, key := s.clients[idx], s.key(ref)
	type call struct {
		from, to int // ws[from:to] are increments of one script call
		cmd      *redis.Cmd
	}
	var calls []*call
	for i := 0; i < len(ws); i++ {
		switch ws[i].Op {
		case ScoreBest, ScoreSet:
		case ScoreIncr:
			if n := len(calls); n > 0 && calls[n-1].to == i && i-calls[n-1].from < boardIncrChunk && ws[calls[n-1].from].Slot == ws[i].Slot {
				calls[n-1].to++
			} else {
				calls = append(calls, &call{from: i, to: i + 1})
			}
		default:
			return nil, fmt.Errorf("%w: operator %d", ErrBoardInvalid, ws[i].Op)
		}
	}
	if len(calls) > 0 && !s.loaded[idx].Load() {
		if err := boardIncrScript.Load(ctx, c).Err(); err != nil {
			return nil, boardRedisErr(err)
		}
		s.loaded[idx].Store(true)
	}
	eval := func(p redis.Pipeliner, cl *call) {
		args := make([]any, 0, 1+2*(cl.to-cl.from))
		args = append(args, ws[cl.from].Slot)
		for _, w := range ws[cl.from:cl.to] {
			args = append(args, strconv.FormatInt(w.User, 10), w.Delta)
		}
		cl.cmd = boardIncrScript.EvalSha(ctx, p, []string{key}, args...)
	}
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		next := 0 // the next call to send
		for i := 0; i < len(ws); i++ {
			w := ws[i]
			switch w.Op {
			case ScoreBest:
				p.ZAddGT(ctx, key, redis.Z{Score: w.Value, Member: strconv.FormatInt(w.User, 10)})
			case ScoreSet:
				p.ZAdd(ctx, key, redis.Z{Score: w.Value, Member: strconv.FormatInt(w.User, 10)})
			case ScoreIncr:
				cl := calls[next]
				next++
				eval(p, cl)
				i = cl.to - 1
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
		if err := boardIncrScript.Load(ctx, c).Err(); err != nil {
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
		st, err := cl.cmd.Int64Slice()
		if err != nil || len(st) != cl.to-cl.from {
			return nil, fmt.Errorf("%w: unexpected increment reply: %v", ErrBoardUnavailable, err)
		}
		for j, v := range st {
			if v == 1 {
				continue
			}
			if errs == nil {
				errs = make([]error, len(ws))
			}
			i := cl.from + j
			if v == 0 {
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
