package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
)

// The amplification attack of issue 15: frames of about 16 KB whose LZ4
// block declares (and really expands to) 4 MiB, many at once.
const (
	attackRequests = 256
	attackBodySize = 4 << 20
)

// attackBody is a request envelope of attackBodySize bytes that LZ4
// compresses about 255 to 1.
func attackBody(t testing.TB, cmd string) []byte {
	t.Helper()
	head := []byte(`{"cmd":"` + cmd + `","payload":"`)
	body := make([]byte, 0, attackBodySize)
	body = append(body, head...)
	body = append(body, bytes.Repeat([]byte{'A'}, attackBodySize-len(head)-2)...)
	body = append(body, '"', '}')
	return body
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// heapAllocs returns the bytes allocated on the heap since the start.
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// attackRig serves "hold" (blocks until release, counting the payload bytes
// it holds) and "ping" (answers at once) through an HTTPHandler.
type attackRig struct {
	h       *HTTPHandler
	client  *Codec // decodes the replies
	keys    *Keys  // of authenticated replies
	arrived chan struct{}
	release chan struct{}
	held    atomic.Int64 // payload bytes the blocked handlers hold now
	maxHeld atomic.Int64
}

func newAttackRig(t *testing.T, cfg HTTPConfig) *attackRig {
	t.Helper()
	r := &attackRig{arrived: make(chan struct{}, attackRequests), release: make(chan struct{}), keys: testKeys(t)}
	r.client, _ = NewCodec(Config{Role: RoleClient, XORKey: []byte("fixture-xor-key")})
	m := NewMux()
	m.HandleFunc("hold", func(ctx context.Context, req *Request) (*Response, error) {
		n := r.held.Add(int64(len(req.Payload)))
		for {
			p := r.maxHeld.Load()
			if n <= p || r.maxHeld.CompareAndSwap(p, n) {
				break
			}
		}
		r.arrived <- struct{}{}
		<-r.release
		r.held.Add(-int64(len(req.Payload)))
		return &Response{}, nil
	})
	m.HandleFunc("ping", func(context.Context, *Request) (*Response, error) {
		return &Response{Payload: json.RawMessage(`"pong"`)}, nil
	})
	h, err := NewHTTPHandler(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.h = h
	return r
}

func (r *attackRig) serve(frame []byte) *Response {
	req := httptest.NewRequest(http.MethodPost, DefaultHTTPPath, bytes.NewReader(frame))
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	var resp Response
	body, _, err := r.client.Decode(w.Body.Bytes(), r.keys)
	if err == nil {
		err = DecodeResponse(body, &resp)
	}
	if err != nil {
		resp.Code, resp.Message = CodeInternal, "undecodable reply: "+err.Error()
	}
	return &resp
}

// attack sends n copies of frame at once and waits until each one either
// reached "hold" (and blocks there) or was answered: the moment the server
// holds the most. Then it measures, calls during (with the attack still
// held), releases the handlers and returns the codes of the answers.
func (r *attackRig) attack(t *testing.T, frames func(i int) []byte, n int, during func()) (codes map[Code]int, arrived int) {
	t.Helper()
	var wg sync.WaitGroup
	done := make(chan *Response, n)
	for i := range n {
		frame := frames(i)
		wg.Go(func() { done <- r.serve(frame) })
	}
	codes = map[Code]int{}
	count := func(resp *Response) {
		codes[resp.Code]++
		if resp.Code == CodeRateLimited && resp.RetryAfterMs <= 0 {
			t.Errorf("rate_limited without a retry hint: %+v", resp)
		}
	}
	for answered := 0; arrived+answered < n; {
		select {
		case <-r.arrived:
			arrived++
		case resp := <-done:
			count(resp)
			answered++
		}
	}
	during()
	close(r.release)
	wg.Wait()
	close(done)
	for resp := range done {
		count(resp)
	}
	return codes, arrived
}

// TestUnauthenticatedAmplificationBounded is issue 15's attack: 256
// concurrent XOR frames of about 16 KB that each expand to 4 MiB, before
// any authentication. The server must not decompress them (a plain or XOR
// body is limited to Config.MaxUnauthenticatedBodySize, 64 KiB by default)
// and a player's request is still served while they are in flight.
func TestUnauthenticatedAmplificationBounded(t *testing.T) {
	codec, err := NewCodec(Config{XORKey: []byte("fixture-xor-key")})
	if err != nil {
		t.Fatal(err)
	}
	client, _ := NewCodec(Config{Role: RoleClient, XORKey: []byte("fixture-xor-key")})
	frame, err := client.Encode(attackBody(t, "hold"), EncodeOptions{Mode: ModeXOR})
	if err != nil {
		t.Fatal(err)
	}
	if len(frame) > 20<<10 {
		t.Fatalf("attack frame is %d bytes, want about 16 KB", len(frame))
	}
	ping, _ := client.Encode([]byte(`{"cmd":"ping","seq":1}`), EncodeOptions{Mode: ModeXOR})
	r := newAttackRig(t, HTTPConfig{Codec: codec})

	base := liveHeap()
	allocs := heapAllocs()
	var live uint64
	var pong *Response
	codes, arrived := r.attack(t, func(int) []byte { return frame }, attackRequests, func() {
		live = liveHeap()
		pong = r.serve(ping)
	})
	allocated := heapAllocs() - allocs
	grew := int64(live) - int64(base)
	t.Logf("answers %v, %d reached the handler; payload held at most %d MiB; live heap +%d MiB at the peak; %d MiB allocated during the attack",
		codes, arrived, r.maxHeld.Load()>>20, grew>>20, allocated>>20)

	// The documented bound (docs/PROTOCOL.md §4): nothing of an
	// unauthenticated body above 64 KiB is allocated, so the attack costs
	// about what it sends (256 × 16 KB) plus request overhead.
	const bound = 32 << 20
	if arrived != 0 || r.maxHeld.Load() != 0 {
		t.Errorf("%d attack requests were decoded and dispatched, holding %d MiB", arrived, r.maxHeld.Load()>>20)
	}
	if grew > bound {
		t.Errorf("live heap grew by %d MiB under the attack, bound %d MiB", grew>>20, bound>>20)
	}
	if allocated > 4*bound {
		t.Errorf("%d MiB allocated during the attack, want under %d MiB", allocated>>20, 4*bound>>20)
	}
	if codes[CodeTooLarge] != attackRequests {
		t.Errorf("answers %v, want %d too_large", codes, attackRequests)
	}
	if pong.Code != CodeOK || string(pong.Payload) != `"pong"` {
		t.Errorf("a player's ping during the attack got %d %q", pong.Code, pong.Message)
	}
}

// keysOnly resolves keys without checking counters, so the attack's frames
// are not refused as replays (the attacker here has a session of its own).
type keysOnly struct{ r *Keyring }

func (k keysOnly) ResolveKeys(ctx context.Context, id []byte) (*Keys, error) {
	return k.r.ResolveKeys(ctx, id)
}

// TestAuthenticatedAmplificationWithinBudget: the same attack from a client
// that has session keys (authenticated frames may declare up to 4 MiB). The
// decode budget (64 MiB by default) bounds what all of them hold at once;
// the others wait up to the budget's Wait, then are refused rate_limited
// with a retry hint, and other players (small bodies, which are not
// charged) are served meanwhile.
func TestAuthenticatedAmplificationWithinBudget(t *testing.T) {
	codec, err := NewCodec(Config{XORKey: []byte("fixture-xor-key")})
	if err != nil {
		t.Fatal(err)
	}
	keys := testKeys(t)
	ring := NewKeyring()
	ring.Add(keys)
	budget := NewDecodeBudget(DecodeBudgetConfig{})
	// No in-flight limit: this is the decode budget's test (the limit
	// would queue the attack at the door before its bodies are decoded).
	r := newAttackRig(t, HTTPConfig{Codec: codec, Keys: keysOnly{ring}, DecodeBudget: budget,
		InFlight: NewInFlightLimit(InFlightConfig{Max: -1})})
	body := attackBody(t, "hold")
	frames := make([][]byte, attackRequests)
	buf := make([]byte, 0, attackBodySize+1024)
	for i := range frames {
		frame, err := r.client.AppendEncode(buf, body, EncodeOptions{Mode: ModeAuthenticated, Keys: keys, Counter: uint64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		frames[i] = bytes.Clone(frame)
	}
	if len(frames[0]) > 20<<10 {
		t.Fatalf("attack frame is %d bytes, want about 16 KB", len(frames[0]))
	}
	sealedPing, _ := r.client.Encode([]byte(`{"cmd":"ping","seq":1}`), EncodeOptions{Mode: ModeAuthenticated, Keys: keys, Counter: 100000})
	xorPing, _ := r.client.Encode([]byte(`{"cmd":"ping","seq":2}`), EncodeOptions{Mode: ModeXOR})

	base := liveHeap()
	var live uint64
	var stats DecodeBudgetStats
	var pongs []*Response
	codes, arrived := r.attack(t, func(i int) []byte { return frames[i] }, attackRequests, func() {
		stats = budget.Stats()
		live = liveHeap()
		pongs = []*Response{r.serve(sealedPing), r.serve(xorPing)}
	})
	grew := int64(live) - int64(base)
	t.Logf("answers %v, %d reached the handler; budget %+v; live heap %d MiB before, +%d MiB at the peak", codes, arrived, stats, base>>20, grew>>20)

	// The documented bound: the budget's bytes of decoded bodies, plus the
	// payload each dispatched request copied from its body (at most as
	// much again), plus about what the clients sent.
	bound := 2*stats.Bytes + attackRequests*64<<10
	if stats.Peak > stats.Bytes || stats.InUse > stats.Bytes {
		t.Errorf("budget accounting over its limit: %+v", stats)
	}
	if held := r.maxHeld.Load(); held > stats.Bytes {
		t.Errorf("handlers held %d MiB of payload, budget %d MiB", held>>20, stats.Bytes>>20)
	}
	if grew > bound {
		t.Errorf("live heap grew by %d MiB under the attack, bound %d MiB", grew>>20, bound>>20)
	}
	if arrived == 0 || arrived > int(stats.Bytes/attackBodySize) {
		t.Errorf("%d attack requests dispatched at once, want 1..%d", arrived, stats.Bytes/attackBodySize)
	}
	if codes[CodeOK] != arrived || codes[CodeRateLimited] != attackRequests-arrived {
		t.Errorf("answers %v, want %d ok and the rest rate_limited", codes, arrived)
	}
	for i, p := range pongs {
		if p.Code != CodeOK || string(p.Payload) != `"pong"` {
			t.Errorf("player ping %d during the attack got %d %q", i, p.Code, p.Message)
		}
	}
	if s := budget.Stats(); s.InUse != 0 || s.UnauthenticatedInUse != 0 || s.Refused != uint64(codes[CodeRateLimited]) {
		t.Errorf("after the attack: %+v", s)
	}
}
