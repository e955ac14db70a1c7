package session

import (
	"context"
	"crypto/subtle"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/protocol"
)

// MemoryStore is a Store kept in one process: a real single-node backend for
// development servers, tests and single-instance games. Expiry is computed
// from Config.Now on every access (lazy) and one janitor goroutine removes
// ended sessions every Config.JanitorInterval; Close stops it.
type MemoryStore struct {
	cfg  Config
	subs subscribers
	jan  *janitor
	ctr  counters

	closed atomic.Bool
	// The sessions by user key (which every key id and token begins
	// with), in shards with a lock each, so requests of different users
	// seldom wait for each other (one lock was a quarter of the game
	// server's mutex delay at 1,000 clients).
	shards [memShards]memShard
}

// memShards is the number of lock shards of a MemoryStore.
const memShards = 64

// memShard holds the sessions of the user keys hashed to it.
type memShard struct {
	mu       sync.Mutex
	sessions map[string]*memSession        // by key id
	users    map[int64]map[string]struct{} // user key → key ids
	_        [64]byte                      // keeps neighbouring locks off one cache line
}

// shard returns the shard of a user key.
func (m *MemoryStore) shard(userKey int64) *memShard {
	return &m.shards[(uint64(userKey)*0x9e3779b97f4a7c15)>>(64-6)]
}

type memSession struct {
	s     Session
	win   uint64    // protocol.ReplayWindow.Seen; s.Counter is its Top
	ended byte      // 0 live, stateKicked, stateRevoked
	exp   time.Time // live: expiry; ended: when the tombstone goes
}

// Session states, shared with the Redis scripts.
const (
	stateKicked  = 'k'
	stateRevoked = 'r'
)

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns a MemoryStore and starts its janitor.
func NewMemoryStore(cfg Config) *MemoryStore {
	m := &MemoryStore{cfg: cfg.withDefaults()}
	for i := range m.shards {
		m.shards[i].sessions = make(map[string]*memSession)
		m.shards[i].users = make(map[int64]map[string]struct{})
	}
	m.jan = startJanitor(m.cfg.JanitorInterval, m.sweep)
	return m
}

// Close implements Store.
func (m *MemoryStore) Close() error {
	if !m.closed.Swap(true) {
		m.jan.stop()
		m.subs.clear()
	}
	return nil
}

// Len returns the number of sessions held, live or tombstoned (for tests and
// stats).
func (m *MemoryStore) Len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += len(sh.sessions)
		sh.mu.Unlock()
	}
	return n
}

// status returns the error for e at now (nil: live) and whether e is gone
// for good and may be deleted.
func (m *MemoryStore) status(e *memSession, now time.Time) (error, bool) {
	switch e.ended {
	case stateKicked:
		return ErrKicked, !now.Before(e.exp)
	case stateRevoked:
		return ErrRevoked, !now.Before(e.exp)
	}
	if now.Before(e.exp) {
		return nil, false
	}
	return ErrExpired, !now.Before(e.exp.Add(m.cfg.Tombstone))
}

// removeLocked deletes a session and its indexes.
func (sh *memShard) removeLocked(id string, e *memSession) {
	delete(sh.sessions, id)
	if ids := sh.users[e.s.UserKey]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(sh.users, e.s.UserKey)
		}
	}
}

func (m *MemoryStore) sweep() {
	now := m.cfg.Now()
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for id, e := range sh.sessions {
			if _, gone := m.status(e, now); gone {
				sh.removeLocked(id, e)
			}
		}
		sh.mu.Unlock()
	}
}

