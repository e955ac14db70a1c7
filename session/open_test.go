package session_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/session"
	"github.com/redis/go-redis/v9"
)

// Options that name no Redis, both kinds, or a blank address are refused
// before anything is opened; a routing rule NewRouter refuses is the same
// error.
func TestOpenRedisBadOptions(t *testing.T) {
	for name, opt := range map[string]session.RedisOptions{
		"nothing":       {},
		"empty lists":   {Addrs: []string{}, ClusterAddrs: []string{}},
		"both":          {Addrs: []string{"127.0.0.1:6379"}, ClusterAddrs: []string{"127.0.0.1:7000"}},
		"blank addr":    {Addrs: []string{"127.0.0.1:6379", " "}},
		"blank seed":    {ClusterAddrs: []string{""}},
		"ranges starts": {Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, Routing: session.RouterConfig{Rule: session.Ranges, Starts: []int64{1}}},
	} {
		rc, err := session.OpenRedis(context.Background(), opt)
		if !errors.Is(err, session.ErrRedisOptions) || rc != nil {
			t.Errorf("%s: %v, %v; want ErrRedisOptions", name, rc, err)
		}
	}
}

// A server that does not answer fails OpenRedis with ErrUnavailable naming
// its address, for a node list and for Cluster seeds.
func TestOpenRedisUnreachable(t *testing.T) {
	addr := deadAddr(t)
	for name, opt := range map[string]session.RedisOptions{
		"node":    {Addrs: []string{addr}, Options: &redis.Options{MaxRetries: -1}},
		"cluster": {ClusterAddrs: []string{addr}, ClusterOptions: &redis.ClusterOptions{MaxRetries: -1}},
	} {
		rc, err := session.OpenRedis(context.Background(), opt)
		if !errors.Is(err, session.ErrUnavailable) || rc != nil {
			t.Fatalf("%s: %v, %v; want ErrUnavailable", name, rc, err)
		}
		if !strings.Contains(err.Error(), addr) {
			t.Errorf("%s: error does not name %s: %v", name, addr, err)
		}
	}
}

// deadAddr returns a loopback address nothing listens on (a port just
// freed).
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// liveConns counts the connections a client dialed and has not closed.
type liveConns struct{ n atomic.Int64 }

type countedConn struct {
	net.Conn
	live   *liveConns
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.live.n.Add(-1)
	}
	return c.Conn.Close()
}

func (l *liveConns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	l.n.Add(1)
	return &countedConn{Conn: c, live: l}, nil
}

// When one node of the list does not answer, the clients already opened
// (and connected: the first node answered) are closed again.
func TestOpenRedisClosesOnError(t *testing.T) {
	addr := needRedis(t)
	var live liveConns
	dead := deadAddr(t)
	tmpl := &redis.Options{Dialer: live.dial, MaxRetries: -1}
	_, err := session.OpenRedis(context.Background(), session.RedisOptions{Addrs: []string{addr, dead}, Options: tmpl})
	if !errors.Is(err, session.ErrUnavailable) || !strings.Contains(err.Error(), dead) {
		t.Fatalf("err = %v; want ErrUnavailable naming %s", err, dead)
	}
	if n := live.n.Load(); n != 0 {
		t.Fatalf("%d connections to %s left open", n, addr)
	}
	if tmpl.Addr != "" {
		t.Errorf("template modified: Addr %q", tmpl.Addr)
	}
}

// Two standalone nodes (the shared server and a private one): one client
// each, in order, with the template's settings, users routed by user key,
// and a store on the Router writes each user's keys on the user's node.
func TestOpenRedisNodes(t *testing.T) {
	shared := testredis.Client(t)
	private := privateRedis(t)
	ctx := context.Background()
	addrs := []string{os.Getenv(testredis.EnvAddr), private.Options().Addr}
	rc, err := session.OpenRedis(ctx, session.RedisOptions{Addrs: addrs, Options: &redis.Options{PoolSize: 3}})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if len(rc.Clients) != 2 {
		t.Fatalf("%d clients, want 2", len(rc.Clients))
	}
	for i, c := range rc.Clients {
		o := c.(*redis.Client).Options()
		if o.Addr != addrs[i] || o.PoolSize != 3 {
			t.Errorf("client %d: Addr %s PoolSize %d; want %s and 3", i, o.Addr, o.PoolSize, addrs[i])
		}
	}
	prefix := testredis.Prefix(t, shared)
	store, err := session.NewRedisStore(rc.Router, session.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for uk, node := range map[int64]*redis.Client{10: shared, 11: private} {
		if rc.Router.Node(uk) != rc.Clients[uk%2] {
			t.Errorf("user %d not routed to client %d", uk, uk%2)
		}
		if _, err := store.Create(ctx, session.CreateParams{UserKey: uk}); err != nil {
			t.Fatal(err)
		}
		keys, err := node.Keys(ctx, fmt.Sprintf("%s{u:%d}*", prefix, uk)).Result()
		if err != nil || len(keys) == 0 {
			t.Errorf("user %d: no keys on %s (%v)", uk, node.Options().Addr, err)
		}
	}
	store.Close()
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Clients[0].Ping(ctx).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("ping after Close: %v, want redis.ErrClosed", err)
	}
}

// Cluster seeds: one Cluster client, the template's settings, every user
// on it, a working store.
func TestOpenRedisCluster(t *testing.T) {
	c := testredis.Cluster(t)
	ctx := context.Background()
	seeds := strings.Split(os.Getenv(testredis.EnvCluster), ",")
	rc, err := session.OpenRedis(ctx, session.RedisOptions{ClusterAddrs: seeds, ClusterOptions: &redis.ClusterOptions{PoolSize: 3}})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	cc, ok := rc.Clients[0].(*redis.ClusterClient)
	if len(rc.Clients) != 1 || !ok {
		t.Fatalf("clients %v; want one *redis.ClusterClient", rc.Clients)
	}
	if o := cc.Options(); o.PoolSize != 3 || strings.Join(o.Addrs, ",") != strings.Join(seeds, ",") {
		t.Errorf("cluster options: PoolSize %d, Addrs %v", o.PoolSize, o.Addrs)
	}
	for _, uk := range []int64{1, 2, 10000001} {
		if rc.Router.Node(uk) != cc {
			t.Errorf("user %d not on the cluster client", uk)
		}
	}
	store, err := session.NewRedisStore(rc.Router, session.Config{Prefix: testredis.Prefix(t, c)})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	s, err := store.Create(ctx, session.CreateParams{UserKey: 7})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := store.Get(ctx, s.Token); err != nil || got.UserKey != 7 {
		t.Fatalf("Get: %+v, %v", got, err)
	}
}
