package load

import (
	"context"
	"database/sql"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/shard"
	"github.com/madang-io/madang/shard/shardtest"
)

// startIAPGame serves the game with in-app purchases that accept
// development receipts (game.DevVerifiers, redemptions in memory), on one
// SQLite database, behind the session middleware, as a development server
// would; the game server of package server does not configure IAP yet.
// It returns the RPC URL (XOR key testXORKey).
func startIAPGame(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dsn := shardtest.SQLite().NewDSN(t)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := shard.Migrate(ctx, db, shard.DirectoryMigrations()); err != nil {
		t.Fatal(err)
	}
	dir, err := shard.NewSQLDirectory(ctx, db, shard.SQLDirectoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.Add(ctx, shard.Database{ID: 1, ServerID: 1, WorldID: 1, Name: "game", Driver: "sqlite", DSN: dsn, FirstKey: 1000, LastKey: 999_999}); err != nil {
		t.Fatal(err)
	}
	router, err := shard.NewRouter(ctx, shard.Config{Directory: dir, RefreshInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { router.Close() })
	if _, err := router.MigrateAll(ctx, game.Migrations()); err != nil {
		t.Fatal(err)
	}
	// db (common and game database in one file) tells the dialect; the
	// transactions are the router's.
	idem, err := idempotency.NewSQLStore(ctx, db, idempotency.SQLConfig{
		Config: idempotency.Config{RequireKey: true},
		Tx:     router.Tx,
	})
	if err != nil {
		t.Fatal(err)
	}
	files, source := idem.Migrations()
	if _, err := router.MigrateAll(ctx, shard.Migrations{FS: files, Source: source}); err != nil {
		t.Fatal(err)
	}
	sessions := session.NewMemoryStore(session.Config{})
	t.Cleanup(func() { sessions.Close() })
	red, err := anticheat.NewRedeemer(anticheat.RedeemerConfig{
		Verifier: game.DevVerifiers(), Redemptions: anticheat.NewMemoryStore(anticheat.MemoryConfig{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	g, err := game.New(game.Config{
		Router: router, Accounts: shard.NewAccounts(dir, shard.AccountsConfig{}), Sessions: sessions, Idempotency: idem,
		IAP: &game.IAPConfig{Redeemer: red, DevReceipts: true},
	})
	if err != nil {
		t.Fatal(err)
	}
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
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
	})
	return hs.URL + protocol.DefaultHTTPPath
}