// Create implements Store.
func (m *MemoryStore) Create(_ context.Context, n CreateParams) (*Session, error) {
	if err := n.validate(); err != nil {
		return nil, err
	}
	token, id, secret := newToken(n.UserKey)
	now := m.cfg.Now()
	s := Session{
		Token: token, ID: id, UserKey: n.UserKey, ShardID: n.ShardID,
		ClientVersion: n.ClientVersion, Platform: n.Platform, DeviceID: n.DeviceID,
		Country: n.Country, Language: n.Language,
		Created: now, LastSeen: now, Secret: secret, Attrs: cloneAttrs(n.Attrs),
	}
	var kicked []Event
	sh := m.shard(n.UserKey)
	sh.mu.Lock()
	if m.closed.Load() {
		sh.mu.Unlock()
		return nil, ErrClosed
	}
	ids := sh.users[n.UserKey]
	if ids == nil {
		ids = make(map[string]struct{})
		sh.users[n.UserKey] = ids
	}
	if !m.cfg.AllowMultiple {
		for old := range ids {
			e := sh.sessions[old]
			if err, _ := m.status(e, now); err == nil {
				m.endLocked(e, stateKicked, now)
				kicked = append(kicked, Event{Kind: EventKicked, UserKey: n.UserKey, SessionID: old})
			}
		}
	}
	sh.sessions[id] = &memSession{s: s, exp: now.Add(m.cfg.TTL)}
	ids[id] = struct{}{}
	sh.mu.Unlock()
	m.ctr.created.Add(1)
	m.ctr.kicked.Add(uint64(len(kicked)))
	for _, ev := range kicked {
		m.subs.emit(ev)
	}
	out := copySession(&s)
	return out, nil
}

func (m *MemoryStore) endLocked(e *memSession, state byte, now time.Time) {
	e.ended = state
	e.exp = now.Add(m.cfg.Tombstone)
	e.s.Secret = nil
	e.s.Attrs = nil
}

// Stats returns the store's counters.
func (m *MemoryStore) Stats() Stats { return m.ctr.stats() }

// Get implements Store.
func (m *MemoryStore) Get(_ context.Context, token string) (*Session, error) {
	s, err := m.getToken(token)
	m.ctr.lookup(err)
	return s, err
}

func (m *MemoryStore) getToken(token string) (*Session, error) {
	uk, id, _, err := splitToken(token)
	if err != nil {
		return nil, err
	}
	sh := m.shard(uk)
	sh.mu.Lock()
	if e := sh.sessions[id]; e == nil || subtle.ConstantTimeCompare([]byte(e.s.Token), []byte(token)) != 1 {
		sh.mu.Unlock()
		return nil, ErrNotFound
	}
	s, err := m.touchLocked(sh, id, false, 0)
	sh.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return copySession(&s), nil
}

// GetFrame implements Store.
func (m *MemoryStore) GetFrame(_ context.Context, keyID string, counter uint64) (*Session, error) {
	uk, _, err := split(keyID)
	if err != nil {
		m.ctr.lookup(err)
		return nil, err
	}
	sh := m.shard(uk)
	sh.mu.Lock()
	s, err := m.touchLocked(sh, keyID, true, counter)
	sh.mu.Unlock()
	m.ctr.lookup(err)
	if err != nil {
		return nil, err
	}
	return copySession(&s), nil
}

// touchLocked looks a session up in sh, whose lock is held, and returns a
// shallow copy: its Secret and Attrs are never changed in place (a session
// that ends gets new nil ones), so the caller copies them after unlocking.
func (m *MemoryStore) touchLocked(sh *memShard, id string, frame bool, counter uint64) (Session, error) {
	if m.closed.Load() {
		return Session{}, ErrClosed
	}
	e := sh.sessions[id]
	if e == nil {
		return Session{}, ErrNotFound
	}
	now := m.cfg.Now()
	err, gone := m.status(e, now)
	if gone {
		sh.removeLocked(id, e)
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, err
	}
	if frame {
		w := protocol.ReplayWindow{Top: e.s.Counter, Seen: e.win}
		if !w.Accept(counter) {
			return Session{}, fmt.Errorf("session: counter %d, highest accepted %d: %w", counter, e.s.Counter, protocol.ErrReplayed)
		}
		e.s.Counter, e.win = w.Top, w.Seen
	}
	out := e.s
	if frame {
		out.Counter = counter
	}
	e.s.LastSeen = now
	e.exp = now.Add(m.cfg.TTL)
	return out, nil
}

