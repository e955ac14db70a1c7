package game_test

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
)

// TestShopBuyPathsAgree runs one script of purchases, refusals and mail
// claims on SQLite, on MariaDB (shop.buy's one-statement upsert … RETURNING
// of the player row, RETURNING of a grant's item counts) and on MariaDB
// through MySQL's statements (Config.MariaDB false: lock, update, read):
// every answer, the player row, the inventory and the ledger must be the
// same on the three. A refusal (not enough gems) and a purchase by a player
// whose row is gone (no player) must leave nothing written: the balances
// and ledger as before, no placeholder row.
func TestShopBuyPathsAgree(t *testing.T) {
	type path struct {
		name  string
		b     backend
		maria *bool
	}
	no := false
	all := backends()
	paths := []path{{"sqlite", all[0], nil}, {"mariadb", all[1], nil}, {"mysql-path", all[1], &no}}
	var want []string
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			var common *sql.DB
			r := newRigWith(t, p.b, func(db *sql.DB, cfg *game.Config) {
				common, cfg.MariaDB = db, p.maria
			})
			u := r.login("paths")
			var got []string
			note := func(step string, resp *protocol.Response) {
				got = append(got, fmt.Sprintf("%s: %v replay=%v %s %s", step, resp.Code, resp.Replay, resp.Message, resp.Payload))
			}
			state := func() string {
				t.Helper()
				return dump(t, common, u)
			}
			note("potion_pack (new row)", r.do(u, game.CmdShopBuy, "b1", game.Buy{ItemID: "potion_pack"}, nil))
			note("potion_pack (row updated)", r.do(u, game.CmdShopBuy, "b2", game.Buy{ItemID: "potion_pack"}, nil))
			note("adventurer_kit (two items)", r.do(u, game.CmdShopBuy, "b3", game.Buy{ItemID: "adventurer_kit"}, nil))
			var list game.MailList
			r.ok(u, game.CmdMailList, nil, &list)
			if len(list.Mails) != 1 {
				t.Fatalf("mailbox: %+v", list)
			}
			note("mail.claim (two items)", r.do(u, game.CmdMailClaim, "c1", game.ClaimMail{MailID: list.Mails[0].ID}, nil))
			// gold_large until the gems run out: the refusal writes nothing
			// and is stored (its replay answers the same).
			for i := 0; ; i++ {
				before := state()
				rid := fmt.Sprintf("g%d", i)
				resp := r.do(u, game.CmdShopBuy, rid, game.Buy{ItemID: "gold_large"}, nil)
				note("gold_large "+rid, resp)
				if resp.Code == protocol.CodeOK {
					continue
				}
				if resp.Code != game.CodeNotEnoughGems {
					t.Fatalf("gold_large: %v %s", resp.Code, resp.Message)
				}
				if after := state(); after != before {
					t.Errorf("a refusal changed the player:\nbefore %s\nafter  %s", before, after)
				}
				note("gold_large replayed", r.do(u, game.CmdShopBuy, rid, game.Buy{ItemID: "gold_large"}, nil))
				break
			}
			note("potion_pack (after the refusal)", r.do(u, game.CmdShopBuy, "b4", game.Buy{ItemID: "potion_pack"}, nil))
			final := state()
			got = append(got, final)
			checkLedger(t, common, u)

			// The player row gone (an operator deleted it): no player, and
			// no row left behind by the purchase.
			if _, err := common.ExecContext(context.Background(), "DELETE FROM players WHERE user_key = ?", u); err != nil {
				t.Fatal(err)
			}
			note("no player", r.do(u, game.CmdShopBuy, "b5", game.Buy{ItemID: "potion_pack"}, nil))
			note("no player replayed", r.do(u, game.CmdShopBuy, "b5", game.Buy{ItemID: "potion_pack"}, nil))
			var n int
			if err := common.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM players WHERE user_key = ?", u).Scan(&n); err != nil || n != 0 {
				t.Errorf("player rows after a purchase without a player: %d, %v", n, err)
			}
			got = append(got, dump(t, common, u))
			if !strings.Contains(strings.Join(got, "\n"), fmt.Sprintf("no player: %v replay=false", game.CodeNoPlayer)) {
				t.Errorf("no CodeNoPlayer answer:\n%s", strings.Join(got, "\n"))
			}

			if want == nil {
				want = got
				return
			}
			if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
				t.Errorf("%s differs from %s:\n%s\nwant\n%s", p.name, paths[0].name, g, w)
			}
		})
	}
}

// dump is the user's player row, inventory and ledger (without ids) as text.
func dump(t *testing.T, db *sql.DB, u int64) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	rows, err := db.QueryContext(ctx, "SELECT name, gold, gems, exp, stamina, stamina_at, created_at FROM players WHERE user_key = ?", u)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		var v [6]int64
		if err := rows.Scan(&name, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "player %s %v; ", name, v)
	}
	rows.Close()
	rows, err = db.QueryContext(ctx, "SELECT item_id, count FROM inventory WHERE user_key = ? ORDER BY item_id", u)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s=%d ", id, n)
	}
	rows.Close()
	rows, err = db.QueryContext(ctx, "SELECT currency, delta, balance_after, reason, request_id, at FROM ledger WHERE user_key = ? ORDER BY id", u)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var cur, reason, rid string
		var d, after, at int64
		if err := rows.Scan(&cur, &d, &after, &reason, &rid, &at); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "; %s %+d=%d %s %s %d", cur, d, after, reason, rid, at)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// checkLedger checks that the user's balances and item counts equal the
// sums of the ledger's deltas (from the starting balances), and that every
// row's balance_after is its running sum.
func checkLedger(t *testing.T, db *sql.DB, u int64) {
	t.Helper()
	ctx := context.Background()
	sum := map[string]int64{"gold": game.StartGold, "gems": game.StartGems}
	rows, err := db.QueryContext(ctx, "SELECT currency, delta, balance_after FROM ledger WHERE user_key = ? ORDER BY id", u)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var cur string
		var d, after int64
		if err := rows.Scan(&cur, &d, &after); err != nil {
			t.Fatal(err)
		}
		sum[cur] += d
		if after != sum[cur] {
			t.Errorf("ledger %s %+d: balance_after %d, running sum %d", cur, d, after, sum[cur])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	have := map[string]int64{}
	var gold, gems int64
	if err := db.QueryRowContext(ctx, "SELECT gold, gems FROM players WHERE user_key = ?", u).Scan(&gold, &gems); err != nil {
		t.Fatal(err)
	}
	have["gold"], have["gems"] = gold, gems
	items, err := db.QueryContext(ctx, "SELECT item_id, count FROM inventory WHERE user_key = ?", u)
	if err != nil {
		t.Fatal(err)
	}
	defer items.Close()
	for items.Next() {
		var id string
		var n int64
		if err := items.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		have["item:"+id] = n
	}
	keys := make([]string, 0, len(sum))
	for k := range sum {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if have[k] != sum[k] {
			t.Errorf("%s: balance %d, ledger sums to %d", k, have[k], sum[k])
		}
	}
	if len(have) != len(sum) {
		t.Errorf("balances %v, ledger sums %v", have, sum)
	}
}
