package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// seen records what the server's handler received.
type seen struct {
	mu   sync.Mutex
	reqs []Request
}

func (s *seen) add(r *Request) {
	s.mu.Lock()
	s.reqs = append(s.reqs, *r)
	s.mu.Unlock()
}

func (s *seen) all() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// clientServer starts an HTTP adapter whose "add" command sums two numbers
// and records each request, with the server clock skewed by skew.
func clientServer(t *testing.T, skew time.Duration, keyring *Keyring) (*httptest.Server, *seen) {
	t.Helper()
	rec := &seen{}
	m := NewMux()
	m.Handle("add", Typed(func(_ context.Context, r *Request, in struct{ A, B int }) (int, error) {
		rec.add(r)
		return in.A + in.B, nil
	}))
	codec := mustCodec(t, Config{XORKey: []byte("client-test")})
	var resolver KeyResolver // a nil *Keyring must not become a non-nil interface
	if keyring != nil {
		resolver = keyring
	}
	h, err := NewHTTPHandler(m, HTTPConfig{Codec: codec, Keys: resolver, Now: func() time.Time { return time.Now().Add(skew) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, rec
}

// lossyTransport runs every request on the server but loses the replies of
// the first n.
type lossyTransport struct {
	next Transport
	lose atomic.Int32
}

func (l *lossyTransport) RoundTrip(ctx context.Context, frame []byte) ([]byte, error) {
	reply, err := l.next.RoundTrip(ctx, frame)
	if err == nil && l.lose.Add(-1) >= 0 {
		return nil, &TransportError{Err: errors.New("connection reset (simulated)")}
	}
	return reply, err
}

func TestClientRetriesLostReplyWithSameRequestID(t *testing.T) {
	keyring := NewKeyring()
	srv, rec := clientServer(t, 0, keyring)
	keys := testKeys(t)
	keyring.Add(keys)

	lossy := &lossyTransport{next: &HTTPTransport{URL: srv.URL, Client: srv.Client()}}
	lossy.lose.Store(1)
	c, err := NewClient(ClientConfig{Transport: lossy, Codec: Config{XORKey: []byte("client-test")}, RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c.SetSession("10000042.tok", keys)
	var sum int
	if _, err := c.Call(context.Background(), "add", map[string]int{"A": 2, "B": 3}, &sum); err != nil {
		t.Fatal(err)
	}
	if sum != 5 {
		t.Fatalf("sum %d", sum)
	}
	got := rec.all()
	if len(got) != 2 {
		t.Fatalf("server ran %d times, want 2 (original + retry)", len(got))
	}
	if got[0].RequestID == "" || got[0].RequestID != got[1].RequestID || got[0].Seq != got[1].Seq {
		t.Fatalf("retry changed identity: %+v / %+v", got[0], got[1])
	}
	if got[0].Counter != 1 || got[1].Counter != 2 || got[0].Mode != ModeAuthenticated {
		t.Fatalf("counters %d, %d in mode %v; want 1, 2 authenticated", got[0].Counter, got[1].Counter, got[0].Mode)
	}
	if got[0].Token != "" {
		t.Fatal("token sent inside authenticated frames")
	}

	// A new logical request gets a new request id and the next sequence.
	if _, err := c.Call(context.Background(), "add", map[string]int{"A": 1}, &sum); err != nil {
		t.Fatal(err)
	}
	got = rec.all()
	if got[2].RequestID == got[0].RequestID || got[2].Seq != got[0].Seq+1 {
		t.Fatalf("second call: %+v", got[2])
	}
}

// A caller's request id is sent as is, kept across the Client's retries,
// and used again when the caller re-sends the request; without one every
// call gets a fresh id. An id longer than MaxRequestIDLen is refused before
// anything is sent.
func TestClientCallerRequestID(t *testing.T) {
	srv, rec := clientServer(t, 0, nil)
	lossy := &lossyTransport{next: &HTTPTransport{URL: srv.URL, Client: srv.Client()}}
	c, err := NewClient(ClientConfig{Transport: lossy, Codec: Config{XORKey: []byte("client-test")}, Mode: ModeXOR, RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in := map[string]int{"A": 2, "B": 3}
	lossy.lose.Store(1)
	var sum int
	if _, err := c.CallWith(ctx, "add", in, &sum, CallOptions{RequestID: "buy-42"}); err != nil || sum != 5 {
		t.Fatalf("CallWith: %d %v", sum, err)
	}
	payload, _ := json.Marshal(in)
	if _, err := c.DoWith(ctx, "add", payload, CallOptions{RequestID: "buy-42"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, "add", payload); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(ctx, "add", in, nil); err != nil {
		t.Fatal(err)
	}
	got := rec.all()
	if len(got) != 5 {
		t.Fatalf("server ran %d requests, want 5", len(got))
	}
	for i, r := range got[:3] {
		if r.RequestID != "buy-42" {
			t.Fatalf("request %d: request id %q, want the caller's", i, r.RequestID)
		}
	}
	if got[0].Seq != got[1].Seq || got[2].Seq == got[1].Seq {
		t.Fatalf("seqs %d, %d, %d: a retry keeps its seq, a new call takes the next", got[0].Seq, got[1].Seq, got[2].Seq)
	}
	if a, b := got[3].RequestID, got[4].RequestID; len(a) != 22 || len(b) != 22 || a == b || a == "buy-42" {
		t.Fatalf("fresh request ids %q, %q", a, b)
	}

	long := string(make([]byte, MaxRequestIDLen+1))
	if _, err := c.DoWith(ctx, "add", payload, CallOptions{RequestID: long}); !errors.Is(err, ErrEnvelope) {
		t.Fatalf("long request id: %v, want ErrEnvelope", err)
	}
	if n := len(rec.all()); n != 5 {
		t.Fatalf("a refused request id reached the server (%d requests)", n)
	}
}

func TestClientGivesUpAfterMaxAttempts(t *testing.T) {
	srv, rec := clientServer(t, 0, nil)
	lossy := &lossyTransport{next: &HTTPTransport{URL: srv.URL, Client: srv.Client()}}
	lossy.lose.Store(100)
	c, _ := NewClient(ClientConfig{Transport: lossy, MaxAttempts: 3, RetryBackoff: time.Millisecond})
	_, err := c.Call(context.Background(), "add", nil, nil)
	var te *TransportError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want a TransportError", err)
	}
	if n := len(rec.all()); n != 3 {
		t.Fatalf("sent %d times, want 3", n)
	}
}

func TestClientClockOffset(t *testing.T) {
	const skew = 90 * time.Second
	srv, _ := clientServer(t, skew, nil)
	c, _ := NewClient(ClientConfig{URL: srv.URL, Codec: Config{XORKey: []byte("client-test")}, Mode: ModeXOR})
	if c.ClockOffset() != 0 {
		t.Fatal("offset before any reply")
	}
	start := time.Now()
	for range 5 {
		if _, err := c.Call(context.Background(), "add", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	// The estimate's error is bounded by the round trip (and 1 ms of
	// server clock resolution).
	bound := time.Since(start) + time.Millisecond
	if off := c.ClockOffset(); off < skew-bound || off > skew+bound {
		t.Fatalf("offset %v, want %v ± %v", off, skew, bound)
	}
	if d := c.ServerNow().Sub(time.Now().Add(skew)); d < -bound || d > bound {
		t.Fatalf("ServerNow off by %v", d)
	}
}

func TestClientSendsRawClock(t *testing.T) {
	srv, rec := clientServer(t, time.Hour, nil)
	clientClock := time.UnixMilli(1_000_000_000_000)
	c, _ := NewClient(ClientConfig{URL: srv.URL, Now: func() time.Time { return clientClock }})
	for range 2 {
		if _, err := c.Call(context.Background(), "add", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range rec.all() {
		if r.ClientTime != clientClock.UnixMilli() {
			t.Fatalf("sent ctime %d, raw clock is %d", r.ClientTime, clientClock.UnixMilli())
		}
	}
}

func TestClientErrorCodes(t *testing.T) {
	srv, _ := clientServer(t, 0, nil)
	c, _ := NewClient(ClientConfig{URL: srv.URL})
	resp, err := c.Call(context.Background(), "missing", nil, nil)
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != CodeUnknownCommand || resp == nil || resp.Code != CodeUnknownCommand {
		t.Fatalf("err %v resp %+v", err, resp)
	}
	// An authenticated request to a server without the keys: refused with
	// an unprotected frame, which the client accepts because it is an error.
	c.SetSession("", testKeys(t))
	_, err = c.Call(context.Background(), "add", nil, nil)
	if CodeOf(err) != CodeUnauthorized {
		t.Fatalf("unknown keys: %v", err)
	}
}

// forgingTransport answers every request with an unprotected "success".
type forgingTransport struct{ codec *Codec }

func (f forgingTransport) RoundTrip(context.Context, []byte) ([]byte, error) {
	return f.codec.Encode(AppendResponse(nil, &Response{Seq: 1, Code: CodeOK, ServerTime: 1, Payload: json.RawMessage(`999`)}), EncodeOptions{})
}

func TestClientRefusesUnprotectedSuccess(t *testing.T) {
	c, _ := NewClient(ClientConfig{Transport: forgingTransport{mustCodec(t, Config{})}})
	c.SetSession("", testKeys(t))
	var out int
	if _, err := c.Call(context.Background(), "add", nil, &out); err == nil || out == 999 {
		t.Fatalf("accepted a forged plain success: err %v, out %d", err, out)
	}
}

func TestClientRetriesInFlight(t *testing.T) {
	var calls atomic.Int32
	m := NewMux()
	m.HandleFunc("buy", func(context.Context, *Request) (*Response, error) {
		if calls.Add(1) == 1 {
			return nil, &Error{Code: CodeInFlight, Message: "in flight", RetryAfter: 5 * time.Millisecond}
		}
		return &Response{Payload: json.RawMessage(`"done"`)}, nil
	})
	h, _ := NewHTTPHandler(m, HTTPConfig{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	c, _ := NewClient(ClientConfig{URL: srv.URL, RetryBackoff: time.Millisecond})
	var out string
	if _, err := c.Call(context.Background(), "buy", nil, &out); err != nil || out != "done" || calls.Load() != 2 {
		t.Fatalf("out %q err %v calls %d", out, err, calls.Load())
	}
}

func TestHTTPTransportStatuses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer srv.Close()
	_, err := (&HTTPTransport{URL: srv.URL}).RoundTrip(context.Background(), []byte{1})
	var te *TransportError
	if !errors.As(err, &te) || te.Status != http.StatusBadGateway {
		t.Fatalf("502: %v", err)
	}
}

// sealedTransport answers every request with a body sealed with the session
// keys, as a captured server frame would be.
type sealedTransport struct {
	codec *Codec
	keys  *Keys
	body  []byte
}

func (s sealedTransport) RoundTrip(context.Context, []byte) ([]byte, error) {
	return s.codec.Encode(s.body, EncodeOptions{Mode: ModeAuthenticated, Keys: s.keys})
}

func TestClientRefusesRepliesThatDoNotAnswer(t *testing.T) {
	keys := testKeys(t)
	server := mustCodec(t, Config{})
	for name, body := range map[string][]byte{
		"push":       AppendPush(nil, &Push{Topic: "chat", ServerTime: 1, Payload: json.RawMessage(`999`)}),
		"no seq":     []byte(`{"stime":1,"payload":999}`),
		"other seq":  AppendResponse(nil, &Response{Seq: 77, ServerTime: 1, Payload: json.RawMessage(`999`)}),
		"not a json": []byte(`999`),
	} {
		c, _ := NewClient(ClientConfig{Transport: sealedTransport{server, keys, body}, MaxAttempts: 1})
		c.SetSession("", keys)
		var out int
		if _, err := c.Call(context.Background(), "add", nil, &out); err == nil || out == 999 {
			t.Errorf("%s: accepted as the reply (err %v, out %d)", name, err, out)
		}
	}
}

func TestClientKeepsCounterForSameKeys(t *testing.T) {
	keyring := NewKeyring()
	srv, rec := clientServer(t, 0, keyring)
	keys := testKeys(t)
	keyring.Add(keys)
	c, _ := NewClient(ClientConfig{URL: srv.URL})
	c.SetSession("", keys)
	if _, err := c.Call(context.Background(), "add", nil, nil); err != nil {
		t.Fatal(err)
	}
	c.SetSession("renewed-token", keys) // same keys: the counter goes on
	if _, err := c.Call(context.Background(), "add", nil, nil); err != nil {
		t.Fatalf("after SetSession with the same keys: %v", err)
	}
	if got := rec.all(); got[1].Counter != 2 {
		t.Fatalf("counter %d after re-setting the same keys, want 2", got[1].Counter)
	}
}

// A refusal the server sends with a 5xx status is a reply with a code, not a
// lost reply.
func TestClientReadsServerRefusalOn5xx(t *testing.T) {
	m := NewMux()
	h, _ := NewHTTPHandler(m, HTTPConfig{Keys: failingResolver{}})
	srv := httptest.NewServer(h)
	defer srv.Close()
	c, _ := NewClient(ClientConfig{URL: srv.URL, MaxAttempts: 1})
	c.SetSession("", testKeys(t))
	_, err := c.Call(context.Background(), "x", nil, nil)
	if CodeOf(err) != CodeUnavailable {
		t.Fatalf("err %v (code %v), want the server's CodeUnavailable", err, CodeOf(err))
	}
}

type failingResolver struct{}

func (failingResolver) ResolveKeys(context.Context, []byte) (*Keys, error) {
	return nil, &Error{Code: CodeUnavailable, Message: "session store unavailable"}
}