// Secret implements Store.
func (m *MemoryStore) Secret(_ context.Context, keyID string) ([]byte, error) {
	uk, _, err := split(keyID)
	if err != nil {
		return nil, err
	}
	sh := m.shard(uk)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if m.closed.Load() {
		return nil, ErrClosed
	}
	e := sh.sessions[keyID]
	if e == nil {
		return nil, ErrNotFound
	}
	if err, _ := m.status(e, m.cfg.Now()); err != nil {
		return nil, err
	}
	return append([]byte(nil), e.s.Secret...), nil
}

// Revoke implements Store.
func (m *MemoryStore) Revoke(_ context.Context, keyID string) error {
	uk, _, err := split(keyID)
	if err != nil {
		return nil // nothing to revoke
	}
	now := m.cfg.Now()
	sh := m.shard(uk)
	sh.mu.Lock()
	if m.closed.Load() {
		sh.mu.Unlock()
		return ErrClosed
	}
	e := sh.sessions[keyID]
	live := e != nil
	if live {
		err, _ := m.status(e, now)
		live = err == nil
	}
	if live {
		m.endLocked(e, stateRevoked, now)
	}
	sh.mu.Unlock()
	if live {
		m.ctr.revoked.Add(1)
		m.subs.emit(Event{Kind: EventRevoked, UserKey: uk, SessionID: keyID})
	}
	return nil
}

// RevokeUser implements Store.
func (m *MemoryStore) RevokeUser(_ context.Context, userKey int64) error {
	now := m.cfg.Now()
	var evs []Event
	sh := m.shard(userKey)
	sh.mu.Lock()
	if m.closed.Load() {
		sh.mu.Unlock()
		return ErrClosed
	}
	for id := range sh.users[userKey] {
		e := sh.sessions[id]
		if err, _ := m.status(e, now); err == nil {
			m.endLocked(e, stateRevoked, now)
			evs = append(evs, Event{Kind: EventRevoked, UserKey: userKey, SessionID: id})
		}
	}
	sh.mu.Unlock()
	m.ctr.revoked.Add(uint64(len(evs)))
	for _, ev := range evs {
		m.subs.emit(ev)
	}
	return nil
}

// Subscribe implements Store.
func (m *MemoryStore) Subscribe(fn func(Event)) (cancel func()) { return m.subs.add(fn) }

func copySession(s *Session) *Session {
	out := *s
	out.Secret = append([]byte(nil), s.Secret...)
	out.Attrs = cloneAttrs(s.Attrs)
	return &out
}

// janitor runs fn every interval on one goroutine until stop.
type janitor struct {
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

func startJanitor(every time.Duration, fn func()) *janitor {
	j := &janitor{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(j.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-j.quit:
				return
			case <-t.C:
				fn()
			}
		}
	}()
	return j
}

func (j *janitor) stop() {
	j.once.Do(func() { close(j.quit) })
	<-j.done
}

// UserSessions implements SessionLister: the user's live sessions, oldest
// first, without their tokens and secrets.
func (m *MemoryStore) UserSessions(_ context.Context, userKey int64) ([]*Session, error) {
	now := m.cfg.Now()
	sh := m.shard(userKey)
	sh.mu.Lock()
	if m.closed.Load() {
		sh.mu.Unlock()
		return nil, ErrClosed
	}
	var out []*Session
	for id := range sh.users[userKey] {
		e := sh.sessions[id]
		if e == nil {
			continue
		}
		if err, _ := m.status(e, now); err == nil {
			out = append(out, listed(&e.s))
		}
	}
	sh.mu.Unlock()
	sortSessions(out)
	return out, nil
}
