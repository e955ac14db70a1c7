package load

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/madang-io/madang/examples/gameserver/game"
)

// Scenario is what a virtual user does, one iteration at a time. An
// iteration is a few steps, each one command sent through VU.Call, which
// records its latency and outcome.
//
// A new scenario is a type with these two methods, added to Units so that
// -scenario and -mix know its name.
type Scenario interface {
	// Name identifies the scenario in reports and in -mix.
	Name() string
	// Run performs one iteration as vu. An error ends the iteration (it is
	// already recorded); the user goes on with the next one.
	Run(ctx context.Context, vu *VU) error
}

// Units returns the unit scenarios by name: a new map on each call.
func Units() map[string]Scenario {
	return map[string]Scenario{
		"login":     Login{},
		"load":      Load{},
		"mail":      Mail{},
		"dungeon":   Dungeon{},
		"rank":      Rank{},
		"purchase":  Purchase{},
		"iap":       IAP{},
		"time":      Time{},
		"chat":      Chat{},
		"login-new": LoginNew{},
		"write":     Write{},
	}
}

// DefaultMix is the combined scenario's default ratio: roughly a player's
// session, by iterations — an app start (login), the lobby (load), the
// mailbox, dungeon runs, the ranking screen and a gem purchase. In-app
// purchases (iap) are not in it: they need a server that accepts
// development receipts.
const DefaultMix = "login=1,load=3,mail=2,dungeon=3,rank=2,purchase=1"

// ParseScenario returns the scenario called name: a unit scenario, or "mix"
// for the combined scenario with the ratio mix (DefaultMix when empty).
func ParseScenario(name, mix string) (Scenario, error) {
	if name == "mix" {
		if mix == "" {
			mix = DefaultMix
		}
		return ParseMix(mix)
	}
	if s, ok := Units()[name]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("load: unknown scenario %q (have mix, %s)", name, strings.Join(slices.Sorted(maps.Keys(Units())), ", "))
}

// MaxWeight bounds one weight in a mix.
const MaxWeight = 1000

// Mix is the combined scenario: each iteration runs one unit scenario,
// chosen at random in proportion to its weight.
type Mix struct {
	parts []weighted
	total int
}

type weighted struct {
	s Scenario
	w int
}

// ParseMix parses a ratio such as "login=1,load=5,purchase=2" over the unit
// scenarios. Weights are whole numbers from 0 to MaxWeight; at least one
// must be positive.
func ParseMix(spec string) (*Mix, error) {
	units := Units()
	m := &Mix{}
	seen := map[string]bool{}
	for part := range strings.SplitSeq(spec, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("load: mix %q: want name=weight, got %q", spec, part)
		}
		s, ok := units[name]
		if !ok {
			return nil, fmt.Errorf("load: mix %q: unknown scenario %q", spec, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("load: mix %q: %s given twice", spec, name)
		}
		seen[name] = true
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 || n > MaxWeight {
			return nil, fmt.Errorf("load: mix %q: weight of %s must be 0..%d", spec, name, MaxWeight)
		}
		if n > 0 {
			m.parts = append(m.parts, weighted{s, n})
			m.total += n
		}
	}
	if m.total == 0 {
		return nil, fmt.Errorf("load: mix %q: no positive weight", spec)
	}
	return m, nil
}

// Name returns "mix(" and the ratio ")".
func (m *Mix) Name() string {
	parts := make([]string, len(m.parts))
	for i, p := range m.parts {
		parts[i] = p.s.Name() + "=" + strconv.Itoa(p.w)
	}
	return "mix(" + strings.Join(parts, ",") + ")"
}

// Run runs one unit scenario picked by weight.
func (m *Mix) Run(ctx context.Context, vu *VU) error {
	n := vu.Rand.IntN(m.total)
	for _, p := range m.parts {
		if n < p.w {
			return p.s.Run(ctx, vu)
		}
		n -= p.w
	}
	return errors.New("load: mix: unreachable")
}

// Login logs the user in again with the same device (auth.guest), which
// replaces its session, as an app does when it starts.
type Login struct{}

