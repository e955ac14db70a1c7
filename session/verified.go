package session

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/internal/clock"
)

// Defaults and limits of VerifiedCacheConfig.
const (
	// DefaultVerifiedMaxAge is how long a VerifiedCache answers a token
	// from memory after the store accepted it.
	DefaultVerifiedMaxAge = time.Second
	// MaxVerifiedMaxAge is the longest VerifiedCacheConfig.MaxAge
	// accepted; longer values are cut to it.
	MaxVerifiedMaxAge = 10 * time.Second
	// DefaultVerifiedMaxEntries bounds a VerifiedCache's tokens by default
	// (about 0.5 KB each with the session they map to: about 50 MB).
	DefaultVerifiedMaxEntries = 100000
)

// VerifiedCacheConfig configures a VerifiedCache. The zero value works.
type VerifiedCacheConfig struct {
	// MaxAge is how long a token the store accepted is accepted again from
	// memory, without asking the store. It bounds how late a kick or
	// revocation made elsewhere takes effect on this process when its
	// event is lost (see VerifiedCache). Default DefaultVerifiedMaxAge
	// (1 s), at most MaxVerifiedMaxAge (10 s). It must be far below the
	// store's Config.TTL: a token answered from memory does not slide the
	// session's TTL, so the session may expire up to MaxAge earlier than
	// if every request had reached the store.
	MaxAge time.Duration
	// MaxEntries bounds the tokens held. When full, expired entries are
	// dropped, then arbitrary ones. Default DefaultVerifiedMaxEntries.
	MaxEntries int
	// Now is the clock of MaxAge. Default time.Now.
	Now func() time.Time
}

// VerifiedCache is a Store that answers Get for a bearer token the wrapped
// store accepted less than MaxAge ago from process memory, so a player
// sending several commands a second costs the store (Redis: one script
// round trip) about one check per MaxAge instead of one per command.
// Everything else goes to the wrapped store: GetFrame is never answered
// from memory (each frame counter must be accepted by the store exactly
// once), nor are Secret, Create, Revoke and RevokeUser.
//
// Revocation and kicks are honoured:
//   - Create, Revoke and RevokeUser called through the VerifiedCache drop
//     the user's cached tokens before they return: on this process the
//     next request reaches the store and gets ErrKicked or ErrRevoked;
//   - every kick and revocation event of the store (Subscribe: from any
//     node sharing it) drops the user's cached tokens when it arrives;
//   - an event lost on its way (a pub/sub reconnect) is covered by MaxAge:
//     a session ended on another node is refused here at most MaxAge after
//     it ended.
//
// A lookup that raced with one of these drops is not cached. Expiry: a
// token is cached for at most MaxAge after the store slid its TTL, so a
// cached answer never outlives the session by more than MaxAge's margin
// below Config.TTL. Safe for concurrent use. Close cancels its event
// subscription, not the wrapped store.
type VerifiedCache struct {
	Store
	maxAge time.Duration
	max    int
	now    func() time.Time
	cancel func()

	// epochs are bumped before a user's tokens are dropped (striped by
	// user key); a lookup caches its answer only if its stripe did not
	// move while it asked the store.
	epochs [verifiedStripes]atomic.Uint64

	mu     sync.Mutex
	tokens map[string]verifiedEntry
	byUser map[int64][]string

	hits atomic.Uint64
}

const verifiedStripes = 256

type verifiedEntry struct {
	sess    *Session
	expires time.Time
}

// NewVerifiedCache wraps store. It subscribes to the store's events
// (Store.Subscribe) at once.
func NewVerifiedCache(store Store, cfg VerifiedCacheConfig) *VerifiedCache {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultVerifiedMaxAge
	}
	cfg.MaxAge = min(cfg.MaxAge, MaxVerifiedMaxAge)
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultVerifiedMaxEntries
	}
	v := &VerifiedCache{
		Store: store, maxAge: cfg.MaxAge, max: cfg.MaxEntries, now: clock.OrNow(cfg.Now),
		tokens: make(map[string]verifiedEntry), byUser: make(map[int64][]string),
	}
	v.cancel = store.Subscribe(func(ev Event) { v.dropUser(ev.UserKey) })
	return v
}

func (v *VerifiedCache) stripe(uk int64) *atomic.Uint64 {
	return &v.epochs[uint64(uk)%verifiedStripes]
}

