package realtime

// CrashRooms stops a node's rooms as if its process died: no disconnect
// notices, no heartbeats, no replies (tests; for a node that owns no room).
func CrashRooms(r *Rooms) {
	r.mu.Lock()
	r.closed = true
	clear(r.local)
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}
