package realtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedisPresence is a Presence in Redis (single node, Sentinel or Cluster),
// shared by every realtime node. Keys (P is PresenceConfig.Prefix):
//
//	P{p:u:<userKey>}   hash: "<len(node)>:<node><connID>" -> expiry (Unix ms)
//	P{p:c:<channel>}   sorted set: user key scored by expiry (Unix ms)
//
// Every key lives TTL after its last Touch, so a dead node's entries go
// away on their own; expired fields and members still present are filtered
// out and deleted lazily by Where and Count (one script each, on one key).
// A Touch is one pipeline per touchBatch commands (one round trip per
// Cluster node involved): HSET and PEXPIRE per connection, ZADD GT and
// PEXPIRE per channel.
type RedisPresence struct {
	rc  redis.UniversalClient
	cfg PresenceConfig
}

var _ Presence = (*RedisPresence)(nil)

// NewRedisPresence returns a Presence over client. It does not close
// client.
func NewRedisPresence(client redis.UniversalClient, cfg PresenceConfig) (*RedisPresence, error) {
	if client == nil {
		return nil, errors.New("realtime: nil redis client")
	}
	cfg = cfg.withDefaults()
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("realtime: presence prefix %q contains a brace", cfg.Prefix)
	}
	return &RedisPresence{rc: client, cfg: cfg}, nil
}

func (p *RedisPresence) userKey(uk int64) string {
	return p.cfg.Prefix + "{p:u:" + strconv.FormatInt(uk, 10) + "}"
}

func (p *RedisPresence) chanKey(ch string) string {
	return p.cfg.Prefix + "{p:c:" + ch + "}"
}

func connField(c PresenceConn) string {
	return strconv.Itoa(len(c.Node)) + ":" + c.Node + c.ConnID
}

func parseConnField(f string) (node, conn string, ok bool) {
	n, rest, ok := strings.Cut(f, ":")
	if !ok {
		return "", "", false
	}
	l, err := strconv.Atoi(n)
	if err != nil || l < 0 || l > len(rest) {
		return "", "", false
	}
	return rest[:l], rest[l:], true
}

// touchBatch bounds the commands of one Touch pipeline, so a node's whole
// heartbeat round in one call does not build one huge request.
const touchBatch = 1024

func presenceUnavailable(op string, err error) error {
	return fmt.Errorf("%w: presence %s: %w", ErrUnavailable, op, err)
}

// Touch implements Presence.
func (p *RedisPresence) Touch(ctx context.Context, entries ...PresenceEntry) error {
	if len(entries) == 0 {
		return nil
	}
	now := p.cfg.Now()
	exp := now.Add(p.cfg.TTL).UnixMilli()
	ttl := p.cfg.TTL
	pl := p.rc.Pipeline()
	for _, e := range entries {
		uk := p.userKey(e.UserKey)
		pl.HSet(ctx, uk, connField(e.PresenceConn), exp)
		pl.PExpire(ctx, uk, ttl)
		for _, ch := range e.Channels {
			ck := p.chanKey(ch)
			pl.ZAddGT(ctx, ck, redis.Z{Score: float64(exp), Member: e.UserKey})
			pl.PExpire(ctx, ck, ttl)
		}
		if pl.Len() >= touchBatch {
			if _, err := pl.Exec(ctx); err != nil {
				return presenceUnavailable("touch", err)
			}
		}
	}
	if _, err := pl.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return presenceUnavailable("touch", err)
	}
	return nil
}

// Leave implements Presence.
func (p *RedisPresence) Leave(ctx context.Context, userKey int64, channels ...string) error {
	if len(channels) == 0 {
		return nil
	}
	_, err := p.rc.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for _, ch := range channels {
			pl.ZRem(ctx, p.chanKey(ch), userKey)
		}
		return nil
	})
	if err != nil {
		return presenceUnavailable("leave", err)
	}
	return nil
}

// Disconnect implements Presence.
func (p *RedisPresence) Disconnect(ctx context.Context, c PresenceConn, channels ...string) error {
	_, err := p.rc.Pipelined(ctx, func(pl redis.Pipeliner) error {
		pl.HDel(ctx, p.userKey(c.UserKey), connField(c))
		for _, ch := range channels {
			pl.ZRem(ctx, p.chanKey(ch), c.UserKey)
		}
		return nil
	})
	if err != nil {
		return presenceUnavailable("disconnect", err)
	}
	return nil
}

// whereScript: KEYS 1 user hash. ARGV 1 now ms. Deletes the expired fields
// and returns the live ones.
var whereScript = redis.NewScript(`
local all = redis.call('HGETALL', KEYS[1])
local now = tonumber(ARGV[1])
local live = {}
for i = 1, #all, 2 do
  if tonumber(all[i+1]) > now then
    live[#live+1] = all[i]
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return live
`)

// Where implements Presence.
func (p *RedisPresence) Where(ctx context.Context, userKey int64) ([]PresenceConn, error) {
	now := p.cfg.Now().UnixMilli()
	fields, err := whereScript.Run(ctx, p.rc, []string{p.userKey(userKey)}, now).StringSlice()
	if err != nil {
		return nil, presenceUnavailable("where", err)
	}
	out := make([]PresenceConn, 0, len(fields))
	for _, f := range fields {
		node, conn, ok := parseConnField(f)
		if !ok {
			continue
		}
		out = append(out, PresenceConn{UserKey: userKey, Node: node, ConnID: conn})
	}
	slices.SortFunc(out, comparePresenceConn)
	return out, nil
}

// countScript: KEYS 1 channel set. ARGV 1 now ms. Trims the expired
// members and returns how many are left.
var countScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZCARD', KEYS[1])
`)

// Count implements Presence.
func (p *RedisPresence) Count(ctx context.Context, channel string) (int, error) {
	now := p.cfg.Now().UnixMilli()
	n, err := countScript.Run(ctx, p.rc, []string{p.chanKey(channel)}, now).Int()
	if err != nil {
		return 0, presenceUnavailable("count", err)
	}
	return n, nil
}
