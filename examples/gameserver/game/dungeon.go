package game

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/shard"
)

// Dungeon is a dungeon's static data: its stamina cost, its rewards and the
// bounds of a plausible report.
type Dungeon struct {
	ID      string `json:"dungeon_id"`
	Title   string `json:"title"`
	Stamina int64  `json:"stamina"` // dungeon.start's cost
	// Gold and Exp are a win's rewards; a loss gives LossExp only.
	Gold    int64 `json:"gold"`
	Exp     int64 `json:"exp"`
	LossExp int64 `json:"loss_exp"`
	// MaxDPS bounds damage per second of play time (anticheat.MaxRate).
	MaxDPS float64 `json:"-"`
	// DamageBase + DamagePerLevel × level bounds a run's total damage
	// (anticheat.Linear), the player's level from the server's data.
	DamageBase, DamagePerLevel float64 `json:"-"`
	// MinPlay and MaxPlay bound the reported play time.
	MinPlay, MaxPlay time.Duration `json:"-"`
	// Items are a win's item rewards (none in the fixed list).
	Items []ItemCount `json:"items,omitempty"`
}

// MaxRunTime is how long after dungeon.start a run can be finished; later,
// dungeon.finish answers CodeRunExpired and the run ends without rewards.
const MaxRunTime = time.Hour

// MaxRunIDLen bounds dungeon.finish's run_id (run ids are 26 characters).
const MaxRunIDLen = 64

// BoardName is the dungeon ranking's board name.
const BoardName = "dungeon"

// Dungeons returns the dungeons. (Static game data tables come in a later
// slice; until then this fixed list.)
func Dungeons() []Dungeon {
	return []Dungeon{
		{ID: "forest", Title: "Whispering Forest", Stamina: 5, Gold: 100, Exp: 40, LossExp: 8,
			MaxDPS: 1000, DamageBase: 50_000, DamagePerLevel: 5_000, MinPlay: time.Second, MaxPlay: 10 * time.Minute},
		{ID: "cave", Title: "Crystal Cave", Stamina: 10, Gold: 250, Exp: 90, LossExp: 18,
			MaxDPS: 2500, DamageBase: 150_000, DamagePerLevel: 15_000, MinPlay: 5 * time.Second, MaxPlay: 15 * time.Minute},
	}
}

// DungeonByID returns the dungeon with id.
func DungeonByID(id string) (Dungeon, bool) {
	for _, d := range Dungeons() {
		if d.ID == id {
			return d, true
		}
	}
	return Dungeon{}, false
}

// Rules returns the anti-cheat rules of a report from this dungeon: damage
// and play time required, play time within [MinPlay, MaxPlay], damage per
// second at most MaxDPS, damage at most DamageBase + DamagePerLevel × level.
func (d Dungeon) Rules() *anticheat.StatChecker {
	return anticheat.NewStatChecker(
		anticheat.Required(anticheat.StatDamage, anticheat.StatPlayTime),
		anticheat.Range(anticheat.StatPlayTime, d.MinPlay.Seconds(), d.MaxPlay.Seconds()),
		anticheat.MaxRate(anticheat.StatDamage, anticheat.StatPlayTime, d.MaxDPS),
		anticheat.Linear(anticheat.StatDamage, d.DamageBase, d.DamagePerLevel),
	)
}

// StartDungeon is dungeon.start's payload.
type StartDungeon struct {
	DungeonID string `json:"dungeon_id"`
}

// RunStarted is dungeon.start's answer.
type RunStarted struct {
	RunID     string  `json:"run_id"`
	DungeonID string  `json:"dungeon_id"`
	StartedAt int64   `json:"started_at"` // server Unix ms
	Stamina   Stamina `json:"stamina"`    // after paying
}

// FinishDungeon is dungeon.finish's payload: what the client reports.
type FinishDungeon struct {
	RunID      string `json:"run_id"`
	Result     string `json:"result"` // "win" or "lose"
	Damage     int64  `json:"damage"`
	PlayTimeMs int64  `json:"play_time_ms"`
}

