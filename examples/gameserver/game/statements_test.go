package game_test

import (
	"context"
	"database/sql"
	"net"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
	"github.com/madang-io/madang/shard/shardtest"
)

// TestStatementsPerCommand counts the statements each mutating command
// sends its game database (BENCHMARKS.md, "MySQL round trips per command
// (issue 17)", "production path writes: MariaDB CPU per shop.buy" and
// "production path writes: MariaDB's RETURNING"): the idempotency key row
// and stored answer (2), the player row locked once and written once (on
// MariaDB shop.buy does both in one upsert), one multi-row upsert for the
// items a command gives (which returns their counts: RETURNING, or on
// MariaDB one item's count as its insert id), and one multi-row INSERT for
// all its ledger rows. A command
// that sends more fails here; so does a ledger row whose balance_after is
// not the sum of its currency's deltas. On MariaDB the pool's DSN
// goes through shard.MySQLDSN, as the game server's does, so every
// statement is one round trip: the count plus BEGIN and COMMIT.
//
// The same on MariaDB with interpolateParams=false ("mariadb-prepared"): the
// same statements, each prepared, executed and closed, so two round trips
// each. And on MariaDB told it is not ("mysql-path", Config.MariaDB false):
// MySQL's statements, without RETURNING — shop.buy locks the player row and
// updates it in two, a grant of two items or more reads their counts.
//
// And on MariaDB as the game server opens it ("mariadb-pipelined":
// shard.OpenMySQL, the router's default): the round trips counted on the
// wire. START TRANSACTION goes with the first statement, and the writes
// whose result the game does not read (shard.Deferred: ledger rows, the
// stored answer, the player and run updates, the welcome mail) go with
// the next statement or the COMMIT: a command of n statements, d of them
// deferred, is n-d+1 round trips instead of n+2.
func TestStatementsPerCommand(t *testing.T) {
	all := backends()
	all = append(all, all[1], all[1], all[1])
	all[2].name = "mariadb-prepared"
	all[3].name = "mysql-path"
	all[4].name = "mariadb-pipelined"
	for i, b := range all {
		prepared, mysqlPath, pipelined := i == 2, i == 3, i == 4
		t.Run(b.name, func(t *testing.T) {
			// Statements and round trips as shardtest.Counter counts them:
			// a prepared statement run once is two round trips.
			var c shardtest.Counter
			open := c.Open
			switch {
			case pipelined:
				open = func(name, dsn string) (*sql.DB, error) {
					return shard.OpenMySQL(wireCountedDSN(t, dsn))
				}
			case b.dialect == shard.DialectMySQL:
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
			// No background checkpoints: their statements go through the
			// counted pool and, on a slow run, land inside a step (+2).
			r := newRigRouter(t, b, shard.Config{Open: open, SQLiteCheckpointInterval: -1}, func(_ *sql.DB, cfg *game.Config) {
				if mysqlPath {
					no := false
					cfg.MariaDB = &no
				}
			})
			u := r.login("counted")
			if pipelined {
				// A new player's game transaction: the player row with
				// START TRANSACTION, the welcome mail with the COMMIT.
				n := wireTrips(func() { r.login("counted-2") })
				t.Logf("login of a new player: %d round trips", n)
				if n != 2 {
					t.Errorf("login of a new player: %d round trips, want 2", n)
				}
			}
			var list game.MailList
			r.ok(u, game.CmdMailList, nil, &list)
			if len(list.Mails) != 1 {
				t.Fatalf("mailbox: %+v", list)
			}
			// Warm: the first transaction asks MariaDB its version (the
			// idempotency store, and the game unless told).
			r.ok(u, game.CmdShopBuy, game.Buy{ItemID: "gold_small"}, nil)

			// On MariaDB shop.buy locks and updates the player row in one
			// statement (INSERT … ON DUPLICATE KEY UPDATE … RETURNING), and
			// a grant of two items or more gets its counts back from the
			// upsert (RETURNING) as on SQLite.
			// On MySQL (mysql-path) the two-item grant reads the counts.
			maria, read := int64(0), int64(0)
			switch {
			case mysqlPath:
				read = 1
			case b.dialect == shard.DialectMySQL:
				maria = 1
			}
			var run game.RunStarted
			steps := []struct {
				name  string
				want  int64
				def   int64 // of them deferred (mariadb-pipelined)
				run   func() *protocol.Response
				after func()
			}{
				// key, lock player, update player (MariaDB: one upsert),
				// ledger (gems, gold), answer
				{"shop.buy gold_small", 5 - maria, 2, func() *protocol.Response {
					return r.do(u, game.CmdShopBuy, "buy-1", game.Buy{ItemID: "gold_small"}, nil)
				}, nil},
				// a replay: the key row touched (MariaDB) or its INSERT
				// refused (SQLite), and read
				{"shop.buy replayed", 2, 0, func() *protocol.Response {
					return r.do(u, game.CmdShopBuy, "buy-1", game.Buy{ItemID: "gold_small"}, nil)
				}, nil},
				// ... plus the item upsert (a new inventory row)
				{"shop.buy potion_pack", 6 - maria, 2, func() *protocol.Response {
					return r.do(u, game.CmdShopBuy, "", game.Buy{ItemID: "potion_pack"}, nil)
				}, nil},
				// the same, the row updated: its count comes back with the
				// upsert
				{"shop.buy potion_pack again", 6 - maria, 2, func() *protocol.Response {
					return r.do(u, game.CmdShopBuy, "", game.Buy{ItemID: "potion_pack"}, nil)
				}, nil},
				// two items: still one upsert, returning both counts
				{"shop.buy adventurer_kit", 6 - maria + read, 2, func() *protocol.Response {
					return r.do(u, game.CmdShopBuy, "", game.Buy{ItemID: "adventurer_kit"}, nil)
				}, nil},
				// key, lock player, update stamina, insert run, answer
				{"dungeon.start", 5, 3, func() *protocol.Response {
					return r.do(u, game.CmdDungeonStart, "", game.StartDungeon{DungeonID: "forest"}, &run)
				}, func() { r.clock.Advance(20 * time.Second) }},
				// key, lock player, lock run, update player, ledger,
				// update run, answer
				{"dungeon.finish", 7, 4, func() *protocol.Response {
					return r.do(u, game.CmdDungeonFinish, "", game.FinishDungeon{RunID: run.RunID, Result: game.ResultWin, Damage: 5000, PlayTimeMs: 19_000}, nil)
				}, nil},
				// key, lock player, lock mail, mark it claimed, update
				// player, item upsert (mysql-path: item read), ledger,
				// answer
				{"mail.claim", 8 + read, 3, func() *protocol.Response {
					return r.do(u, game.CmdMailClaim, "", game.ClaimMail{MailID: list.Mails[0].ID}, nil)
				}, nil},
			}
			for _, s := range steps {
				if pipelined {
					var resp *protocol.Response
					trips := wireTrips(func() { resp = s.run() })
					if resp.Code != protocol.CodeOK {
						t.Fatalf("%s: %v %s", s.name, resp.Code, resp.Message)
					}
					t.Logf("%s: %d round trips", s.name, trips)
					if want := s.want - s.def + 1; trips != want {
						t.Errorf("%s: %d round trips, want %d (%d statements, %d deferred, plus the COMMIT)", s.name, trips, want, s.want, s.def)
					}
					if s.after != nil {
						s.after()
					}
					continue
				}
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
			// Every ledger row's balance_after is its currency's balance:
			// the counts the upserts returned are the counts written.
			ledger, err := r.g.Ledger(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			sort.Slice(ledger, func(i, j int) bool { return ledger[i].ID < ledger[j].ID })
			sum := map[string]int64{"gold": game.StartGold, "gems": game.StartGems}
			items := 0
			for _, e := range ledger {
				sum[e.Currency] += e.Delta
				if e.BalanceAfter != sum[e.Currency] {
					t.Errorf("ledger row %+v: balance_after %d, the deltas sum to %d", e, e.BalanceAfter, sum[e.Currency])
				}
				if strings.HasPrefix(e.Currency, "item:") {
					items++
				}
			}
			if items != 6 { // potion ×2, kit ×2, the welcome mail's 2
				t.Errorf("%d item rows in the ledger, want 6: %+v", items, ledger)
			}
		})
	}
}

// wire counts the command packets (one per round trip) written on
// connections dialled through the "wirecount" network (wireCountedDSN).
var wire atomic.Int64

func init() {
	mysql.RegisterDialContext("wirecount", func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return wireConn{c}, nil
	})
}

// wireConn counts the writes that start a command: a MySQL packet with
// sequence id 0.
type wireConn struct{ net.Conn }

func (c wireConn) Write(b []byte) (int, error) {
	if len(b) >= 5 && b[3] == 0 {
		wire.Add(1)
	}
	return c.Conn.Write(b)
}

// wireCountedDSN returns dsn with interpolated parameters
// (shard.MySQLDSN), dialled through "wirecount".
func wireCountedDSN(t testing.TB, dsn string) string {
	t.Helper()
	dsn, err := shard.MySQLDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Net != "tcp" {
		t.Skipf("the round trip count needs a tcp DSN, not %q", cfg.Net)
	}
	cfg.Net = "wirecount"
	return cfg.FormatDSN()
}

// wireTrips returns the round trips f made on "wirecount" connections.
func wireTrips(f func()) int64 {
	n := wire.Load()
	f()
	return wire.Load() - n
}
