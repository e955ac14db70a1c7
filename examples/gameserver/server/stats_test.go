package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/ops"
)

type dayStats struct {
	Day     string
	DAU     int64
	NRU     int64
	Revenue []game.Revenue
	Hacks   ops.HackStats
}

func getStats(t *testing.T, a *admin, query string) dayStats {
	t.Helper()
	var st dayStats
	if err := json.Unmarshal(a.ok("GET", "/v1/stats"+query, nil), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// Revenue and hacks per day in /v1/stats, end to end: purchases with dev
// receipts by two players (on whichever game databases they landed) and a
// cheating dungeon finish show up today; another day shows zeros; the
// last values for today are exported in /metrics.
func TestStatsRevenueAndHacksPerDay(t *testing.T) {
	cfg := testConfig(t)
	cfg.Dev = true // dev receipts
	base, srv := startServerOn(t, cfg)
	a := newAdmin(t, srv)

	st := getStats(t, a, "")
	if len(st.Revenue) != 0 || st.Hacks.Total != 0 || len(st.Hacks.ByKind) != 0 {
		t.Fatalf("stats before anything: %+v", st)
	}

	buyers := map[string]string{"buyer-1": "gems_100", "buyer-2": "gems_550"}
	for dev, product := range buyers {
		c, _ := newClient(t, base)
		login(t, c, dev)
		var got game.IAPResult
		mustCall(t, c, game.CmdShopBuyIAP, game.BuyIAP{ProductID: product, Platform: "android", Receipt: "dev-receipt:" + dev + ":" + product}, &got)
		if !got.Granted {
			t.Fatalf("%s: %+v", dev, got)
		}
	}
	// A cheat: 10 million damage in a moment breaks two stat rules.
	c, _ := newClient(t, base)
	login(t, c, "cheater")
	run := startRun(t, c, "forest")
	if code, _ := call(t, c, game.CmdDungeonFinish, honestFinish(run.RunID, 10_000_000), nil); code != game.CodeCheatDetected {
		t.Fatalf("cheating finish: code %v", code)
	}

	today := time.Now().UTC().Format(time.DateOnly)
	st = getStats(t, a, "")
	if st.Day != today {
		t.Fatalf("day %q, want %q", st.Day, today)
	}
	want := game.Revenue{Currency: "USD", AmountMicros: 990_000 + 4_990_000, Payments: 2}
	if len(st.Revenue) != 1 || st.Revenue[0] != want {
		t.Fatalf("revenue %+v, want [%+v]", st.Revenue, want)
	}
	if st.Hacks.Total != 2 || st.Hacks.ByKind["stat"] != 2 || len(st.Hacks.ByKind) != 1 {
		t.Fatalf("hacks %+v", st.Hacks)
	}
	if same := getStats(t, a, "?day="+today); same.Hacks.Total != 2 || len(same.Revenue) != 1 || same.Revenue[0] != want {
		t.Fatalf("?day=today: %+v", same)
	}

	// Days with nothing: yesterday and tomorrow.
	for _, d := range []time.Time{time.Now().UTC().AddDate(0, 0, -1), time.Now().UTC().AddDate(0, 0, 1)} {
		day := d.Format(time.DateOnly)
		st := getStats(t, a, "?day="+day)
		if st.Day != day || len(st.Revenue) != 0 || st.Hacks.Total != 0 || len(st.Hacks.ByKind) != 0 || st.DAU != 0 || st.NRU != 0 {
			t.Fatalf("%s: %+v", day, st)
		}
	}
	if code, body := a.do("GET", "/v1/stats?day=2026-13-01", a.token, nil); code != http.StatusBadRequest {
		t.Fatalf("bad day: %d %s", code, body)
	}

	// /metrics exports the last values computed for today (the yesterday
	// and tomorrow queries above did not replace them).
	getStats(t, a, "")
	code, body := a.do("GET", "/metrics", "", nil)
	if code != http.StatusOK {
		t.Fatalf("metrics %d", code)
	}
	for _, w := range []string{
		`madang_revenue_today_micros{currency="USD"} 5.98e+06`,
		`madang_hacks_today{kind="stat"} 2`,
		`madang_daily_stats_timestamp_seconds `,
	} {
		if !strings.Contains(string(body), w) {
			t.Errorf("metrics lack %q", w)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", body)
	}
}
