package realtime

import (
	"context"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Defaults of the owner cache (RoomConfig.OwnerCacheTTL, OwnerCacheSize).
const (
	DefaultOwnerCacheTTL  = time.Second
	DefaultOwnerCacheSize = 10000
)

// ownerCache remembers, per room of another node, which node owns it, so
// that a member's room.input does not look the room up in the Directory
// (a Redis round trip in Redis mode) every time. An entry lives for ttl at
// most; it is dropped at once when the node it names answers that it has
// no such room, or does not answer, and when this node receives the room's
// room.end. At most max entries: a new one over that replaces an arbitrary
// one.
//
// A stale entry cannot route a request into the wrong room: the node it
// names serves the request only if it runs a room of that id (room ids are
// random, and only the lease holder runs one), and otherwise answers "no
// such room" (roomReply.gone), after which the caller looks the room up
// again once.
type ownerCache struct {
	ttl time.Duration // <= 0: no caching
	max int
	now func() time.Time

	mu sync.Mutex
	m  map[string]ownerEntry

	sf singleflight.Group // one Directory lookup per room at a time
}

type ownerEntry struct {
	node  string
	until time.Time
}

func newOwnerCache(ttl time.Duration, max int, now func() time.Time) *ownerCache {
	return &ownerCache{ttl: ttl, max: max, now: now, m: make(map[string]ownerEntry)}
}

// get returns the cached owner of room, if any and not expired.
func (c *ownerCache) get(room string) (string, bool) {
	if c.ttl <= 0 {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[room]
	if !ok {
		return "", false
	}
	if !c.now().Before(e.until) {
		delete(c.m, room)
		return "", false
	}
	return e.node, true
}

// put caches node as room's owner for the TTL.
func (c *ownerCache) put(room, node string) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[room]; !ok && len(c.m) >= c.max {
		for k := range c.m { // full: make room (Go starts map iteration anywhere)
			delete(c.m, k)
			break
		}
	}
	c.m[room] = ownerEntry{node: node, until: c.now().Add(c.ttl)}
}

// drop forgets room's owner if the cache still names node (a newer
// entry, looked up meanwhile, stays).
func (c *ownerCache) drop(room, node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[room]; ok && e.node == node {
		delete(c.m, room)
	}
}

// has reports whether room has a cached owner (expired or not).
func (c *ownerCache) has(room string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[room]
	return ok
}

// forget drops room's owner, whichever node it names.
func (c *ownerCache) forget(room string) {
	c.mu.Lock()
	delete(c.m, room)
	c.mu.Unlock()
}

func (c *ownerCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// seen watches the publications this node receives: a room's room.end
// (its owner ended it, or shut down) drops its cached owner, so a member's
// next request looks the room up instead of asking a node that may have
// stopped answering. Called by the hub before the members get it, for
// every publication: a room's snapshots (10 a second) are parsed only on a
// node that caches the room's owner, not on the owner itself.
func (r *Rooms) seen(p Publication) {
	id, ok := strings.CutPrefix(p.Channel, prefixRoom)
	if !ok || !r.owners.has(id) {
		return
	}
	var m message
	if parseMessage(p.Data, &m) == nil && string(m.topic) == TopicRoomEnd {
		r.owners.forget(id)
	}
}

// owner returns the node that owns a room of another node: the cached one
// (cached true), else the Directory's (ErrRoomNotFound when none).
func (r *Rooms) owner(ctx context.Context, room string) (node string, cached bool, err error) {
	if node, ok := r.owners.get(room); ok {
		return node, true, nil
	}
	node, err = r.lookupOwner(ctx, room)
	return node, false, err
}

// lookupOwner asks the Directory for a room's owner and caches it.
// Concurrent lookups of one room share one Directory call, bounded by
// RequestTimeout; ctx bounds this caller's wait. A lease naming this node
// is a room that ended here: ErrRoomNotFound, not cached.
func (r *Rooms) lookupOwner(ctx context.Context, room string) (string, error) {
	ch := r.owners.sf.DoChan(room, func() (any, error) {
		lctx, cancel := context.WithTimeout(r.ctx, r.cfg.RequestTimeout)
		defer cancel()
		l, err := r.dir.Lookup(lctx, room)
		if err != nil {
			return "", err
		}
		if l.Node != r.cfg.Node {
			r.owners.put(room, l.Node)
		}
		return l.Node, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return "", res.Err
		}
		node := res.Val.(string)
		if node == r.cfg.Node {
			return "", ErrRoomNotFound
		}
		return node, nil
	case <-ctx.Done():
		return "", errRoomTimeout
	}
}