// RunFinished is dungeon.finish's answer. The score goes to the ranking
// after the finish commits (rank.me shows it).
type RunFinished struct {
	RunID  string `json:"run_id"`
	Result string `json:"result"`
	Score  int64  `json:"score"` // 0 for a loss
	Gold   int64  `json:"gold"`  // gold received
	ExpGot int64  `json:"exp_gained"`
	// Balances after the rewards.
	TotalGold int64 `json:"total_gold"`
	TotalExp  int64 `json:"total_exp"`
	Level     int   `json:"level"`
	// GoldPct and ExpPct are the dungeon buff included in Gold and ExpGot
	// (0: none).
	GoldPct int64 `json:"gold_pct,omitempty"`
	ExpPct  int64 `json:"exp_pct,omitempty"`
}

// spendStamina pays cost from the stamina stored (value and time written)
// as of now. It keeps the regeneration phase: a player below the cap keeps
// the progress toward the next point; a player at the cap starts
// regenerating now. ok is false if the current stamina is below cost.
func spendStamina(stored, storedAt int64, now time.Time, cost int64) (newStored, newAt int64, ok bool) {
	st := StaminaAt(stored, storedAt, now)
	if st.Current < cost {
		return stored, storedAt, false
	}
	newStored = st.Current - cost
	switch {
	case st.Current >= StaminaMax: // full (or above): regeneration starts now
		newAt = now.UnixMilli()
	default: // below the cap: move the reference by the points gained
		newAt = storedAt + (st.Current-stored)*st.IntervalMs
	}
	return newStored, newAt, true
}

func (g *Game) dungeonStart(ctx context.Context, req *protocol.Request, in StartDungeon) (RunStarted, error) {
	userKey, err := userOf(req)
	if err != nil {
		return RunStarted{}, err
	}
	d, ok := g.tables(ctx, req).Dungeon(in.DungeonID)
	if !ok {
		return RunStarted{}, protocol.Errorf(CodeUnknownDungeon, "unknown dungeon")
	}
	tx, err := txOf(ctx, CmdDungeonStart)
	if err != nil {
		return RunStarted{}, err
	}
	now := g.cfg.Now()
	var stored, storedAt int64
	err = tx.QueryRowContext(ctx, "SELECT stamina, stamina_at FROM players WHERE user_key = ?"+g.sql.ForUpdate(), userKey).Scan(&stored, &storedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return RunStarted{}, errNoPlayer()
	}
	if err != nil {
		return RunStarted{}, fmt.Errorf("game: stamina of %d: %w", userKey, err)
	}
	newStored, newAt, ok := spendStamina(stored, storedAt, now, d.Stamina)
	if !ok {
		return RunStarted{}, protocol.Errorf(CodeNotEnoughStamina, "not enough stamina")
	}
	if _, err := tx.ExecContext(shard.Deferred(ctx), "UPDATE players SET stamina = ?, stamina_at = ? WHERE user_key = ?", newStored, newAt, userKey); err != nil {
		return RunStarted{}, fmt.Errorf("game: stamina of %d: %w", userKey, err)
	}
	// The run's server start is when the request arrived: time it waited
	// for a busy server or database is not the player's, and counting it
	// would make an honest finish look like a fast clock (drift_ahead).
	run := RunStarted{RunID: rand.Text(), DungeonID: d.ID, StartedAt: g.arrivedAt(req, now).UnixMilli(), Stamina: StaminaAt(newStored, newAt, now)}
	_, err = tx.ExecContext(shard.Deferred(ctx), "INSERT INTO dungeon_runs (run_id, user_key, dungeon_id, started_at, client_started_at) VALUES (?, ?, ?, ?, ?)",
		run.RunID, userKey, d.ID, run.StartedAt, req.ClientTime)
	if err != nil {
		return RunStarted{}, fmt.Errorf("game: run of %d: %w", userKey, err)
	}
	return run, nil
}

// Run results stored in dungeon_runs.result.
const (
	ResultWin      = "win"
	ResultLose     = "lose"
	resultRejected = "rejected"
	resultExpired  = "expired"
)

