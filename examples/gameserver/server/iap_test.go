package server

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/anticheat/anticheattest"
	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
)

// iapStack is a game stack whose shop.buy_iap verifies receipts with a fake
// verifier (both stores) and redeems them in the common database.
func iapStack(t *testing.T) (*gameStack, *anticheattest.Verifier, *anticheat.Redeemer) {
	t.Helper()
	fv := anticheattest.NewVerifier()
	var red *anticheat.Redeemer
	s := newGameStack(t, func(s *gameStack, cfg *game.Config) {
		var err error
		red, err = anticheat.NewRedeemer(anticheat.RedeemerConfig{
			Verifier:    anticheat.StoreVerifiers{anticheat.StoreApple: fv, anticheat.StoreGoogle: fv},
			Redemptions: s.anticheat,
		})
		if err != nil {
			t.Fatal(err)
		}
		cfg.IAP = &game.IAPConfig{Redeemer: red}
	})
	return s, fv, red
}

func gemsOf(t *testing.T, c *protocol.Client) int64 { t.Helper(); return load(t, c).Gems }

// checkIAPLedger checks the user's ledger holds exactly one grant of
// product (gems row and payment row) with request id rid.
func checkIAPLedger(t *testing.T, s *gameStack, userKey int64, product game.Product, rid string) {
	t.Helper()
	ledger, err := s.game.Ledger(context.Background(), userKey)
	if err != nil {
		t.Fatal(err)
	}
	var gems, pay int
	for _, e := range ledger {
		if e.Reason != "iap:"+product.ID {
			continue
		}
		if e.RequestID != rid {
			t.Errorf("ledger row %+v: request id want %q", e, rid)
		}
		switch e.Currency {
		case "gems":
			gems++
			if e.Delta != product.Gems {
				t.Errorf("gems row %+v", e)
			}
		case game.PaymentCurrency(product.Currency):
			pay++
			if e.Delta != product.PriceMicros {
				t.Errorf("payment row %+v, want %d", e, product.PriceMicros)
			}
		}
	}
	if gems != 1 || pay != 1 {
		t.Fatalf("ledger %+v: %d gem rows and %d payment rows, want one of each", ledger, gems, pay)
	}
	ps, err := s.game.Purchases(context.Background(), userKey)
	if err != nil || len(ps) != 1 || ps[0].ProductID != product.ID || ps[0].AmountMicros != product.PriceMicros || ps[0].Currency != product.Currency || ps[0].RequestID != rid {
		t.Fatalf("purchases %+v %v", ps, err)
	}
}

func TestIAPGrantedOnceAndReplayFromAnotherAccount(t *testing.T) {
	ctx := context.Background()
	s, fv, _ := iapStack(t)
	product, _ := game.DefaultTables().Product("gems_100")
	fv.Add("receipt-1", anticheat.Purchase{TransactionID: "T-1", ProductID: "gems_100", Quantity: 1})

	c, _ := newClient(t, s.base)
	me := loginAs(t, c, "iap-a", "1.0.0.0")
	var got game.IAPResult
	resp, err := c.Call(ctx, game.CmdShopBuyIAP, game.BuyIAP{ProductID: "gems_100", Platform: "ios", Receipt: "receipt-1"}, &got)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Granted || got.Gems != game.StartGems+100 || got.Store != anticheat.StoreApple || got.TransactionID != "T-1" || got.PriceMicros != 990_000 || got.Currency != "USD" {
		t.Fatalf("purchase: %+v", got)
	}
	checkIAPLedger(t, s, me.UserKey, product, resp.RequestID)

	// The store delivers the transaction again (a new request id): not
	// granted again, answered with the balances so the client finishes it.
	var again game.IAPResult
	if _, err := c.Call(ctx, game.CmdShopBuyIAP, game.BuyIAP{ProductID: "gems_100", Platform: "ios", Receipt: "receipt-1"}, &again); err != nil {
		t.Fatal(err)
	}
	if again.Granted || again.Gems != game.StartGems+100 {
		t.Fatalf("redelivered: %+v", again)
	}
	if g := gemsOf(t, c); g != game.StartGems+100 {
		t.Fatalf("gems %d after a redelivery", g)
	}
	checkIAPLedger(t, s, me.UserKey, product, resp.RequestID)

	// The same receipt from another account: receipt_used (18), nothing
	// granted.
	other, _ := newClient(t, s.base)
	loginAs(t, other, "iap-b", "1.0.0.0")
	_, err = other.Call(ctx, game.CmdShopBuyIAP, game.BuyIAP{ProductID: "gems_100", Platform: "ios", Receipt: "receipt-1"}, nil)
	if code := codeOf(t, err); code != protocol.CodeReceiptUsed || code.String() != "receipt_used" {
		t.Fatalf("other account: %v", err)
	}
	if g := gemsOf(t, other); g != game.StartGems {
		t.Fatalf("other account got gems: %d", g)
	}
	// Other refusals.
	for name, tc := range map[string]struct {
		in   game.BuyIAP
		code protocol.Code
	}{
		"forged receipt":  {game.BuyIAP{ProductID: "gems_100", Platform: "android", Receipt: "forged"}, protocol.CodeBadRequest},
		"unknown product": {game.BuyIAP{ProductID: "gems_9999", Platform: "android", Receipt: "receipt-1"}, game.CodeUnknownProduct},
		"bad platform":    {game.BuyIAP{ProductID: "gems_100", Platform: "web", Receipt: "receipt-1"}, protocol.CodeBadRequest},
		"dev receipt":     {game.BuyIAP{ProductID: "gems_100", Platform: "ios", Receipt: "dev-receipt:x:gems_100"}, protocol.CodeBadRequest},
	} {
		_, err := other.Call(ctx, game.CmdShopBuyIAP, tc.in, nil)
		if code := codeOf(t, err); code != tc.code {
			t.Errorf("%s: %v, want %v", name, err, tc.code)
		}
	}
	fv.Add("receipt-2", anticheat.Purchase{TransactionID: "T-2", ProductID: "gems_550"})
	_, err = other.Call(ctx, game.CmdShopBuyIAP, game.BuyIAP{ProductID: "gems_100", Platform: "android", Receipt: "receipt-2"}, nil)
	if code := codeOf(t, err); code != game.CodeWrongProduct {
		t.Fatalf("wrong product: %v", err)
	}
	// Sent again with its own product, it is granted (the redemption
	// already belongs to this account).
	var ok game.IAPResult
	if _, err := other.Call(ctx, game.CmdShopBuyIAP, game.BuyIAP{ProductID: "gems_550", Platform: "android", Receipt: "receipt-2"}, &ok); err != nil || !ok.Granted || ok.Gems != game.StartGems+550 {
		t.Fatalf("right product: %+v %v", ok, err)
	}
}

