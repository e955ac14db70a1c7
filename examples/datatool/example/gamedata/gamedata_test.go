package gamedata_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/datatool/example/gamedata"
)

// The generated code of package gamedata (from ../sheets) loads the data
// file built from the same sheets (kept up to date by the cli tests).
func load(t testing.TB) ([]byte, *gamedata.Data) {
	data, err := os.ReadFile("testdata/data.bytes")
	if err != nil {
		t.Fatal(err)
	}
	d, err := gamedata.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	return data, d
}

func TestLoad(t *testing.T) {
	_, d := load(t)
	if d.Version != "1" || len(d.Items) != 3 || len(d.Dungeons) != 2 || len(d.Shop) != 2 || len(d.Events) != 2 || len(d.Strings) != 5 {
		t.Fatalf("loaded %q: %d items, %d dungeons, %d shop, %d events, %d strings", d.Version, len(d.Items), len(d.Dungeons), len(d.Shop), len(d.Events), len(d.Strings))
	}
	sh, ok := d.ItemsByKey("shield")
	if !ok || sh.Rarity != gamedata.ItemsRarityEpic || sh.Price != 1200 || sh.Stackable || len(sh.Tags) != 2 || sh.Tags[1] != "weapon" || sh.Title != "item.shield" {
		t.Fatalf("shield = %+v, %v", sh, ok)
	}
	if p, _ := d.ItemsByKey("potion"); !p.Stackable || p.Rarity.String() != "common" {
		t.Fatalf("potion = %+v", p)
	}
	cave, ok := d.DungeonsByKey("cave")
	if !ok || cave.MaxDPS != 2500.5 || cave.Gold != 250 || len(cave.Rewards) != 2 || cave.Rewards[1] != "sword" || cave.RewardCounts[0] != 1 || cave.Difficulty != "normal" {
		t.Fatalf("cave = %+v", cave)
	}
	if s, ok := d.ShopByKey(2); !ok || s.ItemID != "sword" || s.Gems != 50 || s.Gold != 1000 {
		t.Fatalf("shop 2 = %+v", s)
	}
	if _, ok := d.ShopByKey(3); ok {
		t.Fatal("shop 3 found")
	}
	ev, _ := d.EventsByKey("double_gold")
	if want := time.Date(2026, 12, 24, 1, 0, 0, 0, time.UTC); !ev.StartsAt.Equal(want) || ev.StartsAt.Format("-07:00") != "+09:00" {
		t.Fatalf("double_gold starts %v, want %v in +09:00", ev.StartsAt, want)
	}
	ny, _ := d.EventsByKey("new_year")
	if want := time.Date(2027, 1, 1, 0, 0, 0, 0, time.FixedZone("KST", 9*3600)); !ny.StartsAt.Equal(want) || !ny.EndsAt.Equal(time.Date(2027, 1, 3, 12, 0, 0, 0, time.UTC)) || ny.Dungeon != "" {
		t.Fatalf("new_year = %+v (an Excel date cell is a wall clock in the column's zone)", ny)
	}
	if s, _ := d.StringsByKey("dungeon.forest"); s.Ko != "속삭이는 숲" {
		t.Fatalf("strings = %+v", s)
	}
}

func TestLookupAllocs(t *testing.T) {
	_, d := load(t)
	key := string([]byte("sword"))
	if n := testing.AllocsPerRun(100, func() {
		if _, ok := d.ItemsByKey(key); !ok {
			t.Fatal("sword not found")
		}
		d.ShopByKey(1)
	}); n != 0 {
		t.Fatalf("lookup allocates %v times", n)
	}
}

func TestLoadRefuses(t *testing.T) {
	data, _ := load(t)
	mod := func(f func(b []byte)) []byte {
		b := append([]byte(nil), data...)
		f(b)
		return b
	}
	for _, c := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, gamedata.ErrNotDataFile},
		{"magic", mod(func(b []byte) { b[0] = 'X' }), gamedata.ErrNotDataFile},
		{"newer format", mod(func(b []byte) { b[4] = gamedata.FormatVersion + 1 }), gamedata.ErrNewerFormat},
		{"flipped payload byte", mod(func(b []byte) { b[len(b)-3] ^= 1 }), gamedata.ErrChecksum},
		{"truncated", data[:len(data)-1], gamedata.ErrChecksum},
		{"other schema", mod(func(b []byte) { b[41] ^= 1 }), gamedata.ErrSchema},
	} {
		d, err := gamedata.Load(c.data)
		var le *gamedata.LoadError
		if d != nil || !errors.Is(err, c.want) || !errors.As(err, &le) {
			t.Errorf("%s: Load = %v, %v; want a *LoadError matching %v", c.name, d, err, c.want)
		}
	}
}

func BenchmarkLoad(b *testing.B) {
	data, _ := load(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := gamedata.Load(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkItemsByKey(b *testing.B) {
	_, d := load(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := d.ItemsByKey("sword"); !ok {
			b.Fatal("not found")
		}
	}
}
