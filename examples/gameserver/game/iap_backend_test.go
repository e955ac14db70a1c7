package game_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"github.com/madang-io/madang/session/sessiontest"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/anticheat/anticheattest"
	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/shard"
	"github.com/madang-io/madang/shard/shardtest"
)

// newRigWith is newRig with opts applied to the game's Config (common is
// the database holding the directory, here also the game database).
func newRigWith(t testing.TB, b backend, opts func(common *sql.DB, cfg *game.Config)) *rig {
	t.Helper()
	return newRigRouter(t, b, shard.Config{}, opts)
}

// newRigRouter is newRigWith with the router's config rc (its Directory and
// RefreshInterval are the rig's).
func newRigRouter(t testing.TB, b backend, rc shard.Config, opts func(common *sql.DB, cfg *game.Config)) *rig {
	t.Helper()
	ctx := context.Background()
	driver, dsn := b.open(t)
	common, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { common.Close() })
	if _, err := shard.Migrate(ctx, common, shard.DirectoryMigrations()); err != nil {
		t.Fatal(err)
	}
	dir, err := shard.NewSQLDirectory(ctx, common, shard.SQLDirectoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.Add(ctx, shard.Database{ID: 1, ServerID: 1, WorldID: 1, Name: "game", Driver: driver, DSN: dsn, FirstKey: 1000, LastKey: 1999}); err != nil {
		t.Fatal(err)
	}
	rc.Directory, rc.RefreshInterval = dir, -1
	router, err := shard.NewRouter(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { router.Close() })
	if _, err := router.MigrateAll(ctx, game.Migrations()); err != nil {
		t.Fatal(err)
	}
	fake := sessiontest.NewClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	idem, err := idempotency.NewSQLStore(ctx, nil, idempotency.SQLConfig{
		Config:  idempotency.Config{RequireKey: true, Now: fake.Now},
		Tx:      router.Tx,
		Dialect: b.dialect,
	})
	if err != nil {
		t.Fatal(err)
	}
	files, source := idem.Migrations()
	if _, err := router.MigrateAll(ctx, shard.Migrations{FS: files, Source: source}); err != nil {
		t.Fatal(err)
	}
	sessions := session.NewMemoryStore(session.Config{Now: fake.Now})
	t.Cleanup(func() { sessions.Close() })
	cfg := game.Config{
		Router: router, Accounts: shard.NewAccounts(dir, shard.AccountsConfig{}), Sessions: sessions, Idempotency: idem,
		Dialect: b.dialect, Now: fake.Now,
	}
	opts(common, &cfg)
	g, err := game.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := protocol.NewMux()
	g.Register(mux)
	return &rig{t: t, g: g, mux: mux, clock: fake, router: router}
}

