package protocol

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"sync"
)

// HKDF info strings that separate the two directions' keys. They are part of
// the wire protocol (docs/PROTOCOL.md).
const (
	hkdfInfoClientToServer = "madang/v1 client-to-server"
	hkdfInfoServerToClient = "madang/v1 server-to-client"
	// MinSecretLen is the shortest session secret NewKeys accepts. Issue
	// secrets of 32 random bytes.
	MinSecretLen = 16
)

// Keys are the AES-256-GCM keys of one session's authenticated frames, derived
// from the session secret with HKDF-SHA256: one key for client→server frames
// (nonce from the frame counter), one for server→client frames (random nonce).
// Keys are immutable and safe for concurrent use.
type Keys struct {
	id  []byte
	c2s cipher.AEAD
	s2c cipher.AEAD
}

// NewKeys derives the keys for a session from its secret (at least
// MinSecretLen bytes). keyID (1..MaxKeyIDLen bytes) names the session in the
// clear in every authenticated frame so the server can find the secret.
func NewKeys(keyID, secret []byte) (*Keys, error) {
	if len(keyID) == 0 || len(keyID) > MaxKeyIDLen {
		return nil, fmt.Errorf("protocol: key id length %d, want 1..%d", len(keyID), MaxKeyIDLen)
	}
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("protocol: session secret of %d bytes, want at least %d", len(secret), MinSecretLen)
	}
	c2sKey, err := hkdf.Key(sha256.New, secret, nil, hkdfInfoClientToServer, 32)
	if err != nil {
		return nil, fmt.Errorf("protocol: derive keys: %w", err)
	}
	s2cKey, err := hkdf.Key(sha256.New, secret, nil, hkdfInfoServerToClient, 32)
	if err != nil {
		return nil, fmt.Errorf("protocol: derive keys: %w", err)
	}
	c2sBlock, err := aes.NewCipher(c2sKey)
	if err != nil {
		return nil, err
	}
	s2cBlock, err := aes.NewCipher(s2cKey)
	if err != nil {
		return nil, err
	}
	c2s, err := cipher.NewGCM(c2sBlock)
	if err != nil {
		return nil, err
	}
	s2c, err := cipher.NewGCMWithRandomNonce(s2cBlock)
	if err != nil {
		return nil, err
	}
	return &Keys{id: append([]byte(nil), keyID...), c2s: c2s, s2c: s2c}, nil
}

// ID returns the key id. The caller must not modify it.
func (k *Keys) ID() []byte { return k.id }

// KeyResolver finds the keys for the key id of an authenticated frame. The
// session layer implements it; it returns an error with CodeUnauthorized (such
// as ErrNoKeys) for an unknown key id.
//
// A resolver that also implements CounterGuard has each accepted frame's
// counter checked by the transport. Otherwise a later middleware must check
// Request.Counter (the session store does, in the same round trip that
// validates the session): an unchecked counter lets a captured frame be
// replayed.
type KeyResolver interface {
	ResolveKeys(ctx context.Context, keyID []byte) (*Keys, error)
}

// CounterGuard accepts each frame counter of a key id at most once, within
// a ReplayWindow (docs/PROTOCOL.md §7.4).
type CounterGuard interface {
	// AcceptCounter records counter as accepted for keyID, or returns an
	// error wrapping ErrReplayed if it was accepted before or is
	// ReplayWindowSize or more below the highest accepted. It is called
	// only after the frame authenticated, so a forged frame cannot advance
	// the counter.
	AcceptCounter(ctx context.Context, keyID []byte, counter uint64) error
}

// Keyring is an in-memory KeyResolver and CounterGuard: a real single-process
// key store for development servers, tests and bots. Safe for concurrent use.
type Keyring struct {
	mu      sync.Mutex
	entries map[string]*keyringEntry
}

type keyringEntry struct {
	keys *Keys
	win  ReplayWindow
}

// NewKeyring returns an empty Keyring.
func NewKeyring() *Keyring { return &Keyring{entries: make(map[string]*keyringEntry)} }

// Add registers keys under their key id, replacing any earlier keys with
// that id and resetting its counter.
func (r *Keyring) Add(keys *Keys) {
	r.mu.Lock()
	r.entries[string(keys.id)] = &keyringEntry{keys: keys}
	r.mu.Unlock()
}

// Remove forgets a key id; its frames are then refused.
func (r *Keyring) Remove(keyID []byte) {
	r.mu.Lock()
	delete(r.entries, string(keyID))
	r.mu.Unlock()
}

// ResolveKeys implements KeyResolver.
func (r *Keyring) ResolveKeys(_ context.Context, keyID []byte) (*Keys, error) {
	r.mu.Lock()
	e := r.entries[string(keyID)]
	r.mu.Unlock()
	if e == nil {
		return nil, ErrNoKeys
	}
	return e.keys, nil
}

// AcceptCounter implements CounterGuard.
func (r *Keyring) AcceptCounter(_ context.Context, keyID []byte, counter uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries[string(keyID)]
	if e == nil {
		return ErrNoKeys
	}
	if !e.win.Accept(counter) {
		return fmt.Errorf("%w: counter %d, highest accepted %d", ErrReplayed, counter, e.win.Top)
	}
	return nil
}

var (
	_ KeyResolver  = (*Keyring)(nil)
	_ CounterGuard = (*Keyring)(nil)
)
