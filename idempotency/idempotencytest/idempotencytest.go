// Package idempotencytest checks implementations of the idempotency
// package's interfaces: RunStoreTests for a lease-based idempotency.Store
// (the state machine itself) and RunDoerTests for anything that makes calls
// idempotent (an idempotency.Keeper over any store, an idempotency.SQLStore
// on any database or over a shard router's game databases: see
// Options.UserKey). Every backend madang ships runs both suites in the
// idempotency package's tests; run them on your own implementations too.
// Clock is a clock the test moves, for MemoryConfig.Now and Config.Now.
package idempotencytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/protocol"
)

// NewDoerFunc returns a fresh, empty Doer configured by cfg, cleaned up
// when t ends.
type NewDoerFunc func(t testing.TB, cfg idempotency.Config) idempotency.Doer

// Options describe what a Doer's backend can and cannot tell apart.
type Options struct {
	// BusyIsUnavailable: a duplicate refused while the first call holds the
	// backend may answer CodeUnavailable instead of CodeInFlight (SQLite,
	// whose writers wait for the whole database, not for the key).
	BusyIsUnavailable bool
	// UserKey is the user key of the suite's calls (the next key too, for
	// another scope). Default 10000042. A Doer that routes users to
	// databases (an idempotency.SQLStore over a shard router) runs the
	// suite with a key of each database, or of one not first. Invalid
	// requests use the key 1, which no database need own: they must be
	// refused before any database is chosen.
	UserKey int64
}

// key returns a random idempotency key.
func key() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "k-" + hex.EncodeToString(b[:])
}

// oddPayload is a result whose bytes a re-encoding would change: white
// space, escapes and key order must come back exactly.
var oddPayload = []byte("{\"z\": 1,  \"a\":\"\\u00e9\\n\",\n\"n\":[1.50 ,2e3]}")

func codeOf(err error) protocol.Code { return protocol.CodeOf(err) }