func TestIAPLostResponseRetriedPaysOnce(t *testing.T) {
	ctx := context.Background()
	s, fv, _ := iapStack(t)
	product, _ := game.DefaultTables().Product("starter_pack")
	fv.Add("receipt-lost", anticheat.Purchase{TransactionID: "T-lost", ProductID: "starter_pack"})
	c, lossy := newClient(t, s.base)
	me := loginAs(t, c, "iap-lossy", "1.0.0.0")

	lossy.lose.Store(1)
	var got game.IAPResult
	resp, err := c.Call(ctx, game.CmdShopBuyIAP, game.BuyIAP{ProductID: "starter_pack", Platform: "android", Receipt: "receipt-lost"}, &got)
	if err != nil {
		t.Fatal(err)
	}
	if lossy.lose.Load() >= 0 || !resp.Replay {
		t.Fatalf("no reply was lost (replay %v): the test tested nothing", resp.Replay)
	}
	if !got.Granted || got.Gems != game.StartGems+product.Gems || len(got.Items) != 1 || got.Items[0] != (game.ItemCount{ItemID: "elixir", Count: 3}) {
		t.Fatalf("replayed answer %+v", got)
	}
	p := load(t, c)
	if p.Gems != game.StartGems+product.Gems || len(p.Items) != 1 || p.Items[0].Count != 3 {
		t.Fatalf("player after a retried purchase: %+v", p)
	}
	checkIAPLedger(t, s, me.UserKey, product, resp.RequestID)
}

func TestIAPConcurrentSubmitsGrantOnce(t *testing.T) {
	ctx := context.Background()
	s, fv, _ := iapStack(t)
	fv.Add("receipt-race", anticheat.Purchase{TransactionID: "T-race", ProductID: "gems_550"})
	a, _ := newClient(t, s.base)
	b, _ := newClient(t, s.base)
	ua := loginAs(t, a, "race-a", "1.0.0.0")
	ub := loginAs(t, b, "race-b", "1.0.0.0")

	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted, notGranted, used := 0, 0, 0
	for i := range n {
		c := a
		if i%2 == 1 {
			c = b
		}
		wg.Go(func() {
			var r game.IAPResult
			_, err := c.Call(ctx, game.CmdShopBuyIAP, game.BuyIAP{ProductID: "gems_550", Platform: "ios", Receipt: "receipt-race"}, &r)
			mu.Lock()
			defer mu.Unlock()
			var pe *protocol.Error
			switch {
			case err == nil && r.Granted:
				granted++
			case err == nil:
				notGranted++
			case errors.As(err, &pe) && pe.Code == protocol.CodeReceiptUsed:
				used++
			default:
				t.Errorf("submit: %v", err)
			}
		})
	}
	wg.Wait()
	if granted != 1 || granted+notGranted != n/2 || used != n/2 {
		t.Fatalf("granted %d, not granted %d, receipt_used %d", granted, notGranted, used)
	}
	// The winner is the account that redeemed first; the other account got
	// receipt_used every time and has nothing.
	ga, gb := gemsOf(t, a), gemsOf(t, b)
	if ga+gb != 2*game.StartGems+550 {
		t.Fatalf("gems %d and %d: granted %d times", ga, gb, (ga+gb-2*game.StartGems)/550)
	}
	winner := ua.UserKey
	if gb > ga {
		winner = ub.UserKey
	}
	ps, err := s.game.Purchases(ctx, winner)
	if err != nil || len(ps) != 1 {
		t.Fatalf("purchases %+v %v", ps, err)
	}
}

