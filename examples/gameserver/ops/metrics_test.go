package ops

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/examples/gameserver/liveops"
	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/shard"
	"github.com/madang-io/madang/shard/shardtest"
)

// TestCollectorSeries: every series the collector sends is described, once
// (a pedantic registry checks it), with the type and value of its Stats
// field.
func TestCollectorSeries(t *testing.T) {
	ctx := context.Background()
	db := shardtest.SQLite().NewDB(t)
	if _, err := shard.Migrate(ctx, db, liveops.Migrations()); err != nil {
		t.Fatal(err)
	}
	lo, err := liveops.New(ctx, liveops.Config{DB: db, PollInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lo.Close() })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(Sources{
		Sessions:          func() session.Stats { return session.Stats{Created: 4, Kicked: 1} },
		Guard:             anticheat.NewGuard(anticheat.GuardConfig{}),
		Idempotency:       func() idempotency.Stats { return idempotency.Stats{Replayed: 2} },
		LiveOps:           lo,
		LoginsRefused:     func() uint64 { return 5 },
		RateLimiter:       func() session.LimiterStats { return session.LimiterStats{Allowed: 6, Limited: 7, Entries: 8} },
		WebsocketsRefused: func() int64 { return 9 },
	}))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	type series struct {
		counter bool
		value   float64
	}
	got := map[string]series{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			if c := m.GetCounter(); c != nil {
				got[f.GetName()] = series{true, c.GetValue()}
			} else {
				got[f.GetName()] = series{false, m.GetGauge().GetValue()}
			}
		}
	}
	for name, want := range map[string]series{
		"madang_session_created_total":          {true, 4},
		"madang_session_kicked_total":           {true, 1},
		"madang_idempotency_replayed_total":     {true, 2},
		"madang_anticheat_speed_verdicts_total": {true, 0},
		"madang_liveops_global_maintenance":     {false, 0},
		"madang_liveops_users_in_maintenance":   {false, 0},
		"madang_ccu":                            {false, 0},
		"madang_game_logins_refused_total":      {true, 5},
		"madang_ratelimit_allowed_total":        {true, 6},
		"madang_ratelimit_limited_total":        {true, 7},
		"madang_ratelimit_entries":              {false, 8},
		"madang_ws_refused_total":               {true, 9},
	} {
		if g, ok := got[name]; !ok || g != want {
			t.Errorf("%s: %+v (present %v), want %+v", name, g, ok, want)
		}
	}
	if n := len(sessionMetrics) + len(guardMetrics) + len(idempotencyMetrics) + len(liveopsMetrics) + len(limiterMetrics) + 3; len(got) != n {
		t.Errorf("%d series, want %d (no router: no shard series; ccu, refused logins, refused websockets)", len(got), n)
	}
}
