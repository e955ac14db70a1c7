package protocol

import (
	"context"
	"errors"
	"runtime"
	"testing"
)

// TestForgedSealedFrameNotDecompressed: an authenticated frame that fails
// authentication (a forged tag under a real key id, which travels in the
// clear) is refused before anything as large as its declared body is
// allocated: the AEAD is opened before the body is decompressed.
func TestForgedSealedFrameNotDecompressed(t *testing.T) {
	server, client := codecPair(t, Config{})
	keys := testKeys(t)
	frame, err := client.Encode(attackBody(t, "x"), EncodeOptions{Mode: ModeAuthenticated, Keys: keys, Counter: 1})
	if err != nil {
		t.Fatal(err)
	}
	frame = append([]byte(nil), frame...)
	frame[len(frame)-1] ^= 1 // break the tag
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 8 {
		if _, _, err := server.Decode(frame, keys); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("forged frame: %v, want ErrAuthFailed", err)
		}
	}
	runtime.ReadMemStats(&after)
	perDecode := (after.TotalAlloc - before.TotalAlloc) / 8
	if perDecode > 4*uint64(len(frame)) {
		t.Errorf("a forged %d-byte frame allocated %d bytes before it was refused", len(frame), perDecode)
	}
	// The real frame still decodes to its 4 MiB body.
	frame[len(frame)-1] ^= 1
	if body, _, err := server.Decode(frame, keys); err != nil || len(body) != attackBodySize {
		t.Fatalf("sealed frame: %d bytes, %v", len(body), err)
	}
}

func TestMaxUnauthenticatedBodySize(t *testing.T) {
	keys := testKeys(t)
	big := gameJSON(100 << 10)
	for _, tc := range []struct {
		limit int
		want  int // the server codec's limit for plain and XOR frames
	}{
		{0, DefaultMaxUnauthenticatedBodySize},
		{-1, DefaultMaxBodySize},
		{200 << 10, 200 << 10},
		{8 << 20, DefaultMaxBodySize},
	} {
		server, client := codecPair(t, Config{XORKey: []byte("k"), MaxUnauthenticatedBodySize: tc.limit})
		if got := server.MaxBodySizeFor(ModeXOR); got != tc.want {
			t.Errorf("limit %d: MaxBodySizeFor(xor) = %d, want %d", tc.limit, got, tc.want)
		}
		if got := client.MaxBodySizeFor(ModeXOR); got != DefaultMaxBodySize {
			t.Errorf("a client codec limits XOR bodies to %d", got)
		}
		for _, mode := range []Mode{ModePlain, ModeXOR, ModeAuthenticated} {
			for _, threshold := range []int{0, -1} { // compressed, and not
				c, _ := NewCodec(Config{Role: RoleClient, XORKey: []byte("k"), CompressThreshold: threshold})
				frame, err := c.Encode(big, EncodeOptions{Mode: mode, Keys: keys, Counter: 1})
				if err != nil {
					t.Fatal(err)
				}
				_, _, err = server.Decode(frame, keys)
				wantRefused := mode != ModeAuthenticated && len(big) > tc.want
				if wantRefused != errors.Is(err, ErrBodyTooLarge) || (!wantRefused && err != nil) {
					t.Errorf("limit %d, %v frame (threshold %d) of a %d-byte body: %v", tc.limit, mode, threshold, len(big), err)
				}
			}
		}
		// Server frames are never limited by it (a client trusts its server
		// as far as MaxBodySize).
		frame, _ := server.Encode(big, EncodeOptions{Mode: ModeXOR})
		if _, _, err := client.Decode(frame, nil); err != nil {
			t.Errorf("client decoding a large XOR reply: %v", err)
		}
	}
}

func TestDecodeBudgetDefaults(t *testing.T) {
	b := NewDecodeBudget(DecodeBudgetConfig{})
	c := b.Config()
	if c.Bytes != DefaultDecodeBudget || c.UnauthenticatedBytes != DefaultDecodeBudget/4 || c.FreeBytes != DefaultDecodeBudgetFree || c.Wait != DefaultDecodeBudgetWait {
		t.Fatalf("defaults: %+v", c)
	}
	c = NewDecodeBudget(DecodeBudgetConfig{Bytes: 100, UnauthenticatedBytes: 1000}).Config()
	if c.UnauthenticatedBytes != 100 {
		t.Fatalf("UnauthenticatedBytes above Bytes: %+v", c)
	}
}

