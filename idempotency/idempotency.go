package idempotency

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/internal/backend"
	"github.com/madang-io/madang/internal/clock"
	"github.com/madang-io/madang/internal/sqldialect"
	"github.com/madang-io/madang/protocol"
)

// Limits on what a key may name. They match the protocol's envelope limits,
// so every request the transport accepts fits.
const (
	// MaxKeyLen is the longest idempotency key (protocol.MaxRequestIDLen).
	MaxKeyLen = protocol.MaxRequestIDLen
	// MaxCommandLen is the longest command in a Scope (protocol.MaxCommandLen).
	MaxCommandLen = protocol.MaxCommandLen
	// MaxPayloadLen is the largest result payload a store keeps (1 MiB, the
	// protocol's default frame limit). A larger result is not stored: the
	// key is released and the call fails with ErrResultTooLarge.
	MaxPayloadLen = 1 << 20
	// MaxMessageLen is the longest stored message; longer messages are cut
	// (on a rune boundary) before they are stored and returned.
	MaxMessageLen = 1024
)

// Errors. Each carries a protocol result code (CodeOf maps them), so a
// transport answers them without further mapping.
var (
	// ErrMissingKey: the call has no key and Config.RequireKey is set.
	ErrMissingKey = &protocol.Error{Code: protocol.CodeBadRequest, Message: "idempotency: request id (Idempotency-Key) required"}
	// ErrInvalidKey: the key or the scope's command is empty where required,
	// too long, or the command is missing.
	ErrInvalidKey = &protocol.Error{Code: protocol.CodeBadRequest, Message: "idempotency: invalid key or scope"}
	// ErrInFlight: the same key is being processed by another call. Wrapped
	// in a *protocol.Error carrying CodeInFlight and a RetryAfter hint.
	ErrInFlight = errors.New("idempotency: request still in flight")
	// ErrKeyReused: the key was used before with a different fingerprint
	// (another payload); nothing ran. CodeRequestIDReused.
	ErrKeyReused = &protocol.Error{Code: protocol.CodeRequestIDReused, Message: "idempotency: request id reused with a different request"}
	// ErrLeaseLost: the in-flight mark expired (or was taken over) before the
	// result could be stored. The handler's effects may or may not have
	// happened; the result was not stored. CodeTimeout.
	ErrLeaseLost = &protocol.Error{Code: protocol.CodeTimeout, Message: "idempotency: in-flight lease lost"}
	// ErrResultTooLarge: the result payload exceeds MaxPayloadLen; it was not
	// stored and the key was released. CodeInternal.
	ErrResultTooLarge = &protocol.Error{Code: protocol.CodeInternal, Message: "idempotency: result too large to store"}
)

// Scope is the namespace of a key: keys of different users or commands never
// collide, so clients need only make request ids unique per user.
type Scope struct {
	UserKey int64  // the user (protocol.Principal.UserKey); 0 for anonymous calls
	Command string // the command, 1..MaxCommandLen bytes
}

// Fingerprint identifies the request a key was first used for: the
// SHA-256 of its payload bytes as received (see FingerprintOf). A key
// retried with another fingerprint is refused with ErrKeyReused.
type Fingerprint [sha256.Size]byte

// FingerprintOf returns the SHA-256 of payload, byte for byte: no JSON
// canonicalisation (doc.go explains why). nil and empty payloads are equal.
func FingerprintOf(payload []byte) Fingerprint { return sha256.Sum256(payload) }

// Result is what a store keeps for a completed key and what a replay returns:
// the result code, the client-visible message and the payload, byte for byte.
// Per-response fields (sequence number, server time, nonce) are never part of
// it: the transport stamps them fresh on every reply.
type Result struct {
	Code    protocol.Code
	Message string
	Payload []byte
}

// Outcome is what Do returns: the result, and whether it is a replay of a
// stored result (the function did not run).
type Outcome struct {
	Result
	Replay bool
}

// Func is the work made idempotent. It returns the result to store, or an
// error: see Retryable and Definitive for how errors are classified. A Func
// must honour ctx: its deadline is shorter than the in-flight lease.
type Func func(ctx context.Context) (Result, error)

// InFlightPolicy says what a duplicate does while the first call is running.
type InFlightPolicy int

const (
	// WaitInFlight (the default) waits up to Config.WaitTimeout for the
	// first call to finish, then returns its stored result as a replay;
	// every duplicate thus gets the same answer. If the wait times out it
	// answers as AnswerInFlight does.
	WaitInFlight InFlightPolicy = iota
	// AnswerInFlight answers at once with CodeInFlight and a retry-after hint.
	AnswerInFlight
)

