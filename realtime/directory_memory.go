package realtime

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// MemoryDirectory is a Directory in process: a real backend for one node.
// Expired leases are removed lazily by the calls (no goroutine).
type MemoryDirectory struct {
	cfg DirectoryConfig

	mu     sync.Mutex
	leases map[string]Lease // room -> lease (Expires compared with the clock)
	exp    expset[string]   // room -> expiry, to forget expired leases
}

var _ Directory = (*MemoryDirectory)(nil)

// NewMemoryDirectory returns an empty MemoryDirectory.
func NewMemoryDirectory(cfg DirectoryConfig) *MemoryDirectory {
	return &MemoryDirectory{cfg: cfg.withDefaults(), leases: map[string]Lease{}}
}

// liveLocked returns the room's lease if it is live at now.
func (d *MemoryDirectory) liveLocked(room string, now time.Time) (Lease, bool) {
	d.exp.trim(now.UnixNano(), func(r string) { delete(d.leases, r) })
	l, ok := d.leases[room]
	if !ok || !now.Before(l.Expires) {
		return Lease{}, false
	}
	return l, true
}

func (d *MemoryDirectory) setLocked(l Lease) {
	d.leases[l.Room] = l
	d.exp.remove(l.Room) // a renewal may shorten the lease
	d.exp.touch(l.Room, l.Expires.UnixNano())
}

func checkTTL(ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("realtime: lease ttl %v below 1ms", ttl)
	}
	return nil
}

// Claim implements Directory.
func (d *MemoryDirectory) Claim(ctx context.Context, room, node string, ttl time.Duration) (Lease, error) {
	if err := checkTTL(ttl); err != nil {
		return Lease{}, err
	}
	if err := ctx.Err(); err != nil {
		return Lease{}, err
	}
	now := d.cfg.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if l, ok := d.liveLocked(room, now); ok {
		l.Token = ""
		return l, fmt.Errorf("%w: %q is on node %q", ErrRoomTaken, room, l.Node)
	}
	l := Lease{Room: room, Node: node, Token: newToken(), Expires: now.Add(ttl)}
	d.setLocked(l)
	return l, nil
}

// Renew implements Directory.
func (d *MemoryDirectory) Renew(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	if err := checkTTL(ttl); err != nil {
		return Lease{}, err
	}
	if err := ctx.Err(); err != nil {
		return Lease{}, err
	}
	now := d.cfg.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, ok := d.liveLocked(l.Room, now)
	if !ok || cur.Token != l.Token {
		return Lease{}, fmt.Errorf("%w: room %q", ErrLeaseLost, l.Room)
	}
	cur.Expires = now.Add(ttl)
	d.setLocked(cur)
	return cur, nil
}

// Release implements Directory.
func (d *MemoryDirectory) Release(ctx context.Context, l Lease) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if cur, ok := d.leases[l.Room]; ok && cur.Token == l.Token {
		delete(d.leases, l.Room)
		d.exp.remove(l.Room)
	}
	return nil
}

// Lookup implements Directory.
func (d *MemoryDirectory) Lookup(ctx context.Context, room string) (Lease, error) {
	if err := ctx.Err(); err != nil {
		return Lease{}, err
	}
	now := d.cfg.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	l, ok := d.liveLocked(room, now)
	if !ok {
		return Lease{}, fmt.Errorf("%w: %q", ErrRoomNotFound, room)
	}
	l.Token = ""
	return l, nil
}
