package liveops

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/shard/shardtest"
)

func TestEventsWindowAndTargeting(t *testing.T) {
	for _, b := range shardtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db := openDB(t, b)
			m := newManager(t, Config{DB: db, PollInterval: -1})
			other := newManager(t, Config{DB: db, PollInterval: -1})
			// Christmas in Seoul (UTC+9): 2026-12-24 00:00 KST is
			// 2026-12-23 15:00 UTC.
			xmas := Event{ID: "xmas-bonus", Kind: EventLoginBonus, Title: "Merry Christmas", TimeZone: "Asia/Seoul",
				Start: "2026-12-24T00:00:00", End: "2026-12-26T00:00:00", Countries: []string{"kr"}, Gems: 50}
			buff := Event{ID: "ios-buff", Kind: EventDungeonBuff, Title: "Double gold", TimeZone: "America/New_York",
				Start: "2026-12-01T00:00:00", End: "2026-12-02T00:00:00", Platforms: []string{"ios"},
				MinClientVersion: "1.2", MaxClientVersion: "1.9.9", GoldPct: 100}
			sale := Event{ID: "sale", Kind: EventShopSale, Title: "Sale", TimeZone: "UTC",
				Start: "2026-12-01T00:00:00", End: "2026-12-31T00:00:00", Languages: []string{"ko"}, DiscountPct: 20, ShopItems: []string{"gold_small"}}
			for _, e := range []Event{xmas, buff, sale} {
				if err := m.SetEvent(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			if err := other.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			if got := other.Events(); len(got) != 3 || got[2].ID != "xmas-bonus" || got[2].Countries[0] != "KR" || got[2].Gems != 50 {
				t.Fatalf("events on another server: %+v", got)
			}
			kr := Target{Country: "KR", Language: "ko", Platform: "android", ClientVersion: "1.0.0.0"}
			at := func(s string) time.Time {
				t.Helper()
				v, err := time.Parse(time.RFC3339, s)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			ids := func(es []Event) (out []string) {
				for _, e := range es {
					out = append(out, e.ID)
				}
				return out
			}
			for _, tc := range []struct {
				name string
				tg   Target
				now  string
				want []string
			}{
				{"before the window (Seoul midnight not yet)", kr, "2026-12-23T14:59:59Z", []string{"sale"}},
				{"inside, Seoul time", kr, "2026-12-23T15:00:00Z", []string{"sale", "xmas-bonus"}},
				{"end is exclusive", kr, "2026-12-25T15:00:00Z", []string{"sale"}},
				{"another country", Target{Country: "JP", Language: "ja"}, "2026-12-24T03:00:00Z", nil},
				{"iOS 1.5 in New York's Dec 1", Target{Platform: "ios", ClientVersion: "1.5"}, "2026-12-01T05:00:00Z", []string{"ios-buff"}},
				{"iOS before New York's Dec 1", Target{Platform: "ios", ClientVersion: "1.5"}, "2026-12-01T04:59:59Z", nil},
				{"iOS too new", Target{Platform: "ios", ClientVersion: "2.0"}, "2026-12-01T12:00:00Z", nil},
				{"iOS too old", Target{Platform: "ios", ClientVersion: "1.1.9"}, "2026-12-01T12:00:00Z", nil},
				{"android", Target{Platform: "android", ClientVersion: "1.5"}, "2026-12-01T12:00:00Z", nil},
			} {
				if got := ids(other.ActiveEvents(tc.tg, at(tc.now))); !equal(got, tc.want) {
					t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
				}
			}
			es := other.Events()
			if d := es[2].Day(at("2026-12-24T16:00:00Z")); d != "2026-12-25" {
				t.Fatalf("Seoul day %s", d)
			}
			if err := m.DeleteEvent(ctx, "sale"); err != nil {
				t.Fatal(err)
			}
			if err := other.Refresh(ctx); err != nil || len(other.Events()) != 2 {
				t.Fatalf("after delete: %+v %v", other.Events(), err)
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEventValidation(t *testing.T) {
	db := openDB(t, shardtest.Backends()[0])
	m := newManager(t, Config{DB: db, PollInterval: -1})
	ok := Event{ID: "e", Kind: EventShopSale, Title: "t", TimeZone: "Europe/Paris", Start: "2026-12-01T00:00:00", End: "2026-12-02T00:00:00", DiscountPct: 10}
	if err := m.SetEvent(context.Background(), ok); err != nil {
		t.Fatal(err)
	}
	// Each refusal is ErrInvalid; an *InvalidError names the field when
	// the problem is one field's ("" when it is the event's as a whole).
	for name, c := range map[string]struct {
		mut   func(e *Event)
		field string
	}{
		"bad id":          {func(e *Event) { e.ID = "a b" }, "id"},
		"no title":        {func(e *Event) { e.Title = "" }, "title"},
		"long title":      {func(e *Event) { e.Title = strings.Repeat("t", MaxEventTitleLen+1) }, "title"},
		"no zone":         {func(e *Event) { e.TimeZone = "" }, "time_zone"},
		"unknown zone":    {func(e *Event) { e.TimeZone = "Mars/Olympus" }, "time_zone"},
		"local zone":      {func(e *Event) { e.TimeZone = "Local" }, "time_zone"},
		"offset in start": {func(e *Event) { e.Start = "2026-12-01T00:00:00+09:00" }, "start"},
		"end before":      {func(e *Event) { e.End = "2026-11-30T00:00:00" }, "end"},
		"over a year":     {func(e *Event) { e.End = "2028-12-01T00:00:00" }, "end"},
		"unknown kind":    {func(e *Event) { e.Kind = "party" }, "kind"},
		"discount 100":    {func(e *Event) { e.DiscountPct = 100 }, "discount_pct"},
		"sale with gems":  {func(e *Event) { e.Gems = 5 }, ""},
		"buff over max":   {func(e *Event) { e.Kind, e.DiscountPct, e.GoldPct, e.ExpPct = EventDungeonBuff, 0, 10, MaxBuffPct+1 }, "exp_pct"},
		"bad version":     {func(e *Event) { e.MinClientVersion = "one" }, "min_client_version"},
		"bad max version": {func(e *Event) { e.MaxClientVersion = "one" }, "max_client_version"},
		"buff of nothing": {func(e *Event) { e.Kind, e.DiscountPct = EventDungeonBuff, 0 }, "gold_pct"},
		"bonus of nothing": {func(e *Event) {
			e.Kind, e.DiscountPct = EventLoginBonus, 0
		}, ""},
		"negative bonus": {func(e *Event) { e.Kind, e.DiscountPct, e.Gold = EventLoginBonus, 0, -1 }, ""},
		"bad bonus item": {func(e *Event) {
			e.Kind, e.DiscountPct, e.Items = EventLoginBonus, 0, []EventItem{{ItemID: "potion", Count: 0}}
		}, "items"},
	} {
		e := ok
		c.mut(&e)
		err := m.SetEvent(context.Background(), e)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
		var ie *InvalidError
		if got := errors.As(err, &ie); got != (c.field != "") || (got && ie.Field != c.field) {
			t.Errorf("%s: %#v, want the field %q", name, err, c.field)
		}
	}
	if err := m.DeleteEvent(context.Background(), ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("delete of an empty id: %v", err)
	}
}

// FuzzEvent: any JSON an operator sends as an event is either refused
// with ErrInvalid or gives a sane event (a window of positive length,
// Applies and Day without panics).
func FuzzEvent(f *testing.F) {
	for _, seed := range []string{
		`{"id":"a","kind":"shop_sale","title":"t","time_zone":"Asia/Seoul","start":"2026-12-01T00:00:00","end":"2026-12-02T00:00:00","discount_pct":10}`,
		`{"id":"b","kind":"login_bonus","title":"t","time_zone":"UTC","start":"2026-03-29T01:30:00","end":"2026-03-29T02:30:00","gems":1,"items":[{"item_id":"potion","count":2}]}`,
		`{"id":"c","kind":"dungeon_buff","title":"t","time_zone":"Europe/London","start":"2026-10-25T01:00:00","end":"2026-10-25T01:59:59","gold_pct":1000,"min_client_version":"1.2","max_client_version":"1"}`,
		`{"time_zone":"../../etc/passwd"}`, `{"time_zone":"Local"}`, `{}`, `[`, `null`,
	} {
		f.Add([]byte(seed), "KR", "1.5")
	}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte, country, version string) {
		var e Event
		if json.Unmarshal(body, &e) != nil {
			return
		}
		if err := e.prepare(); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%s: %v is not ErrInvalid", body, err)
			}
			return
		}
		start, end := e.Window()
		if !end.After(start) {
			t.Fatalf("%s: window %v..%v", body, start, end)
		}
		e.Applies(Target{Country: country, ClientVersion: version}, now)
		_ = e.Day(now)
	})
}
