package gamedata_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/madang-io/madang/examples/gameserver/gamedata"
	"github.com/madang-io/madang/shard/shardtest"
)

func TestDefaultLoads(t *testing.T) {
	sets, err := gamedata.Load(gamedata.Default())
	if err != nil {
		t.Fatal(err)
	}
	v1, v2 := sets["1"], sets["2"]
	if v1 == nil || v2 == nil || len(sets) != 2 {
		t.Fatalf("versions: %v", sets)
	}
	a, ok1 := v1.ShopItem("gold_small")
	b, ok2 := v2.ShopItem("gold_small")
	if !ok1 || !ok2 || a.Gems == b.Gems {
		t.Fatalf("gold_small in 1: %+v, in 2: %+v: want different prices", a, b)
	}
	if _, ok := v1.Dungeon("crypt"); ok {
		t.Fatal("crypt is new in version 2")
	}
	if d, ok := v2.Dungeon("crypt"); !ok || len(d.Items) != 1 {
		t.Fatalf("crypt in 2: %+v", d)
	}
	if p, ok := v1.Product("gems_100"); !ok || p.PriceMicros != 990_000 || p.Currency != "USD" {
		t.Fatalf("gems_100: %+v", p)
	}
	if got := v1.Text("shop.title", "ko"); got != "상점" {
		t.Fatalf("ko text %q", got)
	}
	if got := v1.Text("shop.title", "fr"); got != "Shop" {
		t.Fatalf("fallback text %q", got)
	}
}

func TestValidationErrorsNameFileAndRow(t *testing.T) {
	_, err := gamedata.Load(os.DirFS("testdata/bad"))
	var ve *gamedata.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	// Rows that do not decode are reported first (references are checked
	// once every file decodes).
	if len(ve.Problems) != 1 || ve.Problems[0].String() != `7/dungeons.json row 1: json: unknown field "typo_field"` {
		t.Fatalf("problems %v", ve.Problems)
	}
	// With the parse errors fixed, the reference errors show.
	fsys := fstest.MapFS{}
	for _, f := range []string{"items.json", "products.json", "strings.json", "shop.json"} {
		data, err := os.ReadFile("testdata/bad/7/" + f)
		if err != nil {
			t.Fatal(err)
		}
		fsys["7/"+f] = &fstest.MapFile{Data: data}
	}
	fsys["7/items.json"] = &fstest.MapFile{Data: []byte(`[{"item_id":"potion","title":"p"},{"item_id":"elixir","title":"e"},{"item_id":"potion","title":"again"}]`)}
	fsys["7/products.json"] = &fstest.MapFile{Data: []byte(`[{"product_id":"gems_100","title":"g","gems":100,"price_micros":990000,"currency":"usd"}]`)}
	fsys["7/dungeons.json"] = &fstest.MapFile{Data: []byte(`[{"dungeon_id":"forest","title":"f","stamina":5,"gold":1,"exp":1,"loss_exp":1,"max_dps":1,"damage_base":1,"damage_per_level":1,"min_play_ms":1,"max_play_ms":2,"items":[{"item_id":"dragon_egg","count":1}]}]`)}
	_, err = gamedata.LoadVersion(fsys, "7")
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	want := []string{
		`7/items.json row 2: item_id "potion" already defined in row 0`,
		`7/shop.json row 1: item_id "gold_small" already defined in row 0`,
		`7/shop.json row 2: item "sword" does not exist in items.json`,
		`7/dungeons.json row 0: item "dragon_egg" does not exist in items.json`,
		`7/products.json row 0: currency must be an ISO 4217 code`,
	}
	for _, w := range want {
		found := false
		for _, p := range ve.Problems {
			found = found || strings.HasPrefix(p.String(), w)
		}
		if !found {
			t.Errorf("missing %q in %v", w, ve.Problems)
		}
	}
	if len(ve.Problems) != len(want) {
		t.Errorf("problems %v, want exactly %d", ve.Problems, len(want))
	}
	if _, err := gamedata.LoadVersion(fsys, "0"); !errors.Is(err, gamedata.ErrBadVersion) {
		t.Fatalf("version 0: %v", err)
	}
	if _, err := gamedata.LoadVersion(fsys, "8"); !errors.As(err, &ve) || !strings.Contains(err.Error(), "8/items.json") {
		t.Fatalf("missing version: %v", err)
	}
}