// Name returns "login".
func (Login) Name() string { return "login" }

// Run logs in.
func (Login) Run(ctx context.Context, vu *VU) error { return vu.Login(ctx) }

// LoginNew logs in as a new player every iteration: a device id the server
// has not seen (VU.NewIdentity), so each auth.guest registers a player, as
// the first start of a freshly installed app does. A login that the server
// answers as a returning player's is a failed call (bad_answer). The
// production-path comparison's "new-device logins" (nakamacompare).
type LoginNew struct{}

// Name returns "login-new".
func (LoginNew) Name() string { return "login-new" }

// Run logs in with a new device id.
func (LoginNew) Run(ctx context.Context, vu *VU) error {
	vu.NewIdentity()
	return vu.login(ctx, true)
}

// Load reads the player's profile (player.load), as the lobby screen does.
type Load struct{}

// Name returns "load".
func (Load) Name() string { return "load" }

// Run loads the player.
func (Load) Run(ctx context.Context, vu *VU) error {
	var p game.Player
	if _, err := vu.Call(ctx, game.CmdLoad, nil, &p); err != nil {
		return err
	}
	vu.Gems, vu.Stamina, vu.Level = p.Gems, p.Stamina.Current, p.Level
	return nil
}

// Purchase buys a shop item with gems (shop.buy). The protocol client sends
// each purchase with a request id that its retries keep, so a purchase whose
// reply was lost is answered from the server's idempotency record (counted
// as a replay), never bought twice. A new player has game.StartGems gems;
// when the user's known balance cannot pay the price, it first becomes a new
// guest (auth.guest with a fresh device id, recorded as such) so purchases
// keep succeeding for the whole run.
type Purchase struct {
	// ItemID is the item bought. Default "gold_small".
	ItemID string
}

// Name returns "purchase".
func (Purchase) Name() string { return "purchase" }

// Run buys one item.
func (p Purchase) Run(ctx context.Context, vu *VU) error {
	id := p.ItemID
	if id == "" {
		id = "gold_small"
	}
	item, ok := game.ShopItem(id)
	if !ok {
		return fmt.Errorf("load: purchase: unknown item %q", id)
	}
	if vu.Gems < 0 {
		if err := (Load{}).Run(ctx, vu); err != nil {
			return err
		}
	}
	if vu.Gems < item.Gems {
		vu.NewIdentity()
		if err := vu.Login(ctx); err != nil {
			return err
		}
	}
	var res game.BuyResult
	if _, err := vu.Call(ctx, game.CmdShopBuy, game.Buy{ItemID: id}, &res); err != nil {
		vu.Gems = -1 // unknown: read it again next time
		return err
	}
	vu.Gems = res.Gems
	return nil
}

// WriteItem is the item the Write scenario buys: the cheapest of the shop
// (5 gems), so a new player's game.StartGems pay for 20 purchases.
const WriteItem = "potion_pack"

// Write is one authenticated write per iteration: shop.buy of WriteItem, a
// transaction on the player's game database (the idempotency key row, the
// balance, the inventory, the ledger and the stored answer) behind the
// session check, as Purchase does (with its retries answered from the
// idempotency record). When the player's gems run out the user becomes a
// new guest first (one auth.guest every 20 purchases). The production-path
// comparison's "one authenticated write" (nakamacompare).
type Write struct{}

// Name returns "write".
func (Write) Name() string { return "write" }

// Run buys WriteItem once.
func (Write) Run(ctx context.Context, vu *VU) error {
	return Purchase{ItemID: WriteItem}.Run(ctx, vu)
}

// CmdTime is the game server's public clock command (server.CmdTime; the
// tests check that they agree, so that this package need not import the
// server and its database drivers).
const CmdTime = "sys.time"

// Time asks the server's clock (sys.time), the cheapest command: a
// measure of the protocol and session path alone.
type Time struct{}

// Name returns "time".
func (Time) Name() string { return "time" }

// Run calls sys.time.
func (Time) Run(ctx context.Context, vu *VU) error {
	_, err := vu.Call(ctx, CmdTime, nil, nil)
	return err
}
