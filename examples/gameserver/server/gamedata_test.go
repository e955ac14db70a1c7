package server

import (
	"context"
	"testing"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/gamedata"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
)

// TestGameDataVersionsPerClientVersion: two data versions live at once, two
// client versions pay different prices; publish, rollback and a mapping
// deleted with "0" switch them; every change resets the user cache.
func TestGameDataVersionsPerClientVersion(t *testing.T) {
	ctx := context.Background()
	cache := session.NewMemoryCache(session.CacheConfig{})
	t.Cleanup(func() { cache.Close() })
	var cat *gamedata.Catalog
	s := newGameStack(t, func(s *gameStack, cfg *game.Config) {
		var err error
		cat, err = gamedata.Open(ctx, gamedata.Default(), gamedata.Config{
			DB: s.srv.store.common, Initial: "1",
			OnPublish: func(ctx context.Context, _ gamedata.Event) {
				if err := cache.ResetAll(ctx); err != nil {
					t.Errorf("reset cache: %v", err)
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Data = game.FromCatalog(cat)
	})
	v1, _ := cat.Set("1")
	v2, _ := cat.Set("2")
	price1, _ := v1.ShopItem("gold_small")
	price2, _ := v2.ShopItem("gold_small")
	if price1.Gems == price2.Gems {
		t.Fatal("the default data versions must differ in gold_small's price")
	}

	oldc, _ := newClient(t, s.base)
	newc, _ := newClient(t, s.base)
	loginAs(t, oldc, "data-old", "1.0.0.0")
	loginAs(t, newc, "data-new", "1.1.0.0")
	// paid buys gold_small and returns the gems it cost.
	paid := func(c *protocol.Client) int64 {
		t.Helper()
		before := gemsOf(t, c)
		var r game.BuyResult
		if _, err := c.Call(ctx, game.CmdShopBuy, game.Buy{ItemID: "gold_small"}, &r); err != nil {
			t.Fatal(err)
		}
		return before - r.Gems
	}
	if a, b := paid(oldc), paid(newc); a != price1.Gems || b != price1.Gems {
		t.Fatalf("before any mapping: %d and %d, want %d", a, b, price1.Gems)
	}
	// elixir_pack and the crypt exist only in version 2.
	if _, err := newc.Call(ctx, game.CmdShopBuy, game.Buy{ItemID: "elixir_pack"}, nil); codeOf(t, err) != game.CodeUnknownItem {
		t.Fatalf("elixir_pack on version 1: %v", err)
	}

	cacheVersion := cache.Version()
	if err := cat.MapClient(ctx, "1.1.0.0", "2"); err != nil {
		t.Fatal(err)
	}
	if cache.Version() == cacheVersion {
		t.Fatal("mapping did not reset the user cache")
	}
	if a, b := paid(oldc), paid(newc); a != price1.Gems || b != price2.Gems {
		t.Fatalf("two versions live: 1.0 paid %d (want %d), 1.1 paid %d (want %d)", a, price1.Gems, b, price2.Gems)
	}
	if _, err := newc.Call(ctx, game.CmdShopBuy, game.Buy{ItemID: "elixir_pack"}, nil); err != nil {
		t.Fatalf("elixir_pack on version 2: %v", err)
	}
	var run game.RunStarted
	if _, err := newc.Call(ctx, game.CmdDungeonStart, game.StartDungeon{DungeonID: "crypt"}, &run); err != nil || run.DungeonID != "crypt" {
		t.Fatalf("crypt on version 2: %+v %v", run, err)
	}
	if _, err := oldc.Call(ctx, game.CmdDungeonStart, game.StartDungeon{DungeonID: "crypt"}, nil); codeOf(t, err) != game.CodeUnknownDungeon {
		t.Fatalf("crypt on version 1: %v", err)
	}

	// Publish 2: the unmapped 1.0 gets it too.
	cacheVersion = cache.Version()
	if err := cat.Publish(ctx, "2"); err != nil {
		t.Fatal(err)
	}
	if cache.Version() == cacheVersion {
		t.Fatal("publish did not reset the user cache")
	}
	if a := paid(oldc); a != price2.Gems {
		t.Fatalf("after publishing 2, 1.0 paid %d", a)
	}
	// Roll back: 1.0 is on version 1 again (1.1 stays mapped to 2). The
	// published version before 2 was the initial one, so publish 1 and 2
	// first to have something to roll back to.
	if _, err := cat.Rollback(ctx); err == nil {
		t.Fatal("rollback past the first publish succeeded")
	}
	for _, v := range []string{"1", "2"} {
		if err := cat.Publish(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if back, err := cat.Rollback(ctx); err != nil || back != "1" {
		t.Fatalf("rollback: %q %v", back, err)
	}
	if a, b := paid(oldc), paid(newc); a != price1.Gems || b != price2.Gems {
		t.Fatalf("after rollback: 1.0 paid %d, 1.1 paid %d", a, b)
	}
	// "0" deletes 1.1's mapping: it gets the published version 1.
	if err := cat.MapClient(ctx, "1.1.0.0", gamedata.DeleteMapping); err != nil {
		t.Fatal(err)
	}
	if b := paid(newc); b != price1.Gems {
		t.Fatalf("after deleting the mapping, 1.1 paid %d", b)
	}
}
