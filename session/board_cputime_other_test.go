//go:build !linux

package session_test

import "time"

// boardThreadClock falls back to wall time where the thread CPU clock is not
// wired up.
func boardThreadClock() (now func() time.Duration, release func()) {
	start := time.Now()
	return func() time.Duration { return time.Since(start) }, func() {}
}