func (g *Game) dungeonFinish(ctx context.Context, req *protocol.Request, in FinishDungeon) (RunFinished, error) {
	userKey, err := userOf(req)
	if err != nil {
		return RunFinished{}, err
	}
	switch {
	case in.RunID == "" || len(in.RunID) > MaxRunIDLen:
		return RunFinished{}, badRequest("run_id must be 1..%d bytes", MaxRunIDLen)
	case in.Result != ResultWin && in.Result != ResultLose:
		return RunFinished{}, badRequest("result must be %q or %q", ResultWin, ResultLose)
	case in.Damage < 0 || in.PlayTimeMs <= 0:
		return RunFinished{}, badRequest("damage must be ≥ 0 and play_time_ms > 0")
	}
	tx, err := txOf(ctx, CmdDungeonFinish)
	if err != nil {
		return RunFinished{}, err
	}
	// The game's lock order: the player row first, then the run.
	b, err := g.lockPlayer(ctx, tx, userKey)
	if err != nil {
		return RunFinished{}, err
	}
	var dungeonID string
	var startedAt, clientStartedAt, finishedAt int64
	err = tx.QueryRowContext(ctx, "SELECT dungeon_id, started_at, client_started_at, finished_at FROM dungeon_runs WHERE run_id = ? AND user_key = ?"+g.sql.ForUpdate(),
		in.RunID, userKey).Scan(&dungeonID, &startedAt, &clientStartedAt, &finishedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return RunFinished{}, protocol.Errorf(CodeNoRun, "no such run")
	}
	if err != nil {
		return RunFinished{}, fmt.Errorf("game: run %s of %d: %w", in.RunID, userKey, err)
	}
	if finishedAt != 0 {
		return RunFinished{}, protocol.Errorf(CodeRunFinished, "run already finished")
	}
	// The dungeon as the request's data version has it, else as the
	// defaults have it (a run started before its data version went away).
	tables := g.tables(ctx, req)
	d, ok := tables.Dungeon(dungeonID)
	if !ok {
		tables = g.defaults
		d, ok = tables.Dungeon(dungeonID)
	}
	if !ok {
		return RunFinished{}, fmt.Errorf("game: run %s: dungeon %q no longer exists", in.RunID, dungeonID)
	}
	now := g.cfg.Now()
	nowMs := now.UnixMilli()
	end := func(result string, score, gold, exp int64) error {
		_, err := tx.ExecContext(shard.Deferred(ctx), "UPDATE dungeon_runs SET finished_at = ?, result = ?, damage = ?, play_time_ms = ?, score = ?, gold = ?, exp = ? WHERE run_id = ?",
			nowMs, result, in.Damage, in.PlayTimeMs, score, gold, exp, in.RunID)
		if err != nil {
			return fmt.Errorf("game: finish run %s: %w", in.RunID, err)
		}
		return nil
	}
	serverElapsed := g.arrivedAt(req, now).UnixMilli() - startedAt
	if serverElapsed > MaxRunTime.Milliseconds() {
		if err := end(resultExpired, 0, 0, 0); err != nil {
			return RunFinished{}, err
		}
		return RunFinished{}, protocol.Errorf(CodeRunExpired, "run expired")
	}

	if verdicts := g.judge(req, tables.checkers[d.ID], d, LevelOf(b.Exp), in, serverElapsed, clientStartedAt, now); len(verdicts) > 0 {
		if err := end(resultRejected, 0, 0, 0); err != nil {
			return RunFinished{}, err
		}
		// Recorded once, after the refusal is stored: a retried refusal is
		// replayed and not counted again.
		idempotency.AfterCommit(ctx, func(ctx context.Context) {
			for _, v := range verdicts {
				if _, err := g.cfg.Monitor.Report(ctx, v); err != nil {
					g.log.Error("game: record anti-cheat verdict", "user", userKey, "err", err)
				}
			}
		})
		return RunFinished{}, protocol.Errorf(CodeCheatDetected, "report rejected")
	}

	out := RunFinished{RunID: in.RunID, Result: in.Result}
	c := change{Exp: d.LossExp}
	if in.Result == ResultWin {
		out.Score = in.Damage // bounded by the rules, far below session.ScoreMax
		c = change{Gold: d.Gold, Exp: d.Exp, Items: d.Items}
	}
	// A running dungeon buff adds its percentages.
	if boost := g.boosts(targetOf(req.Principal)); boost.GoldPct > 0 || boost.ExpPct > 0 {
		c.Gold, c.Exp = buffed(c.Gold, boost.GoldPct), buffed(c.Exp, boost.ExpPct)
		out.GoldPct, out.ExpPct = boost.GoldPct, boost.ExpPct
	}
	// Item rewards (Dungeon.Items) go to the inventory (player.load).
	out.Gold, out.ExpGot = c.Gold, c.Exp
	if b, err = g.apply(ctx, tx, userKey, b, c, "dungeon:"+d.ID, req.RequestID); err != nil {
		return RunFinished{}, err
	}
	if err := end(in.Result, out.Score, c.Gold, c.Exp); err != nil {
		return RunFinished{}, err
	}
	out.TotalGold, out.TotalExp, out.Level = b.Gold, b.Exp, LevelOf(b.Exp)
	if out.Score > 0 {
		score := out.Score
		idempotency.AfterCommit(ctx, func(ctx context.Context) {
			if err := g.board.Submit(ctx, userKey, score, session.ScoreBest); err != nil {
				g.log.Error("game: submit dungeon score", "user", userKey, "run", in.RunID, "score", score, "err", err)
			}
		})
	}
	return out, nil
}

