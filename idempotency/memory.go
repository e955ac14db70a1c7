package idempotency

import (
	"bytes"
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"time"

	"github.com/madang-io/madang/internal/clock"
	"github.com/madang-io/madang/protocol"
)

// ErrStoreFull: a MemoryStore holds MemoryConfig.MaxRecords unexpired
// records and Begin found no room for a new key. Nothing was stored and the
// function did not run; the Keeper answers CodeUnavailable, so the client
// retries later (when records have expired).
var ErrStoreFull = &protocol.Error{Code: protocol.CodeUnavailable, Message: "idempotency: memory store full"}

// MemoryConfig configures a MemoryStore. The zero value works.
type MemoryConfig struct {
	// Now returns the current time; nil means time.Now. Leases and
	// retention are measured on it.
	Now func() time.Time
	// SizeHint is how many records to make room for up front, so a store
	// that will hold that many does not grow its index step by step.
	// Default 0: start small and grow as records are added.
	SizeHint int
	// MaxRecords bounds how many records (in flight or completed) the store
	// holds. When it is reached, Begin for a new key first deletes the
	// expired records and, if none has expired, fails with ErrStoreFull;
	// keys already stored are served as usual. Default 0: no bound other
	// than retention (see MemoryStore for the memory a record takes).
	MaxRecords int
}

// MemoryStore is a Store in process memory: a real single-node store for
// development servers and tests (one process only: two processes with their
// own MemoryStore do not see each other's keys). Expired records are swept a
// few at a time while Begin runs, so it needs no goroutine.
//
// Size: a record takes about 180 bytes (160 in its record and about 20 in
// the index), plus its key, in-flight token, message and payload (the
// command string is shared when the caller's is). Records stay until their
// retention (Config.Retention, 24 h by default) ends and are deleted within
// one sweep pass after that, so a store serving r new keys per second holds
// about r × retention records: 100 new keys/s for 24 h is 8.6 million
// records, about 2 GB with small payloads. Bound it with
// MemoryConfig.MaxRecords; memory freed by expired records is reused for new
// ones but not returned to the system.
//
// Safe for concurrent use.
type MemoryStore struct {
	now  func() time.Time
	base time.Time // times are kept as offsets from base (monotonic when the clock is)
	max  int

	seed maphash.Seed
	hash func(m *MemoryStore, scope Scope, key string) uint64 // hashKey; tests force collisions

	mu sync.Mutex
	// index maps the hash of (scope, key) to its record number: a map
	// without pointers, which the garbage collector need not scan. A key
	// whose hash is already taken by another key goes to collided.
	index    map[uint64]uint32
	collided map[memKey]uint32
	chunks   [][]memRecord // records, memChunk per chunk: never moved once allocated
	free     []uint32      // record numbers of deleted records, to reuse
	next     uint32        // record numbers below next have been handed out
	cursor   uint32        // where the next sweep starts
	calls    int
	// fullUntil: when the store was last found full after a complete sweep,
	// the earliest expiry among its records; until then a new key is refused
	// without sweeping again.
	fullUntil int64
}

var _ Store = (*MemoryStore)(nil)

type memKey struct {
	userKey int64
	command string
	key     string
}

// memRecord is one key's record. Times are nanoseconds since MemoryStore.base.
type memRecord struct {
	inUse   bool // false: a free record
	done    bool // completed: res is stored
	hash    uint64
	mk      memKey
	expires int64
	fp      Fingerprint
	token   string // the in-flight token; "" once completed
	res     Result
}

// memChunk is how many records one chunk holds.
const memChunk = 256

// Expired records are swept incrementally: every sweepEvery Begin calls,
// the next sweepSample records (in record-number order, round robin, so
// records are read in memory order and every record is checked once per
// pass) are checked and the expired ones deleted. An expired record is also
// replaced when its key is used again before the sweep reaches it.
const (
	sweepEvery  = 16
	sweepSample = 64
)

