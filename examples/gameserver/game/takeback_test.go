package game_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/madang-io/madang/examples/gameserver/game"
)

// TestTakeBackOnEachBackend: an operator's take-back removes currency and
// items in one transaction with ledger rows naming the operator action,
// refuses to go below zero naming the item (taking nothing), and takes
// once per request id even when resubmitted at once; balances equal the
// ledger's sums after it.
func TestTakeBackOnEachBackend(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			r := newRig(t, b)
			u := r.login("takeback-device")
			r.ok(u, game.CmdMailClaimAll, nil, nil)
			before := r.load(u)
			if before.Gold < 100 || before.Gems < 5 {
				t.Fatalf("after the welcome mail: %+v", before)
			}

			// Refusals take nothing.
			for _, c := range []struct {
				tb   game.TakeBack
				want string // the ShortError's currency; "" a bad take-back
			}{
				{game.TakeBack{RequestID: "r0", Operator: "ari", Gold: 10, Items: []game.ItemCount{{ItemID: "potion", Count: 4}}}, "item:potion"},
				{game.TakeBack{RequestID: "r0", Operator: "ari", Gems: before.Gems + 1}, "gems"},
				{game.TakeBack{RequestID: "r0", Operator: "ari", Items: []game.ItemCount{{ItemID: "dragon_egg", Count: 1}}}, "item:dragon_egg"},
				{game.TakeBack{RequestID: "r0", Operator: "ari"}, ""},
				{game.TakeBack{RequestID: "", Operator: "ari", Gold: 1}, ""},
				{game.TakeBack{RequestID: "r0", Operator: "ari", Gold: -1}, ""},
				{game.TakeBack{RequestID: "r0", Operator: "ari", Items: []game.ItemCount{{ItemID: "potion", Count: 1}, {ItemID: "potion", Count: 1}}}, ""},
			} {
				_, err := r.g.TakeBack(ctx, u, c.tb)
				var se *game.ShortError
				switch {
				case c.want == "" && !errors.Is(err, game.ErrBadTakeBack):
					t.Fatalf("%+v: %v, want ErrBadTakeBack", c.tb, err)
				case c.want != "" && (!errors.As(err, &se) || se.Currency != c.want || !errors.Is(err, game.ErrNotEnough)):
					t.Fatalf("%+v: %v, want a ShortError of %s", c.tb, err, c.want)
				}
			}
			if p := r.load(u); p.Gold != before.Gold || p.Gems != before.Gems || len(p.Items) != len(before.Items) {
				t.Fatalf("a refused take-back changed the player: %+v, was %+v", p, before)
			}

			// The same request submitted four times at once: taken once.
			tb := game.TakeBack{RequestID: "r0", Operator: "ari", Gold: 100, Gems: 5, Items: []game.ItemCount{{ItemID: "potion", Count: 2}, {ItemID: "elixir", Count: 1}}}
			var wg sync.WaitGroup
			results := make([]game.TakeBackResult, 4)
			errs := make([]error, 4)
			for i := range results {
				wg.Go(func() { results[i], errs[i] = r.g.TakeBack(ctx, u, tb) })
			}
			wg.Wait()
			fresh := 0
			for i, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
				if !results[i].Repeated {
					fresh++
				}
				if results[i].Gold != before.Gold-100 || results[i].Gems != before.Gems-5 {
					t.Fatalf("result %d: %+v", i, results[i])
				}
			}
			if fresh != 1 {
				t.Fatalf("%d take-backs ran, want 1: %+v", fresh, results)
			}
			p := r.load(u)
			if p.Gold != before.Gold-100 || p.Gems != before.Gems-5 {
				t.Fatalf("after the take-back: %+v", p)
			}
			for _, it := range p.Items {
				if it.ItemID == "elixir" || (it.ItemID == "potion" && it.Count != 1) {
					t.Fatalf("items after the take-back: %+v", p.Items)
				}
			}
			// Another request id takes again, down to exactly zero.
			if _, err := r.g.TakeBack(ctx, u, game.TakeBack{RequestID: "r1", Operator: "bo", Gold: before.Gold - 100, Items: []game.ItemCount{{ItemID: "potion", Count: 1}}}); err != nil {
				t.Fatal(err)
			}

			// Balances equal the ledger; the take-back's rows name it.
			ledger, err := r.g.Ledger(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			// The starting balances (before the welcome mail) have no row.
			welcome := game.WelcomeMail()
			sums := map[string]int64{"gold": before.Gold - welcome.Gold, "gems": before.Gems - welcome.Gems}
			last := map[string]int64{}
			taken := 0
			for _, e := range ledger {
				sums[e.Currency] += e.Delta
				last[e.Currency] = e.BalanceAfter
				if e.Reason == game.TakeBackReason+"ari" {
					taken++
					if e.RequestID != "r0" || e.Delta >= 0 {
						t.Fatalf("take-back row %+v", e)
					}
				}
			}
			if taken != 4 {
				t.Fatalf("%d ledger rows of the take-back r0, want 4: %+v", taken, ledger)
			}
			p = r.load(u)
			if sums["gold"] != p.Gold || sums["gems"] != p.Gems || p.Gold != 0 || last["gold"] != p.Gold || last["gems"] != p.Gems || last["item:potion"] != 0 {
				t.Fatalf("ledger %v, player %+v", sums, p)
			}
			have := map[string]int64{}
			for _, it := range p.Items {
				have[it.ItemID] = it.Count
			}
			for cur, n := range sums {
				if id, ok := cutItem(cur); ok && have[id] != n {
					t.Fatalf("item %s: ledger %d, inventory %d", id, n, have[id])
				}
			}
			if sums["item:potion"] != 0 || sums["item:elixir"] != 0 {
				t.Fatalf("ledger items %v", sums)
			}
		})
	}
}

func cutItem(currency string) (string, bool) {
	const p = "item:"
	if len(currency) > len(p) && currency[:len(p)] == p {
		return currency[len(p):], true
	}
	return "", false
}