// RunDoerTests runs the behaviour every Doer must have.
func RunDoerTests(t *testing.T, newDoer NewDoerFunc, opts Options) {
	ctx := context.Background()
	uk := opts.UserKey
	if uk == 0 {
		uk = 10000042
	}
	scope := idempotency.Scope{UserKey: uk, Command: "shop.buy"}
	fp := idempotency.FingerprintOf([]byte(`{"item":7}`))

	t.Run("FirstRunThenReplayByteForByte", func(t *testing.T) {
		d := newDoer(t, idempotency.Config{})
		var runs atomic.Int32
		fn := func(context.Context) (idempotency.Result, error) {
			runs.Add(1)
			return idempotency.Result{Code: protocol.CodeOK, Message: "bought", Payload: bytes.Clone(oddPayload)}, nil
		}
		k := key()
		out, err := d.Do(ctx, scope, k, fp, fn)
		if err != nil {
			t.Fatal(err)
		}
		if out.Replay || out.Code != protocol.CodeOK || out.Message != "bought" || !bytes.Equal(out.Payload, oddPayload) {
			t.Fatalf("first run: %+v", out)
		}
		for i := range 3 {
			out, err = d.Do(ctx, scope, k, fp, fn)
			if err != nil {
				t.Fatal(err)
			}
			if !out.Replay || out.Code != protocol.CodeOK || out.Message != "bought" || !bytes.Equal(out.Payload, oddPayload) {
				t.Fatalf("replay %d: %+v, payload %q", i, out, out.Payload)
			}
		}
		if n := runs.Load(); n != 1 {
			t.Fatalf("fn ran %d times, want 1", n)
		}
		if s := d.Stats(); s.Executed != 1 || s.Replayed != 3 {
			t.Fatalf("stats %+v, want 1 executed, 3 replayed", s)
		}
	})

	t.Run("EmptyPayloadReplays", func(t *testing.T) {
		d := newDoer(t, idempotency.Config{})
		k := key()
		fn := func(context.Context) (idempotency.Result, error) { return idempotency.Result{}, nil }
		if _, err := d.Do(ctx, scope, k, fp, fn); err != nil {
			t.Fatal(err)
		}
		out, err := d.Do(ctx, scope, k, fp, fn)
		if err != nil || !out.Replay || out.Code != protocol.CodeOK || len(out.Payload) != 0 {
			t.Fatalf("replay %+v, %v", out, err)
		}
	})

	t.Run("ScopesAreSeparate", func(t *testing.T) {
		d := newDoer(t, idempotency.Config{})
		k := key()
		var runs atomic.Int32
		fn := func(context.Context) (idempotency.Result, error) {
			runs.Add(1)
			return idempotency.Result{}, nil
		}
		for _, s := range []idempotency.Scope{scope, {UserKey: scope.UserKey + 1, Command: scope.Command}, {UserKey: scope.UserKey, Command: "shop.sell"}, {UserKey: scope.UserKey, Command: "shop.buy:x"}} {
			out, err := d.Do(ctx, s, k, fp, fn)
			if err != nil || out.Replay {
				t.Fatalf("scope %+v: %+v, %v", s, out, err)
			}
		}
		if runs.Load() != 4 {
			t.Fatalf("ran %d, want 4", runs.Load())
		}
	})

	t.Run("DifferentFingerprintIsRefused", func(t *testing.T) {
		d := newDoer(t, idempotency.Config{})
		k := key()
		var runs atomic.Int32
		fn := func(context.Context) (idempotency.Result, error) {
			runs.Add(1)
			return idempotency.Result{Payload: []byte(`1`)}, nil
		}
		if _, err := d.Do(ctx, scope, k, fp, fn); err != nil {
			t.Fatal(err)
		}
		_, err := d.Do(ctx, scope, k, idempotency.FingerprintOf([]byte(`{"item":8}`)), fn)
		if !errors.Is(err, idempotency.ErrKeyReused) || codeOf(err) != protocol.CodeRequestIDReused {
			t.Fatalf("err %v (code %v), want ErrKeyReused", err, codeOf(err))
		}
		if runs.Load() != 1 || d.Stats().Reused != 1 {
			t.Fatalf("runs %d, stats %+v", runs.Load(), d.Stats())
		}
	})

	t.Run("DefinitiveErrorsAreStored", func(t *testing.T) {
		d := newDoer(t, idempotency.Config{})
		for _, tc := range []struct {
			err  error
			code protocol.Code
			msg  string
		}{
			{&protocol.Error{Code: protocol.CodeGameBase + 1, Message: "not enough gems"}, protocol.CodeGameBase + 1, "not enough gems"},
			{protocol.Errorf(protocol.CodeBadRequest, "bad item"), protocol.CodeBadRequest, "bad item"},
			{idempotency.Definitive(errors.New("secret internals")), protocol.CodeInternal, "internal"},
		} {
			k := key()
			var runs atomic.Int32
			fn := func(context.Context) (idempotency.Result, error) {
				runs.Add(1)
				return idempotency.Result{}, tc.err
			}
			for i := range 2 {
				out, err := d.Do(ctx, scope, k, fp, fn)
				if err != nil {
					t.Fatalf("%v: call %d: %v", tc.err, i, err)
				}
				if out.Code != tc.code || out.Message != tc.msg || out.Replay != (i == 1) {
					t.Fatalf("%v: call %d: %+v", tc.err, i, out)
				}
			}
			if runs.Load() != 1 {
				t.Fatalf("%v: ran %d times", tc.err, runs.Load())
			}
		}
	})

	t.Run("RetryableErrorsReleaseTheKey", func(t *testing.T) {
		d := newDoer(t, idempotency.Config{})
		for _, failure := range []error{
			&protocol.Error{Code: protocol.CodeUnavailable, Message: "db down"},
			&protocol.Error{Code: protocol.CodeTimeout},
			context.Canceled,
			errors.New("unexplained"),
			// A game code marked retryable keeps its code; the key is free.
			idempotency.Retryable(&protocol.Error{Code: protocol.CodeGameBase + 5}),
		} {
			k := key()
			var runs atomic.Int32
			fn := func(context.Context) (idempotency.Result, error) {
				if runs.Add(1) == 1 {
					return idempotency.Result{}, failure
				}
				return idempotency.Result{Payload: []byte(`"ok"`)}, nil
			}
			_, err := d.Do(ctx, scope, k, fp, fn)
			if err == nil || (codeOf(err) < protocol.CodeGameBase && !codeOf(err).Retryable()) {
				t.Fatalf("%v: first call err %v (code %v), want a retryable error", failure, err, codeOf(err))
			}
			out, err := d.Do(ctx, scope, k, fp, fn)
			if err != nil || out.Replay || string(out.Payload) != `"ok"` {
				t.Fatalf("%v: retry %+v, %v", failure, out, err)
			}
			if runs.Load() != 2 {
				t.Fatalf("%v: ran %d, want 2", failure, runs.Load())
			}
		}
	})

	t.Run("RetryableResultCodeIsNotStored", func(t *testing.T) {
		d := newDoer(t, idempotency.Config{})
		k := key()
		var runs atomic.Int32
		fn := func(context.Context) (idempotency.Result, error) {
			if runs.Add(1) == 1 {
				return idempotency.Result{Code: protocol.CodeUnavailable}, nil
			}
			return idempotency.Result{}, nil
		}
		out, err := d.Do(ctx, scope, k, fp, fn)
		if err != nil || out.Code != protocol.CodeUnavailable {
			t.Fatalf("%+v, %v", out, err)
		}
		out, err = d.Do(ctx, scope, k, fp, fn)
		if err != nil || out.Replay || out.Code != protocol.CodeOK || runs.Load() != 2 {
			t.Fatalf("%+v, %v, runs %d", out, err, runs.Load())
		}
	})

	t.Run("PanicReleasesTheKey", func(t *testing.T) {
		d := newDoer(t, idempotency.Config{})
		k := key()
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("panic swallowed")
				}
			}()
			_, _ = d.Do(ctx, scope, k, fp, func(context.Context) (idempotency.Result, error) { panic("boom") })
		}()
		out, err := d.Do(ctx, scope, k, fp, func(context.Context) (idempotency.Result, error) { return idempotency.Result{}, nil })
		if err != nil || out.Replay {
			t.Fatalf("after panic: %+v, %v", out, err)
		}
	})

	t.Run("MissingKey", func(t *testing.T) {
		d := newDoer(t, idempotency.Config{})
		var runs atomic.Int32
		fn := func(context.Context) (idempotency.Result, error) {
			runs.Add(1)
			return idempotency.Result{}, nil
		}
		for range 2 {
			if out, err := d.Do(ctx, scope, "", fp, fn); err != nil || out.Replay {
				t.Fatalf("%+v, %v", out, err)
			}
		}
		if runs.Load() != 2 || d.Stats().NoKey != 2 {
			t.Fatalf("runs %d, stats %+v", runs.Load(), d.Stats())
		}
		strict := newDoer(t, idempotency.Config{RequireKey: true})
		// The key 1 need not be routable: the check comes first.
		for _, s := range []idempotency.Scope{scope, {UserKey: 1, Command: scope.Command}} {
			_, err := strict.Do(ctx, s, "", fp, fn)
			if !errors.Is(err, idempotency.ErrMissingKey) || codeOf(err) != protocol.CodeBadRequest || runs.Load() != 2 {
				t.Fatalf("required, user %d: %v, runs %d", s.UserKey, err, runs.Load())
			}
		}
	})

	t.Run("InvalidKey", func(t *testing.T) {
		d := newDoer(t, idempotency.Config{})
		fn := func(context.Context) (idempotency.Result, error) { t.Error("ran"); return idempotency.Result{}, nil }
		for _, tc := range []struct {
			s idempotency.Scope
			k string
		}{
			{idempotency.Scope{UserKey: 1}, "k"},
			{idempotency.Scope{UserKey: 1, Command: string(make([]byte, idempotency.MaxCommandLen+1))}, "k"},
			{scope, string(make([]byte, idempotency.MaxKeyLen+1))},
		} {
			if _, err := d.Do(ctx, tc.s, tc.k, fp, fn); !errors.Is(err, idempotency.ErrInvalidKey) || codeOf(err) != protocol.CodeBadRequest {
				t.Fatalf("%d-byte command, %d-byte key: %v", len(tc.s.Command), len(tc.k), err)
			}
		}
	})

	t.Run("AfterCommitHooksRunOnce", func(t *testing.T) {
		d := newDoer(t, idempotency.Config{})
		k := key()
		var hooks atomic.Int32
		fn := func(ctx context.Context) (idempotency.Result, error) {
			idempotency.AfterCommit(ctx, func(context.Context) { hooks.Add(1) })
			return idempotency.Result{}, nil
		}
		for range 3 {
			if _, err := d.Do(ctx, scope, k, fp, fn); err != nil {
				t.Fatal(err)
			}
		}
		if hooks.Load() != 1 {
			t.Fatalf("hook ran %d times, want 1", hooks.Load())
		}
		// A retryable failure runs no hooks.
		k = key()
		_, err := d.Do(ctx, scope, k, fp, func(ctx context.Context) (idempotency.Result, error) {
			idempotency.AfterCommit(ctx, func(context.Context) { hooks.Add(100) })
			return idempotency.Result{}, idempotency.Retryable(errors.New("flaky"))
		})
		if err == nil || hooks.Load() != 1 {
			t.Fatalf("err %v, hooks %d", err, hooks.Load())
		}
	})

	t.Run("InFlightAnsweredAtOnce", func(t *testing.T) {
		d := newDoer(t, idempotency.Config{InFlight: idempotency.AnswerInFlight, RetryAfter: 300 * time.Millisecond})
		k := key()
		started, release := make(chan struct{}), make(chan struct{})
		var runs atomic.Int32
		fn := func(context.Context) (idempotency.Result, error) {
			if runs.Add(1) == 1 {
				close(started)
				<-release
			}
			return idempotency.Result{Payload: []byte(`42`)}, nil
		}
		var wg sync.WaitGroup
		var first idempotency.Outcome
		var firstErr error
		wg.Go(func() { first, firstErr = d.Do(ctx, scope, k, fp, fn) })
		<-started
		_, err := d.Do(ctx, scope, k, fp, fn)
		close(release)
		wg.Wait()
		if firstErr != nil || string(first.Payload) != "42" {
			t.Fatalf("first: %+v, %v", first, firstErr)
		}
		code := codeOf(err)
		switch {
		case code == protocol.CodeInFlight:
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.RetryAfter != 300*time.Millisecond || !errors.Is(err, idempotency.ErrInFlight) {
				t.Fatalf("in-flight error %#v lacks the retry hint", err)
			}
		case code == protocol.CodeUnavailable && opts.BusyIsUnavailable:
		default:
			t.Fatalf("duplicate: %v (code %v), want CodeInFlight", err, code)
		}
		if runs.Load() != 1 {
			t.Fatalf("ran %d times", runs.Load())
		}
		out, err := d.Do(ctx, scope, k, fp, fn)
		if err != nil || !out.Replay || string(out.Payload) != "42" {
			t.Fatalf("after: %+v, %v", out, err)
		}
	})

	t.Run("InFlightWaitGetsTheSameAnswer", func(t *testing.T) {
		d := newDoer(t, idempotency.Config{InFlight: idempotency.WaitInFlight, WaitTimeout: 30 * time.Second})
		k := key()
		started, release := make(chan struct{}), make(chan struct{})
		var runs atomic.Int32
		fn := func(context.Context) (idempotency.Result, error) {
			if runs.Add(1) == 1 {
				close(started)
				<-release
			}
			return idempotency.Result{Code: protocol.CodeGameBase, Payload: []byte(`"first"`)}, nil
		}
		var wg sync.WaitGroup
		var first idempotency.Outcome
		var firstErr error
		wg.Go(func() { first, firstErr = d.Do(ctx, scope, k, fp, fn) })
		<-started
		const dups = 5
		outs := make([]idempotency.Outcome, dups)
		errs := make([]error, dups)
		var dupWG sync.WaitGroup
		for i := range dups {
			dupWG.Go(func() { outs[i], errs[i] = d.Do(ctx, scope, k, fp, fn) })
		}
		// Let the duplicates reach the store before the first finishes; if
		// they come later they replay, which is the same answer.
		time.Sleep(50 * time.Millisecond)
		close(release)
		wg.Wait()
		dupWG.Wait()
		if firstErr != nil || first.Replay || string(first.Payload) != `"first"` {
			t.Fatalf("first: %+v, %v", first, firstErr)
		}
		for i := range dups {
			if errs[i] != nil || !outs[i].Replay || outs[i].Code != protocol.CodeGameBase || string(outs[i].Payload) != `"first"` {
				t.Fatalf("duplicate %d: %+v, %v", i, outs[i], errs[i])
			}
		}
		if runs.Load() != 1 {
			t.Fatalf("ran %d times", runs.Load())
		}
	})

	t.Run("ConcurrentSameKeyRunsOnce", func(t *testing.T) {
		d := newDoer(t, idempotency.Config{InFlight: idempotency.WaitInFlight, WaitTimeout: 30 * time.Second})
		k := key()
		var runs atomic.Int32
		fn := func(context.Context) (idempotency.Result, error) {
			runs.Add(1)
			return idempotency.Result{Payload: []byte(`"once"`)}, nil
		}
		const n = 50
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				out, err := d.Do(ctx, scope, k, fp, fn)
				if err == nil && string(out.Payload) != `"once"` {
					err = fmt.Errorf("payload %q", out.Payload)
				}
				if err != nil && !codeOf(err).Retryable() {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if runs.Load() != 1 {
			t.Fatalf("ran %d times", runs.Load())
		}
	})
}
