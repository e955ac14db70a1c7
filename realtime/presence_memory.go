package realtime

import (
	"container/heap"
	"context"
	"slices"
	"sync"
)

// MemoryPresence is a Presence in process: a real backend for one node.
// Expired entries are removed lazily by the calls (no goroutine).
type MemoryPresence struct {
	cfg PresenceConfig

	mu      sync.Mutex
	users   expset[int64]                    // user -> latest expiry of its connections
	conns   map[int64]map[PresenceConn]int64 // user -> connection -> expiry (Unix ns)
	chans   expset[string]                   // channel -> latest expiry of its members
	members map[string]*expset[int64]        // channel -> user -> expiry
}

var _ Presence = (*MemoryPresence)(nil)

// NewMemoryPresence returns an empty MemoryPresence.
func NewMemoryPresence(cfg PresenceConfig) *MemoryPresence {
	return &MemoryPresence{
		cfg:     cfg.withDefaults(),
		conns:   map[int64]map[PresenceConn]int64{},
		members: map[string]*expset[int64]{},
	}
}

func (p *MemoryPresence) now() int64 { return p.cfg.Now().UnixNano() }

// trimLocked drops the users and channels whose every entry expired.
func (p *MemoryPresence) trimLocked(now int64) {
	p.users.trim(now, func(uk int64) { delete(p.conns, uk) })
	p.chans.trim(now, func(ch string) { delete(p.members, ch) })
}

// Touch implements Presence.
func (p *MemoryPresence) Touch(ctx context.Context, entries ...PresenceEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := p.now()
	exp := now + int64(p.cfg.TTL)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trimLocked(now)
	for _, e := range entries {
		p.users.touch(e.UserKey, exp)
		cs := p.conns[e.UserKey]
		if cs == nil {
			cs = map[PresenceConn]int64{}
			p.conns[e.UserKey] = cs
		}
		cs[e.PresenceConn] = exp
		for _, ch := range e.Channels {
			p.chans.touch(ch, exp)
			m := p.members[ch]
			if m == nil {
				m = &expset[int64]{}
				p.members[ch] = m
			}
			m.touch(e.UserKey, exp)
		}
	}
	return nil
}

// Leave implements Presence.
func (p *MemoryPresence) Leave(ctx context.Context, userKey int64, channels ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ch := range channels {
		if m := p.members[ch]; m != nil {
			m.remove(userKey)
		}
	}
	return nil
}

// Disconnect implements Presence.
func (p *MemoryPresence) Disconnect(ctx context.Context, c PresenceConn, channels ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	if cs := p.conns[c.UserKey]; cs != nil {
		delete(cs, c)
		if len(cs) == 0 {
			delete(p.conns, c.UserKey)
			p.users.remove(c.UserKey)
		}
	}
	p.mu.Unlock()
	return p.Leave(ctx, c.UserKey, channels...)
}

// Where implements Presence.
func (p *MemoryPresence) Where(ctx context.Context, userKey int64) ([]PresenceConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []PresenceConn
	for c, exp := range p.conns[userKey] {
		if exp > now {
			out = append(out, c)
		} else {
			delete(p.conns[userKey], c)
		}
	}
	slices.SortFunc(out, comparePresenceConn)
	return out, nil
}

func comparePresenceConn(a, b PresenceConn) int {
	if a.Node != b.Node {
		if a.Node < b.Node {
			return -1
		}
		return 1
	}
	if a.ConnID < b.ConnID {
		return -1
	}
	if a.ConnID > b.ConnID {
		return 1
	}
	return 0
}

// Count implements Presence.
func (p *MemoryPresence) Count(ctx context.Context, channel string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.members[channel]
	if m == nil {
		return 0, nil
	}
	m.trim(now, nil)
	return len(m.exp), nil
}

// expset is a set of keys with expiry times (Unix ns) whose expired keys
// are removed lazily, in expiry order, at O(log n) each: a map and a
// min-heap of (expiry, key) in which renewed or removed keys leave stale
// entries, skipped when popped and compacted away when they outnumber the
// live ones.
type expset[K comparable] struct {
	exp map[K]int64
	h   expHeap[K]
}

type expItem[K comparable] struct {
	at  int64
	key K
}

type expHeap[K comparable] []expItem[K]

func (h expHeap[K]) Len() int           { return len(h) }
func (h expHeap[K]) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expHeap[K]) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expHeap[K]) Push(x any)        { *h = append(*h, x.(expItem[K])) }
func (h *expHeap[K]) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// touch sets k's expiry to at, unless it already expires later.
func (s *expset[K]) touch(k K, at int64) {
	if s.exp == nil {
		s.exp = map[K]int64{}
	}
	if old, ok := s.exp[k]; ok && old >= at {
		return
	}
	s.exp[k] = at
	heap.Push(&s.h, expItem[K]{at, k})
	if len(s.h) > 2*len(s.exp)+64 {
		s.compact()
	}
}

func (s *expset[K]) remove(k K) { delete(s.exp, k) }

// trim removes the keys expired at now, calling gone (if not nil) for each.
func (s *expset[K]) trim(now int64, gone func(K)) {
	for len(s.h) > 0 && s.h[0].at <= now {
		it := heap.Pop(&s.h).(expItem[K])
		if at, ok := s.exp[it.key]; ok && at == it.at {
			delete(s.exp, it.key)
			if gone != nil {
				gone(it.key)
			}
		}
	}
	if len(s.h) > 2*len(s.exp)+64 {
		s.compact()
	}
}

// compact rebuilds the heap from the live keys.
func (s *expset[K]) compact() {
	s.h = s.h[:0]
	for k, at := range s.exp {
		s.h = append(s.h, expItem[K]{at, k})
	}
	heap.Init(&s.h)
}
