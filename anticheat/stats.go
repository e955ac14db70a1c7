package anticheat

import (
	"fmt"
	"math"
	"strconv"
)

// Stat names a value the client reports (its secure variables): attack,
// defense, damage dealt, play time, rewards claimed. Games add their own.
type Stat string

// Common stats. Play time is in seconds.
const (
	StatAttack   Stat = "attack"
	StatDefense  Stat = "defense"
	StatDamage   Stat = "damage"
	StatPlayTime Stat = "play_time"
	StatReward   Stat = "reward"
)

// Reported-value reasons.
const (
	// ReasonStatInvalid: a value is NaN or infinite, or the level is negative.
	ReasonStatInvalid Reason = "stat_invalid"
	// ReasonStatMissing: a value a rule requires was not reported.
	ReasonStatMissing Reason = "stat_missing"
	// ReasonStatBelow: a value is below its bound.
	ReasonStatBelow Reason = "stat_below"
	// ReasonStatAbove: a value is above its bound.
	ReasonStatAbove Reason = "stat_above"
	// ReasonStatRate: a ratio (damage per second of play time) is above its
	// bound.
	ReasonStatRate Reason = "stat_rate"
)

// Report is what a client reported for one play (a stage clear, a battle):
// the player's level from the server's data, and the values the client sent.
type Report struct {
	Level  int              // the player's level, from server-side data
	Values map[Stat]float64 // what the client reported
}

// Violation is one broken rule.
type Violation struct {
	Reason Reason  // which kind of violation
	Stat   Stat    // the stat (or "num/den" for a rate)
	Value  float64 // the reported value (or ratio)
	Limit  float64 // the bound it broke
}

// String renders v for the hack log: "stat_above attack=950 limit=500".
func (v Violation) String() string {
	return string(v.Reason) + " " + string(v.Stat) + "=" + strconv.FormatFloat(v.Value, 'g', 6, 64) +
		" limit=" + strconv.FormatFloat(v.Limit, 'g', 6, 64)
}

// Rule checks one aspect of a report and returns its violation, or ok false.
// Write your own as a func; Bounds, Range and MaxRate build the common ones.
type Rule func(r *Report) (v Violation, broken bool)

// Range bounds stat to [lo, hi] at every level. An unreported stat is not
// checked (see Required).
func Range(stat Stat, lo, hi float64) Rule {
	return Bounds(stat, func(int) (float64, float64) { return lo, hi })
}

// Linear bounds stat to [0, base + perLevel×level], the usual shape of a
// stat that grows with level.
func Linear(stat Stat, base, perLevel float64) Rule {
	return Bounds(stat, func(level int) (float64, float64) { return 0, base + perLevel*float64(level) })
}

// Bounds bounds stat to [lo, hi] as byLevel returns them for the report's
// level: the hook for bounds from server-side game data (a table per level).
// An unreported stat is not checked.
func Bounds(stat Stat, byLevel func(level int) (lo, hi float64)) Rule {
	return func(r *Report) (Violation, bool) {
		v, ok := r.Values[stat]
		if !ok {
			return Violation{}, false
		}
		lo, hi := byLevel(r.Level)
		switch {
		case v < lo:
			return Violation{Reason: ReasonStatBelow, Stat: stat, Value: v, Limit: lo}, true
		case v > hi:
			return Violation{Reason: ReasonStatAbove, Stat: stat, Value: v, Limit: hi}, true
		}
		return Violation{}, false
	}
}

// MaxRate bounds num/den (damage per second of play time): above max is a
// violation; so is a positive num over a den of zero or less. Either stat
// unreported: not checked.
func MaxRate(num, den Stat, max float64) Rule {
	name := Stat(string(num) + "/" + string(den))
	return func(r *Report) (Violation, bool) {
		n, ok1 := r.Values[num]
		d, ok2 := r.Values[den]
		if !ok1 || !ok2 {
			return Violation{}, false
		}
		if d <= 0 {
			if n > 0 {
				return Violation{Reason: ReasonStatRate, Stat: name, Value: math.Inf(1), Limit: max}, true
			}
			return Violation{}, false
		}
		if q := n / d; q > max {
			return Violation{Reason: ReasonStatRate, Stat: name, Value: q, Limit: max}, true
		}
		return Violation{}, false
	}
}

// Required makes each listed stat mandatory.
func Required(stats ...Stat) Rule {
	return func(r *Report) (Violation, bool) {
		for _, s := range stats {
			if _, ok := r.Values[s]; !ok {
				return Violation{Reason: ReasonStatMissing, Stat: s}, true
			}
		}
		return Violation{}, false
	}
}

// StatChecker runs rules over reports. It is immutable and safe for
// concurrent use.
type StatChecker struct {
	rules []Rule
}

// NewStatChecker returns a checker of rules, run in order.
func NewStatChecker(rules ...Rule) *StatChecker {
	return &StatChecker{rules: append([]Rule(nil), rules...)}
}

// Check returns every violation of r: first values that are not finite (or
// a negative level), which no rule sees, then each broken rule in order.
// Nil means the report is plausible.
func (c *StatChecker) Check(r *Report) []Violation {
	var out []Violation
	if r.Level < 0 {
		return []Violation{{Reason: ReasonStatInvalid, Stat: "level", Value: float64(r.Level)}}
	}
	for s, v := range r.Values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			out = append(out, Violation{Reason: ReasonStatInvalid, Stat: s, Value: v})
		}
	}
	if out != nil {
		return out
	}
	for _, rule := range c.rules {
		if v, broken := rule(r); broken {
			out = append(out, v)
		}
	}
	return out
}

// Verdicts turns violations into hack-log verdicts of user (one per
// violation, KindStat).
func Verdicts(user int64, clientVersion string, vs []Violation) []Verdict {
	out := make([]Verdict, 0, len(vs))
	for _, v := range vs {
		out = append(out, Verdict{UserKey: user, Kind: KindStat, Reason: v.Reason, Detail: v.String(), ClientVersion: clientVersion})
	}
	return out
}

var _ fmt.Stringer = Violation{}
