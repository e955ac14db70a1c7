package realtime

import "time"

// SetWriterIdle changes how long idle writer goroutines linger (tests).
func SetWriterIdle(h *Hub, d time.Duration) { h.writerIdle = d }

// WritersRunning counts the user's connections on h whose writer goroutine
// is running.
func WritersRunning(h *Hub, userKey int64) int {
	us := h.userShard(userKey)
	us.mu.Lock()
	defer us.mu.Unlock()
	n := 0
	if u := us.users[userKey]; u != nil {
		for _, c := range u.conns {
			c.wmu.Lock()
			if c.wrunning {
				n++
			}
			c.wmu.Unlock()
		}
	}
	return n
}

// PausePresence stops h's presence heartbeats and disconnect reports, as
// if the node died with its connections still counted.
func PausePresence(h *Hub) { h.presence.paused.Store(true) }

// HaltMatchmaker stops m's refreshes without removing its players, as if
// its node died.
func HaltMatchmaker(m *RedisMatchmaker) { m.halt() }

// InlineWrites counts the frames h's connections got written whole by the
// delivering goroutine (no writer goroutine).
func InlineWrites(h *Hub) int64 { return h.stats.inline.Load() }

// SetFanoutChunk sets the fewest subscribers a goroutine of a fan-out
// serves (tests: split small channels).
func SetFanoutChunk(h *Hub, n int) { h.fanoutChunk = n }
