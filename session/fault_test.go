package session_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
	"github.com/redis/go-redis/v9"
)

// boardNameOn returns a board name that BoardNodeIndex puts on node i of n.
// redisStoreCacheBoard opens a session store, a user cache and a board named
// name over one client, all under prefix, closed when the test ends.
func redisStoreCacheBoard(t *testing.T, ctx context.Context, c redis.UniversalClient, prefix, name string) (*session.RedisStore, *session.UserCache, *session.Board) {
	t.Helper()
	s, err := session.NewRedisStore(session.Single(c), session.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	uc, err := session.NewRedisCache(ctx, session.Single(c), session.CacheConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.Close() })
	bs, err := session.NewBoardRedisStore([]redis.UniversalClient{c}, session.BoardRedisConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	board, err := session.NewBoard(bs, name, session.BoardConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return s, uc, board
}

func boardNameOn(t *testing.T, i, n int) string {
	t.Helper()
	for k := range 1000 {
		if name := "fault" + strconv.Itoa(k); session.BoardNodeIndex(name, n) == i {
			return name
		}
	}
	t.Fatalf("no board name for node %d of %d", i, n)
	return ""
}

// TestRoutedConnectionCut: two nodes routed by user key, node 0 (a private
// server) behind a proxy the test controls. A connection cut in the middle
// of a request gives ErrUnavailable for the users (and boards) on node 0
// only; the users on node 1 keep working throughout; node 0's users work
// again once the connection is back.
func TestRoutedConnectionCut(t *testing.T) {
	shared := testredis.Client(t)
	private := privateRedis(t)
	p := newProxy(t, private.Options().Addr)
	cut := redis.NewClient(&redis.Options{Addr: p.addr(), MaxRetries: 1, DialTimeout: time.Second})
	defer cut.Close()
	nodes := []redis.UniversalClient{cut, shared}
	r, err := session.NewRouter(nodes, session.RouterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	const down, up = int64(2), int64(3) // Modulo: even users on node 0, odd on node 1
	if r.Index(down) != 0 || r.Index(up) != 1 {
		t.Fatal("unexpected layout")
	}
	prefix := testredis.Prefix(t, shared) // keys on the private node go with it
	ctx := context.Background()
	s, err := session.NewRedisStore(r, session.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	uc, err := session.NewRedisCache(ctx, r, session.CacheConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	bs, err := session.NewBoardRedisStore(nodes, session.BoardRedisConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	boardDown, err := session.NewBoard(bs, boardNameOn(t, 0, 2), session.BoardConfig{})
	if err != nil {
		t.Fatal(err)
	}
	boardUp, err := session.NewBoard(bs, boardNameOn(t, 1, 2), session.BoardConfig{})
	if err != nil {
		t.Fatal(err)
	}

	sess := map[int64]*session.Session{}
	for _, uk := range []int64{down, up} {
		if sess[uk], err = s.Create(ctx, session.CreateParams{UserKey: uk}); err != nil {
			t.Fatal(err)
		}
		if err := uc.Set(ctx, uk, "k", []byte("v"+strconv.FormatInt(uk, 10)), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []*session.Board{boardDown, boardUp} {
		if err := b.Submit(ctx, down, 10, session.ScoreBest); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := private.Exists(ctx, prefix+"{u:2}:u").Result(); n != 1 {
		t.Fatal("user 2's session is not on the private node")
	}

	// Cut node 0 with a Get on the wire.
	p.stalled.Store(true)
	res := make(chan error, 1)
	go func() { _, err := s.Get(ctx, sess[down].Token); res <- err }()
	<-p.sawBytes
	p.cut()
	if err := <-res; !errors.Is(err, session.ErrUnavailable) || protocol.CodeOf(err) != protocol.CodeUnavailable {
		t.Fatalf("Get of a node-0 user during the cut: %v, want ErrUnavailable", err)
	}

	// Node 0's users fail with ErrUnavailable...
	unavailable := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, session.ErrUnavailable) || protocol.CodeOf(err) != protocol.CodeUnavailable {
			t.Fatalf("%s while node 0 is down: %v, want ErrUnavailable", what, err)
		}
	}
	_, err = s.Get(ctx, sess[down].Token)
	unavailable("Get", err)
	_, err = s.GetFrame(ctx, sess[down].ID, 1)
	unavailable("GetFrame", err)
	_, err = s.Create(ctx, session.CreateParams{UserKey: 4})
	unavailable("Create", err)
	unavailable("RevokeUser", s.RevokeUser(ctx, 4))
	_, err = uc.Get(ctx, down, "k")
	unavailable("cache Get", err)
	unavailable("cache Set", uc.Set(ctx, down, "k2", []byte("x"), time.Hour))
	if err := boardDown.Submit(ctx, down, 11, session.ScoreBest); !errors.Is(err, session.ErrBoardUnavailable) {
		t.Fatalf("Submit to a node-0 board while down: %v, want ErrBoardUnavailable", err)
	}

	// ...while node 1's users do not notice.
	if got, err := s.Get(ctx, sess[up].Token); err != nil || got.ID != sess[up].ID {
		t.Fatalf("Get of a node-1 user while node 0 is down: %v, %v", got, err)
	}
	if _, err := s.GetFrame(ctx, sess[up].ID, 1); err != nil {
		t.Fatalf("GetFrame of a node-1 user while node 0 is down: %v", err)
	}
	fresh, err := s.Create(ctx, session.CreateParams{UserKey: 5})
	if err != nil {
		t.Fatalf("Create of a node-1 user while node 0 is down: %v", err)
	}
	if _, err := s.Get(ctx, fresh.Token); err != nil {
		t.Fatal(err)
	}
	if got, err := uc.Get(ctx, up, "k"); err != nil || string(got) != "v3" {
		t.Fatalf("cache Get of a node-1 user while node 0 is down: %q, %v", got, err)
	}
	if err := uc.Set(ctx, up, "k2", []byte("y"), time.Hour); err != nil {
		t.Fatalf("cache Set of a node-1 user while node 0 is down: %v", err)
	}
	if err := boardUp.Submit(ctx, up, 20, session.ScoreBest); err != nil {
		t.Fatalf("Submit to a node-1 board while node 0 is down: %v", err)
	}
	h := session.Middleware(s, session.MiddlewareConfig{})(protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		return &protocol.Response{}, nil
	}))
	if resp := protocol.Dispatch(ctx, h, &protocol.Request{Command: "x", Token: sess[down].Token}, nil); resp.Code != protocol.CodeUnavailable {
		t.Fatalf("middleware, node-0 user: code %v, want CodeUnavailable", resp.Code)
	}
	if resp := protocol.Dispatch(ctx, h, &protocol.Request{Command: "x", Token: sess[up].Token}, nil); resp.Code != protocol.CodeOK {
		t.Fatalf("middleware, node-1 user: code %v, want CodeOK", resp.Code)
	}

	// The connection is back: node 0's users work again, nothing was lost.
	p.restore()
	if got, err := s.Get(ctx, sess[down].Token); err != nil || got.ID != sess[down].ID {
		t.Fatalf("Get of a node-0 user after the connection is back: %v, %v", got, err)
	}
	if got, err := uc.Get(ctx, down, "k"); err != nil || string(got) != "v2" {
		t.Fatalf("cache Get of a node-0 user after the connection is back: %q, %v", got, err)
	}
	if _, err := s.Create(ctx, session.CreateParams{UserKey: 4}); err != nil {
		t.Fatalf("Create of a node-0 user after the connection is back: %v", err)
	}
	if got, err := boardDown.Score(ctx, down); err != nil || got != 10 {
		t.Fatalf("node-0 board after the connection is back: %d, %v; want 10", got, err)
	}
	if got, err := boardUp.Score(ctx, up); err != nil || got != 20 {
		t.Fatalf("node-1 board: %d, %v; want 20", got, err)
	}
}

// killClients kills, on every master of the cluster (through admin, whose
// own connections are unnamed), the connections named name, and returns
// how many it killed.
func killClients(ctx context.Context, admin *redis.ClusterClient, name string) (int64, error) {
	var killed atomic.Int64
	err := admin.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		list, err := n.ClientList(ctx).Result()
		if err != nil {
			return err
		}
		for line := range strings.SplitSeq(list, "\n") {
			var id, got string
			for f := range strings.FieldsSeq(line) {
				if v, ok := strings.CutPrefix(f, "id="); ok {
					id = v
				} else if v, ok := strings.CutPrefix(f, "name="); ok {
					got = v
				}
			}
			if got != name || id == "" {
				continue
			}
			// The connection may have gone meanwhile: 0 killed is fine.
			k, err := n.Do(ctx, "CLIENT", "KILL", "ID", id).Int64()
			if err != nil && !strings.Contains(err.Error(), "No such client") {
				return err
			}
			killed.Add(k)
		}
		return nil
	})
	return killed.Load(), err
}

// TestClusterClientKill: on the local Redis Cluster, the test kills its own
// connections (CLIENT KILL by the client name it set; the servers and other
// tests' connections are untouched) between operations and while
// operations are in flight. Every call either succeeds or fails with the
// typed unavailable error, nothing panics, and once the kills stop every
// call succeeds and the data is intact.
func TestClusterClientKill(t *testing.T) {
	admin := testredis.Cluster(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "madang-kill-" + hex.EncodeToString(b[:])
	c := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:      admin.Options().Addrs,
		ClientName: name,
		// Let the kills show instead of hiding them in retries (with the
		// defaults the client resends on a new connection: see
		// TestClusterCutOnTheWire).
		MaxRetries:   -1,
		MaxRedirects: -1,
	})
	defer c.Close()
	prefix := testredis.Prefix(t, admin)
	ctx := context.Background()
	s, uc, board := redisStoreCacheBoard(t, ctx, c, prefix, "kill")

	// ok accepts success or the typed unavailable errors, and fails the
	// test on anything else; it reports whether the call succeeded.
	var failed atomic.Int64
	ok := func(what string, err error) bool {
		if err == nil {
			return true
		}
		if errors.Is(err, session.ErrUnavailable) || errors.Is(err, session.ErrBoardUnavailable) {
			if protocol.CodeOf(err) != protocol.CodeUnavailable {
				t.Errorf("%s: %v has code %v, want CodeUnavailable", what, err, protocol.CodeOf(err))
			}
			failed.Add(1)
			return false
		}
		t.Errorf("%s: %v, want success or ErrUnavailable", what, err)
		return false
	}
	// eventually retries call a few times: after a kill the pool may still
	// hold a dead connection or two, but it must recover.
	eventually := func(what string, call func() error) {
		t.Helper()
		for range 5 {
			if ok(what, call()) {
				return
			}
		}
		t.Fatalf("%s: still failing after the kills stopped", what)
	}

	const users = 8
	sess := make([]*session.Session, users)
	for i := range users {
		uk := int64(100 + i)
		created, err := s.Create(ctx, session.CreateParams{UserKey: uk})
		if err != nil {
			t.Fatal(err)
		}
		sess[i] = created
		if err := uc.Set(ctx, uk, "k", []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := board.Submit(ctx, uk, int64(i), session.ScoreBest); err != nil {
			t.Fatal(err)
		}
	}

	var killed int64
	kill := func() {
		t.Helper()
		n, err := killClients(ctx, admin, name)
		if err != nil {
			t.Fatalf("CLIENT KILL: %v", err)
		}
		killed += n
	}

	// Between operations: kill every connection, then call.
	for i := range users {
		kill()
		eventually("Get after a kill", func() error {
			got, err := s.Get(ctx, sess[i].Token)
			if err == nil && got.ID != sess[i].ID {
				return fmt.Errorf("got session %s, want %s", got.ID, sess[i].ID)
			}
			return err
		})
	}
	if killed == 0 {
		t.Fatal("no connection named " + name + " was killed: the test injected no fault")
	}

	// While operations are in flight: workers call the store, the cache and
	// the board while the test kills their connections.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	acked := make([]atomic.Int64, users) // each worker's best acknowledged score
	for w := range users {
		uk := int64(100 + w)
		acked[w].Store(int64(w))
		wg.Go(func() {
			for score := int64(users); ; score++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := s.Get(ctx, sess[w].Token)
				ok("Get", err)
				_, err = s.Create(ctx, session.CreateParams{UserKey: 1000 + uk}) // nobody reads this user's old tokens
				ok("Create", err)
				ok("cache Set", uc.Set(ctx, uk, "k", []byte("v"), time.Hour))
				got, err := uc.Get(ctx, uk, "k")
				if ok("cache Get", err) && string(got) != "v" {
					t.Errorf("cache Get: %q", got)
				}
				if ok("Submit", board.Submit(ctx, uk, score, session.ScoreBest)) {
					acked[w].Store(score)
				}
				_, err = board.Rank(ctx, uk)
				ok("Rank", err)
			}
		})
	}
	before := killed
	for range 50 {
		kill()
		time.Sleep(2 * time.Millisecond) // let the workers open new connections
	}
	close(stop)
	wg.Wait()
	if killed == before {
		t.Fatal("no connection was killed while the workers ran")
	}
	t.Logf("killed %d connections; %d calls failed with ErrUnavailable", killed, failed.Load())

	// The kills stopped: everything works and nothing was lost.
	for i := range users {
		uk := int64(100 + i)
		eventually("Get after the kills", func() error {
			got, err := s.Get(ctx, sess[i].Token)
			if err == nil && got.ID != sess[i].ID {
				return fmt.Errorf("got session %s, want %s", got.ID, sess[i].ID)
			}
			return err
		})
		eventually("cache Get after the kills", func() error {
			got, err := uc.Get(ctx, uk, "k")
			if err == nil && string(got) != "v" {
				return fmt.Errorf("cache value %q", got)
			}
			return err
		})
		eventually("Score after the kills", func() error {
			got, err := board.Score(ctx, uk)
			if want := acked[i].Load(); err == nil && got < want {
				return fmt.Errorf("score %d, want at least %d (acknowledged before)", got, want)
			}
			return err
		})
	}
}

// cutConn is a connection whose next request, once armed, goes out on a
// connection the server has just closed (by CLIENT KILL ADDR of its local
// address): the request is on the wire and its reply never comes.
type cutConn struct {
	net.Conn
	armed *atomic.Bool
	kill  func(local string)
}

func (c *cutConn) Write(b []byte) (int, error) {
	if c.armed.CompareAndSwap(true, false) {
		c.kill(c.LocalAddr().String())
	}
	return c.Conn.Write(b)
}

// TestClusterCutOnTheWire: on the local Redis Cluster, the server closes the
// test's connection just as a request is written to it. With go-redis's
// default retries the cluster client resends the command on a new
// connection and the call succeeds; with retries off the call fails with
// the typed unavailable error. Either way nothing panics and the next call
// succeeds.
func TestClusterCutOnTheWire(t *testing.T) {
	testredis.Cluster(t) // skip (or fail in CI) as a whole
	for _, mode := range []struct {
		name     string
		retries  int // ClusterOptions.MaxRetries and MaxRedirects
		wantFail bool
	}{
		{"default retries", 0, false},
		{"no retries", -1, true},
	} {
		t.Run(mode.name, func(t *testing.T) { clusterCutOnTheWire(t, mode.retries, mode.wantFail) })
	}
}

func clusterCutOnTheWire(t *testing.T, retries int, wantFail bool) {
	admin := testredis.Cluster(t)
	ctx := context.Background()
	var armed atomic.Bool
	var kills atomic.Int64
	kill := func(local string) {
		_ = admin.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			k, err := n.Do(ctx, "CLIENT", "KILL", "ADDR", local).Int64()
			if err == nil {
				kills.Add(k)
			}
			return nil
		})
	}
	var d net.Dialer
	c := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:        admin.Options().Addrs,
		MaxRetries:   retries,
		MaxRedirects: retries,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &cutConn{Conn: conn, armed: &armed, kill: kill}, nil
		},
	})
	defer c.Close()
	prefix := testredis.Prefix(t, admin)
	s, uc, board := redisStoreCacheBoard(t, ctx, c, prefix, "wire")
	sess, err := s.Create(ctx, session.CreateParams{UserKey: 77})
	if err != nil {
		t.Fatal(err)
	}
	if err := board.Submit(ctx, 77, 5, session.ScoreBest); err != nil {
		t.Fatal(err)
	}
	if err := uc.Set(ctx, 77, "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}

	for _, cl := range []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, sess.Token); return err }},
		{"GetFrame", func() error { _, err := s.GetFrame(ctx, sess.ID, 1); return err }},
		{"Create", func() error { _, err := s.Create(ctx, session.CreateParams{UserKey: 78}); return err }},
		{"cache Get", func() error { _, err := uc.Get(ctx, 77, "k"); return err }},
		{"Submit", func() error { return board.Submit(ctx, 77, 6, session.ScoreBest) }},
		{"Top", func() error { _, _, err := board.Top(ctx, 10, ""); return err }},
	} {
		before := kills.Load()
		armed.Store(true)
		err := cl.call()
		if armed.Load() || kills.Load() == before {
			t.Fatalf("%s: no connection was cut", cl.name)
		}
		switch {
		case err == nil:
			if wantFail {
				t.Fatalf("%s succeeded with its connection cut and retries off", cl.name)
			}
		case errors.Is(err, session.ErrUnavailable) || errors.Is(err, session.ErrBoardUnavailable):
			if protocol.CodeOf(err) != protocol.CodeUnavailable {
				t.Fatalf("%s: %v has code %v", cl.name, err, protocol.CodeOf(err))
			}
			if !wantFail {
				t.Fatalf("%s with its connection cut: %v, want the client to retry and succeed", cl.name, err)
			}
		default:
			t.Fatalf("%s with its connection cut: %v, want success or ErrUnavailable", cl.name, err)
		}
		// Recovery: the next call goes out on a new connection.
		if got, err := s.Get(ctx, sess.Token); err != nil || got.ID != sess.ID {
			t.Fatalf("Get after the cut of %s: %v, %v", cl.name, got, err)
		}
	}
	if got, err := board.Score(ctx, 77); err != nil || got < 5 {
		t.Fatalf("score after the cuts: %d, %v", got, err)
	}
	if got, err := uc.Get(ctx, 77, "k"); err != nil || string(got) != "v" {
		t.Fatalf("cache after the cuts: %q, %v", got, err)
	}
}

