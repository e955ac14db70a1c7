package idempotency

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/protocol"
)

// State is what Store.Begin found for a key.
type State int

// The states Begin reports.
const (
	// Acquired: the key was free; it is now marked in flight with the
	// caller's token for the lease.
	Acquired State = iota + 1
	// Completed: a result is stored (Begin.Result); replay it.
	Completed
	// InFlight: another call holds the key (Begin.RetryAfter is the
	// remaining lease, when known).
	InFlight
	// Mismatch: the key is held or completed with another fingerprint.
	Mismatch
)

// Begin is the answer of Store.Begin.
type Begin struct {
	State      State
	Result     Result        // when Completed
	RetryAfter time.Duration // when InFlight: the lease left, 0 if unknown (caps the retry hint)
}

// Store keeps idempotency records for a Keeper: a lease-based state machine
// per (scope, key). Implementations must make each method atomic; they are
// called concurrently from many processes. MemoryStore and RedisStore
// implement it; idempotencytest.RunStoreTests checks an implementation.
type Store interface {
	// Begin atomically looks the key up and, if it is free (or its record
	// expired), marks it in flight with token and fp for lease.
	Begin(ctx context.Context, scope Scope, key string, fp Fingerprint, token string, lease time.Duration) (Begin, error)
	// Complete stores res for the key and keeps it for retention, if the
	// in-flight mark still carries token; otherwise it returns ErrLeaseLost
	// and stores nothing.
	Complete(ctx context.Context, scope Scope, key string, token string, res Result, retention time.Duration) error
	// Release removes the in-flight mark if it still carries token, so the
	// key can run again. Releasing a lost lease is not an error.
	Release(ctx context.Context, scope Scope, key string, token string) error
}

// Keeper makes calls idempotent over a lease-based Store (memory, Redis). It
// is safe for concurrent use and holds no goroutines.
type Keeper struct {
	store Store
	cfg   Config
	c     counters

	tokenPrefix string        // random per Keeper
	tokenSeq    atomic.Uint64 // makes tokens unique within the Keeper
}

var _ Doer = (*Keeper)(nil)

// NewKeeper returns a Keeper over store.
func NewKeeper(store Store, cfg Config) (*Keeper, error) {
	if store == nil {
		return nil, errors.New("idempotency: nil store")
	}
	var b [9]byte
	_, _ = rand.Read(b[:])
	return &Keeper{store: store, cfg: cfg.withDefaults(), tokenPrefix: base64.RawURLEncoding.EncodeToString(b[:])}, nil
}

// Stats returns the Keeper's counters.
func (k *Keeper) Stats() Stats { return k.c.snapshot() }

// Do runs fn at most once for (scope, key) among all Keepers sharing the
// store, and returns its result; later calls with the same key and
// fingerprint get the stored result with Outcome.Replay set, without running
// fn.
//
//   - key "" runs fn without idempotency, or fails with ErrMissingKey when
//     Config.RequireKey is set.
//   - A duplicate while the first call runs waits (Config.InFlight =
//     WaitInFlight, bounded by WaitTimeout) or fails at once with a
//     *protocol.Error of CodeInFlight (wrapping ErrInFlight) whose
//     RetryAfter is a hint.
//   - Another fingerprint for a used key fails with ErrKeyReused; fn does not
//     run.
//   - An error from fn is classified by IsRetryable: a retryable one releases
//     the key and is returned as is; a definitive one is stored as
//     ResultOf(err) and returned as the Outcome (err nil), like a result.
//   - A returned Result with a retryable code (CodeUnavailable, ...) is
//     returned but not stored.
//
// fn runs with a context whose deadline is Config.Lease minus a margin, so
// the lease outlives it. A panic in fn releases the key and is re-raised.
func (k *Keeper) Do(ctx context.Context, scope Scope, key string, fp Fingerprint, fn Func) (Outcome, error) {
	if key == "" {
		return runWithoutKey(ctx, k.cfg, &k.c, fn)
	}
	if err := checkKey(scope, key); err != nil {
		return Outcome{}, err
	}
	token := k.newToken()
	var waitUntil time.Time // set when the first wait starts
	backoff := 2 * time.Millisecond
	waited := false
	for {
		b, err := k.store.Begin(ctx, scope, key, fp, token, k.cfg.Lease)
		if err != nil {
			return Outcome{}, storeError("begin", err)
		}
		switch b.State {
		case Acquired:
			return k.run(ctx, scope, key, token, fn)
		case Completed:
			k.c.replayed.Add(1)
			logReplay(ctx, k.cfg, scope, key, b.Result.Code)
			return Outcome{Result: b.Result, Replay: true}, nil
		case Mismatch:
			k.c.reused.Add(1)
			if k.cfg.Logger != nil {
				k.cfg.Logger.WarnContext(ctx, "idempotency: request id reused with another payload", "user", scope.UserKey, "cmd", scope.Command, "rid", key)
			}
			return Outcome{}, ErrKeyReused
		case InFlight:
			if waitUntil.IsZero() {
				waitUntil = time.Now().Add(k.cfg.WaitTimeout)
			}
			left := time.Until(waitUntil)
			if k.cfg.InFlight == AnswerInFlight || left <= 0 {
				k.c.inFlight.Add(1)
				hint := k.cfg.RetryAfter
				if b.RetryAfter > 0 && b.RetryAfter < hint {
					hint = b.RetryAfter // the lease ends sooner
				}
				return Outcome{}, errInFlight(hint)
			}
			if !waited {
				waited = true
				k.c.waited.Add(1)
			}
			t := time.NewTimer(min(backoff, left))
			select {
			case <-ctx.Done():
				t.Stop()
				return Outcome{}, fmt.Errorf("idempotency: waiting for the request in flight: %w", ctx.Err())
			case <-t.C:
			}
			backoff = min(2*backoff, 50*time.Millisecond)
		default:
			return Outcome{}, storeError("begin", fmt.Errorf("unknown state %d", b.State))
		}
	}
}

