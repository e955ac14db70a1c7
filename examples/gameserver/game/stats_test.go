package game_test

import (
	"context"
	"database/sql"
	"reflect"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/anticheat/anticheattest"
	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard/shardtest"
)

// RevenueBetween sums the payment rows per currency in [from, to) only:
// grants (gems, items) are not revenue, the window's end is exclusive.
func TestRevenueBetweenOnEachBackend(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			fv := anticheattest.NewVerifier()
			r := newRigWith(t, b, func(common *sql.DB, cfg *game.Config) {
				if b.name == "sqlite" {
					common = shardtest.SQLite().NewDB(t)
				}
				store, err := anticheat.NewSQLStore(t.Context(), common, anticheat.SQLConfig{})
				if err != nil {
					t.Fatal(err)
				}
				if err := store.CreateTables(ctx); err != nil {
					t.Fatal(err)
				}
				red, err := anticheat.NewRedeemer(anticheat.RedeemerConfig{Verifier: anticheat.StoreVerifiers{anticheat.StoreGoogle: fv}, Redemptions: store})
				if err != nil {
					t.Fatal(err)
				}
				cfg.IAP = &game.IAPConfig{Redeemer: red}
			})
			day1 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) // the rig's clock starts at 12:00 that day
			day2 := day1.AddDate(0, 0, 1)
			u := r.login("payer")
			buy := func(rid, receipt, product string) {
				t.Helper()
				var got game.IAPResult
				if resp := r.do(u, game.CmdShopBuyIAP, rid, game.BuyIAP{ProductID: product, Platform: "android", Receipt: receipt}, &got); resp.Code != protocol.CodeOK || !got.Granted {
					t.Fatalf("buy %s: %v %+v", product, resp.Code, got)
				}
			}
			fv.Add("r1", anticheat.Purchase{TransactionID: "GPA.1", ProductID: "gems_100"})
			fv.Add("r2", anticheat.Purchase{TransactionID: "GPA.2", ProductID: "starter_pack"})
			fv.Add("r3", anticheat.Purchase{TransactionID: "GPA.3", ProductID: "gems_550"})
			buy("p1", "r1", "gems_100")
			buy("p2", "r2", "starter_pack")
			// A payment in another currency, written as the game writes one.
			db, err := r.router.DB(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec("INSERT INTO ledger (user_key, currency, delta, balance_after, reason, request_id, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
				u, game.PaymentCurrency("KRW"), 1_200_000_000, 1_200_000_000, "iap:gems_100", "manual", r.clock.Now().UnixMilli()); err != nil {
				t.Fatal(err)
			}
			r.clock.Set(day2) // midnight: the next day
			buy("p3", "r3", "gems_550")

			check := func(from, to time.Time, want []game.Revenue) {
				t.Helper()
				got, err := r.g.RevenueBetween(ctx, from, to)
				if err != nil {
					t.Fatal(err)
				}
				if got == nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("revenue [%s, %s): %+v, want %+v", from, to, got, want)
				}
			}
			check(day1, day2, []game.Revenue{{Currency: "KRW", AmountMicros: 1_200_000_000, Payments: 1}, {Currency: "USD", AmountMicros: 990_000 + 1_990_000, Payments: 2}})
			check(day2, day2.AddDate(0, 0, 1), []game.Revenue{{Currency: "USD", AmountMicros: 4_990_000, Payments: 1}})
			check(day1.AddDate(0, 0, -1), day1, []game.Revenue{})
		})
	}
}
