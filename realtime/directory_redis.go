package realtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisDirectory is a Directory in Redis (single node, Sentinel or
// Cluster), shared by every realtime node. A room is one key, P{d:<room>}
// (P is DirectoryConfig.Prefix), holding "<token>:<node>" with the lease as
// its Redis TTL (PX), so expiry follows the Redis server's clock; each call
// is one command or one script on that key.
type RedisDirectory struct {
	rc  redis.UniversalClient
	cfg DirectoryConfig
}

var _ Directory = (*RedisDirectory)(nil)

// NewRedisDirectory returns a Directory over client. It does not close
// client.
func NewRedisDirectory(client redis.UniversalClient, cfg DirectoryConfig) (*RedisDirectory, error) {
	if client == nil {
		return nil, errors.New("realtime: nil redis client")
	}
	cfg = cfg.withDefaults()
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("realtime: directory prefix %q contains a brace", cfg.Prefix)
	}
	return &RedisDirectory{rc: client, cfg: cfg}, nil
}

func (d *RedisDirectory) key(room string) string { return d.cfg.Prefix + "{d:" + room + "}" }

func directoryUnavailable(op string, err error) error {
	return fmt.Errorf("%w: directory %s: %w", ErrUnavailable, op, err)
}

// parseOwner splits "<token>:<node>".
func parseOwner(room, v string) (Lease, bool) {
	tok, node, ok := strings.Cut(v, ":")
	return Lease{Room: room, Node: node, Token: tok}, ok
}

// claimScript: KEYS 1 room. ARGV 1 "<token>:<node>", 2 ttl ms. Returns
// {1} when claimed, else {0, owner value, owner's pttl}.
var claimScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1} end
return {0, redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}
`)

// Claim implements Directory.
func (d *RedisDirectory) Claim(ctx context.Context, room, node string, ttl time.Duration) (Lease, error) {
	if err := checkTTL(ttl); err != nil {
		return Lease{}, err
	}
	now := d.cfg.Now()
	l := Lease{Room: room, Node: node, Token: newToken(), Expires: now.Add(ttl)}
	res, err := claimScript.Run(ctx, d.rc, []string{d.key(room)}, l.Token+":"+node, ttl.Milliseconds()).Slice()
	if err != nil {
		return Lease{}, directoryUnavailable("claim", err)
	}
	if ok, _ := res[0].(int64); ok == 1 {
		return l, nil
	}
	if len(res) < 3 {
		return Lease{}, directoryUnavailable("claim", fmt.Errorf("unexpected script reply %v", res))
	}
	v, _ := res[1].(string)
	pttl, _ := res[2].(int64)
	owner, _ := parseOwner(room, v)
	owner.Token = ""
	owner.Expires = now.Add(time.Duration(pttl) * time.Millisecond)
	return owner, fmt.Errorf("%w: %q is on node %q", ErrRoomTaken, room, owner.Node)
}

// renewScript: KEYS 1 room. ARGV 1 "<token>:<node>", 2 ttl ms. Returns 1
// when renewed, 0 when the key holds another claim or none.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// Renew implements Directory.
func (d *RedisDirectory) Renew(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	if err := checkTTL(ttl); err != nil {
		return Lease{}, err
	}
	now := d.cfg.Now()
	ok, err := renewScript.Run(ctx, d.rc, []string{d.key(l.Room)}, l.Token+":"+l.Node, ttl.Milliseconds()).Int()
	if err != nil {
		return Lease{}, directoryUnavailable("renew", err)
	}
	if ok != 1 {
		return Lease{}, fmt.Errorf("%w: room %q", ErrLeaseLost, l.Room)
	}
	l.Expires = now.Add(ttl)
	return l, nil
}

// releaseScript: KEYS 1 room. ARGV 1 "<token>:<node>". Deletes the key if
// it holds this claim.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`)

// Release implements Directory.
func (d *RedisDirectory) Release(ctx context.Context, l Lease) error {
	if err := releaseScript.Run(ctx, d.rc, []string{d.key(l.Room)}, l.Token+":"+l.Node).Err(); err != nil {
		return directoryUnavailable("release", err)
	}
	return nil
}

// Lookup implements Directory.
func (d *RedisDirectory) Lookup(ctx context.Context, room string) (Lease, error) {
	now := d.cfg.Now()
	k := d.key(room)
	var get *redis.StringCmd
	var pttl *redis.DurationCmd
	_, err := d.rc.Pipelined(ctx, func(pl redis.Pipeliner) error {
		get = pl.Get(ctx, k)
		pttl = pl.PTTL(ctx, k)
		return nil
	})
	if errors.Is(err, redis.Nil) {
		return Lease{}, fmt.Errorf("%w: %q", ErrRoomNotFound, room)
	}
	if err != nil {
		return Lease{}, directoryUnavailable("lookup", err)
	}
	l, ok := parseOwner(room, get.Val())
	if !ok {
		return Lease{}, directoryUnavailable("lookup", fmt.Errorf("malformed room value %q", get.Val()))
	}
	l.Token = ""
	if p := pttl.Val(); p > 0 {
		l.Expires = now.Add(p)
	}
	return l, nil
}
