package protocol

import (
	"math"
	"sync/atomic"
)

// FrameCounter hands out the counters of one session's authenticated client
// frames (§7.4 of docs/PROTOCOL.md): each Next is above every earlier one.
// The counter belongs to the session keys, not to a connection, so every
// connection that seals frames with the same keys must take its counters
// from the same FrameCounter; two counters of their own would reuse values,
// which the server refuses as replays and which reuses AES-GCM nonces.
// Client.Counter returns the one a Client uses; pass it to a websocket
// client of the same session (realtimetest.DialOptions.Counters).
//
// A FrameCounter is safe for concurrent use. Its zero value starts at 1.
type FrameCounter struct {
	last atomic.Uint64
}

// NewFrameCounter returns a FrameCounter whose next counter is last+1:
// pass 0 for new keys, or the last counter used (or accepted by the
// server, session.Session.Counter) to count on from it.
func NewFrameCounter(last uint64) *FrameCounter {
	c := new(FrameCounter)
	c.last.Store(last)
	return c
}

// Next returns the next counter. After math.MaxUint64 the counters are used
// up and Next returns 0, which encoders refuse (ErrCounter): log in again for
// new keys.
func (c *FrameCounter) Next() uint64 {
	for {
		last := c.last.Load()
		if last == math.MaxUint64 {
			return 0
		}
		if c.last.CompareAndSwap(last, last+1) {
			return last + 1
		}
	}
}

// Last returns the counter Next returned last (the value NewFrameCounter
// started from before the first Next). A client that keeps its session keys
// across restarts stores it, to count on from it with NewFrameCounter.
func (c *FrameCounter) Last() uint64 { return c.last.Load() }
