package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/ops"
	"github.com/madang-io/madang/protocol"
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
// receipts by two players (on whichever game databases they landed), a
// cheating dungeon finish and a speed hack show up today; another day shows zeros; the
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
	cheater := login(t, c, "cheater")
	run := startRun(t, c, "forest")
	if code, _ := call(t, c, game.CmdDungeonFinish, honestFinish(run.RunID, 10_000_000), nil); code != game.CodeCheatDetected {
		t.Fatalf("cheating finish: code %v", code)
	}

	// A speed hack: the client's clock jumps 30 s ahead during a run.
	var ahead atomic.Int64
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	speedy, err := protocol.NewClient(protocol.ClientConfig{
		Transport: &protocol.HTTPTransport{URL: base + protocol.DefaultHTTPPath, Client: hc},
		Codec:     protocol.Config{XORKey: []byte(testXORKey)}, Mode: protocol.ModeXOR,
		Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) },
	})
	if err != nil {
		t.Fatal(err)
	}
	speeder := login(t, speedy, "speeder")
	run = startRun(t, speedy, "forest")
	ahead.Store(int64(30 * time.Second))
	if code, _ := call(t, speedy, game.CmdDungeonFinish, honestFinish(run.RunID, 1000), nil); code != game.CodeCheatDetected {
		t.Fatalf("speed-hacked finish: code %v", code)
	}
	// The day's counts are the two users' hack log records: at least the
	// two stat verdicts of the cheater and one speed verdict of the speeder.
	wantKinds := map[string]int64{}
	var wantTotal int64
	for _, u := range []int64{cheater.UserKey, speeder.UserKey} {
		for _, e := range userEvents(t, srv, u) {
			wantKinds[string(e.Kind)]++
			wantTotal++
		}
	}
	if wantKinds["stat"] < 2 || wantKinds["speed"] < 1 {
		t.Fatalf("hack log of the cheaters: %v", wantKinds)
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
	if st.Hacks.Total != wantTotal || !reflect.DeepEqual(st.Hacks.ByKind, wantKinds) {
		t.Fatalf("hacks %+v, want %d %v", st.Hacks, wantTotal, wantKinds)
	}
	if same := getStats(t, a, "?day="+today); same.Hacks.Total != wantTotal || len(same.Revenue) != 1 || same.Revenue[0] != want {
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
		fmt.Sprintf(`madang_hacks_today{kind="stat"} %d`, wantKinds["stat"]),
		fmt.Sprintf(`madang_hacks_today{kind="speed"} %d`, wantKinds["speed"]),
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