// judge runs the anti-cheat checks on a dungeon report and returns the
// verdicts (none: plausible). Three checks:
//   - the dungeon's StatChecker (damage, play time, damage per second,
//     damage per level);
//   - the reported play time against the server's clock: at most the time
//     since dungeon.start plus PlayTimeSlack;
//   - the client's clock against the server's over the run: how much
//     further it moved than the server's, at most DriftTolerance (a speed
//     hack makes the client's clock run fast). Not judged without client
//     times.
func (g *Game) judge(req *protocol.Request, checker *anticheat.StatChecker, d Dungeon, level int, in FinishDungeon, serverElapsed, clientStartedAt int64, now time.Time) []anticheat.Verdict {
	version, user := req.Principal.ClientVersion, req.Principal.UserKey // userOf checked Principal
	playSec := float64(in.PlayTimeMs) / 1000
	vs := checker.Check(&anticheat.Report{Level: level, Values: map[anticheat.Stat]float64{
		anticheat.StatDamage: float64(in.Damage), anticheat.StatPlayTime: playSec,
	}})
	if limit := float64(serverElapsed+g.cfg.PlayTimeSlack.Milliseconds()) / 1000; playSec > limit {
		vs = append(vs, anticheat.Violation{Reason: anticheat.ReasonStatAbove, Stat: anticheat.StatPlayTime, Value: playSec, Limit: limit})
	}
	out := anticheat.Verdicts(user, version, vs)
	for i := range out {
		out[i].Detail = "dungeon " + d.ID + ": " + out[i].Detail
		out[i].At = now
	}
	if req.ClientTime != 0 && clientStartedAt != 0 {
		drift := time.Duration(req.ClientTime-clientStartedAt-serverElapsed) * time.Millisecond
		if drift > g.cfg.DriftTolerance {
			out = append(out, anticheat.Verdict{UserKey: user, Kind: anticheat.KindSpeed, Reason: anticheat.ReasonDriftAhead, ClientVersion: version, At: now,
				Detail: fmt.Sprintf("dungeon %s: client clock moved %v more than the server's over the run", d.ID, drift)})
		}
	}
	return out
}

// arrivedAt is when req reached the server (protocol.Request.ReceivedAt,
// stamped by the transport on the server clock the game also runs on), or
// now when the transport stamped nothing.
func (g *Game) arrivedAt(req *protocol.Request, now time.Time) time.Time {
	if req.ReceivedAt.IsZero() || req.ReceivedAt.After(now) {
		return now
	}
	return req.ReceivedAt
}
