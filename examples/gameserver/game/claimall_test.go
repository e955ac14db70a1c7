package game_test

import (
	"context"
	"database/sql"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
	"github.com/madang-io/madang/shard/shardtest"
)

// mail.claim_all sends one statement per kind of write however many mails
// it claims (BENCHMARKS.md, "full stack vs its database ceiling (issue
// 17)"), and writes the same balances, inventory and ledger rows as
// claiming the mails one by one with mail.claim.
func TestClaimAllBatched(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			var c shardtest.Counter
			open := c.Open
			if b.dialect == shard.DialectMySQL {
				open = func(name, dsn string) (*sql.DB, error) {
					dsn, err := shard.MySQLDSN(dsn)
					if err != nil {
						return nil, err
					}
					return c.Open(name, dsn)
				}
			}
			r := newRigRouter(t, b, shard.Config{Open: open}, func(*sql.DB, *game.Config) {})
			gifts := []game.Mail{
				{Title: "gold, gems, potions", Gold: 100, Gems: 1, Items: []game.ItemCount{{ItemID: "potion", Count: 2}}},
				{Title: "gold only", Gold: 50},
				{Title: "items only", Items: []game.ItemCount{{ItemID: "elixir", Count: 1}, {ItemID: "potion", Count: 1}}},
				{Title: "nothing"},
				{Title: "gems", Gems: 7, Items: []game.ItemCount{{ItemID: "key_bronze", Count: 3}}},
			}
			one, all := r.login("one-by-one"), r.login("all-at-once")
			mailsOf := func(u int64) []int64 {
				for _, m := range gifts {
					if _, err := r.g.SendMail(ctx, u, m); err != nil {
						t.Fatal(err)
					}
				}
				var list game.MailList
				r.ok(u, game.CmdMailList, nil, &list)
				if len(list.Mails) != 1+len(gifts) { // the welcome mail too
					t.Fatalf("mailbox: %+v", list)
				}
				var ids []int64
				for i := len(list.Mails) - 1; i >= 0; i-- { // oldest first
					ids = append(ids, list.Mails[i].ID)
				}
				return ids
			}
			oneIDs, allIDs := mailsOf(one), mailsOf(all)
			r.ok(one, game.CmdShopBuy, game.Buy{ItemID: "gold_small"}, nil) // warm (MariaDB's version)
			r.ok(all, game.CmdShopBuy, game.Buy{ItemID: "gold_small"}, nil)

			var sum game.ClaimResult
			for _, id := range oneIDs {
				var res game.ClaimResult
				r.ok(one, game.CmdMailClaim, game.ClaimMail{MailID: id}, &res)
				sum.Gold += res.Gold
				sum.Gems += res.Gems
				sum.Balance = res.Balance
			}
			c.Take()
			var got game.ClaimResult
			if resp := r.do(all, game.CmdMailClaimAll, "", nil, &got); resp.Code != protocol.CodeOK {
				t.Fatalf("claim_all: %v %s", resp.Code, resp.Message)
			}
			// key, lock player, read and lock the mails, mark them
			// claimed, update player, item upsert (which returns the
			// counts: RETURNING on SQLite and MariaDB; MySQL would read
			// them, one more), ledger, answer: 8 for 6 mails (29 + 2
			// one by one before). Counted
			// in the transaction that committed: a busy SQLite may run
			// it again, and the pools' background checkpoints (PRAGMA)
			// are not the command's.
			var tx []string
			committed := 0
			for _, ev := range c.Take() {
				switch {
				case ev == "BEGIN":
					tx = tx[:0]
				case ev == "COMMIT":
					committed++
					const want = 8
					if n := len(tx); n != want {
						t.Errorf("claim_all of %d mails: %d statements, want %d:\n%s", len(allIDs), n, want, strings.Join(tx, "\n"))
					}
				case ev != "ROLLBACK" && !strings.HasPrefix(ev, "PRAGMA"):
					tx = append(tx, ev)
				}
			}
			if committed == 0 {
				t.Error("claim_all committed no transaction")
			}
			if !reflect.DeepEqual(got.MailIDs, allIDs) || got.Gold != sum.Gold || got.Gems != sum.Gems || got.Balance != sum.Balance || got.Remaining != 0 {
				t.Errorf("claim_all %+v, one by one: gold %d gems %d balance %+v, mails %v", got, sum.Gold, sum.Gems, sum.Balance, allIDs)
			}
			if pa, pb := r.load(one), r.load(all); pa.Gold != pb.Gold || pa.Gems != pb.Gems || !reflect.DeepEqual(pa.Items, pb.Items) {
				t.Errorf("after claiming one by one %+v, all at once %+v", pa, pb)
			}
			// The same ledger rows, mail ids aside.
			rows := func(u int64, ids []int64) []string {
				l, err := r.g.Ledger(ctx, u)
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, e := range l {
					if !strings.HasPrefix(e.Reason, "mail:") {
						continue
					}
					id, _ := strconv.ParseInt(strings.TrimPrefix(e.Reason, "mail:"), 10, 64)
					nth := -1
					for i, x := range ids {
						if x == id {
							nth = i
						}
					}
					out = append(out, e.Currency+" "+strconv.FormatInt(e.Delta, 10)+" "+strconv.FormatInt(e.BalanceAfter, 10)+" mail#"+strconv.Itoa(nth))
				}
				return out
			}
			if a, b := rows(one, oneIDs), rows(all, allIDs); !reflect.DeepEqual(a, b) || len(a) == 0 {
				t.Errorf("ledger one by one:\n%s\nall at once:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
			}
			// Nothing left to claim.
			if resp := r.do(all, game.CmdMailClaimAll, "", nil, &got); resp.Code != protocol.CodeOK || len(got.MailIDs) != 0 {
				t.Errorf("second claim_all: %v %+v", resp.Code, got)
			}
		})
	}
}