// A redemption committed in the common database whose grant never
// committed (the process died in between) is granted by the next submit.
func TestIAPRedeemedButNotGrantedIsGrantedOnRetry(t *testing.T) {
	ctx := context.Background()
	s, fv, red := iapStack(t)
	fv.Add("receipt-crash", anticheat.Purchase{TransactionID: "T-crash", ProductID: "gems_100"})
	c, _ := newClient(t, s.base)
	me := loginAs(t, c, "iap-crash", "1.0.0.0")
	if r, err := red.Redeem(ctx, me.UserKey, "1.0.0.0", anticheat.StoreGoogle, "receipt-crash"); err != nil || !r.First {
		t.Fatalf("redeem: %+v %v", r, err)
	}
	var got game.IAPResult
	if _, err := c.Call(ctx, game.CmdShopBuyIAP, game.BuyIAP{ProductID: "gems_100", Platform: "android", Receipt: "receipt-crash"}, &got); err != nil || !got.Granted || got.Gems != game.StartGems+100 {
		t.Fatalf("retry after the crash: %+v %v", got, err)
	}
}

func TestIAPDevReceipts(t *testing.T) {
	ctx := context.Background()
	for _, dev := range []bool{true, false} {
		s := newGameStack(t, func(s *gameStack, cfg *game.Config) {
			red, err := anticheat.NewRedeemer(anticheat.RedeemerConfig{Verifier: game.DevVerifiers(), Redemptions: s.anticheat})
			if err != nil {
				t.Fatal(err)
			}
			cfg.IAP = &game.IAPConfig{Redeemer: red, DevReceipts: dev}
		})
		c, _ := newClient(t, s.base)
		loginAs(t, c, "dev-iap", "1.0.0.0")
		var got game.IAPResult
		_, err := c.Call(ctx, game.CmdShopBuyIAP, game.BuyIAP{ProductID: "gems_100", Platform: "ios", Receipt: "dev-receipt:order-1:gems_100"}, &got)
		if dev {
			if err != nil || !got.Granted || got.TransactionID != "dev-order-1" {
				t.Fatalf("dev mode: %+v %v", got, err)
			}
			_, err = c.Call(ctx, game.CmdShopBuyIAP, game.BuyIAP{ProductID: "gems_100", Platform: "ios", Receipt: "dev-receipt:bad id!:gems_100"}, nil)
			if codeOf(t, err) != protocol.CodeBadRequest {
				t.Fatalf("malformed dev receipt: %v", err)
			}
			continue
		}
		var pe *protocol.Error
		if !errors.As(err, &pe) || pe.Code != protocol.CodeBadRequest || !strings.Contains(pe.Message, "not in dev mode") {
			t.Fatalf("dev receipt without dev mode: %v", err)
		}
	}
	// Without IAP configured the command is refused.
	s := newGameStack(t, nil)
	c, _ := newClient(t, s.base)
	loginAs(t, c, "no-iap", "1.0.0.0")
	_, err := c.Call(ctx, game.CmdShopBuyIAP, game.BuyIAP{ProductID: "gems_100", Platform: "ios", Receipt: "x"}, nil)
	if codeOf(t, err) != protocol.CodeForbidden {
		t.Fatalf("without IAP: %v", err)
	}
}

// The common database (redemptions) down: the purchase is refused before
// anything is granted, and nothing is stored for the request id, so the
// client's retry after the outage runs it.
func TestIAPCommonDatabaseDownGrantsNothing(t *testing.T) {
	ctx := context.Background()
	s, fv, _ := iapStack(t)
	fv.Add("receipt-down", anticheat.Purchase{TransactionID: "T-down", ProductID: "gems_100"})
	c, _ := newClient(t, s.base)
	me := loginAs(t, c, "iap-common-down", "1.0.0.0")
	if err := s.srv.store.common.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := c.Call(ctx, game.CmdShopBuyIAP, game.BuyIAP{ProductID: "gems_100", Platform: "ios", Receipt: "receipt-down"}, nil)
	code := protocol.CodeOf(err)
	if code != protocol.CodeUnavailable {
		t.Fatalf("purchase with the common database down: %v", err)
	}
	if g := gemsOf(t, c); g != game.StartGems {
		t.Fatalf("gems %d: granted without a redemption", g)
	}
	if ps, err := s.game.Purchases(ctx, me.UserKey); err != nil || len(ps) != 0 {
		t.Fatalf("purchases %+v %v", ps, err)
	}
}
