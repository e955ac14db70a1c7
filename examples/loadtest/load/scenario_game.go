package load

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
)

// Mail opens the mailbox (mail.list) and, when it holds mail, claims it all
// (mail.claim_all), as the inbox screen's "claim all" button does. Every new
// player has the welcome mail; a player whose mailbox is empty only lists
// it. A claim_all that claims nothing of a mailbox just listed as non-empty
// is recorded as a failed call (bad_answer).
type Mail struct{}

// Name returns "mail".
func (Mail) Name() string { return "mail" }

// Run lists the mail and claims it.
func (Mail) Run(ctx context.Context, vu *VU) error {
	var list game.MailList
	if _, err := vu.Call(ctx, game.CmdMailList, nil, &list); err != nil {
		return err
	}
	if len(list.Mails) == 0 {
		return nil
	}
	var res game.ClaimResult
	_, err := vu.CallCheck(ctx, game.CmdMailClaimAll, nil, &res, func() error {
		if len(res.MailIDs) == 0 {
			return fmt.Errorf("claimed nothing of %d mails listed", len(list.Mails))
		}
		return nil
	})
	if err != nil {
		vu.Gems = -1
		return err
	}
	vu.Gems = res.Balance.Gems
	return nil
}

// Dungeon plays one dungeon run as an honest client: dungeon.start, then
// the play itself (a pause of the user, drawn from [PlayMin, PlayMax]),
// then dungeon.finish with a report the game's anti-cheat rules accept
// (game.Dungeon.Rules): the play time measured on the user's clock since
// the start was answered (so never more than the server measured, and
// within the dungeon's [MinPlay, MaxPlay]), and damage at 20–90 % of the
// dungeon's MaxDPS over that time, at most 90 % of its cap for the
// player's level. One run in eight is reported lost. A refused report
// (game.CodeCheatDetected) is a failed call like any other; so is a finish
// whose result or score is not the one reported (bad_answer).
//
// A run costs stamina (5 of game.StaminaMax 50 for the forest, which
// regenerates one point per 5 minutes): when the user's known stamina is
// below the cost, it first becomes a new guest, as Purchase does with gems.
// When the run ends during the play, the user leaves the dungeon run
// unfinished (no finish is sent), as a player closing the app does.
type Dungeon struct {
	// DungeonID is the dungeon played. Default "forest".
	DungeonID string
	// PlayMin and PlayMax bound the play time. Defaults: the dungeon's
	// MinPlay (1 s for the forest) and one second more; both are kept
	// within the dungeon's [MinPlay, MaxPlay].
	PlayMin, PlayMax time.Duration
}

// Name returns "dungeon".
func (Dungeon) Name() string { return "dungeon" }

// LossEvery is one in how many dungeon runs the Dungeon scenario reports
// lost.
const LossEvery = 8

// playTimes returns the play time bounds of d.
func (s Dungeon) playTimes(d game.Dungeon) (lo, hi time.Duration) {
	lo, hi = s.PlayMin, s.PlayMax
	if lo <= 0 {
		lo = d.MinPlay
	}
	if hi <= 0 {
		hi = lo + time.Second
	}
	lo = min(max(lo, d.MinPlay), d.MaxPlay)
	hi = min(max(hi, lo), d.MaxPlay)
	return lo, hi
}

// Report returns a plausible damage for a run of d played for playMs by a
// player of level (the bounds of d.Rules with a margin), given r in [0, 1)
// as the run's luck.
func (s Dungeon) Report(d game.Dungeon, level int, playMs int64, r float64) int64 {
	level = max(level, 1)
	byRate := d.MaxDPS * (0.2 + 0.7*r) * float64(playMs) / 1000
	byLevel := 0.9 * (d.DamageBase + d.DamagePerLevel*float64(level))
	return int64(math.Floor(min(byRate, byLevel)))
}