// lostReplyConn drops the reply of the next request once armed: it reads
// the reply (so the server has run the command), closes the connection and
// reports EOF.
type lostReplyConn struct {
	net.Conn
	armed *atomic.Bool
}

func (c *lostReplyConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && c.armed.CompareAndSwap(true, false) {
		c.Conn.Close()
		return 0, io.EOF
	}
	return n, err
}

// lostReplyDialer dials connections that drop a reply once armed
// (lostReplyConn), counting the dials in dials when it is not nil.
func lostReplyDialer(armed *atomic.Bool, dials *atomic.Int64) func(context.Context, string, string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if dials != nil {
			dials.Add(1)
		}
		return &lostReplyConn{Conn: conn, armed: armed}, nil
	}
}

// TestLostReply: the connection drops after the server ran the command and
// before its reply arrived, on a client with go-redis retries off. The call
// reports the typed unavailable error (the caller cannot know whether it
// applied); it applied exactly once; and the store keeps working. (With
// go-redis's default retries the client sends the command again on a new
// connection: GetFrame, Create and board writes recognise the resend, see
// TestLostReplyRetried and TestBoardLostReplyRetried.)
func TestLostReply(t *testing.T) {
	shared := testredis.Client(t)
	var armed atomic.Bool
	c := redis.NewClient(&redis.Options{
		Addr:       shared.Options().Addr,
		MaxRetries: -1,
		Dialer:     lostReplyDialer(&armed, nil),
	})
	defer c.Close()
	ctx := context.Background()
	prefix := testredis.Prefix(t, shared)
	lose := func(what string, call func() error, want error) {
		t.Helper()
		armed.Store(true)
		err := call()
		if armed.Load() {
			t.Fatalf("%s: no reply was lost", what)
		}
		if !errors.Is(err, want) || protocol.CodeOf(err) != protocol.CodeUnavailable {
			t.Fatalf("%s with its reply lost: %v, want %v", what, err, want)
		}
	}

	bs, err := session.NewBoardRedisStore([]redis.UniversalClient{c}, session.BoardRedisConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	b, err := session.NewBoard(bs, "lost", session.BoardConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Submit(ctx, 1, 10, session.ScoreIncr); err != nil {
		t.Fatal(err)
	}
	lose("incr", func() error { return b.Submit(ctx, 1, 5, session.ScoreIncr) }, session.ErrBoardUnavailable)
	if got, err := b.Score(ctx, 1); err != nil || got != 15 {
		t.Fatalf("score after an increment whose reply was lost: %d, %v; want 15 (applied once)", got, err)
	}

	s, err := session.NewRedisStore(session.Single(c), session.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sess, err := s.Create(ctx, session.CreateParams{UserKey: 5})
	if err != nil {
		t.Fatal(err)
	}
	// Load getScript first, so the lost reply is the script's, not NOSCRIPT.
	if _, err := s.Get(ctx, sess.Token); err != nil {
		t.Fatal(err)
	}
	lose("GetFrame", func() error { _, err := s.GetFrame(ctx, sess.ID, 1); return err }, session.ErrUnavailable)
	// The lost call did advance the counter: 1 is now a replay, 2 is fine.
	if _, err := s.GetFrame(ctx, sess.ID, 1); protocol.CodeOf(err) != protocol.CodeReplayed {
		t.Fatalf("frame 1 again: %v, want CodeReplayed", err)
	}
	if _, err := s.GetFrame(ctx, sess.ID, 2); err != nil {
		t.Fatalf("GetFrame(2) after the lost reply: %v", err)
	}
	var fresh *session.Session
	lose("Create", func() error { var err error; fresh, err = s.Create(ctx, session.CreateParams{UserKey: 5}); return err }, session.ErrUnavailable)
	if fresh != nil {
		t.Fatal("Create returned a session with its error")
	}
	// The lost Create ran: it replaced (kicked) the first session.
	if _, err := s.Get(ctx, sess.Token); !errors.Is(err, session.ErrKicked) {
		t.Fatalf("first session after a Create whose reply was lost: %v, want ErrKicked", err)
	}
	if _, err := s.Create(ctx, session.CreateParams{UserKey: 5}); err != nil {
		t.Fatalf("Create after the lost reply: %v", err)
	}
}

// TestLostReplyRetried: as TestLostReply, but with go-redis's default
// retries, so the client resends a script whose reply was lost on a new
// connection. GetFrame and Create recognise the resend of the same call: the
// frame succeeds once and the next counter is accepted; the login returns one
// session, which is live and the user's only one.
func TestLostReplyRetried(t *testing.T) {
	shared := testredis.Client(t)
	var armed atomic.Bool
	var dials atomic.Int64
	c := redis.NewClient(&redis.Options{
		Addr:   shared.Options().Addr, // MaxRetries: the default (3)
		Dialer: lostReplyDialer(&armed, &dials),
	})
	defer c.Close()
	ctx := context.Background()
	prefix := testredis.Prefix(t, shared)
	s, err := session.NewRedisStore(session.Single(c), session.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// lose runs call with the reply of its first send dropped, and checks
	// that the client did resend it on a new connection.
	lose := func(what string, call func() error) error {
		t.Helper()
		before := dials.Load()
		armed.Store(true)
		err := call()
		if armed.Load() {
			t.Fatalf("%s: no reply was lost", what)
		}
		if dials.Load() == before {
			t.Fatalf("%s: the client did not resend on a new connection", what)
		}
		return err
	}

	const uk = 5
	// Create and GetFrame(1) also load the scripts, so the lost replies
	// below are the scripts', not NOSCRIPT.
	sess, err := s.Create(ctx, session.CreateParams{UserKey: uk})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetFrame(ctx, sess.ID, 1); err != nil {
		t.Fatal(err)
	}
	var got *session.Session
	if err := lose("GetFrame", func() error { var err error; got, err = s.GetFrame(ctx, sess.ID, 2); return err }); err != nil {
		t.Fatalf("GetFrame(2) with its first reply lost: %v, want success", err)
	}
	if got.ID != sess.ID || got.Counter != 2 || string(got.Secret) != string(sess.Secret) {
		t.Fatalf("GetFrame(2) with its first reply lost: session %s counter %d, want %s counter 2 and its secret", got.ID, got.Counter, sess.ID)
	}
	// The resend did not advance twice, and a new call with the same
	// counter is still a replay.
	if _, err := s.GetFrame(ctx, sess.ID, 2); protocol.CodeOf(err) != protocol.CodeReplayed {
		t.Fatalf("frame 2 again (a new call): %v, want CodeReplayed", err)
	}
	if _, err := s.GetFrame(ctx, sess.ID, 3); err != nil {
		t.Fatalf("GetFrame(3) after the resent frame 2: %v", err)
	}
	// The same for a counter below the highest (in the replay window).
	if _, err := s.GetFrame(ctx, sess.ID, 10); err != nil {
		t.Fatal(err)
	}
	if err := lose("GetFrame below the highest", func() error { var err error; got, err = s.GetFrame(ctx, sess.ID, 8); return err }); err != nil || got.Counter != 8 {
		t.Fatalf("GetFrame(8) after 10, with its first reply lost: %v, want success", err)
	}
	if _, err := s.GetFrame(ctx, sess.ID, 8); protocol.CodeOf(err) != protocol.CodeReplayed {
		t.Fatalf("frame 8 again (a new call): %v, want CodeReplayed", err)
	}
	if _, err := s.GetFrame(ctx, sess.ID, 9); err != nil {
		t.Fatalf("GetFrame(9) after the resent frame 8: %v", err)
	}

	var fresh *session.Session
	if err := lose("Create", func() error { var err error; fresh, err = s.Create(ctx, session.CreateParams{UserKey: uk}); return err }); err != nil {
		t.Fatalf("Create with its first reply lost: %v, want success", err)
	}
	if got, err := s.Get(ctx, fresh.Token); err != nil || got.ID != fresh.ID {
		t.Fatalf("the session of a Create whose first reply was lost: %v, %v; want it live", got, err)
	}
	if _, err := s.Get(ctx, sess.Token); !errors.Is(err, session.ErrKicked) {
		t.Fatalf("the older session: %v, want ErrKicked", err)
	}
	// Exactly one live session of the user in Redis: the one returned.
	up := prefix + "{u:" + strconv.Itoa(uk) + "}:"
	sids, err := shared.SMembers(ctx, up+"u").Result()
	if err != nil {
		t.Fatal(err)
	}
	var live []string
	for _, sid := range sids {
		f, err := shared.HMGet(ctx, up+"s:"+sid, "st", "exp").Result()
		if err != nil {
			t.Fatal(err)
		}
		if f[1] != nil && f[0] == nil {
			live = append(live, strconv.Itoa(uk)+"."+sid)
		}
	}
	if len(live) != 1 || live[0] != fresh.ID {
		t.Fatalf("live sessions of the user: %v, want exactly [%s]", live, fresh.ID)
	}
}

// TestBoardLostReplyRetried: as TestLostReplyRetried for boards, on one
// Redis and on the local Cluster: the reply of a board write is lost after
// the server ran it, and go-redis (default retries) resends the whole
// pipeline on a new connection. Every increment applies exactly once: a
// single Submit, a batch mixing every operator, and a batch of several
// script calls.
func TestBoardLostReplyRetried(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		shared := testredis.Client(t)
		var armed atomic.Bool
		var dials atomic.Int64
		c := redis.NewClient(&redis.Options{
			Addr:   shared.Options().Addr, // MaxRetries: the default (3)
			Dialer: lostReplyDialer(&armed, &dials),
		})
		defer c.Close()
		boardLostReplyRetried(t, c, testredis.Prefix(t, shared), &armed, &dials)
	})
	t.Run("cluster", func(t *testing.T) {
		admin := testredis.Cluster(t)
		var armed atomic.Bool
		var dials atomic.Int64
		c := redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:  admin.Options().Addrs, // MaxRetries: the default
			Dialer: lostReplyDialer(&armed, &dials),
		})
		defer c.Close()
		boardLostReplyRetried(t, c, testredis.Prefix(t, admin), &armed, &dials)
	})
}