// Get implements Store: from memory when the store accepted token less
// than MaxAge ago and nothing dropped it since, else from the store.
func (v *VerifiedCache) Get(ctx context.Context, token string) (*Session, error) {
	now := v.now()
	v.mu.Lock()
	e, ok := v.tokens[token]
	v.mu.Unlock()
	if ok && now.Before(e.expires) {
		v.hits.Add(1)
		return copySession(e.sess), nil
	}
	uk, _ := ParseUserKey(token)
	st := v.stripe(uk)
	epoch := st.Load()
	s, err := v.Store.Get(ctx, token)
	if err != nil {
		if ok { // ended or unreachable: forget the stale entry
			v.mu.Lock()
			if cur, still := v.tokens[token]; still && cur == e {
				delete(v.tokens, token)
			}
			v.mu.Unlock()
		}
		return nil, err
	}
	if s.UserKey == uk {
		v.put(token, copySession(s), now.Add(v.maxAge), st, epoch)
	}
	return s, nil
}

// put caches s for token unless the user's stripe moved since epoch.
func (v *VerifiedCache) put(token string, s *Session, expires time.Time, st *atomic.Uint64, epoch uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if st.Load() != epoch { // a kick or revocation raced with the lookup
		return
	}
	if _, had := v.tokens[token]; !had {
		if len(v.tokens) >= v.max {
			v.evictLocked()
		}
		v.byUser[s.UserKey] = append(v.byUser[s.UserKey], token)
	}
	v.tokens[token] = verifiedEntry{sess: s, expires: expires}
}

// evictLocked makes room: expired entries first, then arbitrary ones
// until a tenth of MaxEntries is free.
func (v *VerifiedCache) evictLocked() {
	now := v.now()
	for t, e := range v.tokens {
		if !now.Before(e.expires) {
			v.deleteLocked(t, e.sess.UserKey)
		}
	}
	for t, e := range v.tokens {
		if len(v.tokens) < v.max-v.max/10 {
			break
		}
		v.deleteLocked(t, e.sess.UserKey)
	}
}

func (v *VerifiedCache) deleteLocked(token string, uk int64) {
	delete(v.tokens, token)
	list := v.byUser[uk]
	for i, t := range list {
		if t == token {
			list[i] = list[len(list)-1]
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(v.byUser, uk)
	} else {
		v.byUser[uk] = list
	}
}

// dropUser forgets every cached token of uk and stops lookups in flight
// for users of its stripe from caching their answers.
func (v *VerifiedCache) dropUser(uk int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.stripe(uk).Add(1)
	for _, t := range v.byUser[uk] {
		delete(v.tokens, t)
	}
	delete(v.byUser, uk)
}

// Create implements Store; the user's cached tokens are dropped (a login
// kicks the older sessions unless Config.AllowMultiple).
func (v *VerifiedCache) Create(ctx context.Context, n CreateParams) (*Session, error) {
	v.dropUser(n.UserKey)
	s, err := v.Store.Create(ctx, n)
	v.dropUser(n.UserKey)
	return s, err
}

// Revoke implements Store; the user's cached tokens are dropped before it
// returns, whatever the store answered.
func (v *VerifiedCache) Revoke(ctx context.Context, keyID string) error {
	uk, ok := ParseUserKey(keyID)
	if ok {
		v.dropUser(uk)
	}
	err := v.Store.Revoke(ctx, keyID)
	if ok {
		v.dropUser(uk)
	}
	return err
}

// RevokeUser implements Store; the user's cached tokens are dropped before
// it returns, whatever the store answered.
func (v *VerifiedCache) RevokeUser(ctx context.Context, userKey int64) error {
	v.dropUser(userKey)
	err := v.Store.RevokeUser(ctx, userKey)
	v.dropUser(userKey)
	return err
}

// Len returns the number of tokens held, expired ones included until they
// are looked up or evicted.
func (v *VerifiedCache) Len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.tokens)
}

// Stats returns the wrapped store's counters (when it has them) with the
// Get calls answered from memory added to Validated and counted in Cached.
func (v *VerifiedCache) Stats() Stats {
	var st Stats
	if s, ok := v.Store.(interface{ Stats() Stats }); ok {
		st = s.Stats()
	}
	st.Cached = v.hits.Load()
	st.Validated += st.Cached
	return st
}

// Close cancels the event subscription. It does not close the wrapped
// store.
func (v *VerifiedCache) Close() error {
	v.cancel()
	return nil
}

// UserSessions implements SessionLister when the wrapped store does;
// otherwise it returns ErrNotSupported. It always asks the store.
func (v *VerifiedCache) UserSessions(ctx context.Context, userKey int64) ([]*Session, error) {
	l, ok := v.Store.(SessionLister)
	if !ok {
		return nil, ErrNotSupported
	}
	return l.UserSessions(ctx, userKey)
}
