package load

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/server"
)

// runCounts runs cfg against url, checks that the report adds up and has
// no errors, and returns the calls per command.
func runCounts(t *testing.T, cfg Config) (*Report, map[string]uint64) {
	t.Helper()
	if cfg.XORKey == "" {
		cfg.XORKey = testXORKey
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, rep)
	counts := map[string]uint64{}
	for _, c := range rep.Commands {
		counts[c.Command] = c.Count
	}
	if rep.Total.Errors != 0 {
		t.Fatalf("errors: %+v", rep.Commands)
	}
	return rep, counts
}

func TestScenarioMail(t *testing.T) {
	t.Parallel()
	url := startGameServer(t)
	rep, counts := runCounts(t, Config{URL: url, Scenario: Mail{}, Users: 4, Duration: 1500 * time.Millisecond})
	// Each new player has the welcome mail: its first visit claims it,
	// later visits find the mailbox empty and only list it.
	if counts[game.CmdGuestLogin] != 4 || counts[game.CmdMailClaimAll] != 4 || counts[game.CmdMailList] != uint64(rep.Iterations) ||
		rep.Iterations <= 4 || len(counts) != 3 {
		t.Fatalf("%d iterations, calls %v", rep.Iterations, counts)
	}
}

func TestScenarioDungeon(t *testing.T) {
	t.Parallel()
	url := startGameServer(t)
	const users = 4
	rep, counts := runCounts(t, Config{URL: url, Scenario: Dungeon{}, Users: users, Duration: 3500 * time.Millisecond})
	starts, finishes := counts[game.CmdDungeonStart], counts[game.CmdDungeonFinish]
	// A run takes 1-2 s of play: every user finished one or more; the runs
	// still in play when the run ended were left unfinished (one per user
	// at most), and only the finished ones count as iterations. A new
	// player's stamina (50) pays for 10 forest runs: no new guests, no
	// player.load (the login tells the stamina).
	if finishes < users || starts < finishes || starts > finishes+users || uint64(rep.Iterations) != finishes ||
		counts[game.CmdGuestLogin] != users || len(counts) != 3 {
		t.Fatalf("%d iterations, calls %v", rep.Iterations, counts)
	}
}

// The Dungeon scenario's reports are within the anti-cheat rules of every
// dungeon for any luck, level and play time it may use.
func TestDungeonReportsArePlausible(t *testing.T) {
	for _, d := range game.Dungeons() {
		s := Dungeon{DungeonID: d.ID}
		lo, hi := s.playTimes(d)
		if lo != d.MinPlay || hi != min(d.MinPlay+time.Second, d.MaxPlay) {
			t.Errorf("%s: play times %v..%v", d.ID, lo, hi)
		}
		if lo, hi := (Dungeon{PlayMin: time.Millisecond, PlayMax: 100 * time.Hour}).playTimes(d); lo != d.MinPlay || hi != d.MaxPlay {
			t.Errorf("%s: play times not clamped: %v..%v", d.ID, lo, hi)
		}
		rules := d.Rules()
		for _, level := range []int{0, 1, 7, game.MaxLevel} {
			for _, play := range []time.Duration{d.MinPlay, d.MinPlay + 1500*time.Millisecond, d.MaxPlay} {
				for _, luck := range []float64{0, 0.5, 0.999999} {
					dmg := s.Report(d, level, play.Milliseconds(), luck)
					vs := rules.Check(&anticheat.Report{Level: max(level, 1), Values: map[anticheat.Stat]float64{
						anticheat.StatDamage: float64(dmg), anticheat.StatPlayTime: play.Seconds(),
					}})
					if len(vs) > 0 || dmg <= 0 {
						t.Errorf("%s level %d, %v, luck %v: damage %d: %v", d.ID, level, play, luck, dmg, vs)
					}
				}
			}
		}
	}
}

func TestScenarioRank(t *testing.T) {
	t.Parallel()
	url := startGameServer(t)
	// Dungeon wins put scores on the board that the ranking reads.
	mix, err := ParseMix("dungeon=1,rank=2")
	if err != nil {
		t.Fatal(err)
	}
	_, counts := runCounts(t, Config{URL: url, Scenario: mix, Users: 3, Duration: 2500 * time.Millisecond, Seed: 7})
	top, me, around := counts[game.CmdRankTop], counts[game.CmdRankMe], counts[game.CmdRankAround]
	if top == 0 || me != top || around != top || counts[game.CmdDungeonFinish] == 0 {
		t.Fatalf("calls %v", counts)
	}
}

func TestScenarioIAP(t *testing.T) {
	t.Parallel()
	url := startIAPGame(t)
	// Two runs against one server: receipt ids are new in each (a reused
	// one would answer receipt_used or not be granted).
	for range 2 {
		rep, counts := runCounts(t, Config{URL: url, Scenario: IAP{}, Users: 3, Iterations: 30, Duration: time.Minute})
		if rep.StopReason != "iterations" || counts[game.CmdShopBuyIAP] != 30 || counts[game.CmdGuestLogin] != 3 || len(counts) != 2 {
			t.Fatalf("stop %s, calls %v", rep.StopReason, counts)
		}
	}
	// Another product, by name.
	_, counts := runCounts(t, Config{URL: url, Scenario: IAP{ProductID: "starter_pack"}, Users: 1, Iterations: 3, Duration: time.Minute})
	if counts[game.CmdShopBuyIAP] != 3 {
		t.Fatalf("calls %v", counts)
	}
}

