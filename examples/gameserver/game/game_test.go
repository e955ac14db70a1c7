package game

import (
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/protocol"
)

func TestStaminaAt(t *testing.T) {
	at := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	ms := at.UnixMilli()
	iv := StaminaInterval.Milliseconds()
	for _, tc := range []struct {
		name          string
		stored        int64
		now           time.Time
		current, next int64
	}{
		{"full stays full", StaminaMax, at.Add(time.Hour), StaminaMax, 0},
		{"above the cap is kept", StaminaMax + 7, at.Add(time.Hour), StaminaMax + 7, 0},
		{"nothing elapsed", 10, at, 10, ms + iv},
		{"just before a point", 10, at.Add(StaminaInterval - time.Millisecond), 10, ms + iv},
		{"one point", 10, at.Add(StaminaInterval), 11, ms + 2*iv},
		{"three points", 0, at.Add(3*StaminaInterval + time.Second), 3, ms + 4*iv},
		{"capped", 45, at.Add(6 * StaminaInterval), StaminaMax, 0},
		{"clock stepped back", 10, at.Add(-time.Hour), 10, ms + iv},
	} {
		got := StaminaAt(tc.stored, ms, tc.now)
		if got.Current != tc.current || got.NextAt != tc.next || got.Max != StaminaMax || got.IntervalMs != iv {
			t.Errorf("%s: %+v, want current %d next %d", tc.name, got, tc.current, tc.next)
		}
	}
}

func TestCatalogAndMigrations(t *testing.T) {
	for _, it := range Catalog() {
		got, ok := ShopItem(it.ID)
		if !ok || !reflect.DeepEqual(got, it) || it.Gems <= 0 || (it.Gold <= 0 && len(it.Items) == 0) || checkItems(it.Items, DefaultTables()) != nil {
			t.Errorf("item %+v: lookup %+v %v", it, got, ok)
		}
	}
	if _, ok := ShopItem("nope"); ok {
		t.Error("unknown item found")
	}
	m := Migrations()
	if m.Source != "game" {
		t.Errorf("source %q", m.Source)
	}
	if _, err := m.FS.Open("0001_players.sqlite.sql"); err != nil {
		t.Error(err)
	}
}

func TestMigrationsHaveBothDialects(t *testing.T) {
	entries, err := fs.ReadDir(Migrations().FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]map[string]bool{}
	for _, e := range entries {
		parts := strings.Split(e.Name(), ".")
		if len(parts) != 3 || parts[2] != "sql" {
			t.Errorf("migration %s: want VERSION_NAME.DIALECT.sql", e.Name())
			continue
		}
		if versions[parts[0]] == nil {
			versions[parts[0]] = map[string]bool{}
		}
		versions[parts[0]][parts[1]] = true
	}
	if len(versions) < 2 {
		t.Fatalf("versions %v", versions)
	}
	for v, d := range versions {
		if !d["sqlite"] || !d["mysql"] || len(d) != 2 {
			t.Errorf("migration %s has dialects %v, want sqlite and mysql", v, d)
		}
	}
}

func TestSpendStamina(t *testing.T) {
	at := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	ms := at.UnixMilli()
	iv := StaminaInterval.Milliseconds()
	for _, tc := range []struct {
		name                 string
		stored               int64
		now                  time.Time
		cost                 int64
		ok                   bool
		newStored, newAt     int64
		currentAfter, nextAt int64
	}{
		{"full: regeneration starts now", StaminaMax, at.Add(time.Hour), 5, true, StaminaMax - 5, ms + 3600_000, StaminaMax - 5, ms + 3600_000 + iv},
		{"partial progress kept", 10, at.Add(2*StaminaInterval + time.Minute), 5, true, 7, ms + 2*iv, 7, ms + 3*iv},
		{"exactly enough", 5, at, 5, true, 0, ms, 0, ms + iv},
		{"not enough", 4, at.Add(StaminaInterval - 1), 5, false, 4, ms, 0, 0},
		{"regenerated to the cap", 40, at.Add(20 * StaminaInterval), 10, true, StaminaMax - 10, at.Add(20 * StaminaInterval).UnixMilli(), StaminaMax - 10, at.Add(21 * StaminaInterval).UnixMilli()},
	} {
		s, a, ok := spendStamina(tc.stored, ms, tc.now, tc.cost)
		if ok != tc.ok || s != tc.newStored || a != tc.newAt {
			t.Errorf("%s: (%d, %d, %v), want (%d, %d, %v)", tc.name, s, a, ok, tc.newStored, tc.newAt, tc.ok)
			continue
		}
		if ok {
			if st := StaminaAt(s, a, tc.now); st.Current != tc.currentAfter || st.NextAt != tc.nextAt {
				t.Errorf("%s: stamina after %+v, want current %d next %d", tc.name, st, tc.currentAfter, tc.nextAt)
			}
		}
	}
}

