package idempotency

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/madang-io/madang/protocol"
)

// RedisConfig configures a RedisStore. The zero value works.
type RedisConfig struct {
	// Prefix starts every key, before the hash tag. Default "" (keys start
	// with the hash tag).
	Prefix string
}

// RedisStore is a Store in Redis: one hash per key, named
//
//	<Prefix>{u:<userKey>}:idem:<len(command)>:<command>:<key>
//
// so a user's keys share the hash slot of its other keys (Redis Cluster), and
// each state transition is one Lua script on that one key. It works with a
// single node, a Cluster or a Ring (any redis.UniversalClient). Leases and
// retention are Redis TTLs, so process clocks do not matter.
type RedisStore struct {
	c      redis.UniversalClient
	prefix string
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore returns a RedisStore using c.
func NewRedisStore(c redis.UniversalClient, cfg RedisConfig) (*RedisStore, error) {
	if c == nil {
		return nil, errors.New("idempotency: nil redis client")
	}
	return &RedisStore{c: c, prefix: cfg.Prefix}, nil
}

// Key returns the Redis key of (scope, key).
func (s *RedisStore) Key(scope Scope, key string) string {
	b := make([]byte, 0, len(s.prefix)+len(scope.Command)+len(key)+40)
	b = append(b, s.prefix...)
	b = append(b, "{u:"...)
	b = strconv.AppendInt(b, scope.UserKey, 10)
	b = append(b, "}:idem:"...)
	b = strconv.AppendInt(b, int64(len(scope.Command)), 10)
	b = append(b, ':')
	b = append(b, scope.Command...)
	b = append(b, ':')
	b = append(b, key...)
	return string(b)
}

// Hash fields: st "r" (running) or "d" (done); fp fingerprint; tok in-flight
// token; code, msg, pl the stored result.
var (
	// begin: KEYS[1]; ARGV fp, token, lease ms. Returns {1} acquired,
	// {2, code, msg, payload} completed, {3, pttl} in flight, {4} mismatch.
	// A record running under the caller's own token is acquired again: that
	// is this same Begin re-sent by the client after its reply was lost.
	redisBegin = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'st', 'fp', 'code', 'msg', 'pl', 'tok')
if not v[1] then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'st', 'r', 'fp', ARGV[1], 'tok', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {1}
end
if v[2] ~= ARGV[1] then return {4} end
if v[1] == 'd' then return {2, v[3], v[4] or '', v[5] or ''} end
if v[6] == ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {1}
end
return {3, redis.call('PTTL', KEYS[1])}
`)
	// complete: KEYS[1]; ARGV token, code, msg, payload, retention ms.
	// Returns 1 stored, 0 lease lost. A Complete re-sent after a lost reply
	// finds the token gone and reports a lost lease; the caller's retry then
	// finds the stored result.
	redisComplete = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'tok') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'st', 'd', 'code', ARGV[2], 'msg', ARGV[3], 'pl', ARGV[4])
redis.call('HDEL', KEYS[1], 'tok')
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`)
	// release: KEYS[1]; ARGV token. Deletes the record if the token matches.
	redisRelease = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'tok') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)
)

// Begin implements Store.
func (s *RedisStore) Begin(ctx context.Context, scope Scope, key string, fp Fingerprint, token string, lease time.Duration) (Begin, error) {
	v, err := redisBegin.Run(ctx, s.c, []string{s.Key(scope, key)}, fp[:], token, max(lease.Milliseconds(), 1)).Slice()
	if err != nil {
		return Begin{}, fmt.Errorf("idempotency: redis begin: %w", err)
	}
	if len(v) == 0 {
		return Begin{}, errors.New("idempotency: redis begin: empty reply")
	}
	state, _ := v[0].(int64)
	switch State(state) {
	case Acquired, Mismatch:
		return Begin{State: State(state)}, nil
	case Completed:
		if len(v) != 4 {
			return Begin{}, fmt.Errorf("idempotency: redis begin: reply of %d items", len(v))
		}
		codeStr, _ := v[1].(string)
		code, err := strconv.ParseInt(codeStr, 10, 32)
		if err != nil {
			return Begin{}, fmt.Errorf("idempotency: redis begin: stored code %q", codeStr)
		}
		msg, _ := v[2].(string)
		pl, _ := v[3].(string)
		res := Result{Code: protocol.Code(code), Message: msg}
		if pl != "" {
			res.Payload = []byte(pl)
		}
		return Begin{State: Completed, Result: res}, nil
	case InFlight:
		var left time.Duration
		if len(v) > 1 {
			if ms, ok := v[1].(int64); ok && ms > 0 {
				left = time.Duration(ms) * time.Millisecond
			}
		}
		return Begin{State: InFlight, RetryAfter: left}, nil
	}
	return Begin{}, fmt.Errorf("idempotency: redis begin: unknown state %v", v[0])
}

// Complete implements Store.
func (s *RedisStore) Complete(ctx context.Context, scope Scope, key string, token string, res Result, retention time.Duration) error {
	n, err := redisComplete.Run(ctx, s.c, []string{s.Key(scope, key)}, token, int64(res.Code), res.Message, res.Payload, max(retention.Milliseconds(), 1)).Int64()
	if err != nil {
		return fmt.Errorf("idempotency: redis complete: %w", err)
	}
	if n != 1 {
		return ErrLeaseLost
	}
	return nil
}

// Release implements Store.
func (s *RedisStore) Release(ctx context.Context, scope Scope, key string, token string) error {
	if err := redisRelease.Run(ctx, s.c, []string{s.Key(scope, key)}, token).Err(); err != nil {
		return fmt.Errorf("idempotency: redis release: %w", err)
	}
	return nil
}
