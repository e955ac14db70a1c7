package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultPingTimeout is RedisOptions.PingTimeout's default.
const DefaultPingTimeout = 5 * time.Second

// ErrRedisOptions is OpenRedis's answer to options that name no Redis, both
// kinds, or a blank address; the error wraps it with the detail. Nothing
// was opened.
var ErrRedisOptions = errors.New("session: invalid Redis options")

// RedisOptions says which Redis OpenRedis connects to: standalone nodes
// (Addrs), users routed over them by user key, or one Redis Cluster
// (ClusterAddrs). Set exactly one of the two lists. The zero values of the
// other fields are go-redis's defaults and the package's routing default
// (Modulo).
type RedisOptions struct {
	// Addrs are standalone Redis nodes, "host:port" each: one *redis.Client
	// per address, in order, and users routed over them by Routing (the
	// index of a node is its place in Addrs, so keep the order stable).
	// One address is a single node. A node may be a primary with replicas
	// behind it; for Sentinel build the clients yourself and use NewRouter.
	Addrs []string
	// ClusterAddrs are seed nodes of one Redis Cluster: one
	// *redis.ClusterClient, routed as a single node (Single); the Cluster
	// spreads users by the {u:<userKey>} hash tag of their keys.
	ClusterAddrs []string
	// Options is the template of each standalone client: it is copied per
	// address with Addr set to the address; everything else (Username,
	// Password, DB, TLSConfig, PoolSize, timeouts, Dialer, OnConnect, ...)
	// is used as given, the same for every node. Nil: go-redis's defaults
	// (&redis.Options{}). The template is not modified.
	Options *redis.Options
	// ClusterOptions is the template of the Cluster client: it is copied
	// with Addrs set to ClusterAddrs; everything else as given. Nil:
	// go-redis's defaults. The template is not modified.
	ClusterOptions *redis.ClusterOptions
	// Routing is the rule over Addrs, passed to NewRouter as is (a
	// Previous router's clients stay the caller's to close). Default
	// Modulo. Ignored for a Cluster.
	Routing RouterConfig
	// PingTimeout bounds the PING OpenRedis sends each client before it
	// returns (under ctx). Default DefaultPingTimeout (5 s).
	PingTimeout time.Duration
}

// RedisClients are the clients OpenRedis opened and the Router over them.
// They belong to the caller: Close them when the stores built on them
// (NewRedisStore, NewRedisCache, NewBoardRedisStore, ...) are closed.
type RedisClients struct {
	// Router routes user keys over Clients; pass it to NewRedisStore and
	// NewRedisCache.
	Router *Router
	// Clients are the opened clients: one per RedisOptions.Addrs entry, in
	// order (*redis.Client), or the one *redis.ClusterClient. Clients[0]
	// is the Router's first node, where global values live; use it for
	// what is not per user (pub/sub brokers, global flags).
	Clients []redis.UniversalClient
}

// Close closes every client and returns their errors joined. Call it once.
func (c *RedisClients) Close() error {
	errs := make([]error, 0, len(c.Clients))
	for _, cl := range c.Clients {
		errs = append(errs, cl.Close())
	}
	return errors.Join(errs...)
}

// OpenRedis opens the clients opt names, checks that each answers PING
// within opt.PingTimeout and returns them with a Router over them: a
// Cluster client routed as one node, or one client per standalone address
// routed by opt.Routing.
//
// Bad options are ErrRedisOptions (wrapped). A server that does not answer
// is ErrUnavailable, wrapped with the address (a Cluster's seed list) and
// go-redis's error. On any error every client opened is closed again.
//
// The stores are the caller's next step, on the Router:
//
//	rc, err := session.OpenRedis(ctx, session.RedisOptions{Addrs: addrs})
//	...
//	defer rc.Close()
//	store, err := session.NewRedisStore(rc.Router, session.Config{Prefix: "game:"})
func OpenRedis(ctx context.Context, opt RedisOptions) (_ *RedisClients, err error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	rc := &RedisClients{}
	defer func() {
		if err != nil {
			_ = rc.Close()
		}
	}()
	var names []string // what each client is called in errors
	if len(opt.ClusterAddrs) > 0 {
		co := redis.ClusterOptions{}
		if opt.ClusterOptions != nil {
			co = *opt.ClusterOptions
		}
		co.Addrs = append([]string(nil), opt.ClusterAddrs...)
		c := redis.NewClusterClient(&co)
		rc.Clients, names = []redis.UniversalClient{c}, []string{"cluster " + strings.Join(opt.ClusterAddrs, ",")}
		rc.Router = Single(c)
	} else {
		for _, addr := range opt.Addrs {
			o := redis.Options{}
			if opt.Options != nil {
				o = *opt.Options
			}
			o.Addr = addr
			rc.Clients, names = append(rc.Clients, redis.NewClient(&o)), append(names, addr)
		}
		if rc.Router, err = NewRouter(rc.Clients, opt.Routing); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRedisOptions, err)
		}
	}
	timeout := opt.PingTimeout
	if timeout <= 0 {
		timeout = DefaultPingTimeout
	}
	for i, c := range rc.Clients {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := c.Ping(pctx).Err()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%w: redis %s did not answer PING: %w", ErrUnavailable, names[i], err)
		}
	}
	return rc, nil
}

// check validates the address lists before anything is opened.
func (opt *RedisOptions) check() error {
	switch {
	case len(opt.Addrs) == 0 && len(opt.ClusterAddrs) == 0:
		return fmt.Errorf("%w: no Addrs or ClusterAddrs", ErrRedisOptions)
	case len(opt.Addrs) > 0 && len(opt.ClusterAddrs) > 0:
		return fmt.Errorf("%w: both Addrs and ClusterAddrs set; pick one", ErrRedisOptions)
	}
	for _, list := range []struct {
		name  string
		addrs []string
	}{{"Addrs", opt.Addrs}, {"ClusterAddrs", opt.ClusterAddrs}} {
		for i, a := range list.addrs {
			if strings.TrimSpace(a) == "" {
				return fmt.Errorf("%w: %s[%d] is blank", ErrRedisOptions, list.name, i)
			}
		}
	}
	return nil
}
