package protocol

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// Defaults for DecodeBudgetConfig.
const (
	DefaultDecodeBudget                = 64 << 20 // 64 MiB
	DefaultDecodeBudgetFree            = 4 << 10  // 4 KiB
	DefaultDecodeBudgetWait            = time.Second
	decodeBudgetUnauthenticatedDivisor = 4 // default UnauthenticatedBytes = Bytes / 4
)

// ErrDecodeBusy is the error for a frame whose body could not get room in
// the DecodeBudget within its wait: the server holds as many decoded bytes
// as it allows. It is answered rate_limited with a retry hint; errors.Is
// matches the *Error values the budget returns, which carry the hint.
var ErrDecodeBusy = &Error{Code: CodeRateLimited, Message: "protocol: server busy decoding other requests; retry later", RetryAfter: time.Second}

// DecodeBudgetConfig configures a DecodeBudget. The zero value works: every
// default is on its field.
type DecodeBudgetConfig struct {
	// Bytes is the most bytes of decoded frame bodies that everything
	// sharing the budget holds at once: every HTTP request and websocket
	// frame being decoded or served, on every transport given the budget.
	// A body is charged its decoded (decompressed) length from before it is
	// allocated until the request or frame is done. Default 64 MiB.
	Bytes int64
	// UnauthenticatedBytes is the part of Bytes that bodies of frames that
	// are not sealed with session keys (plain and XOR frames, which anyone
	// can send) may hold at once, so they can never take the room of
	// authenticated ones. Default Bytes/4; at most Bytes.
	UnauthenticatedBytes int64
	// FreeBytes: bodies of at most this many bytes are not charged. They
	// cost no more than the connection carrying them, and the players'
	// usual requests then never wait behind large ones. Default 4 KiB; a
	// negative value charges every body.
	FreeBytes int
	// Wait is how long a body waits for room before its frame is refused
	// with rate_limited (ErrDecodeBusy, with a retry hint of 1-2 s).
	// Default 1 s; a negative value does not wait.
	Wait time.Duration
}

// DecodeBudget bounds the memory that decoding frames takes in total,
// across requests and transports: a weighted semaphore of bytes, charged
// with each frame's declared decoded length before the body is allocated
// (after the AEAD of an authenticated frame was opened) and given back when
// the request is done. One budget is meant to be shared by everything that
// decodes frames in a process (HTTPConfig.DecodeBudget and the realtime
// hub's Config.DecodeBudget). A body larger than the room its class can
// ever get (Bytes, or UnauthenticatedBytes for plain and XOR frames) is
// refused with too_large at once. Safe for concurrent use.
type DecodeBudget struct {
	all, unauth *semaphore.Weighted
	cfg         DecodeBudgetConfig

	inUse, peak, unauthInUse atomic.Int64
	charged, waited, refused atomic.Uint64
}

// DecodeBudgetStats are a DecodeBudget's counters, for metrics.
type DecodeBudgetStats struct {
	Bytes                int64  // the budget: Config.Bytes
	UnauthenticatedBytes int64  // the unauthenticated part: Config.UnauthenticatedBytes
	InUse                int64  // bytes charged now
	UnauthenticatedInUse int64  // of which by plain and XOR frames
	Peak                 int64  // the most bytes charged at once since the budget was made
	Charged              uint64 // bodies charged (bodies of at most FreeBytes are not counted)
	Waited               uint64 // bodies that had to wait for room
	Refused              uint64 // bodies refused: no room within Wait (rate_limited)
}

// NewDecodeBudget returns a DecodeBudget for cfg, applying defaults to zero
// fields.
func NewDecodeBudget(cfg DecodeBudgetConfig) *DecodeBudget {
	if cfg.Bytes <= 0 {
		cfg.Bytes = DefaultDecodeBudget
	}
	if cfg.UnauthenticatedBytes <= 0 {
		cfg.UnauthenticatedBytes = cfg.Bytes / decodeBudgetUnauthenticatedDivisor
	}
	cfg.UnauthenticatedBytes = min(max(cfg.UnauthenticatedBytes, 1), cfg.Bytes)
	if cfg.FreeBytes == 0 {
		cfg.FreeBytes = DefaultDecodeBudgetFree
	}
	if cfg.Wait == 0 {
		cfg.Wait = DefaultDecodeBudgetWait
	}
	return &DecodeBudget{
		all:    semaphore.NewWeighted(cfg.Bytes),
		unauth: semaphore.NewWeighted(cfg.UnauthenticatedBytes),
		cfg:    cfg,
	}
}