func TestLevelOf(t *testing.T) {
	for exp, want := range map[int64]int{-5: 1, 0: 1, ExpPerLevel - 1: 1, ExpPerLevel: 2, 250: 3, 1 << 40: MaxLevel} {
		if got := LevelOf(exp); got != want {
			t.Errorf("LevelOf(%d) = %d, want %d", exp, got, want)
		}
	}
}

func TestAddItems(t *testing.T) {
	sum := addItems(nil, []ItemCount{{"potion", 2}, {"elixir", 1}})
	sum = addItems(sum, []ItemCount{{"key_bronze", 1}, {"potion", 3}})
	want := []ItemCount{{"elixir", 1}, {"key_bronze", 1}, {"potion", 5}}
	if !reflect.DeepEqual(sum, want) {
		t.Fatalf("%+v, want %+v", sum, want)
	}
}

func TestDungeonRules(t *testing.T) {
	for _, d := range Dungeons() {
		if got, ok := DungeonByID(d.ID); !ok || got.ID != d.ID || d.Stamina <= 0 || d.Stamina > StaminaMax {
			t.Errorf("dungeon %+v", d)
		}
		r := d.Rules()
		report := func(damage, seconds float64) *anticheat.Report {
			return &anticheat.Report{Level: 1, Values: map[anticheat.Stat]float64{anticheat.StatDamage: damage, anticheat.StatPlayTime: seconds}}
		}
		play := d.MinPlay.Seconds() * 2
		if vs := r.Check(report(d.MaxDPS*play*0.9, play)); len(vs) != 0 {
			t.Errorf("%s: plausible report refused: %v", d.ID, vs)
		}
		if vs := r.Check(report(d.MaxDPS*play*1.5, play)); len(vs) == 0 {
			t.Errorf("%s: damage per second above the bound accepted", d.ID)
		}
		if vs := r.Check(report(1, d.MaxPlay.Seconds()+1)); len(vs) == 0 {
			t.Errorf("%s: play time above the bound accepted", d.ID)
		}
		if vs := r.Check(&anticheat.Report{Level: 1, Values: map[anticheat.Stat]float64{anticheat.StatDamage: 1}}); len(vs) == 0 {
			t.Errorf("%s: report without play time accepted", d.ID)
		}
	}
	if _, ok := DungeonByID("nope"); ok {
		t.Error("unknown dungeon found")
	}
}

func TestMailCheck(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	m := WelcomeMail()
	if err := m.check(now, DefaultTables()); err != nil || !m.ExpiresAt.Equal(now.Add(DefaultMailTTL)) {
		t.Fatalf("welcome mail: %v, expires %v", err, m.ExpiresAt)
	}
	bad := Mail{Title: "x", Items: []ItemCount{{ItemID: "potion", Count: MaxGrant + 1}}}
	if err := bad.check(now, DefaultTables()); !errors.Is(err, ErrBadMail) || errors.Is(err, ErrUnknownItem) {
		t.Fatalf("count above MaxGrant: %v", err)
	}
	// Items are checked against the tables given, not the built-in list.
	egg := Mail{Title: "x", Items: []ItemCount{{ItemID: "dragon_egg", Count: 1}}}
	err := egg.check(now, DefaultTables())
	if !errors.Is(err, ErrBadMail) || !errors.Is(err, ErrUnknownItem) || protocol.CodeOf(err) != CodeUnknownItem {
		t.Fatalf("unknown item: %v (code %v)", err, protocol.CodeOf(err))
	}
	v2 := NewTables("2", append(ItemDefs(), ItemDef{ID: "dragon_egg", Title: "Dragon egg"}), Catalog(), Dungeons(), Products())
	if err := egg.check(now, v2); err != nil {
		t.Fatalf("item of the tables refused: %v", err)
	}
}
