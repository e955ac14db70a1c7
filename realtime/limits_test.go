package realtime_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/session/sessiontest"
)

// waitConns polls (bounded) until the hub holds want connections.
func waitConns(t *testing.T, n *node, want int64) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for n.hub.Stats().Connections != want {
		if time.Now().After(deadline) {
			t.Fatalf("hub holds %d connections, want %d", n.hub.Stats().Connections, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// spendChat sends whispers from c until the first refusal, which must come
// after exactly burst messages and carry a retry hint.
func spendChat(t *testing.T, c *realtime.Client, burst int) {
	t.Helper()
	ctx := ctxT(t)
	for i := range burst {
		if err := c.Whisper(ctx, 2, "hi"); err != nil {
			t.Fatalf("message %d of the burst: %v", i+1, err)
		}
	}
	wantChatLimited(t, c)
}

func wantChatLimited(t *testing.T, c *realtime.Client) {
	t.Helper()
	r, err := c.Call(ctxT(t), realtime.CmdWhisper, map[string]any{"to": 2, "data": "one more"})
	if err != nil || r.Code != protocol.CodeRateLimited || r.RetryAfterMs <= 0 {
		t.Fatalf("over the chat limit: %+v, %v; want rate_limited with a retry hint", r, err)
	}
}

// TestChatLimitSurvivesReconnect: the chat limit belongs to the user, not
// to its connections: closing the last one and reconnecting gives nothing
// back (it reset when the hub forgot the user with its last connection).
func TestChatLimitSurvivesReconnect(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{ChatRate: 0.001, ChatBurst: 3})
	sess := sessiontest.Login(t, store, 1)
	c := dial(t, n, sess, nil)
	spendChat(t, c, 3)
	for range 3 {
		c.Close()
		waitConns(t, n, 0)
		c = dial(t, n, sess, nil)
		wantChatLimited(t, c)
	}
	// Another user is not limited.
	spendChat(t, dial(t, n, sessiontest.Login(t, store, 3), nil), 3)
}

// TestChatLimitAcrossNodes: hubs sharing a limiter share each user's chat
// limit: what was spent on one node is spent on the other. In memory (two
// hubs of one process) and on Redis (a RedisLimiter per node on one Redis
// or Cluster, as the example servers run it).
func TestChatLimitAcrossNodes(t *testing.T) {
	lim := session.NewMemoryLimiter(session.LimiterConfig{})
	bs := memoryBrokers(t, 2)
	testChatLimitAcrossNodes(t, sessiontest.NewStore(t, nil), bs, []session.Limiter{lim, lim})
}

func TestChatLimitAcrossNodesRedis(t *testing.T) {
	testChatLimitAcrossNodesOn(t, testredis.Client(t))
}

func TestChatLimitAcrossNodesRedisCluster(t *testing.T) {
	testChatLimitAcrossNodesOn(t, testredis.Cluster(t))
}

func testChatLimitAcrossNodesOn(t *testing.T, c redis.UniversalClient) {
	prefix := testredis.Prefix(t, c)
	lims := redisInstances(t, c, 2, func(string) (session.Limiter, error) {
		return session.NewRedisLimiter(session.Single(c), session.LimiterConfig{Prefix: prefix})
	})
	testChatLimitAcrossNodes(t, redisSessions(t, c, prefix), newRedisBrokers(t, c, prefix, 2), lims)
}

func testChatLimitAcrossNodes(t *testing.T, store session.Store, bs []realtime.Broker, lims []session.Limiter) {
	cfg := realtime.Config{ChatRate: 0.001, ChatBurst: 3}
	cfg.Broker, cfg.Limiter = bs[0], lims[0]
	n1 := startHub(t, store, cfg)
	cfg.Broker, cfg.Limiter = bs[1], lims[1]
	n2 := startHub(t, store, cfg)
	sess := sessiontest.Login(t, store, 1)
	spendChat(t, dial(t, n1, sess, nil), 3)
	wantChatLimited(t, dial(t, n2, sess, nil))
}

// failingLimiter fails every call, like a RedisLimiter whose Redis is down.
type failingLimiter struct{}

func (failingLimiter) Allow(context.Context, int64, session.Limit) (session.LimitResult, error) {
	return session.LimitResult{}, session.ErrUnavailable
}

// TestChatLimiterDown: with the limiter failing, chat passes (fail open)
// and the failures are counted.
func TestChatLimiterDown(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{ChatRate: 0.001, ChatBurst: 1, Limiter: failingLimiter{}})
	c := dial(t, n, sessiontest.Login(t, store, 1), nil)
	for range 5 {
		if err := c.Whisper(ctxT(t), 2, "hi"); err != nil {
			t.Fatal(err)
		}
	}
	if got := n.hub.Stats().LimiterErrors; got != 5 {
		t.Fatalf("LimiterErrors %d, want 5", got)
	}
}

func wantTooManyConns(t *testing.T, n *node, sess *session.Session) {
	t.Helper()
	_, err := realtime.Dial(ctxT(t), n.url, sess.Token, nil)
	var he *realtime.HandshakeError
	if !errors.As(err, &he) || he.Status != 429 || he.Code != protocol.CodeRateLimited {
		t.Fatalf("connection over the cap: %v, want HTTP 429 rate_limited", err)
	}
}

// TestMaxUserConns: the N+1-th connection of a user is refused at the
// handshake with 429 rate_limited; other users are not affected, and a
// closed connection frees its place.
func TestMaxUserConns(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{MaxUserConns: 3})
	sess := sessiontest.Login(t, store, 1)
	var cs []*realtime.Client
	for range 3 {
		cs = append(cs, dial(t, n, sess, nil))
	}
	wantTooManyConns(t, n, sess)
	dial(t, n, sessiontest.Login(t, store, 2), nil)
	if got := n.hub.Stats().ConnsRefused; got != 1 {
		t.Fatalf("ConnsRefused %d, want 1", got)
	}
	cs[0].Close()
	waitConns(t, n, 3)
	dial(t, n, sess, nil)
	wantTooManyConns(t, n, sess)
	// The connections still open work.
	if _, err := cs[1].Subscribe(ctxT(t), "world.1", nil); err != nil {
		t.Fatal(err)
	}
}

