package game_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session/sessiontest"
	"github.com/madang-io/madang/shard"
	"github.com/madang-io/madang/shard/shardtest"
)

// rig is a Game over one game database of a backend, driven through its
// mux with a fake clock (no transport: the server package tests that).
type rig struct {
	t      testing.TB
	g      *game.Game
	mux    *protocol.Mux
	clock  *sessiontest.Clock
	router *shard.Router
}

type backend struct {
	name    string
	dialect string
	// open returns the driver and DSN of a fresh empty database.
	open func(t testing.TB) (driver, dsn string)
}

func backends() []backend {
	return []backend{
		{"sqlite", shard.DialectSQLite, func(t testing.TB) (string, string) {
			return "sqlite", shardtest.SQLite().NewDSN(t)
		}},
		// As the game server opens it: interpolated parameters
		// (shard.MySQLDSN), so the router's pools pipeline transactions
		// (shard.OpenMySQL).
		{"mariadb", shard.DialectMySQL, func(t testing.TB) (string, string) {
			dsn, err := shard.MySQLDSN(shardtest.MySQL().NewDSN(t))
			if err != nil {
				t.Fatal(err)
			}
			return "mysql", dsn
		}},
	}
}

// newRig builds the game on b: the directory, the accounts, the game tables
// and the idempotency table share one database (key range 1000..1999).
func newRig(t testing.TB, b backend) *rig {
	t.Helper()
	return newRigWith(t, b, func(*sql.DB, *game.Config) {})
}

func (r *rig) login(device string) int64 {
	r.t.Helper()
	res, _, err := r.g.Login(context.Background(), game.GuestLogin{DeviceID: device, ClientVersion: "1.0.0.0"})
	if err != nil {
		r.t.Fatal(err)
	}
	return res.UserKey
}

// do runs cmd for user with request id rid (new when ""), the client clock
// at the fake server time plus skew, and decodes the payload into out.
func (r *rig) do(user int64, cmd, rid string, in, out any) *protocol.Response {
	r.t.Helper()
	return r.doQueued(user, cmd, rid, 0, in, out)
}

// doQueued is do for a request that arrived queued earlier: its client
// clock and ReceivedAt are queued before the fake server time at which it
// runs (a busy server).
func (r *rig) doQueued(user int64, cmd, rid string, queued time.Duration, in, out any) *protocol.Response {
	r.t.Helper()
	if rid == "" {
		rid = rand.Text()
	}
	var payload json.RawMessage
	if in != nil {
		var err error
		if payload, err = json.Marshal(in); err != nil {
			r.t.Fatal(err)
		}
	}
	arrived := r.clock.Now().Add(-queued)
	req := &protocol.Request{Command: cmd, RequestID: rid, Payload: payload, ClientTime: arrived.UnixMilli(),
		ReceivedAt: arrived, Principal: &protocol.Principal{UserKey: user, ClientVersion: "1.0.0.0"}}
	resp := protocol.Dispatch(context.Background(), r.mux, req, nil)
	if resp.Code == protocol.CodeOK && out != nil {
		if err := json.Unmarshal(resp.Payload, out); err != nil {
			r.t.Fatalf("%s: %v", cmd, err)
		}
	}
	return resp
}

func (r *rig) ok(user int64, cmd string, in, out any) *protocol.Response {
	r.t.Helper()
	resp := r.do(user, cmd, "", in, out)
	if resp.Code != protocol.CodeOK {
		r.t.Fatalf("%s: %v %s", cmd, resp.Code, resp.Message)
	}
	return resp
}

func (r *rig) load(user int64) game.Player {
	r.t.Helper()
	var p game.Player
	r.ok(user, game.CmdLoad, nil, &p)
	return p
}