// Config returns the budget's configuration with its defaults applied.
func (b *DecodeBudget) Config() DecodeBudgetConfig { return b.cfg }

// Stats returns the budget's counters.
func (b *DecodeBudget) Stats() DecodeBudgetStats {
	return DecodeBudgetStats{
		Bytes:                b.cfg.Bytes,
		UnauthenticatedBytes: b.cfg.UnauthenticatedBytes,
		InUse:                b.inUse.Load(),
		UnauthenticatedInUse: b.unauthInUse.Load(),
		Peak:                 b.peak.Load(),
		Charged:              b.charged.Load(),
		Waited:               b.waited.Load(),
		Refused:              b.refused.Load(),
	}
}

// DecodeLease is the room one decoded body holds in a DecodeBudget. Release
// gives it back; the zero DecodeLease holds nothing.
type DecodeLease struct {
	b      *DecodeBudget
	n      int64
	unauth bool
}

// Bytes returns how many bytes the lease holds (0 for a body that was not
// charged).
func (l *DecodeLease) Bytes() int64 { return l.n }

// Release gives the lease's bytes back to its budget. Releasing twice, or
// releasing the zero DecodeLease, does nothing.
func (l *DecodeLease) Release() {
	b := l.b
	if b == nil {
		return
	}
	l.b = nil
	b.inUse.Add(-l.n)
	b.all.Release(l.n)
	if l.unauth {
		b.unauthInUse.Add(-l.n)
		b.unauth.Release(l.n)
	}
}

// Acquire charges n bytes of a decoded body to the budget, waiting up to
// Config.Wait (or until ctx ends) for room. unauthenticated says the body
// comes from a plain or XOR frame. The returned lease must be released when
// the body (and whatever was copied from it) is no longer held. Errors:
// ErrBodyTooLarge when n can never fit, ErrDecodeBusy (rate_limited, with a
// retry hint) when there was no room in time.
func (b *DecodeBudget) Acquire(ctx context.Context, n int, unauthenticated bool) (DecodeLease, error) {
	if b == nil || n <= b.cfg.FreeBytes {
		return DecodeLease{}, nil
	}
	w := int64(n)
	capacity := b.cfg.Bytes
	if unauthenticated {
		capacity = b.cfg.UnauthenticatedBytes
	}
	if w > capacity {
		return DecodeLease{}, fmt.Errorf("%w: %d bytes, more than the decode budget allows one body (%d)", ErrBodyTooLarge, n, capacity)
	}
	fast := (!unauthenticated || b.unauth.TryAcquire(w))
	if fast && b.all.TryAcquire(w) {
		return b.granted(w, unauthenticated), nil
	}
	if fast && unauthenticated {
		b.unauth.Release(w) // got the share but not the whole: wait for both in order
	}
	b.waited.Add(1)
	if b.cfg.Wait < 0 {
		return DecodeLease{}, b.busy()
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Wait)
	defer cancel()
	if unauthenticated {
		if err := b.unauth.Acquire(ctx, w); err != nil {
			return DecodeLease{}, b.busy()
		}
	}
	if err := b.all.Acquire(ctx, w); err != nil {
		if unauthenticated {
			b.unauth.Release(w)
		}
		return DecodeLease{}, b.busy()
	}
	return b.granted(w, unauthenticated), nil
}

func (b *DecodeBudget) granted(w int64, unauth bool) DecodeLease {
	b.charged.Add(1)
	if unauth {
		b.unauthInUse.Add(w)
	}
	now := b.inUse.Add(w)
	for {
		p := b.peak.Load()
		if now <= p || b.peak.CompareAndSwap(p, now) {
			break
		}
	}
	return DecodeLease{b: b, n: w, unauth: unauth}
}

// busy counts a refusal and returns ErrDecodeBusy with a retry hint of 1-2
// s, spread so refused clients do not come back together.
func (b *DecodeBudget) busy() error {
	b.refused.Add(1)
	e := *ErrDecodeBusy
	e.RetryAfter = time.Second + rand.N(time.Second)
	return &busyError{&e}
}

// busyError is ErrDecodeBusy with its own retry hint; errors.Is matches
// ErrDecodeBusy, errors.As finds the *Error with the hint.
type busyError struct{ e *Error }

func (e *busyError) Error() string        { return e.e.Error() }
func (e *busyError) Unwrap() error        { return e.e }
func (e *busyError) Is(target error) bool { return target == ErrDecodeBusy }
