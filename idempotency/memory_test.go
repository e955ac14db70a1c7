package idempotency_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/idempotency/idempotencytest"
	"github.com/madang-io/madang/protocol"
)

// A configured MemoryStore (size hint, a bound far above what the suites
// use) passes the conformance suites too.
func TestMemoryStoreConfigConformance(t *testing.T) {
	newStore := func(t testing.TB) idempotency.Store {
		s, err := idempotency.NewMemoryStoreConfig(idempotency.MemoryConfig{SizeHint: 1000, MaxRecords: 100000})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	idempotencytest.RunStoreTests(t, newStore)
	idempotencytest.RunDoerTests(t, keeperOver(newStore), idempotencytest.Options{})
}

func TestMemoryStoreConfigRejectsNegative(t *testing.T) {
	for _, cfg := range []idempotency.MemoryConfig{{SizeHint: -1}, {MaxRecords: -1}} {
		if s, err := idempotency.NewMemoryStoreConfig(cfg); err == nil || s != nil {
			t.Errorf("%+v: got %v, %v; want an error", cfg, s, err)
		}
	}
}

// MaxRecords: a new key is refused with ErrStoreFull while every record is
// unexpired; stored keys are still served; once records expire there is
// room again.
func TestMemoryStoreMaxRecords(t *testing.T) {
	ctx := context.Background()
	fc := idempotencytest.NewClock(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	s, err := idempotency.NewMemoryStoreConfig(idempotency.MemoryConfig{Now: fc.Now, MaxRecords: 3})
	if err != nil {
		t.Fatal(err)
	}
	scope := idempotency.Scope{UserKey: 9, Command: "shop.buy"}
	fp := idempotency.FingerprintOf([]byte("p"))
	for i := range 3 {
		k := strconv.Itoa(i)
		if b, err := s.Begin(ctx, scope, k, fp, "t"+k, time.Minute); err != nil || b.State != idempotency.Acquired {
			t.Fatalf("key %d: %v, %v", i, b.State, err)
		}
	}
	if err := s.Complete(ctx, scope, "0", "t0", idempotency.Result{Payload: []byte("ok")}, time.Hour); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second refusal takes the no-sweep path
		_, err := s.Begin(ctx, scope, "new", fp, "tn", time.Minute)
		if !errors.Is(err, idempotency.ErrStoreFull) || protocol.CodeOf(err) != protocol.CodeUnavailable {
			t.Fatalf("full store: err %v (code %v), want ErrStoreFull, CodeUnavailable", err, protocol.CodeOf(err))
		}
	}
	if b, err := s.Begin(ctx, scope, "0", fp, "tx", time.Minute); err != nil || b.State != idempotency.Completed || string(b.Result.Payload) != "ok" {
		t.Fatalf("stored key in a full store: %+v, %v", b, err)
	}
	if b, err := s.Begin(ctx, scope, "1", fp, "tx", time.Minute); err != nil || b.State != idempotency.InFlight {
		t.Fatalf("in-flight key in a full store: %+v, %v", b, err)
	}
	if s.Len() != 3 {
		t.Fatalf("Len %d, want 3", s.Len())
	}
	// The leases of "1" and "2" end: two records are free again.
	fc.Advance(time.Minute)
	for _, k := range []string{"a", "b"} {
		if b, err := s.Begin(ctx, scope, k, fp, "t"+k, time.Minute); err != nil || b.State != idempotency.Acquired {
			t.Fatalf("key %s after expiry: %v, %v", k, b.State, err)
		}
	}
	if _, err := s.Begin(ctx, scope, "c", fp, "tc", time.Minute); !errors.Is(err, idempotency.ErrStoreFull) {
		t.Fatalf("full again: %v", err)
	}
	if s.Len() != 3 {
		t.Fatalf("Len %d, want 3", s.Len())
	}
	// Through a Keeper the refusal is CodeUnavailable and fn does not run.
	k, _ := idempotency.NewKeeper(s, idempotency.Config{})
	ran := false
	_, err = k.Do(ctx, scope, "d", fp, func(context.Context) (idempotency.Result, error) { ran = true; return idempotency.Result{}, nil })
	if ran || !errors.Is(err, idempotency.ErrStoreFull) || protocol.CodeOf(err) != protocol.CodeUnavailable {
		t.Fatalf("Do on a full store: ran %v, err %v", ran, err)
	}
}

// Expired records are swept by later Begin calls even if their keys are
// never used again, and their room is reused.
func TestMemoryStoreSweepsExpired(t *testing.T) {
	ctx := context.Background()
	fc := idempotencytest.NewClock(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	s := idempotency.NewMemoryStore(fc.Now)
	scope := idempotency.Scope{UserKey: 1, Command: "c"}
	fp := idempotency.FingerprintOf(nil)
	const n = 1000
	for i := range n {
		k := "old" + strconv.Itoa(i)
		if _, err := s.Begin(ctx, scope, k, fp, "t", time.Second); err != nil {
			t.Fatal(err)
		}
	}
	fc.Advance(time.Second)
	// Each Begin sweeps 64/16 = 4 records on average: n/4 calls go round once.
	for i := range n / 2 {
		if _, err := s.Begin(ctx, scope, "new"+strconv.Itoa(i), fp, "t", time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Len(); got != n/2 {
		t.Fatalf("Len %d after the sweep, want %d (only the new records)", got, n/2)
	}
}

// A memory store bounded to two records: a third key is refused while the
// first two are unexpired, and the refusal is retryable (CodeUnavailable).
func ExampleNewMemoryStoreConfig() {
	s, err := idempotency.NewMemoryStoreConfig(idempotency.MemoryConfig{MaxRecords: 2})
	if err != nil {
		panic(err)
	}
	k, _ := idempotency.NewKeeper(s, idempotency.Config{})
	ctx := context.Background()
	scope := idempotency.Scope{UserKey: 7, Command: "shop.buy"}
	buy := func(context.Context) (idempotency.Result, error) {
		return idempotency.Result{Payload: []byte(`{"gems":97}`)}, nil
	}
	for _, rid := range []string{"r1", "r2", "r3", "r1"} {
		out, err := k.Do(ctx, scope, rid, idempotency.FingerprintOf(nil), buy)
		fmt.Println(rid, string(out.Payload), out.Replay, errors.Is(err, idempotency.ErrStoreFull), protocol.CodeOf(err) == protocol.CodeUnavailable)
	}
	// Output:
	// r1 {"gems":97} false false false
	// r2 {"gems":97} false false false
	// r3  false true true
	// r1 {"gems":97} true false false
}

// A record added after the store was found full may expire before the
// others: the store does not keep refusing until the older ones expire.
func TestMemoryStoreFullShortLease(t *testing.T) {
	ctx := context.Background()
	fc := idempotencytest.NewClock(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	s, _ := idempotency.NewMemoryStoreConfig(idempotency.MemoryConfig{Now: fc.Now, MaxRecords: 2})
	scope := idempotency.Scope{UserKey: 1, Command: "c"}
	fp := idempotency.FingerprintOf(nil)
	begin := func(key string, lease time.Duration) error {
		_, err := s.Begin(ctx, scope, key, fp, key, lease)
		return err
	}
	for _, k := range []string{"a", "b"} {
		if err := begin(k, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := begin("c", time.Hour); !errors.Is(err, idempotency.ErrStoreFull) {
		t.Fatalf("full: %v", err)
	}
	if err := s.Release(ctx, scope, "b", "b"); err != nil {
		t.Fatal(err)
	}
	if err := begin("short", time.Second); err != nil {
		t.Fatal(err)
	}
	fc.Advance(time.Second)
	if err := begin("d", time.Hour); err != nil {
		t.Fatalf("after the short lease ended: %v, want room", err)
	}
}