func TestDecodeBudgetAccounting(t *testing.T) {
	ctx := context.Background()
	b := NewDecodeBudget(DecodeBudgetConfig{Bytes: 1000, UnauthenticatedBytes: 400, FreeBytes: 10, Wait: -1})

	// Small bodies are free.
	if l, err := b.Acquire(ctx, 10, true); err != nil || l.Bytes() != 0 {
		t.Fatalf("free body: %v %v", l, err)
	}
	// A body that can never fit its class is too_large at once.
	if _, err := b.Acquire(ctx, 401, true); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("unauthenticated 401 of 400: %v", err)
	}
	if _, err := b.Acquire(ctx, 1001, false); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("1001 of 1000: %v", err)
	}
	// Unauthenticated bodies fill their share; authenticated ones still get
	// the rest.
	u1, err := b.Acquire(ctx, 300, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Acquire(ctx, 101, true); !errors.Is(err, ErrDecodeBusy) || CodeOf(err) != CodeRateLimited {
		t.Fatalf("over the unauthenticated share: %v", err)
	}
	var pe *Error
	if _, err := b.Acquire(ctx, 101, true); !errors.As(err, &pe) || pe.RetryAfter < DefaultDecodeBudgetWait || pe.RetryAfter >= 2*DefaultDecodeBudgetWait {
		t.Fatalf("refusal's retry hint: %v", err)
	}
	a1, err := b.Acquire(ctx, 700, false)
	if err != nil {
		t.Fatalf("authenticated body beside a full unauthenticated share: %v", err)
	}
	if _, err := b.Acquire(ctx, 11, false); !errors.Is(err, ErrDecodeBusy) {
		t.Fatalf("over the budget: %v", err)
	}
	s := b.Stats()
	if s.InUse != 1000 || s.UnauthenticatedInUse != 300 || s.Peak != 1000 || s.Charged != 2 || s.Refused != 3 || s.Waited != 3 {
		t.Fatalf("stats: %+v", s)
	}
	u1.Release()
	u1.Release() // twice: nothing more
	a1.Release()
	if s := b.Stats(); s.InUse != 0 || s.UnauthenticatedInUse != 0 || s.Peak != 1000 {
		t.Fatalf("after release: %+v", s)
	}
	if l, err := b.Acquire(ctx, 1000, false); err != nil || l.Bytes() != 1000 {
		t.Fatalf("whole budget after release: %v", err)
	}
	var nilBudget *DecodeBudget
	if l, err := nilBudget.Acquire(ctx, 1<<30, true); err != nil || l.Bytes() != 0 {
		t.Fatalf("nil budget: %v", err)
	}
}

// TestDecodeBudgetWaits: a body waits for room (until the budget's Wait or
// its context ends) and gets it when another is released.
func TestDecodeBudgetWaits(t *testing.T) {
	b := NewDecodeBudget(DecodeBudgetConfig{Bytes: 100, UnauthenticatedBytes: 100, FreeBytes: -1, Wait: 1 << 62})
	first, err := b.Acquire(context.Background(), 100, false)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		l, err := b.Acquire(context.Background(), 60, true)
		l.Release()
		got <- err
	}()
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan error, 1)
	go func() {
		_, err := b.Acquire(ctx, 50, false)
		cancelled <- err
	}()
	for b.Stats().Waited < 2 {
		runtime.Gosched()
	}
	cancel()
	if err := <-cancelled; !errors.Is(err, ErrDecodeBusy) {
		t.Fatalf("cancelled wait: %v", err)
	}
	first.Release()
	if err := <-got; err != nil {
		t.Fatalf("waiting body: %v", err)
	}
	if s := b.Stats(); s.InUse != 0 || s.Charged != 2 || s.Refused != 1 {
		t.Fatalf("stats: %+v", s)
	}
}

// TestAppendDecodeBudgetCharges: the body is charged its decoded length
// while the caller holds the lease; refused frames hold nothing.
func TestAppendDecodeBudgetCharges(t *testing.T) {
	server, client := codecPair(t, Config{XORKey: []byte("k")})
	keys := testKeys(t)
	b := NewDecodeBudget(DecodeBudgetConfig{Bytes: 1 << 20, FreeBytes: -1, Wait: -1})
	ctx := context.Background()
	for _, mode := range []Mode{ModePlain, ModeXOR, ModeAuthenticated} {
		for _, n := range []int{100, 5000} { // not compressed, compressed
			body := gameJSON(n)
			frame, err := client.Encode(body, EncodeOptions{Mode: mode, Keys: keys, Counter: 1})
			if err != nil {
				t.Fatal(err)
			}
			got, _, lease, err := server.AppendDecodeBudget(ctx, b, nil, frame, keys)
			if err != nil || string(got) != string(body) {
				t.Fatalf("%v %d: %v", mode, n, err)
			}
			s := b.Stats()
			if lease.Bytes() != int64(len(body)) || s.InUse != int64(len(body)) || (s.UnauthenticatedInUse != 0) != (mode != ModeAuthenticated) {
				t.Fatalf("%v %d: lease %d, stats %+v", mode, n, lease.Bytes(), s)
			}
			lease.Release()
			// Refused after the charge would be taken: nothing is held.
			bad := append([]byte(nil), frame...)
			bad[len(bad)-1] ^= 1
			if _, _, lease, err := server.AppendDecodeBudget(ctx, b, nil, bad, keys); err == nil {
				if mode == ModeAuthenticated {
					t.Fatalf("%v %d: damaged frame accepted", mode, n)
				}
				lease.Release()
			}
			if s := b.Stats(); s.InUse != 0 {
				t.Fatalf("%v %d: %d bytes held after a refused frame", mode, n, s.InUse)
			}
		}
	}
}