// Config configures a Keeper or SQLStore. The zero value works.
type Config struct {
	// Retention is how long a completed result is kept for replays.
	// Default 24 h.
	Retention time.Duration
	// Lease is how long an in-flight mark lives if its owner dies without
	// storing a result (lease-based stores: memory, Redis). The function's
	// context deadline is set to Lease minus a margin (Lease/5), so a lease
	// never expires under a running function that honours its context.
	// Default 30 s.
	Lease time.Duration
	// InFlight chooses what a duplicate does while the first call runs.
	// Default WaitInFlight.
	InFlight InFlightPolicy
	// WaitTimeout bounds how long a duplicate waits under WaitInFlight.
	// Default 5 s.
	WaitTimeout time.Duration
	// RetryAfter is the hint sent with CodeInFlight. Default 200 ms.
	RetryAfter time.Duration
	// RequireKey refuses calls without a key with ErrMissingKey
	// (CodeBadRequest). Default false: a call without a key runs without
	// idempotency.
	RequireKey bool
	// Logger receives replays (debug), refusals and store failures. Nil:
	// silent.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now. SQLStore dates and
	// expires its records by it (a MemoryStore has its own:
	// MemoryConfig.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Retention <= 0 {
		c.Retention = 24 * time.Hour
	}
	if c.Lease <= 0 {
		c.Lease = 30 * time.Second
	}
	if c.WaitTimeout <= 0 {
		c.WaitTimeout = 5 * time.Second
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = 200 * time.Millisecond
	}
	c.Now = clock.OrNow(c.Now)
	return c
}

// handlerDeadline is how long the function may run under a lease.
func (c Config) handlerDeadline() time.Duration { return c.Lease - c.Lease/5 }

// Stats are counters since the Keeper or SQLStore was created.
type Stats struct {
	Executed uint64 // functions run whose result was stored
	Replayed uint64 // stored results returned without running
	InFlight uint64 // duplicates answered with CodeInFlight
	Waited   uint64 // duplicates that waited for the first call
	Reused   uint64 // keys refused because the fingerprint differed
	Released uint64 // keys released after a retryable failure
	NoKey    uint64 // calls run without idempotency (no key)
}

type counters struct {
	executed, replayed, inFlight, waited, reused, released, noKey atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Executed: c.executed.Load(), Replayed: c.replayed.Load(), InFlight: c.inFlight.Load(),
		Waited: c.waited.Load(), Reused: c.reused.Load(), Released: c.released.Load(), NoKey: c.noKey.Load(),
	}
}

// Doer is the generic idempotent call, implemented by *Keeper (memory and
// Redis stores) and *SQLStore. Middleware and HTTPStatus work with any Doer.
type Doer interface {
	// Do runs fn at most once per (scope, key): see Keeper.Do.
	Do(ctx context.Context, scope Scope, key string, fp Fingerprint, fn Func) (Outcome, error)
	// Stats returns the counters.
	Stats() Stats
}

// checkKey validates a scope and key.
func checkKey(scope Scope, key string) error {
	switch {
	case scope.Command == "" || len(scope.Command) > MaxCommandLen:
		return fmt.Errorf("%w: command of %d bytes, want 1..%d", ErrInvalidKey, len(scope.Command), MaxCommandLen)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: key of %d bytes, want at most %d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	return nil
}

// classification of an error returned by a Func.
type classified struct {
	err       error
	retryable bool
}

func (c *classified) Error() string { return c.err.Error() }
func (c *classified) Unwrap() error { return c.err }

// Retryable marks err as a retryable failure: the key is released (nothing
// is stored) so the same request can run again. Use it for failures that
// left no effect behind. Retryable(nil) is nil.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return &classified{err: err, retryable: true}
}

// Definitive marks err as the request's final answer: its code and message
// are stored and replayed like a success. Use it for business errors whose
// code is below protocol.CodeGameBase but that must not be retried.
// Definitive(nil) is nil.
func Definitive(err error) error {
	if err == nil {
		return nil
	}
	return &classified{err: err, retryable: false}
}

