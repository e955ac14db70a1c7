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
// client of the same session (realtime.DialOptions.Counters).
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

// ReplayWindowSize is how far below the highest accepted counter of a
// session a counter may still be accepted, once (docs/PROTOCOL.md §7.4):
// frames of one session that travel over two connections (an HTTP request
// and a websocket) may arrive in another order than their counters.
const ReplayWindowSize = 64

// ReplayWindow is the server's record of a session's accepted frame
// counters, the anti-replay window of IPsec and DTLS (RFC 4303 §3.4.3,
// RFC 6347 §4.1.2.6): the highest counter accepted and which of the
// ReplayWindowSize counters up to it were. A counter is accepted at most
// once: above Top, or at most ReplayWindowSize-1 below it and not seen
// before. Everything further below is refused. The zero value has
// accepted nothing.
type ReplayWindow struct {
	// Top is the highest counter accepted, 0 before the first.
	Top uint64
	// Seen has bit i set when counter Top-i was accepted (bit 0 is Top).
	// A window kept by an older server without it starts with every bit
	// set: nothing at or below Top is accepted, the strict rule.
	Seen uint64
}

// Accept records counter and reports whether it is new: false for 0, a
// counter already accepted, or one ReplayWindowSize or more below Top.
func (w *ReplayWindow) Accept(counter uint64) bool {
	if counter == 0 {
		return false
	}
	if counter > w.Top {
		if d := counter - w.Top; d >= ReplayWindowSize {
			w.Seen = 1
		} else {
			w.Seen = w.Seen<<d | 1
		}
		w.Top = counter
		return true
	}
	d := w.Top - counter
	if d >= ReplayWindowSize || w.Seen&(1<<d) != 0 {
		return false
	}
	w.Seen |= 1 << d
	return true
}
