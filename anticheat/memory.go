package anticheat

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/madang-io/madang/internal/clock"
)

// MemoryConfig configures a MemoryStore. The zero value works.
type MemoryConfig struct {
	// MaxEvents bounds the hack log kept in memory; the oldest events are
	// dropped first (counters keep counting). Default 100,000.
	MaxEvents int
	// Now returns the current time; nil means time.Now. It dates records
	// written without a time.
	Now func() time.Time
}

// MemoryStore is a single-process Store: the signature registry, a bounded
// hack log with counters, the block list and redemptions. It is a real
// backend for one game server (the embedded default), not a mock. Safe for
// concurrent use; GetBlock does not allocate.
//
// Limits: the event log keeps the latest MaxEvents events (the operator
// queries see only those); counters (one small map per user with a
// verdict), blocks and redemptions are kept for the life of the process —
// one entry per offender, blocked user or redeemed transaction. Use the
// SQLStore when they must survive a restart or be shared.
type MemoryStore struct {
	cfg MemoryConfig

	sigMu sync.RWMutex
	sigs  map[string]SignatureEntry

	logMu    sync.Mutex
	events   []Event // ring of at most MaxEvents
	head     int     // index of the oldest event when full
	nextID   int64
	counters map[int64]map[Kind]int64

	blockShards [speedShards]blockShard

	redMu sync.Mutex
	reds  map[redKey]Redemption
}

type blockShard struct {
	mu sync.RWMutex
	m  map[int64]Block
	_  [32]byte // 64 bytes: shards on separate cache lines
}

type redKey struct{ store, tx string }

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore(cfg MemoryConfig) *MemoryStore {
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = 100_000
	}
	cfg.Now = clock.OrNow(cfg.Now)
	s := &MemoryStore{
		cfg:      cfg,
		sigs:     make(map[string]SignatureEntry),
		counters: make(map[int64]map[Kind]int64),
		reds:     make(map[redKey]Redemption),
	}
	for i := range s.blockShards {
		s.blockShards[i].m = make(map[int64]Block)
	}
	return s
}

// PutSignature implements SignatureStore.
func (s *MemoryStore) PutSignature(_ context.Context, e SignatureEntry) error {
	e.CertSHA256 = slices.Clone(e.CertSHA256)
	s.sigMu.Lock()
	s.sigs[e.Version] = e
	s.sigMu.Unlock()
	return nil
}

// DeleteSignature implements SignatureStore.
func (s *MemoryStore) DeleteSignature(_ context.Context, version string) error {
	s.sigMu.Lock()
	delete(s.sigs, version)
	s.sigMu.Unlock()
	return nil
}

// GetSignature implements SignatureStore.
func (s *MemoryStore) GetSignature(_ context.Context, version string) (SignatureEntry, bool, error) {
	s.sigMu.RLock()
	e, ok := s.sigs[version]
	s.sigMu.RUnlock()
	e.CertSHA256 = slices.Clone(e.CertSHA256)
	return e, ok, nil
}

// ListSignatures implements SignatureStore.
func (s *MemoryStore) ListSignatures(context.Context) ([]SignatureEntry, error) {
	s.sigMu.RLock()
	defer s.sigMu.RUnlock()
	out := make([]SignatureEntry, 0, len(s.sigs))
	for _, e := range s.sigs {
		e.CertSHA256 = slices.Clone(e.CertSHA256)
		out = append(out, e)
	}
	return out, nil
}

// Record implements Log.
func (s *MemoryStore) Record(_ context.Context, e Event) (int64, int64, error) {
	if err := checkEvent(&e); err != nil {
		return 0, 0, err
	}
	if e.At.IsZero() {
		e.At = s.cfg.Now()
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	s.nextID++
	e.ID = s.nextID
	if len(s.events) < s.cfg.MaxEvents {
		s.events = append(s.events, e)
	} else {
		s.events[s.head] = e
		s.head = (s.head + 1) % len(s.events)
	}
	c := s.counters[e.UserKey]
	if c == nil {
		c = make(map[Kind]int64)
		s.counters[e.UserKey] = c
	}
	c[e.Kind]++
	var total int64
	for _, n := range c {
		total += n
	}
	return c[e.Kind], total, nil
}

// UserCounts implements Log.
func (s *MemoryStore) UserCounts(_ context.Context, userKey int64) (map[Kind]int64, error) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	out := make(map[Kind]int64, len(s.counters[userKey]))
	for k, n := range s.counters[userKey] {
		out[k] = n
	}
	return out, nil
}

