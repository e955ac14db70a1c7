package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/madang-io/madang/internal/clock"
	"github.com/madang-io/madang/protocol"
)

// Error is a session error with a protocol result code. The package's
// sentinel errors are *Error values; compare them with errors.Is.
type Error struct {
	code protocol.Code
	msg  string
}

// Error implements error.
func (e *Error) Error() string { return e.msg }

// ResultCode implements protocol.Coder, so protocol.CodeOf maps the error.
func (e *Error) ResultCode() protocol.Code { return e.code }

// The errors of the package. Stores wrap them with detail; a stale frame
// counter is protocol.ErrReplayed (CodeReplayed), wrapped the same way.
var (
	// ErrNotFound: the token or key id names no session the store knows
	// (never issued, malformed, or ended longer than Config.Tombstone ago).
	ErrNotFound = &Error{protocol.CodeUnauthorized, "session: not found"}
	// ErrExpired: the session timed out (no request within Config.TTL).
	ErrExpired = &Error{protocol.CodeSessionExpired, "session: expired"}
	// ErrKicked: a newer login of the same user replaced the session.
	ErrKicked = &Error{protocol.CodeKicked, "session: replaced by a newer login"}
	// ErrRevoked: the session was revoked (logout, operator, RevokeUser).
	ErrRevoked = &Error{protocol.CodeSessionRevoked, "session: revoked"}
	// ErrUnavailable: the backend could not be reached or failed; nothing was
	// changed that the caller can rely on, and the call may be retried.
	ErrUnavailable = &Error{protocol.CodeUnavailable, "session: backend unavailable"}
	// ErrInvalid: a Create or Cache call with invalid input (negative or zero
	// user key, oversized fields). Nothing was stored.
	ErrInvalid = &Error{protocol.CodeBadRequest, "session: invalid input"}
	// ErrCacheMiss: UserCache.Get found no value.
	ErrCacheMiss = &Error{protocol.CodeInternal, "session: cache miss"}
	// ErrClosed: the store or cache was closed.
	ErrClosed = &Error{protocol.CodeUnavailable, "session: closed"}
	// ErrNotSupported: the store under a wrapper does not offer the call
	// (VerifiedCache.UserSessions over a store that is no SessionLister).
	ErrNotSupported = &Error{protocol.CodeInternal, "session: not supported by the store"}
)

// Limits on what a session may hold. Create refuses larger input with
// ErrInvalid.
const (
	// MaxFieldLen bounds each string field of CreateParams (client version,
	// platform, device id, country, language) and each attribute key/value.
	MaxFieldLen = 256
	// MaxAttrs bounds the number of game attributes.
	MaxAttrs = 64
	// SecretLen is the size of a session secret for authenticated frames.
	SecretLen = 32
)

// token and id sizes in random bytes (base64url without padding).
const (
	tokenRandBytes = 24 // 192 bits: the bearer token's secret part
	sidRandBytes   = 9  // 72 bits: the public session id part of the key id
)

var b64 = base64.RawURLEncoding

// Config configures a store. The zero value works: every default is given on
// its field.
type Config struct {
	// TTL is the sliding session lifetime: a session with no request for
	// this long expires. Default 30 minutes.
	TTL time.Duration
	// Tombstone is how long a store remembers a session after it ended
	// (kicked, revoked or expired) so a request with it gets the precise
	// error (ErrKicked, ErrRevoked, ErrExpired) instead of ErrNotFound.
	// Default 6 hours.
	Tombstone time.Duration
	// AllowMultiple lets a user hold several sessions at once. The default
	// (false) is one session per user: a new login kicks the older ones.
	AllowMultiple bool
	// Now returns the current time; nil means time.Now. The store computes
	// expiry from it (the Redis store too: it uses Redis TTLs only to
	// collect garbage).
	Now func() time.Time
	// Logger receives backend failures. Nil: silent.
	Logger *slog.Logger
	// Prefix starts every Redis key and channel of the store, such as
	// "game1:". It must not contain '{' (the user hash tag follows it).
	// Default "madang:". Memory stores ignore it.
	Prefix string
	// JanitorInterval is how often the memory store removes ended sessions
	// (lookups also expire them lazily). Default 1 minute. Redis ignores it.
	JanitorInterval time.Duration
	// ProbeInterval is how often the Redis store checks each event
	// subscription (Subscribe): it publishes a probe through the node's
	// client on a channel only this store subscribes to, and when a probe
	// has not come back two intervals later it subscribes again on a new
	// connection (which go-redis dials where its commands go: after a
	// Sentinel failover, the new master) before dropping the old one. A
	// switch is thus followed within about three intervals. Costs one
	// PUBLISH per node per interval per subscribed store. Default 1 s;
	// negative: no probes (a subscription then stays on the old master until
	// that server drops it). The memory store ignores it.
	ProbeInterval time.Duration
}

