package idempotency_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
)

// A retried call returns the stored result; the function runs once.
func Example() {
	k, _ := idempotency.NewKeeper(idempotency.NewMemoryStore(nil), idempotency.Config{})
	scope := idempotency.Scope{UserKey: 10000042, Command: "mail.claim"}
	fp := idempotency.FingerprintOf([]byte(`{"mail":7}`))
	claim := func(ctx context.Context) (idempotency.Result, error) {
		fmt.Println("granting 100 gold")
		idempotency.AfterCommit(ctx, func(context.Context) { fmt.Println("push: mail claimed") })
		return idempotency.Result{Payload: []byte(`{"gold":100}`)}, nil
	}
	for range 2 {
		out, err := k.Do(context.Background(), scope, "rid-1", fp, claim)
		fmt.Println(string(out.Payload), out.Replay, err)
	}
	_, err := k.Do(context.Background(), scope, "rid-1", idempotency.FingerprintOf([]byte(`{"mail":8}`)), claim)
	fmt.Println(protocol.CodeOf(err))
	fmt.Printf("%+v\n", k.Stats())
	// Output:
	// granting 100 gold
	// push: mail claimed
	// {"gold":100} false <nil>
	// {"gold":100} true <nil>
	// request_id_reused
	// {Executed:1 Replayed:1 InFlight:0 Waited:0 Reused:1 Released:0 NoKey:0}
}

// The middleware goes after the session middleware, which fills Principal.
func ExampleMiddleware() {
	k, _ := idempotency.NewKeeper(idempotency.NewMemoryStore(nil), idempotency.Config{})
	session := func(next protocol.Handler) protocol.Handler { // stands in for the session package
		return protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
			req.Principal = &protocol.Principal{UserKey: 10000042}
			return next.Serve(ctx, req)
		})
	}
	mux := protocol.NewMux()
	gems := 100
	mux.HandleFunc("shop.buy", func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		if gems < 30 {
			return nil, &protocol.Error{Code: protocol.CodeGameBase + 1, Message: "not enough gems"}
		}
		gems -= 30
		return &protocol.Response{Payload: []byte(fmt.Sprintf(`{"gems":%d}`, gems))}, nil
	})
	h := protocol.Chain(mux, session, idempotency.Middleware(k))
	for seq := uint64(1); seq <= 2; seq++ {
		req := &protocol.Request{Command: "shop.buy", Seq: seq, RequestID: "buy-sword", Payload: []byte(`{"item":"sword"}`)}
		resp := protocol.Dispatch(context.Background(), h, req, nil)
		fmt.Printf("seq %d: code %v replay %v %s\n", resp.Seq, resp.Code, resp.Replay, resp.Payload)
	}
	fmt.Println("gems left:", gems)
	// Output:
	// seq 1: code ok replay false {"gems":70}
	// seq 2: code ok replay true {"gems":70}
	// gems left: 70
}

// DoTx writes the key row and the result in the game's own transaction.
func ExampleSQLStore_DoTx() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "idem-example")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite", shard.SQLiteDSN(filepath.Join(dir, "game.db")))
	defer db.Close()
	db.Exec(`CREATE TABLE wallet (user_key INTEGER PRIMARY KEY, gems INTEGER NOT NULL)`)
	db.Exec(`INSERT INTO wallet VALUES (1, 100)`)

	s, err := idempotency.NewSQLStore(ctx, db, idempotency.SQLConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := s.Migrate(ctx, db); err != nil {
		fmt.Println(err)
		return
	}
	buy := func(ctx context.Context) (idempotency.Result, error) {
		_, err := idempotency.TxFrom(ctx).ExecContext(ctx, `UPDATE wallet SET gems = gems - 30 WHERE user_key = 1`)
		return idempotency.Result{Payload: []byte(`"sword"`)}, err
	}
	scope := idempotency.Scope{UserKey: 1, Command: "shop.buy"}
	for range 3 {
		tx, _ := db.BeginTx(ctx, nil)
		out, err := s.DoTx(ctx, tx, scope, "rid-9", idempotency.FingerprintOf(nil), buy)
		if err != nil {
			tx.Rollback()
			fmt.Println(err)
			continue
		}
		if err := tx.Commit(); err != nil {
			fmt.Println(err)
			continue
		}
		out.Committed(ctx) // after-commit hooks, first run only
		fmt.Println(string(out.Payload), out.Replay)
	}
	var gems int
	db.QueryRow(`SELECT gems FROM wallet WHERE user_key = 1`).Scan(&gems)
	fmt.Println("gems:", gems)
	// Output:
	// "sword" false
	// "sword" true
	// "sword" true
	// gems: 70
}

