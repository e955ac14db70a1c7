package idempotencytest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/protocol"
)

// NewStoreFunc returns a fresh, empty Store, cleaned up when t ends.
type NewStoreFunc func(t testing.TB) idempotency.Store

// RunStoreTests checks the lease-based state machine of a Store directly.
// Lease expiry is checked with real time (leases of a few milliseconds), so
// it works for stores whose clock the test cannot move (Redis TTLs).
func RunStoreTests(t *testing.T, newStore NewStoreFunc) {
	ctx := context.Background()
	scope := idempotency.Scope{UserKey: 7, Command: "mail.claim"}
	fp := idempotency.FingerprintOf([]byte(`{"mail":1}`))
	other := idempotency.FingerprintOf([]byte(`{"mail":2}`))
	const long = time.Minute

	begin := func(t *testing.T, s idempotency.Store, k string, fp idempotency.Fingerprint, tok string, lease time.Duration) idempotency.Begin {
		t.Helper()
		b, err := s.Begin(ctx, scope, k, fp, tok, lease)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	t.Run("StateMachine", func(t *testing.T) {
		s := newStore(t)
		k := key()
		if b := begin(t, s, k, fp, "t1", long); b.State != idempotency.Acquired {
			t.Fatalf("first begin: %+v", b)
		}
		if b := begin(t, s, k, fp, "t2", long); b.State != idempotency.InFlight {
			t.Fatalf("second begin: %+v", b)
		}
		if b := begin(t, s, k, other, "t3", long); b.State != idempotency.Mismatch {
			t.Fatalf("other fingerprint in flight: %+v", b)
		}
		if err := s.Complete(ctx, scope, k, "t2", idempotency.Result{}, long); !errors.Is(err, idempotency.ErrLeaseLost) {
			t.Fatalf("complete with a foreign token: %v", err)
		}
		res := idempotency.Result{Code: protocol.CodeGameBase + 3, Message: "sold out", Payload: bytes.Clone(oddPayload)}
		if err := s.Complete(ctx, scope, k, "t1", res, long); err != nil {
			t.Fatal(err)
		}
		b := begin(t, s, k, fp, "t4", long)
		if b.State != idempotency.Completed || b.Result.Code != res.Code || b.Result.Message != res.Message || !bytes.Equal(b.Result.Payload, oddPayload) {
			t.Fatalf("after complete: %+v", b)
		}
		if b := begin(t, s, k, other, "t5", long); b.State != idempotency.Mismatch {
			t.Fatalf("other fingerprint completed: %+v", b)
		}
		if err := s.Complete(ctx, scope, k, "t1", idempotency.Result{}, long); !errors.Is(err, idempotency.ErrLeaseLost) {
			t.Fatalf("second complete: %v", err)
		}
		if err := s.Release(ctx, scope, k, "t1"); err != nil {
			t.Fatal(err)
		}
		if b := begin(t, s, k, fp, "t6", long); b.State != idempotency.Completed {
			t.Fatalf("release after complete removed the result: %+v", b)
		}
	})

	t.Run("ReleaseFreesOnlyItsOwnMark", func(t *testing.T) {
		s := newStore(t)
		k := key()
		begin(t, s, k, fp, "t1", long)
		if err := s.Release(ctx, scope, k, "other"); err != nil {
			t.Fatal(err)
		}
		if b := begin(t, s, k, fp, "t2", long); b.State != idempotency.InFlight {
			t.Fatalf("foreign release freed the key: %+v", b)
		}
		if err := s.Release(ctx, scope, k, "t1"); err != nil {
			t.Fatal(err)
		}
		if b := begin(t, s, k, other, "t3", long); b.State != idempotency.Acquired {
			t.Fatalf("after release: %+v", b)
		}
	})

	t.Run("LeaseExpires", func(t *testing.T) {
		s := newStore(t)
		k := key()
		begin(t, s, k, fp, "dead", 20*time.Millisecond)
		deadline := time.Now().Add(10 * time.Second)
		for {
			b := begin(t, s, k, fp, "t2", long)
			if b.State == idempotency.Acquired {
				break
			}
			if b.State != idempotency.InFlight || time.Now().After(deadline) {
				t.Fatalf("lease never expired: %+v", b)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := s.Complete(ctx, scope, k, "dead", idempotency.Result{}, long); !errors.Is(err, idempotency.ErrLeaseLost) {
			t.Fatalf("the crashed owner completed after losing its lease: %v", err)
		}
		if err := s.Complete(ctx, scope, k, "t2", idempotency.Result{Payload: []byte(`2`)}, long); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("RetentionExpires", func(t *testing.T) {
		s := newStore(t)
		k := key()
		begin(t, s, k, fp, "t1", long)
		if err := s.Complete(ctx, scope, k, "t1", idempotency.Result{}, 20*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			b := begin(t, s, k, other, "t2", long)
			if b.State == idempotency.Acquired {
				break
			}
			if b.State != idempotency.Mismatch || time.Now().After(deadline) {
				t.Fatalf("result never expired: %+v", b)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})

	t.Run("KeysAreSeparate", func(t *testing.T) {
		s := newStore(t)
		k := key()
		for _, sc := range []idempotency.Scope{scope, {UserKey: 8, Command: scope.Command}, {UserKey: 7, Command: "mail"}, {UserKey: 7, Command: "mail.claim:" + k}} {
			b, err := s.Begin(ctx, sc, k, fp, "t", long)
			if err != nil || b.State != idempotency.Acquired {
				t.Fatalf("scope %+v: %+v, %v", sc, b, err)
			}
		}
		if b := begin(t, s, k+"x", fp, "t", long); b.State != idempotency.Acquired {
			t.Fatalf("other key: %+v", b)
		}
	})
}
