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
// with the new time slot in one step; then PEXPIRE sets the season's TTL.
// SubmitBatch sends all of that as one pipeline. Reads: Rank is ZREVRANK and
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

// boardIncrScript: KEYS[1] the set; ARGV member, delta, slot.
// Decodes the stored value (score = floor(v / slots)), adds delta, refuses a
// result outside ±max with an error reply, else ZADDs the new encoding.
// Every number stays an integer below 2^53, exact in Lua's doubles.
var boardIncrScript = redis.NewScript(`
local slots = ` + strconv.Itoa(ScoreTimeSlots) + `
local max = ` + strconv.Itoa(ScoreMax) + `
local score = 0
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
if old then
  local v = tonumber(old)
  if v ~= v or v >= 2^53 or v <= -2^53 or v ~= math.floor(v) then
    return redis.error_reply('BOARDRANGE stored value is not an encoded score')
  end
  score = math.floor(v / slots)
end
score = score + tonumber(ARGV[2])
if score > max or score < -max then
  return redis.error_reply('BOARDRANGE result ' .. string.format('%.0f', score) .. ' out of range')
end
local v = score * slots + (slots - 1 - tonumber(ARGV[3]))
redis.call('ZADD', KEYS[1], string.format('%.0f', v), ARGV[1])
return string.format('%.0f', score)
`)

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
	if strings.HasPrefix(err.Error(), "BOARDRANGE") {
		return fmt.Errorf("%w: %s", ErrScoreRange, strings.TrimPrefix(err.Error(), "BOARDRANGE "))
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrBoardUnavailable, err)
}

// Write implements BoardStore: one pipeline. Increments run the script by
// EVALSHA after loading it once per client (SCRIPT LOAD reaches every
// Cluster shard). Should Redis lose its script cache between the load and
// the pipeline, the increments that got NOSCRIPT are sent again, in order,
// after reloading: they then apply after the batch's other submissions.
func (s *BoardRedisStore) Write(ctx context.Context, ref BoardRef, ws []BoardWrite) ([]error, error) {
	idx := BoardNodeIndex(ref.Board, len(s.clients))
	c, key := s.clients[idx], s.key(ref)
	hasIncr := false
	for _, w := range ws {
		switch w.Op {
		case ScoreBest, ScoreSet:
		case ScoreIncr:
			hasIncr = true
		default:
			return nil, fmt.Errorf("%w: operator %d", ErrBoardInvalid, w.Op)
		}
	}
	if hasIncr && !s.loaded[idx].Load() {
		if err := boardIncrScript.Load(ctx, c).Err(); err != nil {
			return nil, boardRedisErr(err)
		}
		s.loaded[idx].Store(true)
	}
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, w := range ws {
			member := strconv.FormatInt(w.User, 10)
			switch w.Op {
			case ScoreBest:
				p.ZAddGT(ctx, key, redis.Z{Score: w.Value, Member: member})
			case ScoreSet:
				p.ZAdd(ctx, key, redis.Z{Score: w.Value, Member: member})
			case ScoreIncr:
				boardIncrScript.EvalSha(ctx, p, []string{key}, member, w.Delta, w.Slot)
			}
		}
		if ref.TTL > 0 {
			p.PExpire(ctx, key, ref.TTL)
		} else {
			p.Persist(ctx, key)
		}
		return nil
	})
	if err == nil {
		return nil, nil
	}
	// Pipelined returns the first failed command's error. Range errors of
	// increments are per submission; anything else is the backend's.
	var errs []error
	var retry []int
	for i, cmd := range cmds {
		cerr := cmd.Err()
		if cerr == nil || errors.Is(cerr, redis.Nil) {
			continue
		}
		if i < len(ws) && ws[i].Op == ScoreIncr {
			if redis.HasErrorPrefix(cerr, "NOSCRIPT") {
				retry = append(retry, i)
				continue
			}
			if rerr := boardRedisErr(cerr); errors.Is(rerr, ErrScoreRange) {
				if errs == nil {
					errs = make([]error, len(ws))
				}
				errs[i] = rerr
				continue
			}
		}
		return nil, boardRedisErr(cerr)
	}
	if len(retry) > 0 {
		s.loaded[idx].Store(false)
		if err := boardIncrScript.Load(ctx, c).Err(); err != nil {
			return nil, boardRedisErr(err)
		}
		s.loaded[idx].Store(true)
		again, _ := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range retry {
				w := ws[i]
				boardIncrScript.EvalSha(ctx, p, []string{key}, strconv.FormatInt(w.User, 10), w.Delta, w.Slot)
			}
			return nil
		})
		for j, cmd := range again {
			cerr := cmd.Err()
			if cerr == nil {
				continue
			}
			rerr := boardRedisErr(cerr)
			if !errors.Is(rerr, ErrScoreRange) {
				return nil, rerr
			}
			if errs == nil {
				errs = make([]error, len(ws))
			}
			errs[retry[j]] = rerr
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