// TestGameOnEachBackend runs the game's flows on SQLite and on MariaDB
// (MADANG_MYSQL_DSN), with a fake clock for expiry, regeneration and
// seasons.
func TestGameOnEachBackend(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			r := newRig(t, b)
			u := r.login("dev-1")
			if again := r.login("dev-1"); again != u {
				t.Fatalf("second login: user %d, want %d", again, u)
			}

			// Shop items and the welcome mail, replayed by request id.
			var bought game.BuyResult
			r.ok(u, game.CmdShopBuy, game.Buy{ItemID: "potion_pack"}, &bought)
			var list game.MailList
			r.ok(u, game.CmdMailList, nil, &list)
			if len(list.Mails) != 1 {
				t.Fatalf("mailbox after two logins: %+v", list)
			}
			var first, replay game.ClaimResult
			if resp := r.do(u, game.CmdMailClaimAll, "claim-1", nil, &first); resp.Code != protocol.CodeOK || len(first.MailIDs) != 1 {
				t.Fatalf("claim_all: %+v %+v", resp, first)
			}
			if resp := r.do(u, game.CmdMailClaimAll, "claim-1", nil, &replay); !resp.Replay || replay.Gems != first.Gems || len(replay.MailIDs) != 1 {
				t.Fatalf("claim_all replay: %+v %+v", resp, replay)
			}
			welcome := game.WelcomeMail()
			p := r.load(u)
			if p.Gems != game.StartGems-5+welcome.Gems || p.Gold != game.StartGold+welcome.Gold || len(p.Items) != 2 || p.Items[0].ItemID != "elixir" || p.Items[1].Count != 3+3 {
				t.Fatalf("player: %+v", p)
			}

			// Mail expiry on the fake clock.
			if _, err := r.g.SendMail(context.Background(), u, game.Mail{Title: "soon gone", Gold: 7, ExpiresAt: r.clock.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			r.ok(u, game.CmdMailList, nil, &list)
			id := list.Mails[0].ID
			r.clock.Advance(time.Hour)
			if resp := r.do(u, game.CmdMailClaim, "", game.ClaimMail{MailID: id}, nil); resp.Code != game.CodeMailExpired {
				t.Fatalf("expired claim: %v", resp.Code)
			}

			// A dungeon run, replayed; stamina regenerates on the clock.
			var run game.RunStarted
			r.ok(u, game.CmdDungeonStart, game.StartDungeon{DungeonID: "cave"}, &run)
			if run.Stamina.Current != game.StaminaMax-10 {
				t.Fatalf("stamina %+v", run.Stamina)
			}
			r.clock.Advance(20 * time.Second)
			fin := game.FinishDungeon{RunID: run.RunID, Result: game.ResultWin, Damage: 20_000, PlayTimeMs: 19_000}
			var got, again game.RunFinished
			if resp := r.do(u, game.CmdDungeonFinish, "fin-1", fin, &got); resp.Code != protocol.CodeOK || got.Score != 20_000 {
				t.Fatalf("finish: %+v %+v", resp, got)
			}
			if resp := r.do(u, game.CmdDungeonFinish, "fin-1", fin, &again); !resp.Replay || again != got {
				t.Fatalf("finish replay: %+v %+v", resp, again)
			}
			if resp := r.do(u, game.CmdDungeonFinish, "fin-2", fin, nil); resp.Code != game.CodeRunFinished {
				t.Fatalf("finish again: %v", resp.Code)
			}
			r.clock.Advance(game.StaminaInterval)
			if p := r.load(u); p.Stamina.Current != game.StaminaMax-10+1 || p.Exp != 90 || p.Gold != game.StartGold+welcome.Gold+250 {
				t.Fatalf("after the run: %+v", p)
			}
			var me game.RankMe
			r.ok(u, game.CmdRankMe, nil, &me)
			if !me.Ranked || me.Entry.Score != 20_000 || me.Season.ID != "w20261130" {
				t.Fatalf("rank.me: %+v", me)
			}

			// The ranking is rebuilt from the runs after the board lost it.
			if ok, err := r.g.Board().Remove(context.Background(), u); err != nil || !ok {
				t.Fatalf("remove: %v %v", ok, err)
			}
			if n, err := r.g.RebuildRanking(context.Background()); err != nil || n != 1 {
				t.Fatalf("rebuild: %d, %v", n, err)
			}
			r.ok(u, game.CmdRankMe, nil, &me)
			if !me.Ranked || me.Entry.Score != 20_000 {
				t.Fatalf("rank.me after the rebuild: %+v", me)
			}

			// A run finished after MaxRunTime ends without rewards.
			r.ok(u, game.CmdDungeonStart, game.StartDungeon{DungeonID: "forest"}, &run)
			r.clock.Advance(game.MaxRunTime + time.Second)
			if resp := r.do(u, game.CmdDungeonFinish, "", game.FinishDungeon{RunID: run.RunID, Result: game.ResultWin, Damage: 10, PlayTimeMs: 2000}, nil); resp.Code != game.CodeRunExpired {
				t.Fatalf("late finish: %v", resp.Code)
			}

			// Next week is a new season.
			r.clock.Advance(7 * 24 * time.Hour)
			r.ok(u, game.CmdRankMe, nil, &me)
			if me.Ranked || me.Season.ID != "w20261207" {
				t.Fatalf("rank.me next week: %+v", me)
			}
			if n, err := r.g.RebuildRanking(context.Background()); err != nil || n != 0 {
				t.Fatalf("rebuild of a new week: %d, %v", n, err)
			}
			var ledger []game.LedgerEntry
			ledger, err := r.g.Ledger(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			var gold int64
			for _, e := range ledger {
				if e.Currency == "gold" {
					gold += e.Delta
				}
			}
			if gold != welcome.Gold+250 {
				t.Fatalf("ledger gold %d: %+v", gold, ledger)
			}
		})
	}
}

