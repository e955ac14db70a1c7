package game

import (
	"reflect"
	"testing"
	"time"
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
		if !ok || !reflect.DeepEqual(got, it) || it.Gems <= 0 || (it.Gold <= 0 && len(it.Items) == 0) || checkItems(it.Items) != nil {
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
