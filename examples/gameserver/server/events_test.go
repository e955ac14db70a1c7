package server

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/liveops"
	"github.com/madang-io/madang/protocol"
)

// window returns start and end wall-clock times in zone, from now+from to
// now+to.
func window(t *testing.T, zone string, from, to time.Duration) (string, string) {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(loc)
	return now.Add(from).Format(liveops.EventTimeLayout), now.Add(to).Format(liveops.EventTimeLayout)
}

func event(t *testing.T, kind, zone string, from, to time.Duration, fields map[string]any) map[string]any {
	start, end := window(t, zone, from, to)
	e := map[string]any{"kind": kind, "title": "event " + kind, "time_zone": zone, "start": start, "end": end}
	for k, v := range fields {
		e[k] = v
	}
	return e
}

func loginFrom(t *testing.T, c *protocol.Client, device, country string) game.LoginResult {
	t.Helper()
	var res game.LoginResult
	in := game.GuestLogin{DeviceID: device, Platform: "android", ClientVersion: "1.0.0.0", Country: country, Language: "ko"}
	if _, err := c.Call(context.Background(), game.CmdGuestLogin, in, &res); err != nil {
		t.Fatalf("login %s: %v", device, err)
	}
	c.SetSession(res.Token, nil)
	return res
}

func mailsTitled(t *testing.T, c *protocol.Client, title string) []game.MailView {
	t.Helper()
	var list game.MailList
	mustCall(t, c, game.CmdMailList, nil, &list)
	var out []game.MailView
	for _, m := range list.Mails {
		if m.Title == title {
			out = append(out, m)
		}
	}
	return out
}