// Against the game server itself in dev mode (which accepts development
// receipts), every shop.buy_iap grants: no errors at all.
func TestScenarioIAPAgainstGameServer(t *testing.T) {
	t.Parallel()
	url := startGameServerWith(t, server.Config{DataDir: filepath.Join(t.TempDir(), "data"), XORKey: testXORKey, Dev: true})
	_, counts := runCounts(t, Config{URL: url, Scenario: IAP{}, Users: 2, Iterations: 6, Duration: time.Minute})
	if counts[game.CmdShopBuyIAP] != 6 || counts[game.CmdGuestLogin] != 2 || len(counts) != 2 {
		t.Fatalf("calls %v", counts)
	}
}

func TestScenarioDefaultMix(t *testing.T) {
	t.Parallel()
	url := startGameServer(t)
	// Bounded by iterations, not time, so a slow machine still sees every
	// command: 120 iterations miss a weight-1 unit (1/12) with probability
	// (11/12)^120 ≈ 3e-5; a dungeon's play takes 1-2 s, 30 of them over 12
	// users about 4 s.
	rep, counts := runCounts(t, Config{URL: url, Users: 12, Iterations: 120, Duration: time.Minute, Seed: 3})
	if !strings.HasPrefix(rep.Scenario, "mix(login=1,load=3,mail=2,dungeon=3,rank=2,purchase=1") {
		t.Errorf("scenario %s", rep.Scenario)
	}
	for _, cmd := range []string{game.CmdGuestLogin, game.CmdLoad, game.CmdMailList, game.CmdDungeonStart, game.CmdDungeonFinish,
		game.CmdRankTop, game.CmdRankMe, game.CmdRankAround, game.CmdShopBuy} {
		if counts[cmd] == 0 {
			t.Errorf("no %s: %v", cmd, counts)
		}
	}
	if counts[game.CmdShopBuyIAP] != 0 || counts[server.CmdTime] != 0 {
		t.Errorf("calls %v", counts)
	}
}

// LoginNew registers a new player with every login: the logins are the
// iterations plus the users' first logins, and none is a returning
// player's (the scenario checks the answer). Run again with the same
// devices, every login after the first is a returning player's and fails.
func TestScenarioLoginNew(t *testing.T) {
	t.Parallel()
	url := startGameServer(t)
	const users, iters = 3, 30
	cfg := Config{URL: url, XORKey: testXORKey, Scenario: LoginNew{}, Users: users, Iterations: iters,
		Duration: time.Minute, DevicePrefix: "ln-", Seed: 7}
	rep, counts := runCounts(t, cfg)
	if rep.Iterations != iters || counts[game.CmdGuestLogin] != users+iters || len(counts) != 1 {
		t.Fatalf("%d iterations, calls %v", rep.Iterations, counts)
	}
	again, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, again)
	if len(again.Commands) != 1 {
		t.Fatalf("calls %+v", again.Commands)
	}
	// The first login of each user (VU.Login) accepts a returning player;
	// the scenario's logins then meet the devices of the first run (how
	// far each user got differs from run to run, so some are new). A
	// refused login leaves the user logged out: it logs in again first.
	c := again.Commands[0]
	if c.Errors == 0 || c.ErrorsByCode["bad_answer"] != c.Errors || c.Count < users+uint64(again.Iterations) {
		t.Fatalf("second run with the same devices: %+v", c)
	}
}

// Write is one shop.buy per iteration; a new guest every 20 purchases (a
// new player's gems buy 20 of WriteItem), nothing else.
func TestScenarioWrite(t *testing.T) {
	t.Parallel()
	url := startGameServerWith(t, server.Config{DataDir: filepath.Join(t.TempDir(), "data"), XORKey: testXORKey, CommandRate: -1})
	item, ok := game.ShopItem(WriteItem)
	if !ok || game.StartGems/item.Gems != 20 {
		t.Fatalf("%s: %+v %v", WriteItem, item, ok)
	}
	const users, iters = 2, 50
	rep, counts := runCounts(t, Config{URL: url, Scenario: Write{}, Users: users, Iterations: iters, Duration: time.Minute})
	// User i bought b_i (b_1 + b_2 = 50) and logged in ceil(b_i/20) times:
	// 3 or 4 logins in all.
	logins := counts[game.CmdGuestLogin]
	if rep.Iterations != iters || counts[game.CmdShopBuy] != iters || logins < 3 || logins > 4 || len(counts) != 2 {
		t.Fatalf("%d iterations, calls %v", rep.Iterations, counts)
	}
}
