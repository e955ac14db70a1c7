package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
)

func startRun(t *testing.T, c *protocol.Client, dungeon string) game.RunStarted {
	t.Helper()
	var run game.RunStarted
	mustCall(t, c, game.CmdDungeonStart, game.StartDungeon{DungeonID: dungeon}, &run)
	if run.RunID == "" || run.DungeonID != dungeon || run.StartedAt <= 0 {
		t.Fatalf("start: %+v", run)
	}
	return run
}

// honestFinish is a plausible win: 1000 damage in 1.5 s of play.
func honestFinish(runID string, damage int64) game.FinishDungeon {
	return game.FinishDungeon{RunID: runID, Result: game.ResultWin, Damage: damage, PlayTimeMs: 1500}
}

func userEvents(t *testing.T, srv *Server, user int64) []anticheat.Event {
	t.Helper()
	evs, err := srv.guard.Monitor().Log().UserEvents(context.Background(), user, 100)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestDungeonRunRewardsAndRanking(t *testing.T) {
	base, srv := newGameServer(t)
	c, lossy := newClient(t, base)
	res := login(t, c, "device-hero")
	forest, _ := game.DungeonByID("forest")

	run := startRun(t, c, "forest")
	if run.Stamina.Current != game.StaminaMax-forest.Stamina || run.Stamina.NextAt <= 0 {
		t.Fatalf("stamina after start: %+v", run.Stamina)
	}
	if p := load(t, c); p.Stamina.Current != game.StaminaMax-forest.Stamina {
		t.Fatalf("player stamina: %+v", p.Stamina)
	}
	var me game.RankMe
	mustCall(t, c, game.CmdRankMe, nil, &me)
	if me.Ranked || me.Season.ID == "" || me.Season.End <= me.Season.Start || me.Season.End-me.Season.Start != 7*24*3600*1000 {
		t.Fatalf("rank.me before a score: %+v", me)
	}

	// The finish runs, its reply is lost: the retry is replayed, the
	// rewards and the score come once.
	lossy.lose.Store(1)
	var fin game.RunFinished
	resp := mustCall(t, c, game.CmdDungeonFinish, honestFinish(run.RunID, 1200), &fin)
	if !resp.Replay || lossy.lose.Load() >= 0 {
		t.Fatalf("finish not replayed (%v) or no reply lost", resp.Replay)
	}
	if fin.Result != game.ResultWin || fin.Score != 1200 || fin.Gold != forest.Gold || fin.ExpGot != forest.Exp ||
		fin.TotalGold != game.StartGold+forest.Gold || fin.TotalExp != forest.Exp || fin.Level != game.LevelOf(forest.Exp) {
		t.Fatalf("finish: %+v", fin)
	}
	p := load(t, c)
	if p.Gold != game.StartGold+forest.Gold || p.Exp != forest.Exp {
		t.Fatalf("after the run: %+v", p)
	}
	// Finishing the run again, with a new request id, pays nothing.
	if code, _ := call(t, c, game.CmdDungeonFinish, honestFinish(run.RunID, 5000), nil); code != game.CodeRunFinished {
		t.Fatalf("second finish: code %v", code)
	}
	ledger := ledgerOf(t, srv, res.UserKey)
	if len(ledger) != 1 || ledger[0].Currency != "gold" || ledger[0].Delta != forest.Gold || ledger[0].Reason != "dungeon:forest" || ledger[0].RequestID != resp.RequestID {
		t.Fatalf("ledger: %+v", ledger)
	}
	mustCall(t, c, game.CmdRankMe, nil, &me)
	if !me.Ranked || me.Entry == nil || me.Entry.Score != 1200 || me.Entry.Rank != 1 || me.Entry.UserKey != res.UserKey {
		t.Fatalf("rank.me after a win: %+v", me)
	}

	// A loss gives a little exp and no score.
	run = startRun(t, c, "forest")
	mustCall(t, c, game.CmdDungeonFinish, game.FinishDungeon{RunID: run.RunID, Result: game.ResultLose, Damage: 10, PlayTimeMs: 1200}, &fin)
	if fin.Score != 0 || fin.Gold != 0 || fin.ExpGot != forest.LossExp || fin.TotalExp != forest.Exp+forest.LossExp {
		t.Fatalf("loss: %+v", fin)
	}

	// More players: the best score per player, best first.
	scores := map[string]int64{"device-r1": 900, "device-r2": 1400, "device-r3": 1300, "device-r4": 100}
	keys := map[int64]int64{res.UserKey: 1200}
	for dev, score := range scores {
		o, _ := newClient(t, base)
		k := login(t, o, dev).UserKey
		r := startRun(t, o, "forest")
		mustCall(t, o, game.CmdDungeonFinish, honestFinish(r.RunID, score), nil)
		keys[k] = score
	}
	// A worse score later does not lower the best.
	run = startRun(t, c, "forest")
	mustCall(t, c, game.CmdDungeonFinish, honestFinish(run.RunID, 50), nil)

	var page game.RankPage
	mustCall(t, c, game.CmdRankTop, game.RankTop{N: 2}, &page)
	if len(page.Entries) != 2 || page.Next == "" || page.Entries[0].Score != 1400 || page.Entries[1].Score != 1300 || page.Entries[0].Rank != 1 || page.Season.ID != me.Season.ID {
		t.Fatalf("top page 1: %+v", page)
	}
	var all []game.RankEntry
	all = append(all, page.Entries...)
	for page.Next != "" {
		next := page.Next
		page = game.RankPage{}
		mustCall(t, c, game.CmdRankTop, game.RankTop{N: 2, Cursor: next}, &page)
		all = append(all, page.Entries...)
	}
	if len(all) != 5 {
		t.Fatalf("all pages: %+v", all)
	}
	for i, e := range all {
		if e.Rank != int64(i+1) || keys[e.UserKey] != e.Score || (i > 0 && e.Score > all[i-1].Score) || e.Name != "guest-"+strconv.FormatInt(e.UserKey, 10) {
			t.Errorf("entry %d: %+v", i, e)
		}
	}
	mustCall(t, c, game.CmdRankMe, nil, &me)
	if me.Entry == nil || me.Entry.Rank != 3 || me.Entry.Score != 1200 || me.Entry.Name == "" {
		t.Fatalf("rank.me: %+v", me)
	}
	mustCall(t, c, game.CmdRankAround, game.RankAround{N: 1}, &page)
	if len(page.Entries) != 3 || page.Entries[1].UserKey != res.UserKey || page.Entries[0].Score != 1300 || page.Entries[2].Score != 900 {
		t.Fatalf("around: %+v", page)
	}

	// Bad ranking input is answered with codes.
	for _, in := range []any{game.RankTop{N: game.MaxRankTop + 1}, game.RankTop{N: -1}, game.RankTop{Cursor: "garbage"}} {
		if code, _ := call(t, c, game.CmdRankTop, in, nil); code != protocol.CodeBadRequest {
			t.Errorf("rank.top %+v: code %v", in, code)
		}
	}
	if code, _ := call(t, c, game.CmdRankAround, game.RankAround{N: game.MaxRankAround + 1}, nil); code != protocol.CodeBadRequest {
		t.Errorf("rank.around over the limit: code %v", code)
	}
	// A player without a score has an empty neighbourhood.
	nobody, _ := newClient(t, base)
	login(t, nobody, "device-unranked")
	mustCall(t, nobody, game.CmdRankAround, nil, &page)
	if len(page.Entries) != 0 {
		t.Fatalf("around of an unranked player: %+v", page)
	}
}

func TestDungeonImpossibleDamageIsFlagged(t *testing.T) {
	base, srv := newGameServer(t)
	c, lossy := newClient(t, base)
	res := login(t, c, "device-cheat")
	run := startRun(t, c, "forest")

	// 10 million damage in 1.5 s; the refusal's reply is lost and replayed.
	lossy.lose.Store(1)
	code, resp := call(t, c, game.CmdDungeonFinish, honestFinish(run.RunID, 10_000_000), nil)
	if code != game.CodeCheatDetected || resp == nil || !resp.Replay {
		t.Fatalf("impossible damage: code %v resp %+v", code, resp)
	}
	evs := userEvents(t, srv, res.UserKey)
	reasons := map[anticheat.Reason]int{}
	for _, e := range evs {
		if e.Kind != anticheat.KindStat {
			t.Errorf("event %+v", e)
		}
		reasons[e.Reason]++
	}
	// Two rules broken (damage per second, damage for the level), each
	// recorded once although the request ran and was replayed.
	if len(evs) != 2 || reasons[anticheat.ReasonStatRate] != 1 || reasons[anticheat.ReasonStatAbove] != 1 {
		t.Fatalf("hack log: %+v", evs)
	}
	// No reward, no score; the run is over.
	if p := load(t, c); p.Gold != game.StartGold || p.Exp != 0 {
		t.Fatalf("player after a rejected report: %+v", p)
	}
	var me game.RankMe
	mustCall(t, c, game.CmdRankMe, nil, &me)
	if me.Ranked {
		t.Fatalf("rejected score ranked: %+v", me)
	}
	if code, _ := call(t, c, game.CmdDungeonFinish, honestFinish(run.RunID, 100), nil); code != game.CodeRunFinished {
		t.Fatalf("honest finish of a rejected run: code %v", code)
	}

	// A play time longer than the run has lasted on the server's clock.
	run = startRun(t, c, "forest")
	code, _ = call(t, c, game.CmdDungeonFinish, game.FinishDungeon{RunID: run.RunID, Result: game.ResultWin, Damage: 1000, PlayTimeMs: 5 * 60 * 1000}, nil)
	if code != game.CodeCheatDetected {
		t.Fatalf("play time beyond the server's clock: code %v", code)
	}
	evs = userEvents(t, srv, res.UserKey)
	if len(evs) != 3 || evs[0].Reason != anticheat.ReasonStatAbove || evs[0].Kind != anticheat.KindStat {
		t.Fatalf("hack log: %+v", evs)
	}
	if p := load(t, c); p.Gold != game.StartGold || p.Exp != 0 {
		t.Fatalf("player after rejected reports: %+v", p)
	}
}

func TestDungeonClockRunningAheadIsFlagged(t *testing.T) {
	base, srv := newGameServer(t)
	// The client's clock jumps 30 s ahead between the start and the finish
	// of a run, as under a speed hack that makes the run look longer.
	var ahead atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := protocol.NewClient(protocol.ClientConfig{
		Transport: &protocol.HTTPTransport{URL: base + protocol.DefaultHTTPPath, Client: hc},
		Codec:     protocol.Config{XORKey: []byte(testXORKey)}, Mode: protocol.ModeXOR, Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	res := login(t, c, "device-speedy")
	run := startRun(t, c, "forest")
	ahead.Store(int64(30 * time.Second))
	if code, _ := call(t, c, game.CmdDungeonFinish, honestFinish(run.RunID, 1000), nil); code != game.CodeCheatDetected {
		t.Fatalf("finish after the clock ran ahead: code %v", code)
	}
	evs := userEvents(t, srv, res.UserKey)
	found := false
	for _, e := range evs {
		found = found || (e.Kind == anticheat.KindSpeed && e.Reason == anticheat.ReasonDriftAhead)
	}
	if !found {
		t.Fatalf("no speed verdict in the hack log: %+v", evs)
	}
	if p := load(t, c); p.Gold != game.StartGold {
		t.Fatalf("rewarded: %+v", p)
	}
	// With the clock steady again, a run is fine.
	run = startRun(t, c, "forest")
	mustCall(t, c, game.CmdDungeonFinish, honestFinish(run.RunID, 1000), nil)
}

func TestDungeonConcurrentFinishesPayOnce(t *testing.T) {
	ctx := context.Background()
	base, srv := newGameServer(t)
	c, _ := newClient(t, base)
	res := login(t, c, "device-twin")
	forest, _ := game.DungeonByID("forest")
	run := startRun(t, c, "forest")
	const n = 6
	count := callConcurrently(ctx, t, c, int(n), game.CmdDungeonFinish, honestFinish(run.RunID, 1000))
	if count[protocol.CodeOK] != 1 || count[game.CodeRunFinished] != n-1 {
		t.Fatalf("results %v, want one ok and %d run finished", count, n-1)
	}
	if p := load(t, c); p.Gold != game.StartGold+forest.Gold || p.Exp != forest.Exp {
		t.Fatalf("after concurrent finishes: %+v", p)
	}
	if l := ledgerOf(t, srv, res.UserKey); len(l) != 1 {
		t.Fatalf("ledger %+v", l)
	}
}

func TestDungeonBadInputAndStamina(t *testing.T) {
	ctx := context.Background()
	base, _ := newGameServer(t)
	c, _ := newClient(t, base)
	login(t, c, "device-bad-input")
	other, _ := newClient(t, base)
	login(t, other, "device-bad-other")
	otherRun := startRun(t, other, "forest")

	if code, _ := call(t, c, game.CmdDungeonStart, game.StartDungeon{DungeonID: "moon"}, nil); code != game.CodeUnknownDungeon {
		t.Errorf("unknown dungeon: code %v", code)
	}
	run := startRun(t, c, "forest")
	for name, in := range map[string]game.FinishDungeon{
		"no run id":       {Result: game.ResultWin, Damage: 1, PlayTimeMs: 1000},
		"long run id":     {RunID: string(make([]byte, game.MaxRunIDLen+1)), Result: game.ResultWin, Damage: 1, PlayTimeMs: 1000},
		"bad result":      {RunID: run.RunID, Result: "draw", Damage: 1, PlayTimeMs: 1000},
		"negative damage": {RunID: run.RunID, Result: game.ResultWin, Damage: -1, PlayTimeMs: 1000},
		"no play time":    {RunID: run.RunID, Result: game.ResultWin, Damage: 1},
	} {
		if code, _ := call(t, c, game.CmdDungeonFinish, in, nil); code != protocol.CodeBadRequest {
			t.Errorf("%s: code %v", name, code)
		}
	}
	if code, _ := call(t, c, game.CmdDungeonFinish, honestFinish("no-such-run", 1), nil); code != game.CodeNoRun {
		t.Errorf("unknown run: code %v", code)
	}
	if code, _ := call(t, c, game.CmdDungeonFinish, honestFinish(otherRun.RunID, 1), nil); code != game.CodeNoRun {
		t.Errorf("another player's run: code %v", code)
	}
	for _, raw := range []string{`{"run_id":7}`, `[`, `{"damage":"lots"}`} {
		resp, err := c.Do(ctx, game.CmdDungeonFinish, []byte(raw))
		if err != nil || resp.Code != protocol.CodeBadRequest {
			t.Errorf("payload %s: %+v %v", raw, resp, err)
		}
	}
	// The other player's run is untouched and still finishes.
	mustCall(t, other, game.CmdDungeonFinish, honestFinish(otherRun.RunID, 500), nil)

	// Stamina runs out: forest costs 5 of 50, one run already started.
	forest, _ := game.DungeonByID("forest")
	left := (game.StaminaMax - forest.Stamina) / forest.Stamina
	for i := int64(0); i < left; i++ {
		startRun(t, c, "forest")
	}
	if code, _ := call(t, c, game.CmdDungeonStart, game.StartDungeon{DungeonID: "forest"}, nil); code != game.CodeNotEnoughStamina {
		t.Fatalf("start without stamina: code %v", code)
	}
	if p := load(t, c); p.Stamina.Current != 0 || p.Stamina.NextAt == 0 {
		t.Fatalf("stamina: %+v", p.Stamina)
	}
}

func TestRankingSurvivesARestart(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	cfg := Config{XORKey: testXORKey, DataDir: dir}
	srv1, err := New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := httptest.NewServer(srv1.Handler())
	c, _ := newClient(t, h.URL)
	login(t, c, "device-restart")
	run := startRun(t, c, "forest")
	mustCall(t, c, game.CmdDungeonFinish, honestFinish(run.RunID, 777), nil)
	h.Close()
	if err := srv1.Close(); err != nil {
		t.Fatal(err)
	}

	base, srv2 := startServerOn(t, cfg)
	if n, err := srv2.game.Board().Count(ctx); err != nil || n != 1 {
		t.Fatalf("board after restart: %d entries, %v", n, err)
	}
	c, _ = newClient(t, base)
	login(t, c, "device-restart")
	var me game.RankMe
	mustCall(t, c, game.CmdRankMe, nil, &me)
	if !me.Ranked || me.Entry.Score != 777 || me.Entry.Rank != 1 {
		t.Fatalf("rank.me after restart: %+v", me)
	}
}

func TestConcurrentDungeonStartsNeverOverspendStamina(t *testing.T) {
	ctx := context.Background()
	base, _ := newGameServer(t)
	c, _ := newClient(t, base)
	login(t, c, "device-stamina-rush")
	forest, _ := game.DungeonByID("forest")
	affordable := int(game.StaminaMax / forest.Stamina)
	n := affordable + 4
	count := callConcurrently(ctx, t, c, int(n), game.CmdDungeonStart, game.StartDungeon{DungeonID: "forest"})
	if count[protocol.CodeOK] != affordable || count[game.CodeNotEnoughStamina] != n-affordable {
		t.Fatalf("results %v, want %d ok and %d not enough stamina", count, affordable, n-affordable)
	}
	if p := load(t, c); p.Stamina.Current != 0 {
		t.Fatalf("stamina after the rush: %+v", p.Stamina)
	}
}
