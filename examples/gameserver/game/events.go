package game

import (
	"context"
	"database/sql"
	"time"

	"github.com/madang-io/madang/protocol"
)

// EventTarget is who a request comes from, for live-ops event targeting:
// the login's fields (the session's Principal after login).
type EventTarget struct {
	Country, Language, Platform, ClientVersion string
}

// Boosts are the live-ops events that apply to one player at one moment.
type Boosts struct {
	// LoginBonuses are mailed at login, each at most once per user by its
	// Mail.Key (an event's key carries its id and the day in the event's
	// time zone, so the bonus comes once per day). A mail that does not
	// pass SendMail's checks is skipped and logged; its items are checked
	// against the game data served to the login's client version (its
	// mapped data version, else the published one).
	LoginBonuses []Mail
	// GoldPct and ExpPct add percent to dungeon.finish's gold and exp
	// (rounded down), as running when the run finishes.
	GoldPct, ExpPct int64
	// Sales maps a shop item id, or "*" for every item, to a discount in
	// percent (1..99) off shop.buy's gem price (rounded down: the player
	// pays at least 1 gem for a priced item); the best discount applies.
	Sales map[string]int64
}

// EventSource returns the Boosts of target at now (Config.Events).
type EventSource func(target EventTarget, now time.Time) Boosts

func targetOf(p *protocol.Principal) EventTarget {
	if p == nil {
		return EventTarget{}
	}
	return EventTarget{Country: p.Country, Language: p.Language, Platform: p.Platform, ClientVersion: p.ClientVersion}
}

// boosts returns the events of t now; nothing without Config.Events.
func (g *Game) boosts(t EventTarget) Boosts {
	if g.cfg.Events == nil {
		return Boosts{}
	}
	return g.cfg.Events(t, g.cfg.Now())
}

// discount returns the discount percent of a shop item (0..99).
func (b Boosts) discount(itemID string) int64 {
	d := max(b.Sales[itemID], b.Sales["*"])
	return min(max(d, 0), 99)
}

// salePrice is the gem price after a discount in percent.
func salePrice(gems, pct int64) int64 {
	if pct <= 0 || gems <= 0 {
		return gems
	}
	return max(gems-gems*pct/100, 1)
}

// buffed adds pct percent to v (rounded down).
func buffed(v, pct int64) int64 {
	if pct <= 0 || v <= 0 {
		return v
	}
	return v + v*pct/100
}

// sendLoginBonuses mails the login bonuses in tx (each once by its key).
// Their items are checked against t.
func (g *Game) sendLoginBonuses(ctx context.Context, tx *sql.Tx, userKey int64, bonuses []Mail, t *Tables, now time.Time) error {
	for _, m := range bonuses {
		if m.Key == "" {
			g.log.Warn("game: login bonus without a key skipped", "title", m.Title)
			continue
		}
		if err := m.check(now, t); err != nil {
			g.log.Warn("game: login bonus skipped", "key", m.Key, "err", err)
			continue
		}
		if err := g.queueMailTx(ctx, tx, userKey, m, now.UnixMilli()); err != nil {
			return err
		}
	}
	return nil
}