// TestDefaultMaxUserConns: the default cap is DefaultMaxUserConns;
// negative turns it off.
func TestDefaultMaxUserConns(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{})
	sess := sessiontest.Login(t, store, 1)
	for range realtime.DefaultMaxUserConns {
		dial(t, n, sess, nil)
	}
	wantTooManyConns(t, n, sess)
	off := startHub(t, store, realtime.Config{MaxUserConns: -1})
	for range realtime.DefaultMaxUserConns + 2 {
		dial(t, off, sess, nil)
	}
}

// TestMaxUserConnsAcrossNodes: with a Presence shared by the nodes, the
// user's connections on every node count toward the cap.
func TestMaxUserConnsAcrossNodes(t *testing.T) {
	testMaxUserConnsAcrossNodes(t, sessiontest.NewStore(t, nil), memoryBrokers(t, 2), realtime.NewMemoryPresence(realtime.PresenceConfig{}))
}

func TestMaxUserConnsAcrossNodesRedis(t *testing.T) {
	c := testredis.Client(t)
	prefix := testredis.Prefix(t, c)
	p, err := realtime.NewRedisPresence(c, realtime.PresenceConfig{Prefix: prefix + "p:"})
	if err != nil {
		t.Fatal(err)
	}
	testMaxUserConnsAcrossNodes(t, redisSessions(t, c, prefix), newRedisBrokers(t, c, prefix, 2), p)
}

func testMaxUserConnsAcrossNodes(t *testing.T, store session.Store, bs []realtime.Broker, p realtime.Presence) {
	n1 := startHub(t, store, realtime.Config{Broker: bs[0], Presence: p, MaxUserConns: 2})
	n2 := startHub(t, store, realtime.Config{Broker: bs[1], Presence: p, MaxUserConns: 2})
	sess := sessiontest.Login(t, store, 1)
	a := dial(t, n1, sess, nil)
	dial(t, n2, sess, nil)
	wantTooManyConns(t, n1, sess)
	wantTooManyConns(t, n2, sess)
	a.Close()
	waitConns(t, n1, 0)
	dial(t, n1, sess, nil) // its Disconnect freed the place at once
}