// Run plays one dungeon run.
func (s Dungeon) Run(ctx context.Context, vu *VU) error {
	id := s.DungeonID
	if id == "" {
		id = "forest"
	}
	d, ok := game.DungeonByID(id)
	if !ok {
		return fmt.Errorf("load: dungeon: unknown dungeon %q", id)
	}
	if vu.Stamina < 0 || vu.Level <= 0 {
		if err := (Load{}).Run(ctx, vu); err != nil {
			return err
		}
	}
	if vu.Stamina < d.Stamina {
		vu.NewIdentity()
		if err := vu.Login(ctx); err != nil {
			return err
		}
	}
	var run game.RunStarted
	_, err := vu.CallCheck(ctx, game.CmdDungeonStart, game.StartDungeon{DungeonID: id}, &run, func() error {
		if run.RunID == "" || run.DungeonID != id {
			return fmt.Errorf("run %q of dungeon %q", run.RunID, run.DungeonID)
		}
		return nil
	})
	if err != nil {
		vu.Stamina = -1
		return err
	}
	began := time.Now()
	vu.Stamina = run.Stamina.Current

	lo, hi := s.playTimes(d)
	play := lo
	if hi > lo {
		play += time.Duration(vu.Rand.Int64N(int64(hi-lo) + 1))
	}
	if !vu.Pause(play) {
		return ErrRunEnded // the run ended while playing: leave the dungeon run
	}
	playMs := min(time.Since(began).Milliseconds(), d.MaxPlay.Milliseconds())
	rep := game.FinishDungeon{RunID: run.RunID, Result: game.ResultWin, PlayTimeMs: playMs,
		Damage: s.Report(d, vu.Level, playMs, vu.Rand.Float64())}
	if vu.Rand.IntN(LossEvery) == 0 {
		rep.Result = game.ResultLose
	}
	var res game.RunFinished
	_, err = vu.CallCheck(ctx, game.CmdDungeonFinish, rep, &res, func() error {
		want := rep.Damage
		if rep.Result != game.ResultWin {
			want = 0
		}
		if res.RunID != rep.RunID || res.Result != rep.Result || res.Score != want {
			return fmt.Errorf("finished %+v for the report %+v", res, rep)
		}
		return nil
	})
	if err != nil {
		return err
	}
	vu.Level = res.Level
	return nil
}

// Rank opens the ranking screen: the top of the week's dungeon ranking
// (rank.top), the player's own entry (rank.me) and the players around it
// (rank.around), each with the server's default size. Pages whose ranks do
// not ascend, or a player said to be ranked without an entry, are failed
// calls (bad_answer).
type Rank struct{}

// Name returns "rank".
func (Rank) Name() string { return "rank" }

// Run reads the ranking.
func (Rank) Run(ctx context.Context, vu *VU) error {
	var top game.RankPage
	if _, err := vu.CallCheck(ctx, game.CmdRankTop, game.RankTop{}, &top, func() error { return ascending(top.Entries) }); err != nil {
		return err
	}
	var me game.RankMe
	if _, err := vu.CallCheck(ctx, game.CmdRankMe, nil, &me, func() error {
		if me.Ranked && (me.Entry == nil || me.Entry.Rank < 1) {
			return errors.New("ranked without an entry")
		}
		return nil
	}); err != nil {
		return err
	}
	var around game.RankPage
	_, err := vu.CallCheck(ctx, game.CmdRankAround, game.RankAround{}, &around, func() error { return ascending(around.Entries) })
	return err
}

// ascending checks that a page's ranks ascend from 1 up.
func ascending(es []game.RankEntry) error {
	for i, e := range es {
		if e.Rank < 1 || i > 0 && e.Rank <= es[i-1].Rank {
			return fmt.Errorf("entry %d has rank %d", i, e.Rank)
		}
	}
	return nil
}

// IAP buys an in-app purchase product (shop.buy_iap) with a development
// receipt "dev-receipt:<transaction id>:<product>", its transaction id new
// for every call (VU.ReceiptID), on the platform "android" or "ios" drawn
// at random. It needs a server that accepts development receipts (a
// development server with in-app purchases configured); elsewhere every
// call fails (forbidden or bad_request). A fresh receipt that is not
// granted is a failed call (bad_answer).
type IAP struct {
	// ProductID is the product bought. Default "gems_100".
	ProductID string
}

// Name returns "iap".
func (IAP) Name() string { return "iap" }

// Run buys the product once.
func (p IAP) Run(ctx context.Context, vu *VU) error {
	product := p.ProductID
	if product == "" {
		product = "gems_100"
	}
	platform := "android"
	if vu.Rand.IntN(2) == 0 {
		platform = "ios"
	}
	in := game.BuyIAP{ProductID: product, Platform: platform, Receipt: game.DevReceiptPrefix + vu.ReceiptID() + ":" + product}
	var res game.IAPResult
	_, err := vu.CallCheck(ctx, game.CmdShopBuyIAP, in, &res, func() error {
		if !res.Granted || res.ProductID != product {
			return fmt.Errorf("a new receipt for %s answered %+v", product, res)
		}
		return nil
	})
	if err != nil {
		vu.Gems = -1
		return err
	}
	vu.Gems = res.Gems
	return nil
}
