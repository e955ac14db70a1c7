package anticheat_test

import (
	"math"
	"testing"

	"github.com/madang-io/madang/anticheat"
)

func TestStatRules(t *testing.T) {
	c := anticheat.NewStatChecker(
		anticheat.Required(anticheat.StatPlayTime),
		anticheat.Linear(anticheat.StatAttack, 100, 10),
		anticheat.Range(anticheat.StatDefense, 0, 1000),
		anticheat.MaxRate(anticheat.StatDamage, anticheat.StatPlayTime, 500),
		anticheat.Bounds(anticheat.StatReward, func(level int) (float64, float64) { return 1, float64(level) * 100 }),
	)
	type V = map[anticheat.Stat]float64
	cases := []struct {
		name   string
		r      anticheat.Report
		reason anticheat.Reason
		stat   anticheat.Stat
		limit  float64
	}{
		{"ok", anticheat.Report{Level: 10, Values: V{"attack": 200, "defense": 5, "damage": 4000, "play_time": 60, "reward": 500}}, "", "", 0},
		{"attack above level bound", anticheat.Report{Level: 10, Values: V{"attack": 201, "play_time": 1}}, anticheat.ReasonStatAbove, "attack", 200},
		{"defense below", anticheat.Report{Level: 1, Values: V{"defense": -1, "play_time": 1}}, anticheat.ReasonStatBelow, "defense", 0},
		{"dps", anticheat.Report{Level: 1, Values: V{"damage": 50001, "play_time": 100}}, anticheat.ReasonStatRate, "damage/play_time", 500},
		{"damage in no time", anticheat.Report{Level: 1, Values: V{"damage": 1, "play_time": 0}}, anticheat.ReasonStatRate, "damage/play_time", 500},
		{"reward from table", anticheat.Report{Level: 3, Values: V{"reward": 301, "play_time": 9}}, anticheat.ReasonStatAbove, "reward", 300},
		{"reward below", anticheat.Report{Level: 3, Values: V{"reward": 0, "play_time": 9}}, anticheat.ReasonStatBelow, "reward", 1},
		{"missing", anticheat.Report{Level: 3, Values: V{"attack": 1}}, anticheat.ReasonStatMissing, "play_time", 0},
		{"nan", anticheat.Report{Level: 3, Values: V{"attack": math.NaN(), "play_time": 1}}, anticheat.ReasonStatInvalid, "attack", 0},
		{"inf", anticheat.Report{Level: 3, Values: V{"play_time": math.Inf(1)}}, anticheat.ReasonStatInvalid, "play_time", 0},
		{"negative level", anticheat.Report{Level: -1, Values: V{"play_time": 1}}, anticheat.ReasonStatInvalid, "level", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vs := c.Check(&tc.r)
			if tc.reason == "" {
				if vs != nil {
					t.Fatalf("unexpected %v", vs)
				}
				return
			}
			if len(vs) != 1 || vs[0].Reason != tc.reason || vs[0].Stat != tc.stat || vs[0].Limit != tc.limit {
				t.Fatalf("got %v, want one %s on %s limit %v", vs, tc.reason, tc.stat, tc.limit)
			}
			vd := anticheat.Verdicts(7, "1.0.0.0", vs)
			if len(vd) != 1 || vd[0].Kind != anticheat.KindStat || vd[0].UserKey != 7 || vd[0].Detail != vs[0].String() {
				t.Fatalf("verdicts %+v", vd)
			}
		})
	}
}

func TestStatCustomRule(t *testing.T) {
	// A game's own rule: critical hits cannot exceed hits.
	c := anticheat.NewStatChecker(func(r *anticheat.Report) (anticheat.Violation, bool) {
		if r.Values["crits"] > r.Values["hits"] {
			return anticheat.Violation{Reason: "crits_above_hits", Stat: "crits", Value: r.Values["crits"], Limit: r.Values["hits"]}, true
		}
		return anticheat.Violation{}, false
	})
	if vs := c.Check(&anticheat.Report{Values: map[anticheat.Stat]float64{"crits": 5, "hits": 4}}); len(vs) != 1 || vs[0].Reason != "crits_above_hits" {
		t.Fatalf("%v", vs)
	}
	if vs := c.Check(&anticheat.Report{Values: map[anticheat.Stat]float64{"crits": 4, "hits": 4}}); vs != nil {
		t.Fatalf("%v", vs)
	}
}
