package server

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
)

// gameStack is a game served over HTTP on the storage and sessions of a
// server built by New, with game options the server does not set yet
// (in-app purchases, versioned game data). Its chain is the session
// middleware and the mux (the mutating commands with the SQL idempotency
// middleware), as in the server.
type gameStack struct {
	base string
	srv  *Server
	game *game.Game
	// anticheat is the SQL store of redemptions (and hack log) in the
	// common database.
	anticheat *anticheat.SQLStore
}

// newGameStack builds the server's storage in a fresh directory, then a
// game over it configured by opts (which may use the server's common
// database), and serves that game on an httptest server.
func newGameStack(t *testing.T, opts func(s *gameStack, cfg *game.Config)) *gameStack {
	t.Helper()
	ctx := context.Background()
	srv, err := New(ctx, Config{XORKey: testXORKey, DataDir: filepath.Join(t.TempDir(), "data")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	s := &gameStack{srv: srv}
	if s.anticheat, err = anticheat.NewSQLStore(t.Context(), srv.store.common, anticheat.SQLConfig{TablePrefix: "iaptest_"}); err != nil {
		t.Fatal(err)
	}
	if err := s.anticheat.CreateTables(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := game.Config{
		Router: srv.store.router, Accounts: srv.store.accounts, Sessions: srv.sessions, Idempotency: srv.store.idem,
	}
	if opts != nil {
		opts(s, &cfg)
	}
	if s.game, err = game.New(cfg); err != nil {
		t.Fatal(err)
	}
	s.base, _ = serveGame(t, s.game, srv.sessions)
	return s
}

// serveGame serves g over HTTP (XOR frames with testXORKey) behind the
// session middleware on sessions; stop closes the listener and its
// connections (also at the end of the test).
func serveGame(t *testing.T, g *game.Game, sessions session.Store) (url string, stop func()) {
	t.Helper()
	mux := protocol.NewMux()
	g.Register(mux)
	chain := protocol.Chain(mux, session.Middleware(sessions, session.MiddlewareConfig{Public: game.PublicCommands()}))
	codec, err := protocol.NewCodec(protocol.Config{XORKey: []byte(testXORKey)})
	if err != nil {
		t.Fatal(err)
	}
	h, err := protocol.NewHTTPHandler(chain, protocol.HTTPConfig{
		Codec: codec, Keys: session.NewKeyResolver(sessions, session.KeyResolverConfig{}), HandlerTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			hs.CloseClientConnections()
			hs.Close()
		})
	}
	t.Cleanup(stop)
	return hs.URL, stop
}

// loginAs logs in device with a client version.
func loginAs(t *testing.T, c *protocol.Client, device, clientVersion string) game.LoginResult {
	t.Helper()
	var res game.LoginResult
	in := game.GuestLogin{DeviceID: device, Platform: "android", ClientVersion: clientVersion, Country: "KR", Language: "ko"}
	if _, err := c.Call(context.Background(), game.CmdGuestLogin, in, &res); err != nil {
		t.Fatalf("login %s: %v", device, err)
	}
	c.SetSession(res.Token, nil)
	return res
}