// IsRetryable reports how Do classifies an error returned by a Func:
//
//   - an error wrapped by Retryable or Definitive: as marked (outermost wins);
//   - context.Canceled, context.DeadlineExceeded: retryable;
//   - a backend outage (shard.ClassifyError's classification: a lost or
//     refused connection, deadlock, lock wait timeout, busy, read-only or
//     stopping database, an unavailable Redis): retryable;
//   - result codes CodeUnavailable, CodeTimeout, CodeInFlight,
//     CodeRateLimited and CodeInternal (unknown errors, panics): retryable —
//     the key is released, because storing a transient or unexplained
//     failure would make it permanent for that request;
//   - every other code (CodeBadRequest and other 4xx-like codes, game codes
//     at CodeGameBase and above): definitive, stored.
func IsRetryable(err error) bool {
	var c *classified
	if errors.As(err, &c) {
		return c.retryable
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || sqldialect.IsRetryable(err) || backend.Unavailable(err) {
		return true
	}
	return retryableCode(protocol.CodeOf(err))
}

func retryableCode(c protocol.Code) bool {
	switch c {
	case protocol.CodeUnavailable, protocol.CodeTimeout, protocol.CodeInFlight, protocol.CodeRateLimited, protocol.CodeInternal:
		return true
	}
	return false
}

// ResultOf turns a definitive error into the Result that is stored: its code
// and its client-visible message (a *protocol.Error's Message, otherwise the
// code's name, so internals never reach a client).
func ResultOf(err error) Result {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		msg := pe.Message
		if msg == "" {
			msg = pe.Code.String()
		}
		return Result{Code: pe.Code, Message: msg}
	}
	code := protocol.CodeOf(err)
	return Result{Code: code, Message: code.String()}
}

// errInFlight returns the CodeInFlight error with a retry hint.
func errInFlight(hint time.Duration) error {
	return &protocol.Error{Code: protocol.CodeInFlight, Message: "request in flight; retry", RetryAfter: hint, Err: ErrInFlight}
}

// trimMessage cuts a message to MaxMessageLen bytes on a rune boundary.
func trimMessage(s string) string {
	if len(s) <= MaxMessageLen {
		return s
	}
	i := MaxMessageLen
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i]
}

// hooks collects after-commit effects registered by the running Func. It is
// also the Func's context (one allocation instead of two).
type hooks struct {
	context.Context
	mu  sync.Mutex
	fns []func(context.Context)
}

type hooksKey struct{}

// Value implements context.Context.
func (h *hooks) Value(key any) any {
	if key == (hooksKey{}) {
		return h
	}
	return h.Context.Value(key)
}

// AfterCommit registers f to run after the result of the current call is
// stored (committed, for the SQL store), only on the first execution: never
// on a replay, and not at all when the call fails retryably or its result
// cannot be stored. Use it for effects outside the transaction (rankings,
// pushes). Hooks run in registration order before Do returns, with a context
// that is not cancelled with the request's; a panicking hook is recovered and
// logged.
//
// Called outside Do (ctx not from a Func), f runs at once.
func AfterCommit(ctx context.Context, f func(context.Context)) {
	h, _ := ctx.Value(hooksKey{}).(*hooks)
	if h == nil {
		f(ctx)
		return
	}
	h.mu.Lock()
	h.fns = append(h.fns, f)
	h.mu.Unlock()
}

func withHooks(ctx context.Context) (context.Context, *hooks) {
	h := &hooks{Context: ctx}
	return h, h
}

func (h *hooks) run(ctx context.Context, log *slog.Logger) {
	h.mu.Lock()
	fns := h.fns
	h.fns = nil
	h.mu.Unlock()
	ctx = context.WithoutCancel(ctx)
	for _, f := range fns {
		func() {
			defer func() {
				if p := recover(); p != nil && log != nil {
					log.ErrorContext(ctx, "idempotency: after-commit hook panicked", "panic", p)
				}
			}()
			f(ctx)
		}()
	}
}

// runFunc runs fn and recovers a panic, returning the recovered value so the
// caller can release the key before re-panicking.
func runFunc(ctx context.Context, fn Func) (res Result, panicked any, err error) {
	defer func() {
		if p := recover(); p != nil {
			panicked = p
		}
	}()
	res, err = fn(ctx)
	return res, nil, err
}

// checkResult trims the message and refuses a payload too large to store.
func checkResult(res *Result) error {
	res.Message = trimMessage(res.Message)
	if len(res.Payload) > MaxPayloadLen {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrResultTooLarge, len(res.Payload), MaxPayloadLen)
	}
	return nil
}

// storeError wraps a store failure before the function ran: nothing ran, so
// the caller may retry (CodeUnavailable). Context errors pass through.
func storeError(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("idempotency: %s: %w", op, err)
	}
	return &protocol.Error{Code: protocol.CodeUnavailable, Message: "idempotency store unavailable", Err: fmt.Errorf("idempotency: %s: %w", op, err)}
}

// retryErr gives a retryable error without a result code of its own (a
// driver's deadlock error, say) CodeUnavailable, so the client retries
// instead of seeing CodeInternal.
func retryErr(err error) error {
	if protocol.CodeOf(err) != protocol.CodeInternal {
		return err
	}
	if backend.Unavailable(err) {
		return backend.Classify(err)
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return err // an explicit CodeInternal stays internal
	}
	return &protocol.Error{Code: protocol.CodeUnavailable, Message: protocol.CodeUnavailable.String(), Err: err}
}