// NewMemoryStore returns an empty MemoryStore with the default MemoryConfig
// and now as its clock (MemoryConfig.Now; nil means time.Now): leases and
// retention are measured on it. NewMemoryStoreConfig sets the other
// settings.
func NewMemoryStore(now func() time.Time) *MemoryStore {
	s, _ := NewMemoryStoreConfig(MemoryConfig{Now: now})
	return s
}

// NewMemoryStoreConfig returns an empty MemoryStore configured by cfg. It
// fails only on a negative SizeHint or MaxRecords.
func NewMemoryStoreConfig(cfg MemoryConfig) (*MemoryStore, error) {
	if cfg.SizeHint < 0 || cfg.MaxRecords < 0 {
		return nil, fmt.Errorf("idempotency: negative SizeHint (%d) or MaxRecords (%d)", cfg.SizeHint, cfg.MaxRecords)
	}
	hint := cfg.SizeHint
	if cfg.MaxRecords > 0 {
		hint = min(hint, cfg.MaxRecords)
	}
	hint = min(hint, math.MaxUint32/2)
	now := clock.OrNow(cfg.Now)
	return &MemoryStore{
		now:    now,
		base:   now(),
		max:    cfg.MaxRecords,
		seed:   maphash.MakeSeed(),
		hash:   hashKey,
		index:  make(map[uint64]uint32, hint),
		chunks: make([][]memRecord, 0, (hint+memChunk-1)/memChunk),
	}, nil
}

// Len returns how many records (in flight or completed, including expired
// ones not yet swept) the store holds.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.index) + len(m.collided)
}

// since returns t as nanoseconds since m.base.
func (m *MemoryStore) since(t time.Time) int64 { return int64(t.Sub(m.base)) }

// after returns t + d, saturating instead of overflowing.
func after(t int64, d time.Duration) int64 {
	if d > 0 && t > math.MaxInt64-int64(d) {
		return math.MaxInt64
	}
	return t + int64(d)
}

// hashKey hashes (scope, key) with the store's random seed.
func hashKey(m *MemoryStore, scope Scope, key string) uint64 {
	h := maphash.String(m.seed, key)
	h ^= bits.RotateLeft64(maphash.String(m.seed, scope.Command), 31)
	return h ^ uint64(scope.UserKey)*0x9e3779b97f4a7c15
}

// lookup returns the record number of (scope, key) and h, its hash. Called
// with m.mu held.
func (m *MemoryStore) lookup(scope Scope, key string) (i uint32, h uint64, found bool) {
	h = m.hash(m, scope, key)
	if i, ok := m.index[h]; ok {
		if r := m.rec(i); r.mk.userKey == scope.UserKey && r.mk.key == key && r.mk.command == scope.Command {
			return i, h, true
		}
	}
	if len(m.collided) > 0 {
		i, ok := m.collided[memKey{scope.UserKey, scope.Command, key}]
		return i, h, ok
	}
	return 0, h, false
}

func (m *MemoryStore) rec(i uint32) *memRecord { return &m.chunks[i/memChunk][i%memChunk] }

// alloc returns a free record number. Called with m.mu held.
func (m *MemoryStore) alloc() (uint32, error) {
	if n := len(m.free); n > 0 {
		i := m.free[n-1]
		m.free = m.free[:n-1]
		return i, nil
	}
	if m.next == math.MaxUint32 {
		return 0, ErrStoreFull
	}
	i := m.next
	if int(i/memChunk) == len(m.chunks) {
		m.chunks = append(m.chunks, make([]memRecord, memChunk))
	}
	m.next++
	return i, nil
}

// insert indexes record i, filled in, under its hash. Called with m.mu
// held.
func (m *MemoryStore) insert(i uint32) {
	r := m.rec(i)
	if _, taken := m.index[r.hash]; !taken {
		m.index[r.hash] = i
		return
	}
	if m.collided == nil {
		m.collided = make(map[memKey]uint32)
	}
	m.collided[r.mk] = i
}

