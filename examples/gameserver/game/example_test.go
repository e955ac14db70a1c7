package game_test

import (
	"fmt"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/examples/gameserver/game"
)

// A dungeon's report rules: a plausible report passes, an impossible one
// breaks the damage-per-second and damage-per-level bounds.
func ExampleDungeon_Rules() {
	forest, _ := game.DungeonByID("forest")
	rules := forest.Rules()
	report := func(damage, seconds float64) *anticheat.Report {
		return &anticheat.Report{Level: 3, Values: map[anticheat.Stat]float64{
			anticheat.StatDamage: damage, anticheat.StatPlayTime: seconds,
		}}
	}
	fmt.Println(len(rules.Check(report(30_000, 60))))
	for _, v := range rules.Check(report(1_000_000, 60)) {
		fmt.Println(v)
	}
	// Output:
	// 0
	// stat_rate damage/play_time=16666.7 limit=1000
	// stat_above damage=1e+06 limit=65000
}

// Stamina regenerates one point per interval from the stored value.
func ExampleStaminaAt() {
	written := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	st := game.StaminaAt(10, written.UnixMilli(), written.Add(12*time.Minute))
	fmt.Println(st.Current, time.UnixMilli(st.NextAt).UTC().Format("15:04"))
	// Output: 12 12:15
}