// Events through the ops API, applied by the game: a login bonus mailed
// once per day, a dungeon buff in the rewards, a shop sale in shop.buy;
// an event outside its window and one targeted at another country do
// nothing; deleting an event ends it.
func TestLiveOpsEvents(t *testing.T) {
	base, srv := newGameServer(t)
	a := newAdmin(t, srv)
	// Seoul and Tokyo windows around now; one in Los Angeles that starts
	// in an hour.
	a.ok("PUT", "/v1/events/kr-bonus", event(t, liveops.EventLoginBonus, "Asia/Seoul", -time.Hour, time.Hour,
		map[string]any{"title": "Daily gift", "countries": []string{"KR"}, "gems": 30, "items": []game.ItemCount{{ItemID: "potion", Count: 1}}}))
	a.ok("PUT", "/v1/events/later-bonus", event(t, liveops.EventLoginBonus, "America/Los_Angeles", time.Hour, 2*time.Hour,
		map[string]any{"title": "Not yet", "gems": 1000}))
	a.ok("PUT", "/v1/events/kr-buff", event(t, liveops.EventDungeonBuff, "Asia/Seoul", -time.Hour, time.Hour,
		map[string]any{"countries": []string{"KR"}, "platforms": []string{"android"}, "gold_pct": 50, "exp_pct": 100}))
	a.ok("PUT", "/v1/events/kr-sale", event(t, liveops.EventShopSale, "Asia/Seoul", -time.Hour, time.Hour,
		map[string]any{"countries": []string{"KR"}, "discount_pct": 20, "shop_items": []string{"gold_small"}}))
	a.ok("PUT", "/v1/events/jp-sale", event(t, liveops.EventShopSale, "Asia/Tokyo", -time.Hour, time.Hour,
		map[string]any{"countries": []string{"JP"}, "discount_pct": 50}))
	var listed []liveops.Event
	if err := json.Unmarshal(a.ok("GET", "/v1/events", nil), &listed); err != nil || len(listed) != 5 {
		t.Fatalf("events %+v %v", listed, err)
	}

	kr, _ := newClient(t, base)
	me := loginFrom(t, kr, "event-kr", "KR")
	if got := mailsTitled(t, kr, "Daily gift"); len(got) != 1 || got[0].Gems != 30 {
		t.Fatalf("login bonus mails %+v", got)
	}
	if got := mailsTitled(t, kr, "Not yet"); len(got) != 0 {
		t.Fatalf("an event outside its window mailed %+v", got)
	}
	// Logging in again the same day: no second bonus.
	loginFrom(t, kr, "event-kr", "KR")
	if got := mailsTitled(t, kr, "Daily gift"); len(got) != 1 {
		t.Fatalf("second login of the day: %d bonus mails", len(got))
	}
	jp, _ := newClient(t, base)
	loginFrom(t, jp, "event-jp", "JP")
	if got := mailsTitled(t, jp, "Daily gift"); len(got) != 0 {
		t.Fatalf("a Korean bonus reached Japan: %+v", got)
	}

	item, _ := game.ShopItem("gold_small")
	buy := func(c *protocol.Client) game.BuyResult {
		t.Helper()
		var r game.BuyResult
		mustCall(t, c, game.CmdShopBuy, game.Buy{ItemID: "gold_small"}, &r)
		return r
	}
	if r := buy(kr); r.Paid != item.Gems*80/100 || r.DiscountPct != 20 || r.Gems != game.StartGems-item.Gems*80/100 {
		t.Fatalf("KR sale: %+v", r)
	}
	if r := buy(jp); r.Paid != item.Gems/2 || r.DiscountPct != 50 {
		t.Fatalf("JP sale: %+v", r)
	}
	// The ledger records what was paid.
	var paidRows []int64
	for _, e := range ledgerOf(t, srv, me.UserKey) {
		if e.Currency == "gems" && e.Reason == "shop:gold_small" {
			paidRows = append(paidRows, e.Delta)
		}
	}
	if len(paidRows) != 1 || paidRows[0] != -item.Gems*80/100 {
		t.Fatalf("ledger gem rows of the sale: %v", paidRows)
	}

	forest, _ := game.DungeonByID("forest")
	run := startRun(t, kr, "forest")
	var fin game.RunFinished
	mustCall(t, kr, game.CmdDungeonFinish, honestFinish(run.RunID, 500), &fin)
	if fin.Gold != forest.Gold*3/2 || fin.ExpGot != forest.Exp*2 || fin.GoldPct != 50 || fin.ExpPct != 100 {
		t.Fatalf("buffed finish %+v (dungeon %+v)", fin, forest)
	}
	run = startRun(t, jp, "forest")
	var plain game.RunFinished
	mustCall(t, jp, game.CmdDungeonFinish, honestFinish(run.RunID, 500), &plain)
	if plain.Gold != forest.Gold || plain.ExpGot != forest.Exp || plain.GoldPct != 0 {
		t.Fatalf("unbuffed finish %+v", plain)
	}

	// Deleting the sale ends it.
	a.ok("DELETE", "/v1/events/kr-sale", nil)
	if r := buy(kr); r.Paid != item.Gems || r.DiscountPct != 0 {
		t.Fatalf("after the sale ended: %+v", r)
	}

	// The ops API's refusals.
	for _, tok := range []string{"", "wrong"} {
		if code, _ := a.do("PUT", "/v1/events/x", tok, event(t, liveops.EventShopSale, "UTC", 0, time.Hour, map[string]any{"discount_pct": 10})); code != http.StatusUnauthorized {
			t.Fatalf("PUT with token %q: %d", tok, code)
		}
		if code, _ := a.do("DELETE", "/v1/events/kr-buff", tok, nil); code != http.StatusUnauthorized {
			t.Fatalf("DELETE with token %q: %d", tok, code)
		}
	}
	for name, e := range map[string]map[string]any{
		"unknown zone": event(t, liveops.EventShopSale, "UTC", 0, time.Hour, map[string]any{"discount_pct": 10, "time_zone": "Nowhere/Town"}),
		"no zone":      event(t, liveops.EventShopSale, "UTC", 0, time.Hour, map[string]any{"discount_pct": 10, "time_zone": ""}),
		"end first":    event(t, liveops.EventShopSale, "UTC", time.Hour, 0, map[string]any{"discount_pct": 10}),
		"other id":     event(t, liveops.EventShopSale, "UTC", 0, time.Hour, map[string]any{"discount_pct": 10, "id": "y"}),
		"bad field":    event(t, liveops.EventShopSale, "UTC", 0, time.Hour, map[string]any{"discount_pct": 10, "colour": "red"}),
	} {
		if code, b := a.do("PUT", "/v1/events/x", a.token, e); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, code, b)
		}
	}
	if len(srv.liveops.Events()) != 4 {
		t.Fatalf("events after the refusals: %+v", srv.liveops.Events())
	}
}