// remove deletes record i. Called with m.mu held.
func (m *MemoryStore) remove(i uint32) {
	r := m.rec(i)
	if j, ok := m.index[r.hash]; ok && j == i {
		delete(m.index, r.hash)
	} else {
		delete(m.collided, r.mk)
	}
	*r = memRecord{} // drop its strings and payload
	m.free = append(m.free, i)
}

// sweep checks up to n records (all if n < 0), in record-number order from
// where the last sweep stopped, deletes the expired ones and returns the
// earliest expiry among those it kept. Called with m.mu held.
func (m *MemoryStore) sweep(now int64, n int) int64 {
	earliest := int64(math.MaxInt64)
	if n < 0 || n > int(m.next) {
		n = int(m.next)
	}
	for ; n > 0; n-- {
		if m.cursor >= m.next {
			m.cursor = 0
		}
		i := m.cursor
		m.cursor++
		r := m.rec(i)
		if !r.inUse {
			continue // free
		}
		if now >= r.expires {
			m.remove(i)
		} else if r.expires < earliest {
			earliest = r.expires
		}
	}
	return earliest
}

// Begin implements Store.
func (m *MemoryStore) Begin(_ context.Context, scope Scope, key string, fp Fingerprint, token string, lease time.Duration) (Begin, error) {
	t := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.since(t)
	m.calls++
	if m.calls%sweepEvery == 0 {
		m.sweep(now, sweepSample)
	}
	i, h, found := m.lookup(scope, key)
	if found {
		r := m.rec(i)
		if now < r.expires {
			if r.fp != fp {
				return Begin{State: Mismatch}, nil
			}
			if r.done {
				// Copy the payload: callers may keep or modify what they get.
				res := r.res
				res.Payload = bytes.Clone(res.Payload)
				return Begin{State: Completed, Result: res}, nil
			}
			return Begin{State: InFlight, RetryAfter: time.Duration(r.expires - now)}, nil
		}
		// Expired: the key is free; reuse its record.
		*r = memRecord{inUse: true, hash: r.hash, mk: r.mk, expires: after(now, lease), fp: fp, token: token}
		return Begin{State: Acquired}, nil
	}
	if m.max > 0 && len(m.index)+len(m.collided) >= m.max {
		if now < m.fullUntil {
			return Begin{}, ErrStoreFull
		}
		if earliest := m.sweep(now, -1); len(m.index)+len(m.collided) >= m.max {
			m.fullUntil = earliest
			return Begin{}, ErrStoreFull
		}
	}
	i, err := m.alloc()
	if err != nil {
		return Begin{}, err
	}
	*m.rec(i) = memRecord{inUse: true, hash: h, mk: memKey{scope.UserKey, scope.Command, key}, expires: after(now, lease), fp: fp, token: token}
	m.insert(i)
	m.fullUntil = 0 // the new record may expire sooner than the others
	return Begin{State: Acquired}, nil
}

// Complete implements Store.
func (m *MemoryStore) Complete(_ context.Context, scope Scope, key string, token string, res Result, retention time.Duration) error {
	t := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.since(t)
	i, _, found := m.lookup(scope, key)
	if !found {
		return ErrLeaseLost
	}
	r := m.rec(i)
	if r.done || r.token != token || now >= r.expires {
		return ErrLeaseLost
	}
	res.Payload = bytes.Clone(res.Payload)
	*r = memRecord{inUse: true, hash: r.hash, mk: r.mk, expires: after(now, retention), fp: r.fp, done: true, res: res}
	return nil
}

// Release implements Store.
func (m *MemoryStore) Release(_ context.Context, scope Scope, key string, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i, _, found := m.lookup(scope, key); found {
		if r := m.rec(i); !r.done && r.token == token {
			m.remove(i)
		}
	}
	return nil
}
