package realtimetest

import (
	"time"

	"github.com/madang-io/madang/internal/clock"
)

// Clock is a clock for tests that moves only when told to: pass its Now
// method where a config takes Now func() time.Time. Safe for concurrent use.
// The zero value reads the zero time; NewClock starts it elsewhere.
type Clock struct{ f clock.Fake }

// NewClock returns a Clock set to start.
func NewClock(start time.Time) *Clock {
	c := &Clock{}
	c.f.Set(start)
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return c.f.Now() }

// Advance moves the clock forward by d (backward when d is negative) and
// returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time { return c.f.Advance(d) }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.f.Set(t) }
