package idempotency

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// Keys whose hashes collide are kept apart: every key hashes alike here.
func TestMemoryStoreHashCollisions(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryStore(nil)
	m.hash = func(*MemoryStore, Scope, string) uint64 { return 42 }
	fp := FingerprintOf([]byte("p"))
	scopes := []Scope{{UserKey: 1, Command: "a"}, {UserKey: 2, Command: "a"}, {UserKey: 1, Command: "b"}}
	for _, sc := range scopes {
		for k := range 3 {
			key := strconv.Itoa(k)
			tok := sc.Command + strconv.FormatInt(sc.UserKey, 10) + key
			if b, err := m.Begin(ctx, sc, key, fp, tok, time.Minute); err != nil || b.State != Acquired {
				t.Fatalf("%v %s: %v %v", sc, key, b.State, err)
			}
			if err := m.Complete(ctx, sc, key, tok, Result{Payload: []byte(tok)}, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
	}
	if m.Len() != 9 || len(m.collided) != 8 {
		t.Fatalf("Len %d, collided %d; want 9, 8", m.Len(), len(m.collided))
	}
	for _, sc := range scopes {
		for k := range 3 {
			key := strconv.Itoa(k)
			want := sc.Command + strconv.FormatInt(sc.UserKey, 10) + key
			b, err := m.Begin(ctx, sc, key, fp, "x", time.Minute)
			if err != nil || b.State != Completed || string(b.Result.Payload) != want {
				t.Fatalf("%v %s: %+v %v, want payload %q", sc, key, b, err, want)
			}
		}
	}
	// Release of an in-flight key in the primary index and one in the
	// collision map; the other keys stay.
	sc := Scope{UserKey: 3, Command: "c"}
	m2 := NewMemoryStore(nil)
	m2.hash = m.hash
	for _, key := range []string{"p", "q"} {
		if b, err := m2.Begin(ctx, sc, key, fp, key, time.Minute); err != nil || b.State != Acquired {
			t.Fatal(b.State, err)
		}
	}
	if err := m2.Release(ctx, sc, "p", "p"); err != nil {
		t.Fatal(err)
	}
	if b, _ := m2.Begin(ctx, sc, "q", fp, "z", time.Minute); b.State != InFlight {
		t.Fatalf("q after releasing p: %v, want InFlight", b.State)
	}
	if err := m2.Release(ctx, sc, "q", "q"); err != nil {
		t.Fatal(err)
	}
	if m2.Len() != 0 {
		t.Fatalf("Len %d after releasing both, want 0", m2.Len())
	}
	for _, key := range []string{"q", "p"} {
		if b, _ := m2.Begin(ctx, sc, key, fp, key, time.Minute); b.State != Acquired {
			t.Fatalf("%s after release: %v, want Acquired", key, b.State)
		}
	}
}
