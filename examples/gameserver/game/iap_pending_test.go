package game_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/anticheat/anticheattest"
	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
	"github.com/madang-io/madang/shard/shardtest"
)

// afterRedeem is a Redemptions whose Redeem runs hook once the inner
// redemption committed, while armed: the moment between the redemption's
// commit in the common database and the grant's transaction on the game
// database.
type afterRedeem struct {
	anticheat.Redemptions
	armed atomic.Bool
	hook  func() error
}

func (a *afterRedeem) Redeem(ctx context.Context, r anticheat.Redemption) (anticheat.Redemption, bool, error) {
	stored, created, err := a.Redemptions.Redeem(ctx, r)
	if err == nil && a.armed.CompareAndSwap(true, false) {
		if herr := a.hook(); herr != nil {
			return anticheat.Redemption{}, false, herr
		}
	}
	return stored, created, err
}

// A receipt redeemed in the common database whose grant never committed
// (MariaDB: the game database's connections are killed right after the
// redemption committed, so the grant's transaction dies; SQLite: the
// redemption's reply is lost) is answered retryable (41), never 40, and
// is granted — once — at the player's next login, or by the sweep, even
// when the client's own retry races the sweep. Before the purchase notes,
// such a receipt stayed redeemed and ungranted until the client sent it
// again.
func TestRedeemedNotGrantedIsGrantedLater(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			fv := anticheattest.NewVerifier()
			var redemptions *afterRedeem
			var gameDB string
			r := newRigWith(t, b, func(common *sql.DB, cfg *game.Config) {
				if b.name == "sqlite" {
					common = shardtest.SQLite().NewDB(t)
				} else {
					if err := common.QueryRow("SELECT DATABASE()").Scan(&gameDB); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := shard.Migrate(ctx, common, game.CommonMigrations()); err != nil {
					t.Fatal(err)
				}
				store, err := anticheat.NewSQLStore(t.Context(), common, anticheat.SQLConfig{})
				if err != nil {
					t.Fatal(err)
				}
				if err := store.CreateTables(ctx); err != nil {
					t.Fatal(err)
				}
				redemptions = &afterRedeem{Redemptions: store}
				switch b.name {
				case "sqlite":
					redemptions.hook = func() error { return fmt.Errorf("redeem: reply lost: %w", io.ErrUnexpectedEOF) }
				default:
					// Kill every connection to the test's own database
					// except this one: the grant's transaction is among them.
					redemptions.hook = func() error {
						rows, err := common.QueryContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()", gameDB)
						if err != nil {
							return err
						}
						var ids []int64
						for rows.Next() {
							var id int64
							if err := rows.Scan(&id); err != nil {
								return err
							}
							ids = append(ids, id)
						}
						rows.Close()
						for _, id := range ids {
							_, _ = common.ExecContext(ctx, fmt.Sprintf("KILL %d", id))
						}
						return nil
					}
				}
				red, err := anticheat.NewRedeemer(anticheat.RedeemerConfig{Verifier: anticheat.StoreVerifiers{anticheat.StoreGoogle: fv}, Redemptions: redemptions})
				if err != nil {
					t.Fatal(err)
				}
				cfg.IAP = &game.IAPConfig{Redeemer: red, Pending: common}
			})
			a := r.login("pending-a")
			buy := func(rid, receipt string, out *game.IAPResult) *protocol.Response {
				return r.do(a, game.CmdShopBuyIAP, rid, game.BuyIAP{ProductID: "gems_550", Platform: "android", Receipt: receipt}, out)
			}
			purchases := func() int {
				ps, err := r.g.Purchases(ctx, a)
				if err != nil {
					t.Fatal(err)
				}
				return len(ps)
			}
			failGrant := func(rid, receipt string) {
				t.Helper()
				redemptions.armed.Store(true)
				if resp := buy(rid, receipt, nil); !resp.Code.Retryable() {
					t.Fatalf("grant failed after the redemption: %v %s, want a retryable code", resp.Code, resp.Message)
				}
				if redemptions.armed.Load() {
					t.Fatal("the hook did not run")
				}
			}

			// At the next login.
			fv.Add("r1", anticheat.Purchase{TransactionID: "GPA.P1", ProductID: "gems_550"})
			gems := r.load(a).Gems
			failGrant("p-1", "r1")
			if got := r.load(a).Gems; got != gems || purchases() != 0 {
				t.Fatalf("after the failed grant: gems %d (was %d), %d purchases", got, gems, purchases())
			}
			if r.login("pending-a") != a {
				t.Fatal("another account")
			}
			if got := r.load(a).Gems; got != gems+550 || purchases() != 1 {
				t.Fatalf("after the next login: gems %d, want %d; %d purchases", got, gems+550, purchases())
			}
			if n, err := r.g.GrantPending(ctx, a); n != 0 || err != nil {
				t.Fatalf("second GrantPending: %d %v", n, err)
			}
			var again game.IAPResult
			if resp := buy("p-1", "r1", &again); resp.Code != protocol.CodeOK || again.Granted {
				t.Fatalf("the client's retry after the login grant: %v %+v", resp.Code, again)
			}
			if got := r.load(a).Gems; got != gems+550 || purchases() != 1 {
				t.Fatalf("after the client's retry: gems %d, want %d", got, gems+550)
			}

			// By the sweep, racing the client's own retries.
			for round := range 3 {
				receipt := fmt.Sprintf("r-sweep-%d", round)
				rid := fmt.Sprintf("p-sweep-%d", round)
				fv.Add(receipt, anticheat.Purchase{TransactionID: fmt.Sprintf("GPA.S%d", round), ProductID: "gems_550"})
				gems := r.load(a).Gems
				n0 := purchases()
				failGrant(rid, receipt)
				var wg sync.WaitGroup
				var swept atomic.Int64
				var granted atomic.Int64
				wg.Go(func() {
					n, err := r.g.SweepPendingGrants(ctx, 0, 100)
					if err != nil && !protocol.CodeOf(err).Retryable() {
						t.Errorf("sweep: %v", err)
					}
					swept.Add(int64(n))
				})
				wg.Go(func() {
					for {
						var res game.IAPResult
						resp := buy(rid, receipt, &res)
						if resp.Code == protocol.CodeOK {
							if res.Granted {
								granted.Add(1)
							}
							return
						}
						if !resp.Code.Retryable() {
							t.Errorf("client retry: %v %s", resp.Code, resp.Message)
							return
						}
					}
				})
				wg.Wait()
				if _, err := r.g.SweepPendingGrants(ctx, 0, 100); err != nil {
					t.Fatal(err)
				}
				if got := r.load(a).Gems; got != gems+550 || purchases() != n0+1 || swept.Load()+granted.Load() != 1 {
					t.Fatalf("round %d: gems %d, want %d; purchases %d, want %d; granted by the sweep %d, by the retry %d",
						round, got, gems+550, purchases(), n0+1, swept.Load(), granted.Load())
				}
			}
		})
	}
}