func boardLostReplyRetried(t *testing.T, c redis.UniversalClient, prefix string, armed *atomic.Bool, dials *atomic.Int64) {
	ctx := context.Background()
	bs, err := session.NewBoardRedisStore([]redis.UniversalClient{c}, session.BoardRedisConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	b, err := session.NewBoard(bs, "resent", session.BoardConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// lose runs call with the reply of its first send dropped, checks that
	// the client resent it on a new connection and that it succeeded.
	lose := func(what string, call func() error) {
		t.Helper()
		before := dials.Load()
		armed.Store(true)
		err := call()
		if armed.Load() {
			armed.Store(false)
			t.Fatalf("%s: no reply was lost", what)
		}
		if dials.Load() == before {
			t.Fatalf("%s: the client did not resend on a new connection", what)
		}
		if err != nil {
			t.Fatalf("%s with its first reply lost: %v, want success", what, err)
		}
	}
	scores := func(what string, want map[int64]int64) {
		t.Helper()
		for u, w := range want {
			if got, err := b.Score(ctx, u); err != nil || got != w {
				t.Fatalf("%s: user %d has %d, %v; want %d (each submission applied once)", what, u, got, err, w)
			}
		}
	}

	// Load the script and warm the client up, so the lost reply is the
	// write's.
	if err := b.Submit(ctx, 1, 10, session.ScoreIncr); err != nil {
		t.Fatal(err)
	}
	lose("Submit incr", func() error { return b.Submit(ctx, 1, 5, session.ScoreIncr) })
	scores("after a resent increment", map[int64]int64{1: 15})
	if err := b.Submit(ctx, 1, 1, session.ScoreIncr); err != nil {
		t.Fatal(err)
	}
	scores("after one more increment", map[int64]int64{1: 16})

	// A batch mixing every operator: a resend must neither add twice nor
	// let a repeated ZADD undo an increment.
	lose("mixed batch", func() error {
		return b.SubmitBatch(ctx, []session.ScoreSubmit{
			{User: 2, Score: 100, Op: session.ScoreSet},
			{User: 2, Score: 1, Op: session.ScoreIncr},
			{User: 3, Score: 50, Op: session.ScoreBest},
			{User: 3, Score: -20, Op: session.ScoreIncr},
			{User: 1, Score: 4, Op: session.ScoreIncr},
		})
	})
	scores("after a resent mixed batch", map[int64]int64{1: 20, 2: 101, 3: 30})

	// A batch of several script calls (1,000 increments over 100 users).
	var batch []session.ScoreSubmit
	want := map[int64]int64{}
	for i := range 1000 {
		u := int64(100 + i%100)
		batch = append(batch, session.ScoreSubmit{User: u, Score: int64(i), Op: session.ScoreIncr})
		want[u] += int64(i)
	}
	lose("batch of 1,000 increments", func() error { return b.SubmitBatch(ctx, batch) })
	scores("after a resent batch of 1,000 increments", want)
}

// TestSubscriptionFollowsCommands: the client's command connections move to
// another server while its event subscription stays on the first (what a
// Sentinel failover does to a go-redis failover client, here with a plain
// client whose dialer the test points elsewhere). The subscription's probe
// does not come back, so the store subscribes again where the commands go,
// and a kick published there reaches the subscriber.
func TestSubscriptionFollowsCommands(t *testing.T) {
	a, b := privateRedis(t), privateRedis(t)
	var target atomic.Value
	target.Store(a.Options().Addr)
	var d net.Dialer
	c := redis.NewClient(&redis.Options{
		Addr: "moving", // the dialer decides
		Dialer: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, target.Load().(string))
		},
	})
	defer c.Close()
	ctx := context.Background()
	prefix := testredis.Prefix(t, a)
	s, err := session.NewRedisStore(session.Single(c), session.Config{Prefix: prefix, ProbeInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	events := make(chan session.Event, 64)
	defer s.Subscribe(func(ev session.Event) {
		select {
		case events <- ev:
		default:
		}
	})()
	sess, err := s.Create(ctx, session.CreateParams{UserKey: 31})
	if err != nil {
		t.Fatal(err)
	}

	// The commands move to b: new connections dial b, and a drops the
	// client's command connections (CLIENT KILL TYPE normal spares pub/sub
	// connections and, by default, the caller's own).
	target.Store(b.Options().Addr)
	if err := a.Do(ctx, "CLIENT", "KILL", "TYPE", "normal").Err(); err != nil {
		t.Fatal(err)
	}
	// The kicked session lives on a; a login on b publishes a kick of the
	// same key id only if b knows the session, so copy it over first.
	for _, k := range []string{prefix + "{u:31}:u", prefix + "{u:31}:s:" + sess.ID[len("31."):]} {
		dump, err := a.Dump(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if err := b.RestoreReplace(ctx, k, 0, dump).Err(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		// The new subscription shows on b a moment before the store
		// counts the move: wait for both.
		n, err := b.PubSubNumSub(ctx, prefix+"session:events").Result()
		moved := s.Stats().Resubscribed
		if err == nil && n[prefix+"session:events"] >= 1 && moved >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event subscription on the commands' new server 15s after the move: %v, %v, Stats().Resubscribed = %d", n, err, moved)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := s.Create(ctx, session.CreateParams{UserKey: 31}); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(15 * time.Second)
	for got := false; !got; {
		select {
		case ev := <-events:
			got = ev.Kind == session.EventKicked && ev.SessionID == sess.ID
		case <-timeout:
			t.Fatal("no kick event from the commands' new server within 15s")
		}
	}
}
