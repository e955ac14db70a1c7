package protocol

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
)

func TestFrameCounterConcurrentNextUnique(t *testing.T) {
	c := NewFrameCounter(41)
	const workers, each = 8, 500
	got := make(chan uint64, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				got <- c.Next()
			}
		})
	}
	wg.Wait()
	close(got)
	seen := map[uint64]bool{}
	for n := range got {
		if n <= 41 || n > 41+workers*each || seen[n] {
			t.Fatalf("counter %d out of range or handed out twice", n)
		}
		seen[n] = true
	}
	if c.Last() != 41+workers*each {
		t.Fatalf("Last %d, want %d", c.Last(), 41+workers*each)
	}
}

func TestFrameCounterZeroValueAndExhaustion(t *testing.T) {
	var c FrameCounter
	if n := c.Next(); n != 1 {
		t.Fatalf("zero value: first counter %d, want 1", n)
	}
	c2 := NewFrameCounter(math.MaxUint64 - 1)
	if n := c2.Next(); n != math.MaxUint64 {
		t.Fatalf("counter %d, want MaxUint64", n)
	}
	for range 2 {
		if n := c2.Next(); n != 0 {
			t.Fatalf("after MaxUint64: %d, want 0 (used up)", n)
		}
	}
	codec := mustCodec(t, Config{Role: RoleClient})
	_, err := codec.Encode([]byte(`{}`), EncodeOptions{Mode: ModeAuthenticated, Keys: testKeys(t), Counter: c2.Next()})
	if !errors.Is(err, ErrCounter) {
		t.Fatalf("encoding with a used-up counter: %v, want ErrCounter", err)
	}
}

// Two clients of one session, each with a counter of its own, reuse
// counters (the server refuses the second as a replay); sharing the first
// client's FrameCounter gives every frame a counter of its own.
func TestClientCounterShared(t *testing.T) {
	keyring := NewKeyring()
	srv, rec := clientServer(t, 0, keyring)
	keys := testKeys(t)
	keyring.Add(keys)
	a, _ := NewClient(ClientConfig{URL: srv.URL, MaxAttempts: 1})
	b, _ := NewClient(ClientConfig{URL: srv.URL, MaxAttempts: 1})
	a.SetSession("", keys)
	if a.Counter() == nil {
		t.Fatal("no counter in authenticated mode")
	}

	// Separate counters: b's first frame reuses a's counter 1.
	b.SetSession("", keys)
	if _, err := a.Call(context.Background(), "add", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Call(context.Background(), "add", nil, nil); CodeOf(err) != CodeReplayed {
		t.Fatalf("second client with its own counter: %v, want replayed", err)
	}

	// Shared: the two interleave without a refusal.
	b.SetSessionCounter("", keys, a.Counter())
	for i := range 6 {
		c := a
		if i%2 == 1 {
			c = b
		}
		if _, err := c.Call(context.Background(), "add", nil, nil); err != nil {
			t.Fatalf("call %d with a shared counter: %v", i, err)
		}
	}
	got := rec.all()
	for i, r := range got {
		if r.Counter != uint64(i+1) {
			t.Fatalf("request %d had counter %d, want %d", i, r.Counter, i+1)
		}
	}
	if len(got) != 7 || a.Counter().Last() != 7 {
		t.Fatalf("Last %d after %d accepted frames, want 7", a.Counter().Last(), len(got))
	}
}

func TestClientSetSessionCounter(t *testing.T) {
	keyring := NewKeyring()
	srv, rec := clientServer(t, 0, keyring)
	keys := testKeys(t)
	keyring.Add(keys)
	c, _ := NewClient(ClientConfig{URL: srv.URL})
	fc := NewFrameCounter(41) // restored after a restart
	c.SetSessionCounter("", keys, fc)
	if _, err := c.Call(context.Background(), "add", nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := rec.all(); got[0].Counter != 42 || c.Counter() != fc {
		t.Fatalf("counter %d, want 42 from the restored counter", got[0].Counter)
	}
	c.SetSession("renewed", keys) // same keys: the same counter
	if c.Counter() != fc {
		t.Fatal("SetSession with the same keys replaced the counter")
	}
	other, err := NewKeys([]byte("10000042.k2"), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	c.SetSession("", other) // new keys: a new counter
	if c.Counter() == fc || c.Counter().Last() != 0 {
		t.Fatal("new keys kept the old counter")
	}
	c.SetSessionCounter("tok", nil, fc)
	if c.Counter() != nil {
		t.Fatal("a counter without keys")
	}
}

func TestParseCode(t *testing.T) {
	for _, c := range []Code{CodeOK, CodeKicked, CodeGoingAway, CodeUnavailable, 77, CodeGameBase, 1234} {
		got, ok := ParseCode(c.String())
		if !ok || got != c {
			t.Errorf("ParseCode(%q) = %v, %v; want %v", c.String(), got, ok, c)
		}
	}
	for _, s := range []string{"", "Kicked", "game_", "game_12", "code_10", "code_-1", "game_01000", "code_99999999999", "unauthorized: x"} {
		if c, ok := ParseCode(s); ok {
			t.Errorf("ParseCode(%q) = %v, want false", s, c)
		}
	}
}