// release frees the key after a retryable failure.
func (k *Keeper) release(ctx context.Context, scope Scope, key, token string) {
	k.c.released.Add(1)
	if err := k.store.Release(ctx, scope, key, token); err != nil && k.cfg.Logger != nil {
		k.cfg.Logger.ErrorContext(ctx, "idempotency: release failed; the key stays in flight until its lease ends", "user", scope.UserKey, "cmd", scope.Command, "rid", key, "err", err)
	}
}

// run executes fn under the lease and stores or releases its result.
func (k *Keeper) run(ctx context.Context, scope Scope, key, token string, fn Func) (Outcome, error) {
	fctx := ctx
	// A deadline already within the lease needs no timer of its own (the
	// HTTP adapter's HandlerTimeout, say).
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > k.cfg.handlerDeadline() {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(ctx, k.cfg.handlerDeadline())
		defer cancel()
	}
	fctx, h := withHooks(fctx)
	res, panicked, err := runFunc(fctx, fn)
	// The store calls after fn ran must happen even if the request was
	// cancelled meanwhile; the store client's own timeouts bound them.
	sctx := context.WithoutCancel(ctx)
	if panicked != nil {
		k.release(sctx, scope, key, token)
		panic(panicked)
	}
	if err != nil {
		if IsRetryable(err) {
			k.release(sctx, scope, key, token)
			return Outcome{}, retryErr(err)
		}
		res = ResultOf(err)
	} else if retryableCode(res.Code) {
		k.release(sctx, scope, key, token)
		return Outcome{Result: res}, nil
	}
	if err := checkResult(&res); err != nil {
		k.release(sctx, scope, key, token)
		return Outcome{}, err
	}
	if err := k.store.Complete(sctx, scope, key, token, res, k.cfg.Retention); err != nil {
		if k.cfg.Logger != nil {
			k.cfg.Logger.ErrorContext(ctx, "idempotency: storing the result failed", "user", scope.UserKey, "cmd", scope.Command, "rid", key, "err", err)
		}
		if errors.Is(err, ErrLeaseLost) {
			return Outcome{}, err
		}
		// The function ran; whether a retry runs it again depends on the
		// store recovering before the lease ends. Say "may have committed".
		return Outcome{}, &protocol.Error{Code: protocol.CodeTimeout, Message: "idempotency: result not stored; retry with the same request id", Err: err}
	}
	k.c.executed.Add(1)
	h.run(ctx, k.cfg.Logger)
	return Outcome{Result: res}, nil
}

// runWithoutKey runs fn for a call without a key.
func runWithoutKey(ctx context.Context, cfg Config, c *counters, fn Func) (Outcome, error) {
	if cfg.RequireKey {
		return Outcome{}, ErrMissingKey
	}
	c.noKey.Add(1)
	fctx, h := withHooks(ctx)
	res, err := fn(fctx)
	if err != nil {
		if IsRetryable(err) {
			return Outcome{}, retryErr(err)
		}
		res = ResultOf(err)
	}
	if !retryableCode(res.Code) {
		h.run(ctx, cfg.Logger)
	}
	return Outcome{Result: res}, nil
}

func logReplay(ctx context.Context, cfg Config, scope Scope, key string, code protocol.Code) {
	if cfg.Logger != nil {
		cfg.Logger.DebugContext(ctx, "idempotency: replayed stored result", "user", scope.UserKey, "cmd", scope.Command, "rid", key, "code", code.String())
	}
}

// newToken returns an in-flight token no other call of any Keeper uses: a
// random per-Keeper prefix and a sequence number.
func (k *Keeper) newToken() string {
	var b [32]byte
	t := append(b[:0], k.tokenPrefix...)
	t = strconv.AppendUint(t, k.tokenSeq.Add(1), 36)
	return string(t)
}
