package protocol

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
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

// windowModel is the rule of §7.4 written out: every accepted counter
// remembered, a counter accepted when new and above Top or less than
// ReplayWindowSize below it.
type windowModel struct {
	top      uint64
	accepted map[uint64]bool
}

func (m *windowModel) accept(c uint64) bool {
	if c == 0 || m.accepted[c] || (c < m.top && m.top-c >= ReplayWindowSize) {
		return false
	}
	m.accepted[c] = true
	m.top = max(m.top, c)
	return true
}

// replayCounters turns fuzz bytes into counters near each other: each pair
// of bytes moves the counter up or down by up to 127 around a base, which
// the first 8 bytes choose (so the top of uint64 is reached too).
func replayCounters(data []byte) []uint64 {
	var base uint64 = 1000
	if len(data) >= 8 {
		for _, b := range data[:8] {
			base = base<<8 | uint64(b)
		}
		data = data[8:]
	}
	var out []uint64
	c := base
	for _, b := range data {
		c += uint64(int64(int8(b))) // wraps: near 0 and MaxUint64 too
		out = append(out, c)
	}
	return out
}

func checkReplayWindow(t *testing.T, counters []uint64) {
	t.Helper()
	var w ReplayWindow
	m := &windowModel{accepted: map[uint64]bool{}}
	for i, c := range counters {
		got, want := w.Accept(c), m.accept(c)
		if got != want {
			t.Fatalf("step %d: Accept(%d) = %v, the rule says %v (top %d, seen %064b)", i, c, got, want, w.Top, w.Seen)
		}
		if w.Top != m.top {
			t.Fatalf("step %d: Top %d, want %d", i, w.Top, m.top)
		}
	}
}

func TestReplayWindow(t *testing.T) {
	for _, tc := range []struct {
		name     string
		counters []uint64
		want     []bool
	}{
		{"in order", []uint64{1, 2, 3, 3, 2}, []bool{true, true, true, false, false}},
		{"overtaken", []uint64{11, 10, 10, 11, 12}, []bool{true, true, false, false, true}},
		{"window edge", []uint64{100, 100 - 63, 100 - 64, 100 - 63}, []bool{true, true, false, false}},
		{"jump clears", []uint64{5, 1000, 5, 999, 937, 936}, []bool{true, true, false, true, true, false}},
		{"zero", []uint64{0, 1, 0}, []bool{false, true, false}},
		{"top of uint64", []uint64{math.MaxUint64, math.MaxUint64 - 1, math.MaxUint64}, []bool{true, true, false}},
	} {
		var w ReplayWindow
		for i, c := range tc.counters {
			if got := w.Accept(c); got != tc.want[i] {
				t.Errorf("%s: Accept(%d) (step %d) = %v, want %v", tc.name, c, i, got, tc.want[i])
			}
		}
	}
	// A window an older server kept (Seen unknown: all set) is the strict
	// rule below Top.
	w := ReplayWindow{Top: 50, Seen: math.MaxUint64}
	if w.Accept(49) || w.Accept(50) || !w.Accept(51) || w.Accept(49) || !w.Accept(53) || !w.Accept(52) {
		t.Errorf("upgraded window: %+v", w)
	}
}

// FuzzReplayWindow checks ReplayWindow against the rule written out: no
// counter accepted twice, none refused that the rule accepts.
func FuzzReplayWindow(f *testing.F) {
	f.Add([]byte{1, 2, 3, 0xff, 0xfe, 1, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x80, 1, 2, 0x80, 0x7f, 0x7f, 0x81})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0x40, 0xc0, 0x3f, 0xc1})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkReplayWindow(t, replayCounters(data))
	})
}

func TestReplayWindowRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		data := make([]byte, 8+r.IntN(300))
		for i := range data {
			data[i] = byte(r.IntN(256))
		}
		checkReplayWindow(t, replayCounters(data))
	}
}

func TestKeyringWindow(t *testing.T) {
	kr := NewKeyring()
	keys := testKeys(t)
	kr.Add(keys)
	ctx := context.Background()
	for _, st := range []struct {
		c  uint64
		ok bool
	}{{10, true}, {9, true}, {9, false}, {10, false}, {11, true}, {100, true}, {100 - 64, false}, {100 - 63, true}} {
		if err := kr.AcceptCounter(ctx, keys.ID(), st.c); (err == nil) != st.ok || (err != nil && !errors.Is(err, ErrReplayed)) {
			t.Fatalf("AcceptCounter(%d): %v, want ok %v", st.c, err, st.ok)
		}
	}
}
