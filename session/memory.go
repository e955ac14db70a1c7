package session

import (
	"context"
	"crypto/subtle"
	"fmt"
	"sync"
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

	mu       sync.Mutex
	closed   bool
	sessions map[string]*memSession        // by key id
	users    map[int64]map[string]struct{} // user key → key ids
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
	m := &MemoryStore{
		cfg:      cfg.withDefaults(),
		sessions: make(map[string]*memSession),
		users:    make(map[int64]map[string]struct{}),
	}
	m.jan = startJanitor(m.cfg.JanitorInterval, m.sweep)
	return m
}

// Close implements Store.
func (m *MemoryStore) Close() error {
	m.mu.Lock()
	already := m.closed
	m.closed = true
	m.mu.Unlock()
	if !already {
		m.jan.stop()
		m.subs.clear()
	}
	return nil
}

// Len returns the number of sessions held, live or tombstoned (for tests and
// stats).
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
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
func (m *MemoryStore) removeLocked(id string, e *memSession) {
	delete(m.sessions, id)
	if ids := m.users[e.s.UserKey]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(m.users, e.s.UserKey)
		}
	}
}

func (m *MemoryStore) sweep() {
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, e := range m.sessions {
		if _, gone := m.status(e, now); gone {
			m.removeLocked(id, e)
		}
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
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	ids := m.users[n.UserKey]
	if ids == nil {
		ids = make(map[string]struct{})
		m.users[n.UserKey] = ids
	}
	if !m.cfg.AllowMultiple {
		for old := range ids {
			e := m.sessions[old]
			if err, _ := m.status(e, now); err == nil {
				m.endLocked(e, stateKicked, now)
				kicked = append(kicked, Event{Kind: EventKicked, UserKey: n.UserKey, SessionID: old})
			}
		}
	}
	m.sessions[id] = &memSession{s: s, exp: now.Add(m.cfg.TTL)}
	ids[id] = struct{}{}
	m.mu.Unlock()
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
	_, id, _, err := splitToken(token)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.sessions[id]; e == nil || subtle.ConstantTimeCompare([]byte(e.s.Token), []byte(token)) != 1 {
		return nil, ErrNotFound
	}
	return m.touchLocked(id, false, 0)
}

// GetFrame implements Store.
func (m *MemoryStore) GetFrame(_ context.Context, keyID string, counter uint64) (*Session, error) {
	if _, _, err := split(keyID); err != nil {
		m.ctr.lookup(err)
		return nil, err
	}
	m.mu.Lock()
	s, err := m.touchLocked(keyID, true, counter)
	m.mu.Unlock()
	m.ctr.lookup(err)
	return s, err
}

func (m *MemoryStore) touchLocked(id string, frame bool, counter uint64) (*Session, error) {
	if m.closed {
		return nil, ErrClosed
	}
	e := m.sessions[id]
	if e == nil {
		return nil, ErrNotFound
	}
	now := m.cfg.Now()
	err, gone := m.status(e, now)
	if gone {
		m.removeLocked(id, e)
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if frame {
		w := protocol.ReplayWindow{Top: e.s.Counter, Seen: e.win}
		if !w.Accept(counter) {
			return nil, fmt.Errorf("session: counter %d, highest accepted %d: %w", counter, e.s.Counter, protocol.ErrReplayed)
		}
		e.s.Counter, e.win = w.Top, w.Seen
	}
	out := copySession(&e.s)
	if frame {
		out.Counter = counter
	}
	e.s.LastSeen = now
	e.exp = now.Add(m.cfg.TTL)
	return out, nil
}

// Secret implements Store.
func (m *MemoryStore) Secret(_ context.Context, keyID string) ([]byte, error) {
	if _, _, err := split(keyID); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	e := m.sessions[keyID]
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
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	e := m.sessions[keyID]
	live := e != nil
	if live {
		err, _ := m.status(e, now)
		live = err == nil
	}
	if live {
		m.endLocked(e, stateRevoked, now)
	}
	m.mu.Unlock()
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
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	for id := range m.users[userKey] {
		e := m.sessions[id]
		if err, _ := m.status(e, now); err == nil {
			m.endLocked(e, stateRevoked, now)
			evs = append(evs, Event{Kind: EventRevoked, UserKey: userKey, SessionID: id})
		}
	}
	m.mu.Unlock()
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