// eachEvent calls f for the kept events, oldest first. The caller holds logMu.
func (s *MemoryStore) eachEvent(f func(*Event)) {
	n := len(s.events)
	for i := range n {
		f(&s.events[(s.head+i)%n])
	}
}

// UserEvents implements Log.
func (s *MemoryStore) UserEvents(_ context.Context, userKey int64, limit int) ([]Event, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	var out []Event
	s.eachEvent(func(e *Event) {
		if e.UserKey == userKey {
			out = append(out, *e)
		}
	})
	slices.Reverse(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// DailyCounts implements Log.
func (s *MemoryStore) DailyCounts(_ context.Context, from, to time.Time) ([]DayCount, error) {
	type dk struct {
		day  int64
		kind Kind
	}
	m := make(map[dk]int64)
	s.logMu.Lock()
	s.eachEvent(func(e *Event) {
		if !e.At.Before(from) && e.At.Before(to) {
			m[dk{utcDay(e.At).Unix(), e.Kind}]++
		}
	})
	s.logMu.Unlock()
	out := make([]DayCount, 0, len(m))
	for k, n := range m {
		out = append(out, DayCount{Day: time.Unix(k.day, 0).UTC(), Kind: k.kind, Count: n})
	}
	slices.SortFunc(out, func(a, b DayCount) int {
		return cmp.Or(a.Day.Compare(b.Day), cmp.Compare(a.Kind, b.Kind))
	})
	return out, nil
}

// TopOffenders implements Log.
func (s *MemoryStore) TopOffenders(_ context.Context, since time.Time, limit int) ([]Offender, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	m := make(map[int64]int64)
	s.logMu.Lock()
	s.eachEvent(func(e *Event) {
		if !e.At.Before(since) {
			m[e.UserKey]++
		}
	})
	s.logMu.Unlock()
	out := make([]Offender, 0, len(m))
	for u, n := range m {
		out = append(out, Offender{UserKey: u, Count: n})
	}
	sortOffenders(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func sortOffenders(out []Offender) {
	slices.SortFunc(out, func(a, b Offender) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.UserKey, b.UserKey))
	})
}

// PutBlock implements Blocks.
func (s *MemoryStore) PutBlock(_ context.Context, b Block) error {
	b.Reason = truncate(b.Reason, MaxBlockReasonLen)
	if b.At.IsZero() {
		b.At = s.cfg.Now()
	}
	sh := &s.blockShards[shardOf(b.UserKey)]
	sh.mu.Lock()
	sh.m[b.UserKey] = b
	sh.mu.Unlock()
	return nil
}

// DeleteBlock implements Blocks.
func (s *MemoryStore) DeleteBlock(_ context.Context, userKey int64) error {
	sh := &s.blockShards[shardOf(userKey)]
	sh.mu.Lock()
	delete(sh.m, userKey)
	sh.mu.Unlock()
	return nil
}

// GetBlock implements Blocks.
func (s *MemoryStore) GetBlock(_ context.Context, userKey int64, now time.Time) (Block, bool, error) {
	sh := &s.blockShards[shardOf(userKey)]
	sh.mu.RLock()
	b, ok := sh.m[userKey]
	sh.mu.RUnlock()
	if !ok || (!b.Permanent() && !now.Before(b.Until)) {
		return Block{}, false, nil
	}
	return b, true, nil
}

// ActiveBlocks implements BlockLister.
func (s *MemoryStore) ActiveBlocks(_ context.Context, now time.Time, limit int) ([]Block, error) {
	var out []Block
	for i := range s.blockShards {
		sh := &s.blockShards[i]
		sh.mu.RLock()
		for _, b := range sh.m {
			if len(out) >= limit {
				break
			}
			if b.Permanent() || now.Before(b.Until) {
				out = append(out, b)
			}
		}
		sh.mu.RUnlock()
	}
	return out, nil
}

// Redeem implements Redemptions.
func (s *MemoryStore) Redeem(_ context.Context, r Redemption) (Redemption, bool, error) {
	if err := checkRedemption(&r); err != nil {
		return Redemption{}, false, err
	}
	if r.At.IsZero() {
		r.At = s.cfg.Now()
	}
	k := redKey{r.Store, r.TransactionID}
	s.redMu.Lock()
	defer s.redMu.Unlock()
	if old, ok := s.reds[k]; ok {
		return old, false, nil
	}
	s.reds[k] = r
	return r, true, nil
}
