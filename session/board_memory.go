package session

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/internal/clock"
)

// BoardMemoryConfig configures a BoardMemoryStore. The zero value works.
type BoardMemoryConfig struct {
	// Now returns the current time; nil means time.Now. It decides season
	// expiry; give it the same Now as the Boards that use the store.
	Now func() time.Time
}

// BoardMemoryStore is a BoardStore in process memory: a real single-node
// backend for one server, development and tests. Each season is a hash index
// of user → value (open addressing: one cache line a lookup, usually) plus an
// order-statistic B+tree, so Submit, Rank and the start of Top and Around
// cost O(log n). Seasons past their TTL are dropped lazily
// (on access, and by a sweep run from writes once the earliest TTL is due);
// there is no goroutine. Safe for concurrent use: one lock per season, so
// boards and seasons do not wait for each other.
type BoardMemoryStore struct {
	now func() time.Time

	mu        sync.Mutex
	sets      map[boardSetKey]*boardSet
	nextSweep time.Time // earliest expiry among sets; zero = none
}

type boardSetKey struct{ board, season string }

type boardSet struct {
	expiry atomic.Int64 // UnixNano after which the set is gone; 0 = never

	mu    sync.RWMutex
	dead  bool       // dropped from the store; writers must look it up again
	index boardIndex // user → value
	tree  boardTree
}

// expired reports whether s is past its TTL at now.
func (s *boardSet) expired(now time.Time) bool {
	e := s.expiry.Load()
	return e != 0 && now.UnixNano() >= e
}

var _ BoardStore = (*BoardMemoryStore)(nil)

// NewBoardMemoryStore returns an empty store.
func NewBoardMemoryStore(cfg BoardMemoryConfig) *BoardMemoryStore {
	return &BoardMemoryStore{now: clock.OrNow(cfg.Now), sets: make(map[boardSetKey]*boardSet)}
}

// Seasons returns the number of seasons the store holds (expired ones not
// yet dropped included).
func (m *BoardMemoryStore) Seasons() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sets)
}

// get returns the live set of ref, creating it when create is set; nil when
// absent.
func (m *BoardMemoryStore) get(ref BoardRef, create bool) *boardSet {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.nextSweep.IsZero() && !now.Before(m.nextSweep) {
		m.sweepLocked(now)
	}
	k := boardSetKey{ref.Board, ref.Season}
	s := m.sets[k]
	if s != nil && s.expired(now) {
		m.dropLocked(k, s)
		s = nil
	}
	if s == nil && create {
		s = &boardSet{}
		m.sets[k] = s
	}
	return s
}

func (m *BoardMemoryStore) dropLocked(k boardSetKey, s *boardSet) {
	s.mu.Lock()
	s.dead = true
	s.mu.Unlock()
	delete(m.sets, k)
}

func (m *BoardMemoryStore) sweepLocked(now time.Time) {
	m.nextSweep = time.Time{}
	for k, s := range m.sets {
		e := s.expiry.Load()
		switch {
		case e == 0:
		case s.expired(now):
			m.dropLocked(k, s)
		case m.nextSweep.IsZero() || e < m.nextSweep.UnixNano():
			m.nextSweep = time.Unix(0, e)
		}
	}
}

// Write implements BoardStore.
func (m *BoardMemoryStore) Write(ctx context.Context, ref BoardRef, ws []BoardWrite) ([]error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for {
		s := m.get(ref, true)
		s.mu.Lock()
		if s.dead {
			s.mu.Unlock()
			continue
		}
		var errs []error
		for i, w := range ws {
			if err := s.apply(w); err != nil {
				if errs == nil {
					errs = make([]error, len(ws))
				}
				errs[i] = err
			}
		}
		var exp time.Time
		if ref.TTL > 0 {
			exp = ref.ExpireAt
			if exp.IsZero() {
				exp = m.now().Add(ref.TTL)
			}
			s.expiry.Store(exp.UnixNano())
		} else {
			s.expiry.Store(0)
		}
		s.mu.Unlock()
		if !exp.IsZero() {
			m.mu.Lock()
			if m.nextSweep.IsZero() || exp.Before(m.nextSweep) {
				m.nextSweep = exp
			}
			m.mu.Unlock()
		}
		return errs, nil
	}
}

func (s *boardSet) apply(w BoardWrite) error {
	old, ok := s.index.get(w.User)
	v := w.Value
	switch w.Op {
	case ScoreBest:
		if ok && old >= v {
			return nil
		}
	case ScoreSet:
	case ScoreIncr:
		var score int64
		if ok {
			var err error
			if score, _, err = ScoreDecode(old); err != nil {
				return err
			}
		}
		var err error
		if v, err = ScoreEncode(score+w.Delta, w.Slot); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: operator %d", ErrBoardInvalid, w.Op)
	}
	if ok {
		if old == v {
			return nil
		}
		s.tree.remove(BoardMember{User: w.User, Value: old})
	}
	s.index.set(w.User, v)
	s.tree.insert(BoardMember{User: w.User, Value: v})
	return nil
}

// Rank implements BoardStore.
func (m *BoardMemoryStore) Rank(ctx context.Context, ref BoardRef, user int64) (int64, float64, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	s := m.get(ref, false)
	if s == nil {
		return 0, 0, fmt.Errorf("%w: user %d", ErrBoardNotFound, user)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.index.get(user)
	if !ok {
		return 0, 0, fmt.Errorf("%w: user %d", ErrBoardNotFound, user)
	}
	return s.tree.rank(BoardMember{User: user, Value: v}), v, nil
}

// Range implements BoardStore.
func (m *BoardMemoryStore) Range(ctx context.Context, ref BoardRef, start, stop int64) ([]BoardMember, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := m.get(ref, false)
	if s == nil || start < 0 || stop < start {
		return nil, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if start >= int64(s.tree.n) {
		return nil, nil
	}
	return s.tree.appendRange(make([]BoardMember, 0, min(stop, int64(s.tree.n)-1)-start+1), start, stop), nil
}

// Around implements BoardStore.
func (m *BoardMemoryStore) Around(ctx context.Context, ref BoardRef, user int64, n int) (int64, []BoardMember, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	s := m.get(ref, false)
	if s == nil {
		return 0, nil, fmt.Errorf("%w: user %d", ErrBoardNotFound, user)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.index.get(user)
	if !ok {
		return 0, nil, fmt.Errorf("%w: user %d", ErrBoardNotFound, user)
	}
	start, stop := BoardWindow(s.tree.rank(BoardMember{User: user, Value: v}), int64(s.tree.n), n)
	return start, s.tree.appendRange(make([]BoardMember, 0, stop-start+1), start, stop), nil
}

// Remove implements BoardStore.
func (m *BoardMemoryStore) Remove(ctx context.Context, ref BoardRef, user int64) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s := m.get(ref, false)
	if s == nil {
		return false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.index.get(user)
	if !ok {
		return false, nil
	}
	s.index.del(user)
	s.tree.remove(BoardMember{User: user, Value: v})
	return true, nil
}

// Count implements BoardStore.
func (m *BoardMemoryStore) Count(ctx context.Context, ref BoardRef) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s := m.get(ref, false)
	if s == nil {
		return 0, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return int64(s.tree.n), nil
}