// TestIAPOnEachBackend: a receipt granted once per transaction, refused to
// another account, and concurrent submits granting once, on SQLite and on
// MariaDB (row locks, INSERT IGNORE on the purchases key).
func TestIAPOnEachBackend(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			fv := anticheattest.NewVerifier()
			r := newRigWith(t, b, func(common *sql.DB, cfg *game.Config) {
				// On SQLite the redemptions need a file of their own: a
				// second writer on the game database's file would wait
				// for the purchase's own transaction.
				if b.name == "sqlite" {
					common = shardtest.SQLite().NewDB(t)
				}
				store, err := anticheat.NewSQLStore(t.Context(), common, anticheat.SQLConfig{})
				if err != nil {
					t.Fatal(err)
				}
				if err := store.CreateTables(context.Background()); err != nil {
					t.Fatal(err)
				}
				red, err := anticheat.NewRedeemer(anticheat.RedeemerConfig{Verifier: anticheat.StoreVerifiers{anticheat.StoreGoogle: fv}, Redemptions: store})
				if err != nil {
					t.Fatal(err)
				}
				cfg.IAP = &game.IAPConfig{Redeemer: red}
			})
			a, other := r.login("iap-a"), r.login("iap-b")
			buy := func(user int64, rid, receipt string, out *game.IAPResult) *protocol.Response {
				return r.do(user, game.CmdShopBuyIAP, rid, game.BuyIAP{ProductID: "gems_550", Platform: "android", Receipt: receipt}, out)
			}
			fv.Add("r1", anticheat.Purchase{TransactionID: "GPA.1", ProductID: "gems_550", Quantity: 2})
			var got, replay, again game.IAPResult
			if resp := buy(a, "p-1", "r1", &got); resp.Code != protocol.CodeOK || !got.Granted || got.Gems != game.StartGems+1100 || got.PriceMicros != 2*4_990_000 {
				t.Fatalf("purchase: %v %+v", resp.Code, got)
			}
			if resp := buy(a, "p-1", "r1", &replay); !resp.Replay || replay.Gems != got.Gems {
				t.Fatalf("replay: %+v %+v", resp, replay)
			}
			if resp := buy(a, "p-2", "r1", &again); resp.Code != protocol.CodeOK || again.Granted || again.Gems != got.Gems {
				t.Fatalf("redelivered: %v %+v", resp.Code, again)
			}
			if resp := buy(other, "", "r1", nil); resp.Code != protocol.CodeReceiptUsed {
				t.Fatalf("other account: %v", resp.Code)
			}
			ledger, err := r.g.Ledger(context.Background(), a)
			if err != nil {
				t.Fatal(err)
			}
			var pay int
			for _, e := range ledger {
				if e.Currency == game.PaymentCurrency("USD") {
					pay++
					if e.Delta != 2*4_990_000 || e.BalanceAfter != 2*4_990_000 || e.RequestID != "p-1" {
						t.Errorf("payment row %+v", e)
					}
				}
			}
			if pay != 1 {
				t.Fatalf("ledger %+v: %d payment rows", ledger, pay)
			}

			// Concurrent submits of one receipt from both accounts.
			fv.Add("r2", anticheat.Purchase{TransactionID: "GPA.2", ProductID: "gems_550"})
			before := r.load(a).Gems + r.load(other).Gems
			var wg sync.WaitGroup
			var mu sync.Mutex
			codes := map[string]int{}
			for i := range 10 {
				user := a
				if i%2 == 1 {
					user = other
				}
				wg.Go(func() {
					var res game.IAPResult
					resp := buy(user, fmt.Sprintf("race-%d", i), "r2", &res)
					mu.Lock()
					defer mu.Unlock()
					codes[fmt.Sprintf("%v/%v", resp.Code, res.Granted)]++
				})
			}
			wg.Wait()
			after := r.load(a).Gems + r.load(other).Gems
			if after-before != 550 || codes["ok/true"] != 1 || codes["ok/false"] != 4 || codes["receipt_used/false"] != 5 {
				t.Fatalf("concurrent submits: gems +%d, answers %v", after-before, codes)
			}
		})
	}
}

// FuzzBuyIAP sends arbitrary payloads to shop.buy_iap on a development
// server (dev receipts accepted): each is answered with a result code,
// never an internal error or a panic, and at most the products' gems are
// granted.
func FuzzBuyIAP(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"product_id":"gems_100","platform":"ios","receipt":"dev-receipt:a:gems_100"}`,
		`{"product_id":"gems_100","platform":"android","receipt":"dev-receipt:a:gems_550"}`,
		`{"product_id":"starter_pack","platform":"google","receipt":"dev-receipt::"}`,
		`{"product_id":"","platform":"ios","receipt":"x"}`, `{"platform":1}`, `[`, `null`,
	} {
		f.Add([]byte(seed))
	}
	r := newRigWith(f, backends()[0], func(_ *sql.DB, cfg *game.Config) {
		store, err := anticheat.NewSQLStore(f.Context(), shardtest.SQLite().NewDB(f), anticheat.SQLConfig{})
		if err != nil {
			f.Fatal(err)
		}
		if err := store.CreateTables(context.Background()); err != nil {
			f.Fatal(err)
		}
		red, err := anticheat.NewRedeemer(anticheat.RedeemerConfig{Verifier: game.DevVerifiers(), Redemptions: store})
		if err != nil {
			f.Fatal(err)
		}
		cfg.IAP = &game.IAPConfig{Redeemer: red, DevReceipts: true}
	})
	u := r.login("fuzz-iap")
	f.Fuzz(func(t *testing.T, payload []byte) {
		req := &protocol.Request{Command: game.CmdShopBuyIAP, RequestID: rand.Text(), Payload: payload,
			Principal: &protocol.Principal{UserKey: u, ClientVersion: "1.0.0.0"}}
		resp := protocol.Dispatch(t.Context(), r.mux, req, nil)
		switch resp.Code {
		case protocol.CodeInternal, protocol.CodeUnavailable, protocol.CodeTimeout:
			t.Fatalf("%q: %v %s", payload, resp.Code, resp.Message)
		}
	})
}
