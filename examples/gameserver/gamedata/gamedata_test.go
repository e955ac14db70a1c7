package gamedata_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/madang-io/madang/examples/datatool/datafile"
	"github.com/madang-io/madang/examples/datatool/sheet"
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

// TestLoadSetRefuses: a data file with a wrong content hash, a newer
// format, another schema or too large is refused with its typed error; one
// that breaks the game's rules (the data tool cannot check them) with a
// *ValidationError naming the table, row and column of every problem.
func TestLoadSetRefuses(t *testing.T) {
	good, err := fs.ReadFile(gamedata.Default(), "data_v2.bytes")
	if err != nil {
		t.Fatal(err)
	}
	if s, err := gamedata.LoadSet(good); err != nil || s.Version != "2" || len(s.Hash) != 64 || !bytes.Equal(s.DataFile(), good) {
		t.Fatalf("good file: %v", err)
	}
	flip := func(at int, b byte) []byte {
		d := bytes.Clone(good)
		d[at] = b
		return d
	}
	for _, c := range []struct {
		name string
		data []byte
		want error
	}{
		{"body byte", flip(len(good)-1, good[len(good)-1]^1), gamedata.ErrChecksum},
		{"newer format", flip(4, 9), gamedata.ErrNewerFormat},
		{"schema hash", flip(41, good[41]^1), gamedata.ErrSchema},
		{"magic", flip(0, 'X'), gamedata.ErrNotDataFile},
		{"empty", nil, gamedata.ErrNotDataFile},
		{"too large", make([]byte, gamedata.MaxFileSize+1), gamedata.ErrTooLarge},
	} {
		if _, err := gamedata.LoadSet(c.data); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// Another schema: a column more.
	in := sheetInputs(t, "sheets/2")
	for i := range in {
		if strings.HasSuffix(in[i].Name, "items.csv") && !strings.Contains(in[i].Name, "_items") {
			in[i].R = strings.NewReader("item_id,title,weight\nstring,string,int\nkey,,\npotion,Healing potion,1\nelixir,Stamina elixir,1\nkey_bronze,Bronze key,1\n")
		}
	}
	book, err := sheet.Read(sheet.Options{}, in...)
	if err != nil {
		t.Fatal(err)
	}
	other, err := datafile.Encode(book, "3")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gamedata.LoadSet(other); !errors.Is(err, gamedata.ErrSchema) {
		t.Fatalf("another schema: %v", err)
	}

	// The game's rules, in a file the data tool builds (its checks pass).
	in = sheetInputs(t, "sheets/2")
	for i := range in {
		switch filepath.Base(in[i].Name) {
		case "products.csv":
			in[i].R = io.MultiReader(in[i].R, strings.NewReader("pack,Pack,0,990000,usd\n"))
		case "dungeon_rewards.csv":
			in[i].R = io.MultiReader(in[i].R, strings.NewReader("crypt,key_bronze,2\n"))
		case "dungeons.csv":
			in[i].R = io.MultiReader(in[i].R, strings.NewReader("slow,Slow,1,0,0,0,1,1,0,5000,1000\n"))
		}
	}
	if book, err = sheet.Read(sheet.Options{}, in...); err != nil {
		t.Fatal(err)
	}
	bad, err := datafile.Encode(book, "7")
	if err != nil {
		t.Fatal(err)
	}
	_, err = gamedata.LoadSet(bad)
	var ve *gamedata.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	want := []string{
		`7: dungeons row 3 max_play_ms: need 0 < min_play_ms <= max_play_ms`,
		`7: products row 3 currency: must be an ISO 4217 code (three capital letters), not "usd"`,
		`7: dungeon_rewards row 1 item_id: item "key_bronze" of "crypt" already granted in row 0`,
		`7: products row 3: "pack" gives nothing (no gems, no rows in product_items)`,
	}
	var got []string
	for _, p := range ve.Problems {
		got = append(got, p.String())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Load names the file of a bad data file.
	if _, err := gamedata.Load(fstest.MapFS{"data_v2.bytes": {Data: good}, "broken.bytes": {Data: flip(len(good)-1, 0)}}); !errors.Is(err, gamedata.ErrChecksum) || !strings.Contains(err.Error(), "broken.bytes") {
		t.Fatalf("Load with a broken file: %v", err)
	}
	if _, err := gamedata.Load(fstest.MapFS{"a.bytes": {Data: good}, "b.bytes": {Data: good}}); err == nil {
		t.Fatal("one version in two files accepted")
	}
	if _, err := gamedata.Load(fstest.MapFS{"readme.txt": {Data: good}}); err == nil {
		t.Fatal("a source without data files accepted")
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