func (c Config) withDefaults() Config {
	if c.TTL <= 0 {
		c.TTL = 30 * time.Minute
	}
	if c.Tombstone <= 0 {
		c.Tombstone = 6 * time.Hour
	}
	if c.JanitorInterval <= 0 {
		c.JanitorInterval = time.Minute
	}
	if c.Prefix == "" {
		c.Prefix = "madang:"
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = time.Second
	}
	c.Now = clock.OrNow(c.Now)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// CreateParams is what a login knows about the user and the client: the
// argument of Store.Create.
type CreateParams struct {
	UserKey       int64 // required, > 0
	ShardID       int   // the game database the user lives on
	ClientVersion string
	Platform      string
	DeviceID      string
	Country       string
	Language      string
	// Attrs are the game's own attributes; copied.
	Attrs map[string]string
}

func (n *CreateParams) validate() error {
	if n.UserKey <= 0 {
		return fmt.Errorf("%w: user key %d, want > 0", ErrInvalid, n.UserKey)
	}
	for _, f := range []string{n.ClientVersion, n.Platform, n.DeviceID, n.Country, n.Language} {
		if len(f) > MaxFieldLen {
			return fmt.Errorf("%w: field longer than %d bytes", ErrInvalid, MaxFieldLen)
		}
	}
	if len(n.Attrs) > MaxAttrs {
		return fmt.Errorf("%w: %d attributes, limit %d", ErrInvalid, len(n.Attrs), MaxAttrs)
	}
	for k, v := range n.Attrs {
		if len(k) > MaxFieldLen || len(v) > MaxFieldLen {
			return fmt.Errorf("%w: attribute longer than %d bytes", ErrInvalid, MaxFieldLen)
		}
	}
	return nil
}

// Session is a login session. Values returned by a store are copies: changing
// them changes nothing in the store.
type Session struct {
	// Token is the bearer token "<userKey>.<random>", the random part being
	// the session id (72 bits, public: see ID) followed by 192 secret bits,
	// all from crypto/rand, base64url. Secret: send it only over TLS, never
	// log it.
	Token string
	// ID is the public key id "<userKey>.<sid>" (sid: 72 random bits,
	// base64url), the token without its 192 secret bits. It names the
	// session in authenticated frames (protocol.Request.KeyID), in logs
	// (Principal.SessionID), in events and in Revoke. Knowing it grants
	// nothing.
	ID            string
	UserKey       int64
	ShardID       int
	ClientVersion string
	Platform      string
	DeviceID      string
	Country       string
	Language      string
	Created       time.Time
	LastSeen      time.Time // the previous request's time (login for the first)
	// Secret is the session secret for authenticated frames (SecretLen
	// random bytes); protocol.NewKeys derives the frame keys from it.
	Secret []byte
	// Counter is the highest accepted authenticated frame counter; in
	// GetFrame's answer, the counter of the frame just accepted.
	Counter uint64
	Attrs   map[string]string
}

// Principal returns the protocol.Principal of the session.
func (s *Session) Principal() *protocol.Principal {
	return &protocol.Principal{
		UserKey:       s.UserKey,
		SessionID:     s.ID,
		ShardID:       s.ShardID,
		ClientVersion: s.ClientVersion,
		Platform:      s.Platform,
		DeviceID:      s.DeviceID,
		Country:       s.Country,
		Language:      s.Language,
		Attrs:         s.Attrs,
	}
}

// Keys derives the session's authenticated-frame keys.
func (s *Session) Keys() (*protocol.Keys, error) {
	return protocol.NewKeys([]byte(s.ID), s.Secret)
}

// EventKind says what happened to a session.
type EventKind uint8

// The event kinds.
const (
	// EventKicked: a newer login of the same user replaced the session.
	EventKicked EventKind = 1
	// EventRevoked: the session was revoked.
	EventRevoked EventKind = 2
)

// String returns "kicked" or "revoked".
func (k EventKind) String() string {
	switch k {
	case EventKicked:
		return "kicked"
	case EventRevoked:
		return "revoked"
	}
	return "event_" + strconv.Itoa(int(k))
}

// Event tells subscribers that a session ended early, so a realtime hub on
// any node can drop the connection that used it.
type Event struct {
	Kind      EventKind
	UserKey   int64
	SessionID string // Session.ID (the key id)
}

// Store keeps sessions. Implementations: MemoryStore (one process) and
// RedisStore (shared by every server node). All methods are safe for
// concurrent use.
type Store interface {
	// Create logs a user in and returns the new session. Unless
	// Config.AllowMultiple, the user's older sessions are kicked (ErrKicked
	// for them from now on) and an EventKicked is published for each.
	Create(ctx context.Context, n CreateParams) (*Session, error)
	// Get validates a bearer token and slides the session's TTL. It returns
	// ErrNotFound, ErrExpired, ErrKicked, ErrRevoked or ErrUnavailable
	// (wrapped).
	Get(ctx context.Context, token string) (*Session, error)
	// GetFrame validates the session named by a key id (Session.ID) for an
	// authenticated frame with the given counter: the counter must not have
	// been accepted before and must be above the highest accepted one or
	// less than protocol.ReplayWindowSize below it (else
	// protocol.ErrReplayed, wrapped); it is then recorded as accepted, as a
	// protocol.ReplayWindow does. It slides the TTL like Get, atomically
	// with the check (one Redis round trip).
	GetFrame(ctx context.Context, keyID string, counter uint64) (*Session, error)
	// Secret returns the secret of a live session by key id, without
	// sliding its TTL or touching its counter (for protocol.KeyResolver).
	Secret(ctx context.Context, keyID string) ([]byte, error)
	// Revoke ends one session by its key id (Session.ID) and publishes an
	// EventRevoked. Revoking an unknown or ended session is not an error.
	Revoke(ctx context.Context, keyID string) error
	// RevokeUser ends all the user's sessions, publishing an EventRevoked
	// for each.
	RevokeUser(ctx context.Context, userKey int64) error
	// Subscribe calls fn for every kick and revocation, from any node, until
	// the returned cancel func is called or the store is closed. fn must not
	// block: the memory store calls it on the goroutine that caused the event
	// (after releasing its locks), the Redis store on its pub/sub goroutine.
	Subscribe(fn func(Event)) (cancel func())
	// Close stops the store's goroutines and waits for them. It does not
	// close Redis clients it was given.
	Close() error
}

// SessionLister is implemented by the stores that can list a user's live
// sessions, for operators (an ops console's player page): MemoryStore,
// RedisStore, and a VerifiedCache over one of them.
type SessionLister interface {
	// UserSessions returns the user's live sessions (not ended, kicked,
	// revoked or expired), oldest first, with Token and Secret cleared:
	// what a session is, not what it grants. It neither slides a TTL nor
	// touches a counter. An unknown user has none (nil, nil).
	UserSessions(ctx context.Context, userKey int64) ([]*Session, error)
}

// listed returns a copy of s for SessionLister: no token, no secret.
func listed(s *Session) *Session {
	out := *s
	out.Token, out.Secret = "", nil
	out.Attrs = cloneAttrs(s.Attrs)
	return &out
}

// sortSessions orders sessions oldest first (then by id).
func sortSessions(ss []*Session) {
	sort.Slice(ss, func(i, j int) bool {
		if !ss[i].Created.Equal(ss[j].Created) {
			return ss[i].Created.Before(ss[j].Created)
		}
		return ss[i].ID < ss[j].ID
	})
}

// newToken returns a fresh bearer token and key id for userKey.
func newToken(userKey int64) (token, keyID string, secret []byte) {
	var b [sidRandBytes + tokenRandBytes + SecretLen]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	keyID = strconv.FormatInt(userKey, 10) + "." + b64.EncodeToString(b[:sidRandBytes])
	token = keyID + b64.EncodeToString(b[sidRandBytes:sidRandBytes+tokenRandBytes])
	secret = append([]byte(nil), b[sidRandBytes+tokenRandBytes:]...)
	return token, keyID, secret
}

// sidLen and tokenRandLen are the base64url lengths of the session id and
// of the token's secret part.
var (
	sidLen       = b64.EncodedLen(sidRandBytes)
	tokenRandLen = b64.EncodedLen(tokenRandBytes)
)

// ParseUserKey returns the user key a token or key id starts with, so a
// lookup can be routed without a global index. It checks only the shape.
func ParseUserKey(tokenOrKeyID string) (int64, bool) {
	uk, rest, ok := strings.Cut(tokenOrKeyID, ".")
	if !ok || uk == "" || len(uk) > 19 || (len(rest) != sidLen+tokenRandLen && len(rest) != sidLen) {
		return 0, false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(uk, 10, 64)
	if err != nil || n <= 0 || strconv.FormatInt(n, 10) != uk {
		return 0, false
	}
	return n, true
}

// split parses a key id into user key and session id.
func split(keyID string) (int64, string, error) {
	n, ok := ParseUserKey(keyID)
	if ok {
		_, rest, _ := strings.Cut(keyID, ".")
		if len(rest) == sidLen {
			return n, rest, nil
		}
	}
	return 0, "", fmt.Errorf("%w: malformed key id", ErrNotFound)
}

// splitToken parses a token into user key, key id (Session.ID) and secret
// part.
func splitToken(token string) (uk int64, keyID, secretPart string, err error) {
	n, ok := ParseUserKey(token)
	if ok {
		dot := strings.IndexByte(token, '.')
		if len(token)-dot-1 == sidLen+tokenRandLen {
			cut := dot + 1 + sidLen
			return n, token[:cut], token[cut:], nil
		}
	}
	return 0, "", "", fmt.Errorf("%w: malformed token", ErrNotFound)
}

// unavailable wraps a backend failure.
func unavailable(op string, err error) error {
	if errors.Is(err, ErrClosed) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

func cloneAttrs(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
