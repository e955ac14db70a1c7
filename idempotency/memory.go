package idempotency

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/madang-io/madang/internal/clock"
)

// MemoryStore is a Store in process memory: a real single-node store for
// development servers and tests (one process only: two processes with their
// own MemoryStore do not see each other's keys). Expired records are swept a
// few at a time while Begin runs, so it needs no goroutine.
// Safe for concurrent use.
type MemoryStore struct {
	clock clock.Clock

	mu      sync.Mutex
	entries map[memKey]memEntry
	calls   int
}

var _ Store = (*MemoryStore)(nil)

type memKey struct {
	userKey int64
	command string
	key     string
}

type memEntry struct {
	fp      Fingerprint
	token   string // "" once completed
	done    bool
	res     Result
	expires time.Time
}

// Expired records are swept incrementally, as Redis does: every sweepEvery
// Begin calls, up to sweepSample records (from a random place in the map)
// are checked and the expired ones deleted. An expired record that is never
// sampled is replaced when its key is used again.
const (
	sweepEvery  = 16
	sweepSample = 64
)

// NewMemoryStore returns an empty MemoryStore. c is its clock (nil: the
// system clock); leases and retention are measured on it.
func NewMemoryStore(c clock.Clock) *MemoryStore {
	return &MemoryStore{clock: clock.Or(c), entries: make(map[memKey]memEntry)}
}

// Len returns how many records (in flight or completed, including expired
// ones not yet swept) the store holds.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// Begin implements Store.
func (m *MemoryStore) Begin(_ context.Context, scope Scope, key string, fp Fingerprint, token string, lease time.Duration) (Begin, error) {
	now := m.clock.Now()
	k := memKey{scope.UserKey, scope.Command, key}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.calls%sweepEvery == 0 {
		n := 0
		for k, e := range m.entries {
			if !now.Before(e.expires) {
				delete(m.entries, k)
			}
			if n++; n == sweepSample {
				break
			}
		}
	}
	e, found := m.entries[k]
	if !found || !now.Before(e.expires) {
		m.entries[k] = memEntry{fp: fp, token: token, expires: now.Add(lease)}
		return Begin{State: Acquired}, nil
	}
	if e.fp != fp {
		return Begin{State: Mismatch}, nil
	}
	if e.done {
		// Copy the payload: callers may keep or modify what they get.
		res := e.res
		res.Payload = bytes.Clone(res.Payload)
		return Begin{State: Completed, Result: res}, nil
	}
	return Begin{State: InFlight, RetryAfter: e.expires.Sub(now)}, nil
}

// Complete implements Store.
func (m *MemoryStore) Complete(_ context.Context, scope Scope, key string, token string, res Result, retention time.Duration) error {
	now := m.clock.Now()
	k := memKey{scope.UserKey, scope.Command, key}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, found := m.entries[k]
	if !found || e.done || e.token != token || !now.Before(e.expires) {
		return ErrLeaseLost
	}
	res.Payload = bytes.Clone(res.Payload)
	m.entries[k] = memEntry{fp: e.fp, done: true, res: res, expires: now.Add(retention)}
	return nil
}

// Release implements Store.
func (m *MemoryStore) Release(_ context.Context, scope Scope, key string, token string) error {
	k := memKey{scope.UserKey, scope.Command, key}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, found := m.entries[k]; found && !e.done && e.token == token {
		delete(m.entries, k)
	}
	return nil
}
