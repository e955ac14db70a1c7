package realtime

import "context"

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

// CreateRoomID starts a room of kind with the given id on r, as Create
// does with a random one (tests: an id that reappears on another node).
func CreateRoomID(ctx context.Context, r *Rooms, id, kind string) error {
	_, err := r.create(ctx, id, kind, nil)
	return err
}

// CachedOwner returns the node r remembers as room's owner ("" if none).
func CachedOwner(r *Rooms, room string) string {
	node, _ := r.owners.get(room)
	return node
}
