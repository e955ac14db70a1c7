package session

import (
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
	// check). Their requests keep a nil Principal.
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
	// MaxEntries bounds the in-process cache of derived keys; when full, it
	// is emptied (cheap, and keys are re-derived on demand). Default 100000.
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
	keys map[string]*protocol.Keys
}

var _ protocol.KeyResolver = (*KeyResolver)(nil)

// NewKeyResolver returns a KeyResolver over store.
func NewKeyResolver(store Store, cfg KeyResolverConfig) *KeyResolver {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100000
	}
	return &KeyResolver{store: store, max: cfg.MaxEntries, keys: make(map[string]*protocol.Keys)}
}

// ResolveKeys implements protocol.KeyResolver. An unknown or ended session
// is an error with CodeUnauthorized (or the store's code: expired, kicked,
// revoked, unavailable).
func (r *KeyResolver) ResolveKeys(ctx context.Context, keyID []byte) (*protocol.Keys, error) {
	r.mu.Lock()
	k := r.keys[string(keyID)]
	r.mu.Unlock()
	if k != nil {
		return k, nil
	}
	secret, err := r.store.Secret(ctx, string(keyID))
	if err != nil {
		return nil, publicErr(slog.New(slog.DiscardHandler), err)
	}
	k, err = protocol.NewKeys(keyID, secret)
	if err != nil {
		return nil, &protocol.Error{Code: protocol.CodeUnauthorized, Message: "session: unusable session keys", Err: fmt.Errorf("session: %w", err)}
	}
	r.mu.Lock()
	if len(r.keys) >= r.max {
		clear(r.keys)
	}
	r.keys[string(keyID)] = k
	r.mu.Unlock()
	return k, nil
}

// Forget drops the cached keys of a key id (for example on an Event).
func (r *KeyResolver) Forget(keyID string) {
	r.mu.Lock()
	delete(r.keys, keyID)
	r.mu.Unlock()
}