func TestCatalog(t *testing.T) {
	for _, b := range shardtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db := b.NewDB(t)
			var events atomic.Int32
			cfg := gamedata.Config{DB: db, Initial: "1", OnPublish: func(context.Context, gamedata.Event) { events.Add(1) }}
			c, err := gamedata.Open(ctx, gamedata.Default(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			price := func(c *gamedata.Catalog, cv string) int64 {
				it, ok := c.ForClient(cv).ShopItem("gold_small")
				if !ok {
					t.Fatalf("gold_small missing for %s", cv)
				}
				return it.Gems
			}
			p1, p2 := price(c, "1.0.0.0"), int64(0)
			if c.Current().Version != "1" {
				t.Fatalf("initial %s", c.Current().Version)
			}
			// Two versions live: 1.1 mapped to data 2, everyone else on 1.
			if err := c.MapClient(ctx, "1.1.0.0", "2"); err != nil {
				t.Fatal(err)
			}
			if p2 = price(c, "1.1.0.0"); p2 == p1 || price(c, "1.0.0.0") != p1 {
				t.Fatalf("prices 1.0: %d, 1.1: %d", price(c, "1.0.0.0"), p2)
			}
			// Another server sees the same state.
			other, err := gamedata.Open(ctx, gamedata.Default(), gamedata.Config{DB: db, Initial: "1"})
			if err != nil {
				t.Fatal(err)
			}
			if price(other, "1.1.0.0") != p2 {
				t.Fatal("a second catalog does not see the mapping")
			}
			// Publish 2 for everyone, then roll back.
			if err := c.Publish(ctx, "2"); err != nil {
				t.Fatal(err)
			}
			if price(c, "1.0.0.0") != p2 {
				t.Fatal("publish did not switch the default")
			}
			if changed, err := other.Refresh(ctx); err != nil || !changed || price(other, "1.0.0.0") != p2 {
				t.Fatalf("refresh: %v %v", changed, err)
			}
			if _, err := c.Rollback(ctx); !errors.Is(err, gamedata.ErrNoPrevious) {
				t.Fatalf("rollback past the first publish: %v", err)
			}
			if err := c.Publish(ctx, "1"); err != nil {
				t.Fatal(err)
			}
			if err := c.Publish(ctx, "2"); err != nil {
				t.Fatal(err)
			}
			back, err := c.Rollback(ctx)
			if err != nil || back != "1" || c.Current().Version != "1" || price(c, "1.0.0.0") != p1 {
				t.Fatalf("rollback: %q %v, current %s", back, err, c.Current().Version)
			}
			if v, hist := c.Published(); v != "1" || strings.Join(hist, ",") != "2,1" {
				t.Fatalf("published %s history %v", v, hist)
			}
			// "0" deletes the mapping: 1.1 falls back to the published 1.
			if err := c.MapClient(ctx, "1.1.0.0", "0"); err != nil {
				t.Fatal(err)
			}
			if price(c, "1.1.0.0") != p1 || len(c.Mappings()) != 0 {
				t.Fatalf("after delete: %d %v", price(c, "1.1.0.0"), c.Mappings())
			}
			if err := c.Publish(ctx, "9"); !errors.Is(err, gamedata.ErrUnknownVersion) {
				t.Fatalf("publish unknown: %v", err)
			}
			if err := c.MapClient(ctx, "1.2", "9"); !errors.Is(err, gamedata.ErrUnknownVersion) {
				t.Fatalf("map unknown: %v", err)
			}
			if err := c.MapClient(ctx, "", "1"); !errors.Is(err, gamedata.ErrBadClientVersion) {
				t.Fatalf("map empty: %v", err)
			}
			// map, publish 2, publish 1, publish 2, rollback, delete mapping.
			if events.Load() != 6 {
				t.Fatalf("OnPublish ran %d times", events.Load())
			}
			// Reopening keeps the state (it is in the database).
			again, err := gamedata.Open(ctx, gamedata.Default(), gamedata.Config{DB: db})
			if err != nil {
				t.Fatal(err)
			}
			if again.Current().Version != "1" {
				t.Fatalf("reopened on %s", again.Current().Version)
			}
		})
	}
}

// TestClientVersionsCompareNumerically: a mapping serves every spelling of
// its client version ("1.2" = "1.2.0" = "1.2.0.0" = "1.02"), as liveops
// compares versions; it is stored canonical, replaces or deletes rows of
// the same version spelled otherwise (written before), and a client version
// that does not parse is refused.
func TestClientVersionsCompareNumerically(t *testing.T) {
	for _, b := range shardtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db := b.NewDB(t)
			c, err := gamedata.Open(ctx, gamedata.Default(), gamedata.Config{DB: db, Initial: "1"})
			if err != nil {
				t.Fatal(err)
			}
			served := func(c *gamedata.Catalog, cvs ...string) string {
				t.Helper()
				var out []string
				for _, cv := range cvs {
					out = append(out, c.ForClient(cv).Version)
				}
				return strings.Join(out, ",")
			}
			if err := c.MapClient(ctx, "1.2", "2"); err != nil {
				t.Fatal(err)
			}
			if got := served(c, "1.2", "1.2.0", "1.2.0.0", "1.02", "1.2.1", "1.20", "x", ""); got != "2,2,2,2,1,1,1,1" {
				t.Fatalf("served %s", got)
			}
			if m := c.Mappings(); len(m) != 1 || m["1.2.0.0"] != "2" {
				t.Fatalf("mappings %v", m)
			}
			if err := c.MapClient(ctx, "1.2.0", gamedata.DeleteMapping); err != nil {
				t.Fatal(err)
			}
			if got := served(c, "1.2", "1.2.0.0"); got != "1,1" || len(c.Mappings()) != 0 {
				t.Fatalf("after deleting by another spelling: %s %v", got, c.Mappings())
			}
			for _, bad := range []string{"", "latest", "1.x", "1.2.3.4.5", "-1", strings.Repeat("1", gamedata.MaxClientVersionLen+1)} {
				if err := c.MapClient(ctx, bad, "2"); !errors.Is(err, gamedata.ErrBadClientVersion) {
					t.Errorf("map %q: %v", bad, err)
				}
			}

			// A row written before versions were stored canonical.
			if _, err := db.ExecContext(ctx, "INSERT INTO gamedata_client_versions (client_version, data_version, updated_at) VALUES ('1.3', '2', 1)"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			if got := served(c, "1.3.0.0", "1.3"); got != "2,2" || c.Mappings()["1.3.0.0"] != "2" {
				t.Fatalf("legacy row: served %s, mappings %v", got, c.Mappings())
			}
			if err := c.MapClient(ctx, "1.3.0.0", "1"); err != nil {
				t.Fatal(err)
			}
			var rows int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM gamedata_client_versions").Scan(&rows); err != nil || rows != 1 {
				t.Fatalf("rows after remapping the legacy one: %d %v", rows, err)
			}
			if got := served(c, "1.3"); got != "1" {
				t.Fatalf("remapped: %s", got)
			}
		})
	}
}
