package session

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/madang-io/madang/protocol"
)

// MiddlewareConfig configures Middleware. The zero value authenticates every
// command.
type MiddlewareConfig struct {
	// Public lists commands that run without a session (login, version
	// check). Their requests keep the Principal they came with (nil over
	// HTTP). A public command in an authenticated frame still names a
	// session (its key id): its counter is accepted in the store like any
	// other frame's (GetFrame), so it runs at most once, and it is refused
	// when that session has ended (send logins in plain or XOR frames).
	Public []string
	// Logger receives backend failures. Nil: silent.
	Logger *slog.Logger
}

// Middleware authenticates each request against store and fills
// Request.Principal:
//
//   - an authenticated frame (Request.KeyID set) by GetFrame with its key id
//     and counter: the session check, the counter check and the TTL slide are
//     one step (one Redis round trip);
//   - otherwise by the bearer token in Request.Token, with Get.
//
// Commands in MiddlewareConfig.Public skip the session check unless they
// come in an authenticated frame, whose counter is accepted as above
// (without filling the Principal): every authenticated frame runs at most
// once per session, public or not.
//
// Failures reach the client as result codes: no credentials or an unknown
// session → CodeUnauthorized, expired → CodeSessionExpired, replaced by a
// newer login → CodeKicked, revoked → CodeSessionRevoked, a stale frame
// counter → CodeReplayed, backend down → CodeUnavailable (retryable).
func Middleware(store Store, cfg MiddlewareConfig) protocol.Middleware {
	public := make(map[string]bool, len(cfg.Public))
	for _, c := range cfg.Public {
		public[c] = true
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(next protocol.Handler) protocol.Handler {
		return protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
			if public[req.Command] {
				if len(req.KeyID) > 0 {
					if _, err := store.GetFrame(ctx, string(req.KeyID), req.Counter); err != nil {
						return nil, publicErr(log, err)
					}
				}
				return next.Serve(ctx, req)
			}
			var (
				s   *Session
				err error
			)
			switch {
			case len(req.KeyID) > 0:
				s, err = store.GetFrame(ctx, string(req.KeyID), req.Counter)
			case req.Token != "":
				s, err = store.Get(ctx, req.Token)
			default:
				return nil, &protocol.Error{Code: protocol.CodeUnauthorized, Message: "session: no token"}
			}
			if err != nil {
				return nil, publicErr(log, err)
			}
			req.Principal = s.Principal()
			return next.Serve(ctx, req)
		})
	}
}

// publicErr turns a store error into a protocol error whose message is safe
// to show (the cause stays in Err for the server log).
func publicErr(log *slog.Logger, err error) error {
	code := protocol.CodeOf(err)
	msg := code.String()
	var se *Error
	switch {
	case errors.Is(err, protocol.ErrReplayed):
		msg = protocol.ErrReplayed.Message
	case errors.As(err, &se):
		msg = se.msg
	}
	if code == protocol.CodeUnavailable || code == protocol.CodeInternal {
		log.Warn("session: authentication failed", "err", err)
	}
	return &protocol.Error{Code: code, Message: msg, Err: err}
}

// KeyResolverConfig configures a KeyResolver. The zero value works.
type KeyResolverConfig struct {
	// MaxEntries bounds the in-process cache of derived keys, about 1.7 KB
	// each (two AES-GCM states): the default 100000 is about 170 MB. When it
	// is full, adding one evicts the entry used least recently, whose keys
	// are derived again (one Store.Secret) when it comes back.
	MaxEntries int
}

// KeyResolver implements protocol.KeyResolver over a Store, so the HTTP
// adapter can open authenticated frames. Session secrets never change, so
// the keys derived from them are cached in process by key id. It does NOT
// implement protocol.CounterGuard on purpose: Middleware checks the counter
// inside GetFrame, together with revocation and expiry, in one round trip.
// A cached key of an ended session opens its frames, and then Middleware
// refuses them.
type KeyResolver struct {
	store Store
	max   int

	mu   sync.Mutex
	keys map[string]*list.Element // of *resolvedKeys
	lru  list.List                // most recently used first
}

type resolvedKeys struct {
	id   string
	keys *protocol.Keys
}

var _ protocol.KeyResolver = (*KeyResolver)(nil)

// NewKeyResolver returns a KeyResolver over store.
func NewKeyResolver(store Store, cfg KeyResolverConfig) *KeyResolver {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100000
	}
	return &KeyResolver{store: store, max: cfg.MaxEntries, keys: make(map[string]*list.Element)}
}

// ResolveKeys implements protocol.KeyResolver. An unknown or ended session
// is an error with CodeUnauthorized (or the store's code: expired, kicked,
// revoked, unavailable).
func (r *KeyResolver) ResolveKeys(ctx context.Context, keyID []byte) (*protocol.Keys, error) {
	r.mu.Lock()
	if e := r.keys[string(keyID)]; e != nil {
		r.lru.MoveToFront(e)
		k := e.Value.(*resolvedKeys).keys
		r.mu.Unlock()
		return k, nil
	}
	r.mu.Unlock()
	secret, err := r.store.Secret(ctx, string(keyID))
	if err != nil {
		return nil, publicErr(slog.New(slog.DiscardHandler), err)
	}
	k, err := protocol.NewKeys(keyID, secret)
	if err != nil {
		return nil, &protocol.Error{Code: protocol.CodeUnauthorized, Message: "session: unusable session keys", Err: fmt.Errorf("session: %w", err)}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.keys[string(keyID)]; e != nil { // a concurrent call was first
		r.lru.MoveToFront(e)
		return e.Value.(*resolvedKeys).keys, nil
	}
	for len(r.keys) >= r.max {
		old := r.lru.Back()
		r.lru.Remove(old)
		delete(r.keys, old.Value.(*resolvedKeys).id)
	}
	id := string(keyID)
	r.keys[id] = r.lru.PushFront(&resolvedKeys{id: id, keys: k})
	return k, nil
}

// Forget drops the cached keys of a key id (for example on an Event).
func (r *KeyResolver) Forget(keyID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.keys[keyID]; e != nil {
		r.lru.Remove(e)
		delete(r.keys, keyID)
	}
}

// Len returns the number of key ids whose keys are cached.
func (r *KeyResolver) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.keys)
}