// TestConcurrentClaimsOnEachBackend claims from one account at once with
// different request ids: each mail pays once, and MariaDB's row locks
// (player first, then mails) do not deadlock.
func TestConcurrentClaimsOnEachBackend(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			r := newRig(t, b)
			u := r.login("dev-rush")
			for range 4 {
				if _, err := r.g.SendMail(context.Background(), u, game.Mail{Title: "gift", Gems: 10}); err != nil {
					t.Fatal(err)
				}
			}
			var list game.MailList
			r.ok(u, game.CmdMailList, nil, &list)
			const n = 8
			var wg sync.WaitGroup
			var mu sync.Mutex
			paid := map[int64]int{}
			var gems int64
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var res game.ClaimResult
					var resp *protocol.Response
					if i%2 == 0 {
						resp = r.do(u, game.CmdMailClaimAll, "", nil, &res)
					} else {
						resp = r.do(u, game.CmdMailClaim, "", game.ClaimMail{MailID: list.Mails[i%len(list.Mails)].ID}, &res)
					}
					mu.Lock()
					defer mu.Unlock()
					switch resp.Code {
					case protocol.CodeOK:
						for _, id := range res.MailIDs {
							paid[id]++
						}
						gems += res.Gems
					case game.CodeMailClaimed:
					default:
						t.Errorf("claim %d: %v %s", i, resp.Code, resp.Message)
					}
				}()
			}
			wg.Wait()
			if len(paid) != len(list.Mails) {
				t.Fatalf("paid %v, mails %d", paid, len(list.Mails))
			}
			for id, k := range paid {
				if k != 1 {
					t.Errorf("mail %d paid %d times", id, k)
				}
			}
			want := game.WelcomeMail().Gems + 4*10
			if p := r.load(u); gems != want || p.Gems != game.StartGems+want {
				t.Fatalf("paid %d gems, player %+v; want %d", gems, p, want)
			}
		})
	}
}

// A dungeon.start that waited in a busy server's queue longer than the
// drift tolerance is timed from its arrival: the honest finish that follows
// is not taken for a fast client clock (found by the load tool under
// saturation).
func TestQueuedDungeonStartIsNotASpeedHack(t *testing.T) {
	r := newRig(t, backends()[0])
	u := r.login("queued")
	var run game.RunStarted
	r.clock.Advance(4 * time.Second) // the start ran 4 s after it arrived
	if resp := r.doQueued(u, game.CmdDungeonStart, "", 4*time.Second, game.StartDungeon{DungeonID: "forest"}, &run); resp.Code != protocol.CodeOK {
		t.Fatalf("start: %v %s", resp.Code, resp.Message)
	}
	r.clock.Advance(6 * time.Second) // the client played 10 s from sending the start
	var done game.RunFinished
	resp := r.do(u, game.CmdDungeonFinish, "", game.FinishDungeon{RunID: run.RunID, Result: game.ResultWin, Damage: 5000, PlayTimeMs: 9500}, &done)
	if resp.Code != protocol.CodeOK || done.Result != game.ResultWin {
		t.Fatalf("honest finish after a queued start: %v %s %+v", resp.Code, resp.Message, done)
	}
}

// TestManyPlayersClaimMailAtOnce: many players claim their mail at the same
// moment, each request once (no client retry). Every claim must succeed.
// On MariaDB this used to deadlock players against each other (error 1213,
// answered CodeUnavailable): the inventory's SELECT … FOR UPDATE of an item
// row a player did not have yet took a gap lock shared with the players of
// neighbouring user keys, whose INSERTs into that gap then waited on each
// other (a cycle). See docs/FAILURES.md. The router's rerun of deadlock
// victims (shard.Config.TxRetries) is off here, so that it cannot hide one.
func TestManyPlayersClaimMailAtOnce(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			r := newRigRouter(t, b, shard.Config{TxRetries: -1}, func(*sql.DB, *game.Config) {})
			const players, rounds = 24, 3
			users := make([]int64, players)
			for i := range users {
				users[i] = r.login(fmt.Sprintf("crowd-%d", i))
			}
			failed := 0
			for round := range rounds {
				// Each round brings an item some players do not have yet,
				// and a second mail for claim (one by id).
				items := []game.ItemCount{{ItemID: "key_bronze", Count: 1}, {ItemID: "potion", Count: 2}}
				for i, u := range users {
					its := items
					if (i+round)%2 == 0 {
						its = items[1:]
					}
					for range 2 {
						if _, err := r.g.SendMail(context.Background(), u, game.Mail{Title: "gift", Gold: 1, Items: its}); err != nil {
							t.Fatal(err)
						}
					}
				}
				lists := make([]game.MailList, players)
				for i, u := range users {
					r.ok(u, game.CmdMailList, nil, &lists[i])
				}
				var wg sync.WaitGroup
				var mu sync.Mutex
				start := make(chan struct{})
				for i, u := range users {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						var resp *protocol.Response
						if i%3 == 0 {
							resp = r.do(u, game.CmdMailClaim, "", game.ClaimMail{MailID: lists[i].Mails[0].ID}, nil)
						} else {
							resp = r.do(u, game.CmdMailClaimAll, "", nil, nil)
						}
						if resp.Code != protocol.CodeOK {
							mu.Lock()
							failed++
							mu.Unlock()
							t.Logf("round %d player %d: %v %s", round, u, resp.Code, resp.Message)
						}
					}()
				}
				close(start)
				wg.Wait()
			}
			if failed > 0 {
				t.Fatalf("%d of %d claims failed", failed, players*rounds)
			}
		})
	}
}
