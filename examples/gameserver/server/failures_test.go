package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/shard"
)

// The game server's lines of docs/FAILURES.md.

// newEmbeddedServer starts a server in embedded mode (SQLite files in a
// fresh directory) whatever MADANG_* says: the fault tests below edit its
// SQLite directory entries.
func newEmbeddedServer(t *testing.T) (base string, srv *Server) {
	t.Helper()
	return startServerOn(t, Config{XORKey: testXORKey, DataDir: filepath.Join(t.TempDir(), "data")})
}

// breakGameDB points game database id's directory entry at a file that
// cannot be opened (as if its server were unreachable) and makes the router
// pick the change up; the returned func restores it.
func breakGameDB(t *testing.T, srv *Server, id int) (restore func()) {
	t.Helper()
	ctx := context.Background()
	var dsn string
	if err := srv.store.common.QueryRowContext(ctx, "SELECT dsn FROM shard_databases WHERE db_id = ?", id).Scan(&dsn); err != nil {
		t.Fatal(err)
	}
	set := func(d string) {
		t.Helper()
		if _, err := srv.store.common.ExecContext(ctx, "UPDATE shard_databases SET dsn = ?, updated_at = updated_at + 1 WHERE db_id = ?", d, id); err != nil {
			t.Fatal(err)
		}
		if err := srv.store.router.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	set(shard.SQLiteDSN(filepath.Join(t.TempDir(), "no-such-dir", "gone.db")))
	return func() { set(dsn) }
}

// One game database down: its players get unavailable (41, retryable),
// players on the other databases keep playing, nothing is lost, and the
// players of the database play again once it is back, without a restart.
func TestOneGameDatabaseDownOnlyItsPlayersWait(t *testing.T) {
	ctx := context.Background()
	base, srv := newEmbeddedServer(t)
	a, _ := newClient(t, base)
	ua := login(t, a, "down-a")
	dbA, _ := srv.store.router.LookupID(ua.UserKey)
	// Keys come in blocks of EmbeddedKeyBlock from one database: log
	// players in until one lands on another.
	var b *protocol.Client
	for i := 0; ; i++ {
		if i > 2*EmbeddedKeyBlock {
			t.Fatalf("%d players all on game database %d: the allocator should spread them", i+1, dbA)
		}
		b, _ = newClient(t, base)
		ub := login(t, b, fmt.Sprintf("down-b%d", i))
		if dbB, _ := srv.store.router.LookupID(ub.UserKey); dbB != dbA {
			break
		}
	}
	if _, err := a.Call(ctx, game.CmdShopBuy, game.Buy{ItemID: "gold_small"}, nil); err != nil {
		t.Fatal(err)
	}
	before := load(t, a)

	restore := breakGameDB(t, srv, dbA)
	for _, cmd := range []string{game.CmdLoad, game.CmdShopBuy} {
		var in any
		if cmd == game.CmdShopBuy {
			in = game.Buy{ItemID: "gold_small"}
		}
		_, err := a.Call(ctx, cmd, in, nil)
		if code := codeOf(t, err); code != protocol.CodeUnavailable || !code.Retryable() {
			t.Fatalf("%s on the broken database: %v", cmd, err)
		}
	}
	// The other database's player plays on.
	var r game.BuyResult
	if _, err := b.Call(ctx, game.CmdShopBuy, game.Buy{ItemID: "gold_small"}, &r); err != nil {
		t.Fatalf("player on a healthy database: %v", err)
	}
	if p := load(t, b); p.Gems != r.Gems {
		t.Fatalf("healthy player %+v after buying %+v", p, r)
	}

	restore()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var p game.Player
		_, err := a.Call(ctx, game.CmdLoad, nil, &p)
		if err == nil {
			if p.Gems != before.Gems || p.Gold != before.Gold {
				t.Fatalf("after recovery %+v, before the outage %+v (the refused buy must not have run)", p, before)
			}
			break
		}
		if codeOf(t, err) != protocol.CodeUnavailable || time.Now().After(deadline) {
			t.Fatalf("after the database came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := a.Call(ctx, game.CmdShopBuy, game.Buy{ItemID: "gold_small"}, nil); err != nil {
		t.Fatalf("buy after recovery: %v", err)
	}
}

// switchTransport sends to whichever server is current; restart, if set,
// runs once after the first request reached the server, and that reply is
// lost (the process died before answering).
type switchTransport struct {
	mu      sync.Mutex
	url     string
	hc      *http.Client
	restart func() string // returns the new server's URL
}

func (s *switchTransport) RoundTrip(ctx context.Context, frame []byte) ([]byte, error) {
	s.mu.Lock()
	t := &protocol.HTTPTransport{URL: s.url + protocol.DefaultHTTPPath, Client: s.hc}
	s.mu.Unlock()
	reply, err := t.RoundTrip(ctx, frame)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.restart != nil {
		s.url = s.restart()
		s.restart = nil
		return nil, &protocol.TransportError{Err: errors.New("connection reset: server process died (simulated)")}
	}
	return reply, err
}

// A game server process dies after committing a purchase and before the
// reply leaves; a new process starts on the same databases (sessions live
// outside it, as in Redis mode) and the client's retry, with the same
// request id, gets the stored answer: paid once.
func TestServerRestartedBetweenRequestAndRetry(t *testing.T) {
	ctx := context.Background()
	dataDir := filepath.Join(t.TempDir(), "data")
	// The session store outlives the game processes (Redis in production).
	sessions := session.NewMemoryStore(session.Config{})
	t.Cleanup(func() { sessions.Close() })
	start := func() (url string, stop func()) {
		srv, err := New(ctx, Config{XORKey: testXORKey, DataDir: dataDir}, nil)
		if err != nil {
			t.Fatal(err)
		}
		g, err := game.New(game.Config{Router: srv.store.router, Accounts: srv.store.accounts, Sessions: sessions, Idempotency: srv.store.idem})
		if err != nil {
			t.Fatal(err)
		}
		url, stopHTTP := serveGame(t, g, sessions)
		var once sync.Once
		stop = func() {
			once.Do(func() {
				stopHTTP()
				if err := srv.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
		}
		t.Cleanup(stop)
		return url, stop
	}
	url1, stop1 := start()
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	tr := &switchTransport{url: url1, hc: hc}
	c, err := protocol.NewClient(protocol.ClientConfig{Transport: tr, Codec: protocol.Config{XORKey: []byte(testXORKey)}, Mode: protocol.ModeXOR, RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	login(t, c, "restart-device")
	restarted := false
	tr.restart = func() string {
		stop1()
		url2, _ := start()
		restarted = true
		return url2
	}
	var bought game.BuyResult
	resp, err := c.Call(ctx, game.CmdShopBuy, game.Buy{ItemID: "gold_large"}, &bought)
	if err != nil {
		t.Fatal(err)
	}
	item, _ := game.ShopItem("gold_large")
	if !restarted || !resp.Replay || bought.Gems != game.StartGems-item.Gems {
		t.Fatalf("restarted %v, replay %v, result %+v", restarted, resp.Replay, bought)
	}
	if p := load(t, c); p.Gems != game.StartGems-item.Gems || p.Gold != game.StartGold+item.Gold {
		t.Fatalf("after the restart: %+v (paid twice?)", p)
	}
}

// flakySessions is a session store whose backend can be taken down: every
// call then fails with session.ErrUnavailable, as the Redis store does when
// its node cannot be reached.
type flakySessions struct {
	session.Store
	down atomic.Bool
}

func (f *flakySessions) err() error {
	if f.down.Load() {
		return fmt.Errorf("redis: connection refused (simulated): %w", session.ErrUnavailable)
	}
	return nil
}

func (f *flakySessions) Create(ctx context.Context, n session.CreateParams) (*session.Session, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.Create(ctx, n)
}

func (f *flakySessions) Get(ctx context.Context, token string) (*session.Session, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.Get(ctx, token)
}

func (f *flakySessions) GetFrame(ctx context.Context, keyID string, counter uint64) (*session.Session, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.GetFrame(ctx, keyID, counter)
}

// The session store (Redis) down: every request needing a session, and
// every login, answers unavailable (41, retryable); nothing runs, so nothing
// is lost; when it is back the same sessions play on.
func TestSessionStoreDownPlayersWaitNothingLost(t *testing.T) {
	ctx := context.Background()
	srv, err := New(ctx, Config{XORKey: testXORKey, DataDir: filepath.Join(t.TempDir(), "data")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	sessions := &flakySessions{Store: session.NewMemoryStore(session.Config{})}
	t.Cleanup(func() { sessions.Store.Close() })
	g, err := game.New(game.Config{Router: srv.store.router, Accounts: srv.store.accounts, Sessions: sessions, Idempotency: srv.store.idem})
	if err != nil {
		t.Fatal(err)
	}
	url, _ := serveGame(t, g, sessions)
	c, _ := newClient(t, url)
	me := login(t, c, "redis-down")
	before := load(t, c)

	sessions.down.Store(true)
	_, err = c.Call(ctx, game.CmdShopBuy, game.Buy{ItemID: "gold_small"}, nil)
	if code := codeOf(t, err); code != protocol.CodeUnavailable {
		t.Fatalf("buy with the session store down: %v", err)
	}
	other, _ := newClient(t, url)
	_, err = other.Call(ctx, game.CmdGuestLogin, game.GuestLogin{DeviceID: "redis-down-new"}, nil)
	if code := protocol.CodeOf(err); code != protocol.CodeUnavailable {
		t.Fatalf("login with the session store down: %v", err)
	}

	sessions.down.Store(false)
	after := load(t, c)
	if after.Gems != before.Gems || after.Gold != before.Gold {
		t.Fatalf("the refused buy ran: %+v, before %+v", after, before)
	}
	if l, err := g.Ledger(ctx, me.UserKey); err != nil || len(l) != 0 {
		t.Fatalf("ledger %+v %v", l, err)
	}
	if _, err := c.Call(ctx, game.CmdShopBuy, game.Buy{ItemID: "gold_small"}, nil); err != nil {
		t.Fatalf("buy after the store came back: %v", err)
	}
}

// The common database down: players already logged in keep playing (the
// router routes from its cached directory); logins, which register the
// device in the common database, answer unavailable (41, retryable) until it is back.
func TestCommonDatabaseDownLoggedInPlayersPlay(t *testing.T) {
	ctx := context.Background()
	base, srv := newEmbeddedServer(t)
	c, _ := newClient(t, base)
	login(t, c, "common-down")
	if err := srv.store.router.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// Take the common database away: its pool is closed (every call on it
	// fails, as with a server that cannot be reached).
	if err := srv.store.common.Close(); err != nil {
		t.Fatal(err)
	}
	var r game.BuyResult
	if _, err := c.Call(ctx, game.CmdShopBuy, game.Buy{ItemID: "gold_small"}, &r); err != nil {
		t.Fatalf("a logged-in player with the common database down: %v", err)
	}
	if p := load(t, c); p.Gems != r.Gems {
		t.Fatalf("player %+v after %+v", p, r)
	}
	other, _ := newClient(t, base)
	_, err := other.Call(ctx, game.CmdGuestLogin, game.GuestLogin{DeviceID: "common-down-new"}, nil)
	if code := protocol.CodeOf(err); code != protocol.CodeUnavailable {
		t.Fatalf("login with the common database down: %v (code %v), want unavailable (retryable)", err, code)
	}
	// A returning player's login too (the device is looked up in the
	// common database).
	again, _ := newClient(t, base)
	_, err = again.Call(ctx, game.CmdGuestLogin, game.GuestLogin{DeviceID: "common-down"}, nil)
	if code := protocol.CodeOf(err); code != protocol.CodeUnavailable {
		t.Fatalf("returning login with the common database down: %v (code %v)", err, code)
	}
}
