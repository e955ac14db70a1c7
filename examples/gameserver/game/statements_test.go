package game_test

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
	"github.com/madang-io/madang/shard/shardtest"
)

// TestStatementsPerCommand counts the statements each mutating command
// sends its game database (BENCHMARKS.md, "MySQL round trips per command
// (issue 17)"): the idempotency key row and stored answer (2), the player
// row locked once and written once, one multi-row upsert and one read for
// the items a command gives, and one multi-row INSERT for all its ledger
// rows. A command that sends more fails here. On MariaDB the pool's DSN
// goes through shard.MySQLDSN, as the game server's does, so every
// statement is one round trip: the count plus BEGIN and COMMIT.
//
// The same on MariaDB with interpolateParams=false ("mariadb-prepared"): the
// same statements, each prepared, executed and closed, so two round trips
// each.
func TestStatementsPerCommand(t *testing.T) {
	all := backends()
	all = append(all, all[1])
	all[2].name = "mariadb-prepared"
	for i, b := range all {
		prepared := i == 2
		t.Run(b.name, func(t *testing.T) {
			// Statements and round trips as shardtest.Counter counts them:
			// a prepared statement run once is two round trips.
			var c shardtest.Counter
			open := c.Open
			if b.dialect == shard.DialectMySQL {
				open = func(name, dsn string) (*sql.DB, error) {
					if prepared {
						sep := "?"
						if strings.Contains(dsn, "?") {
							sep = "&"
						}
						dsn += sep + "interpolateParams=false"
					}
					dsn, err := shard.MySQLDSN(dsn)
					if err != nil {
						return nil, err
					}
					return c.Open(name, dsn)
				}
			}
			r := newRigRouter(t, b, shard.Config{Open: open}, func(*sql.DB, *game.Config) {})
			u := r.login("counted")
			var list game.MailList
			r.ok(u, game.CmdMailList, nil, &list)
			if len(list.Mails) != 1 {
				t.Fatalf("mailbox: %+v", list)
			}
			// Warm: the first transaction asks MariaDB its version.
			r.ok(u, game.CmdShopBuy, game.Buy{ItemID: "gold_small"}, nil)

			var run game.RunStarted
			steps := []struct {
				name  string
				want  int64
				run   func() *protocol.Response
				after func()
			}{
				// key, lock player, update player, ledger (gems, gold), answer
				{"shop.buy gold_small", 5, func() *protocol.Response {
					return r.do(u, game.CmdShopBuy, "buy-1", game.Buy{ItemID: "gold_small"}, nil)
				}, nil},
				// a replay: the key row touched (MariaDB) or its INSERT
				// refused (SQLite), and read
				{"shop.buy replayed", 2, func() *protocol.Response {
					return r.do(u, game.CmdShopBuy, "buy-1", game.Buy{ItemID: "gold_small"}, nil)
				}, nil},
				// ... plus the item upsert and its count read
				{"shop.buy potion_pack", 7, func() *protocol.Response {
					return r.do(u, game.CmdShopBuy, "", game.Buy{ItemID: "potion_pack"}, nil)
				}, nil},
				// two items: still one upsert and one read
				{"shop.buy adventurer_kit", 7, func() *protocol.Response {
					return r.do(u, game.CmdShopBuy, "", game.Buy{ItemID: "adventurer_kit"}, nil)
				}, nil},
				// key, lock player, update stamina, insert run, answer
				{"dungeon.start", 5, func() *protocol.Response {
					return r.do(u, game.CmdDungeonStart, "", game.StartDungeon{DungeonID: "forest"}, &run)
				}, func() { r.clock.Advance(20 * time.Second) }},
				// key, lock player, lock run, update player, ledger,
				// update run, answer
				{"dungeon.finish", 7, func() *protocol.Response {
					return r.do(u, game.CmdDungeonFinish, "", game.FinishDungeon{RunID: run.RunID, Result: game.ResultWin, Damage: 5000, PlayTimeMs: 19_000}, nil)
				}, nil},
				// key, lock player, lock mail, mark it claimed, update
				// player, item upsert, item read, ledger, answer
				{"mail.claim", 9, func() *protocol.Response {
					return r.do(u, game.CmdMailClaim, "", game.ClaimMail{MailID: list.Mails[0].ID}, nil)
				}, nil},
			}
			for _, s := range steps {
				s0, t0 := c.Statements(), c.RoundTrips()
				resp := s.run()
				s1, t1 := c.Statements(), c.RoundTrips()
				if resp.Code != protocol.CodeOK {
					t.Fatalf("%s: %v %s", s.name, resp.Code, resp.Message)
				}
				stmts, trips := s1-s0, t1-t0
				t.Logf("%s: %d statements, %d round trips", s.name, stmts, trips)
				if stmts != s.want {
					t.Errorf("%s: %d statements, want %d", s.name, stmts, s.want)
				}
				switch {
				case prepared && trips != 2*stmts+2:
					t.Errorf("%s: %d round trips for %d prepared statements, want two each plus BEGIN and COMMIT", s.name, trips, stmts)
				case !prepared && b.dialect == shard.DialectMySQL && trips != stmts+2:
					t.Errorf("%s: %d round trips for %d statements, want one each plus BEGIN and COMMIT", s.name, trips, stmts)
				}
				if s.after != nil {
					s.after()
				}
			}
		})
	}
}