// HTTPStatus gives the Idempotency-Key header path the draft's statuses.
func ExampleHTTPStatus() {
	k, _ := idempotency.NewKeeper(idempotency.NewMemoryStore(nil), idempotency.Config{})
	mux := protocol.NewMux()
	mux.HandleFunc("shop.buy", func(context.Context, *protocol.Request) (*protocol.Response, error) {
		return &protocol.Response{Payload: []byte(`{"gems":70}`)}, nil
	})
	h, _ := protocol.NewHTTPHandler(protocol.Chain(mux, idempotency.Middleware(k)), protocol.HTTPConfig{AllowPlainJSON: true})
	srv := httptest.NewServer(idempotency.HTTPStatus(h))
	defer srv.Close()

	for _, payload := range []string{`{"item":1}`, `{"item":1}`, `{"item":2}`} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{"cmd":"shop.buy","payload":`+payload+`}`))
		req.Header.Set("Idempotency-Key", "8e03978e-40d5-43e8-bc93-6894a57f9324")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		res.Body.Close()
		fmt.Println(res.StatusCode, res.Header.Get("Content-Type"))
	}
	// Output:
	// 200 application/json
	// 200 application/json
	// 422 application/problem+json
}

// Behind a shard router: the store's transactions are the router's (one
// retry policy, one set of stats), its key table is a migration set that
// MigrateAll applies to every game database, and a user key no database
// owns is a definitive bad request.
func ExampleSQLStore_Migrations() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "idem-router-example")
	defer os.RemoveAll(dir)
	dsn := func(name string) string { return shard.SQLiteDSN(filepath.Join(dir, name)) }
	games, _ := shard.NewStaticDirectory([]shard.Database{
		{ID: 1, Name: "gamedb01", Driver: "sqlite", DSN: dsn("gamedb01.db"), FirstKey: 10_000_000, LastKey: 19_999_999},
		{ID: 2, Name: "gamedb02", Driver: "sqlite", DSN: dsn("gamedb02.db"), FirstKey: 20_000_000, LastKey: 29_999_999},
	})
	router, err := shard.NewRouter(ctx, shard.Config{Directory: games})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer router.Close()
	// Every key is routed: no *sql.DB of its own, so the dialect is named.
	s, err := idempotency.NewSQLStore(ctx, nil, idempotency.SQLConfig{Tx: router.Tx, Dialect: shard.DialectSQLite})
	if err != nil {
		fmt.Println(err)
		return
	}
	files, source := s.Migrations()
	if _, err := router.MigrateAll(ctx, shard.Migrations{FS: files, Source: source}); err != nil {
		fmt.Println(err)
		return
	}
	claim := func(ctx context.Context) (idempotency.Result, error) {
		return idempotency.Result{Payload: []byte(`"reward"`)}, nil // writes go in idempotency.TxFrom(ctx)
	}
	for _, user := range []int64{10_000_001, 20_000_001, 20_000_001, 5} {
		out, err := s.Do(ctx, idempotency.Scope{UserKey: user, Command: "daily.claim"}, "day-1", idempotency.FingerprintOf(nil), claim)
		if err != nil {
			fmt.Println(user, protocol.CodeOf(err))
			continue
		}
		fmt.Println(user, string(out.Payload), out.Replay)
	}
	for _, st := range router.Stats() {
		fmt.Println("db", st.ID, "transactions:", st.Txs)
	}
	// Output:
	// 10000001 "reward" false
	// 20000001 "reward" false
	// 20000001 "reward" true
	// 5 bad_request
	// db 1 transactions: 1
	// db 2 transactions: 2
}
