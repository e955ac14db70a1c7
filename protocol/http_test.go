package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

var fixedNow = time.UnixMilli(1732500000000)

// echoMux answers "echo" with the request as it reached the handler.
func echoMux() *Mux {
	m := NewMux()
	m.Handle("echo", Typed(func(_ context.Context, r *Request, in json.RawMessage) (map[string]any, error) {
		return map[string]any{
			"in": in, "rid": r.RequestID, "ctime": r.ClientTime, "token": r.Token,
			"mode": r.Mode.String(), "counter": r.Counter, "kid": string(r.KeyID), "idem": r.IdempotencyKey,
		}, nil
	}))
	m.HandleFunc("panic", func(context.Context, *Request) (*Response, error) { panic("boom") })
	return m
}

type httpFixture struct {
	srv     *httptest.Server
	server  *Codec
	client  *Codec
	keys    *Keys
	keyring *Keyring
}

func newHTTPFixture(t *testing.T, cfg HTTPConfig) *httpFixture {
	t.Helper()
	f := &httpFixture{keys: testKeys(t), keyring: NewKeyring()}
	f.keyring.Add(f.keys)
	f.server, f.client = codecPair(t, Config{XORKey: []byte("fixture-xor-key")})
	if cfg.Codec == nil {
		cfg.Codec = f.server
	}
	if cfg.Keys == nil {
		cfg.Keys = f.keyring
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return fixedNow }
	}
	h, err := NewHTTPHandler(echoMux(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *httpFixture) post(t *testing.T, contentType string, body []byte, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// roundTrip posts one request in mode and decodes the reply.
func (f *httpFixture) roundTrip(t *testing.T, req *Request, opts EncodeOptions, hdr ...string) (int, Header, *Response) {
	t.Helper()
	frame, err := f.client.Encode(AppendRequest(nil, req), opts)
	if err != nil {
		t.Fatal(err)
	}
	status, h, reply := f.post(t, ContentTypeFrame, frame, hdr...)
	if got := h.Get("Content-Type"); got != ContentTypeFrame {
		t.Fatalf("content type %q, body %q", got, reply)
	}
	body, rh, err := f.client.Decode(reply, opts.Keys)
	if err != nil {
		t.Fatalf("decode reply: %v", err)
	}
	var resp Response
	if err := DecodeResponse(body, &resp); err != nil {
		t.Fatal(err)
	}
	return status, rh, &resp
}

func TestHTTPModes(t *testing.T) {
	f := newHTTPFixture(t, HTTPConfig{})
	big := strings.Repeat(`{"slot":1,"item":"sword"},`, 20)
	for _, tc := range []struct {
		name string
		opts EncodeOptions
	}{
		{"plain", EncodeOptions{}},
		{"xor", EncodeOptions{Mode: ModeXOR}},
		{"authenticated", EncodeOptions{Mode: ModeAuthenticated, Keys: f.keys, Counter: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := `{"items":[` + big + `{}]}`
			status, rh, resp := f.roundTrip(t, &Request{Command: "echo", Seq: 11, RequestID: "rid-1", ClientTime: 123, Token: "tok", Payload: json.RawMessage(payload)}, tc.opts)
			if status != http.StatusOK || resp.Code != CodeOK {
				t.Fatalf("status %d, resp %+v", status, resp)
			}
			if ModeOf(rh.Flags) != tc.opts.Mode || rh.Flags&FlagCompressed == 0 {
				t.Fatalf("reply flags %#x, want mode %v and compressed", rh.Flags, tc.opts.Mode)
			}
			if resp.Seq != 11 || resp.RequestID != "rid-1" || resp.ServerTime != fixedNow.UnixMilli() {
				t.Fatalf("stamps: %+v", resp)
			}
			var got map[string]any
			if err := json.Unmarshal(resp.Payload, &got); err != nil {
				t.Fatal(err)
			}
			if got["mode"] != tc.opts.Mode.String() || got["ctime"] != float64(123) || got["token"] != "tok" {
				t.Fatalf("handler saw %v", got)
			}
			if tc.opts.Mode == ModeAuthenticated && (got["counter"] != float64(1) || got["kid"] != string(f.keys.ID())) {
				t.Fatalf("handler saw %v", got)
			}
			in, _ := json.Marshal(got["in"])
			var want any
			_ = json.Unmarshal([]byte(payload), &want)
			wantJSON, _ := json.Marshal(want)
			if !bytes.Equal(in, wantJSON) {
				t.Fatalf("payload arrived as %s", in)
			}
		})
	}
}

func TestHTTPAuthenticatedReplayAndForgery(t *testing.T) {
	f := newHTTPFixture(t, HTTPConfig{})
	req := &Request{Command: "echo", Seq: 1}
	frame, _ := f.client.Encode(AppendRequest(nil, req), EncodeOptions{Mode: ModeAuthenticated, Keys: f.keys, Counter: 70})
	if status, _, _ := f.post(t, ContentTypeFrame, frame); status != http.StatusOK {
		t.Fatalf("first: %d", status)
	}
	// The same frame again, and a counter ReplayWindowSize (64) or more
	// older: both refused.
	status, _, reply := f.post(t, ContentTypeFrame, frame)
	if code := replyCode(t, f, reply); status != http.StatusUnauthorized || code != CodeReplayed {
		t.Fatalf("replay: status %d code %v", status, code)
	}
	older, _ := f.client.Encode(AppendRequest(nil, req), EncodeOptions{Mode: ModeAuthenticated, Keys: f.keys, Counter: 3})
	if status, _, reply = f.post(t, ContentTypeFrame, older); replyCode(t, f, reply) != CodeReplayed {
		t.Fatalf("older counter: status %d", status)
	}
	// One less than 64 below that was never used: accepted, once.
	inWindow, _ := f.client.Encode(AppendRequest(nil, req), EncodeOptions{Mode: ModeAuthenticated, Keys: f.keys, Counter: 7})
	if status, _, _ = f.post(t, ContentTypeFrame, inWindow); status != http.StatusOK {
		t.Fatalf("counter in the window: %d", status)
	}
	if status, _, reply = f.post(t, ContentTypeFrame, inWindow); replyCode(t, f, reply) != CodeReplayed {
		t.Fatalf("counter in the window again: status %d", status)
	}
	// A forged frame with a higher counter fails authentication and does not
	// advance the counter: the next honest frame (71) still goes through.
	forged, _ := f.client.Encode(AppendRequest(nil, req), EncodeOptions{Mode: ModeAuthenticated, Keys: f.keys, Counter: 100})
	forged[len(forged)-1] ^= 1
	if status, _, reply = f.post(t, ContentTypeFrame, forged); status != http.StatusUnauthorized || replyCode(t, f, reply) != CodeUnauthorized {
		t.Fatalf("forged: status %d", status)
	}
	next, _ := f.client.Encode(AppendRequest(nil, req), EncodeOptions{Mode: ModeAuthenticated, Keys: f.keys, Counter: 71})
	if status, _, _ = f.post(t, ContentTypeFrame, next); status != http.StatusOK {
		t.Fatalf("honest frame after forgery: %d", status)
	}
	// An unknown key id.
	stranger, _ := NewKeys([]byte("99.x"), bytes.Repeat([]byte{1}, 32))
	frame, _ = f.client.Encode(AppendRequest(nil, req), EncodeOptions{Mode: ModeAuthenticated, Keys: stranger, Counter: 1})
	if status, _, reply = f.post(t, ContentTypeFrame, frame); status != http.StatusUnauthorized || replyCode(t, f, reply) != CodeUnauthorized {
		t.Fatalf("unknown key id: status %d", status)
	}
}

func replyCode(t *testing.T, f *httpFixture, reply []byte) Code {
	t.Helper()
	body, h, err := f.client.Decode(reply, nil)
	if err != nil {
		t.Fatalf("refusal is not an unprotected frame: %v", err)
	}
	if h.Flags != FlagFromServer {
		t.Fatalf("refusal flags %#x", h.Flags)
	}
	var resp Response
	if err := DecodeResponse(body, &resp); err != nil {
		t.Fatal(err)
	}
	return resp.Code
}

func TestHTTPRefusals(t *testing.T) {
	f := newHTTPFixture(t, HTTPConfig{Codec: mustCodec(t, Config{MaxFrameSize: 512, XORKey: []byte("fixture-xor-key")})})
	cases := []struct {
		name   string
		body   []byte
		status int
		code   Code
	}{
		{"empty", nil, 400, CodeBadFrame},
		{"garbage", []byte{9, 9, 9, 9, 9, 9, 9}, 400, CodeBadFrame},
		{"plain json refused", []byte(`{"cmd":"echo"}`), 400, CodeBadFrame},
		{"too large", append([]byte{1, 0, 0, 0, 2, 0}, make([]byte, 512)...), 413, CodeTooLarge},
	}
	for _, tc := range cases {
		status, _, reply := f.post(t, ContentTypeFrame, tc.body)
		if status != tc.status || replyCode(t, f, reply) != tc.code {
			t.Errorf("%s: status %d code %v, want %d %v", tc.name, status, replyCode(t, f, reply), tc.status, tc.code)
		}
	}
	// A bad envelope inside a good frame.
	frame, _ := f.client.Encode([]byte(`{"seq":1}`), EncodeOptions{})
	if status, _, reply := f.post(t, ContentTypeFrame, frame); status != 400 || replyCode(t, f, reply) != CodeBadRequest {
		t.Errorf("bad envelope: status %d", status)
	}
	resp, err := f.srv.Client().Get(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
}

func mustCodec(t *testing.T, cfg Config) *Codec {
	t.Helper()
	c, err := NewCodec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestHTTPPanicAndPlainJSON(t *testing.T) {
	f := newHTTPFixture(t, HTTPConfig{AllowPlainJSON: true})
	status, h, body := f.post(t, ContentTypeJSON, []byte(` {"cmd":"panic","seq":5}`))
	var resp Response
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	if status != 200 || h.Get("Content-Type") != ContentTypeJSON || resp.Code != CodeInternal || resp.Seq != 5 || strings.Contains(string(body), "boom") {
		t.Fatalf("panic: status %d %s", status, body)
	}
	status, _, body = f.post(t, ContentTypeJSON, []byte(`{"cmd":"echo","payload":{"a":1}}`), HeaderIdempotencyKey, "idem-7")
	if status != 200 || !strings.Contains(string(body), `"rid":"idem-7"`) || !strings.Contains(string(body), `"idem":"idem-7"`) {
		t.Fatalf("plain echo: %d %s", status, body)
	}
	status, _, body = f.post(t, ContentTypeJSON, []byte(`{"cmd":`))
	if status != 400 || !strings.Contains(string(body), `"code":1`) {
		t.Fatalf("broken JSON: %d %s", status, body)
	}
	// The server keeps serving after all of that.
	if status, _, _ = f.post(t, ContentTypeJSON, []byte(`{"cmd":"echo"}`)); status != 200 {
		t.Fatalf("after errors: %d", status)
	}
}

func TestHTTPRequireAuthenticated(t *testing.T) {
	f := newHTTPFixture(t, HTTPConfig{RequireAuthenticated: true})
	frame, _ := f.client.Encode(AppendRequest(nil, &Request{Command: "echo"}), EncodeOptions{Mode: ModeXOR})
	status, _, reply := f.post(t, ContentTypeFrame, frame)
	if status != http.StatusUnauthorized || replyCode(t, f, reply) != CodeUnauthorized {
		t.Fatalf("XOR frame under RequireAuthenticated: %d", status)
	}
	if _, err := NewHTTPHandler(echoMux(), HTTPConfig{RequireAuthenticated: true, AllowPlainJSON: true}); err == nil {
		t.Fatal("contradictory config accepted")
	}
}

func TestHTTPHandlerTimeout(t *testing.T) {
	m := NewMux()
	m.HandleFunc("wait", func(ctx context.Context, _ *Request) (*Response, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	h, err := NewHTTPHandler(m, HTTPConfig{AllowPlainJSON: true, HandlerTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"cmd":"wait"}`)))
	if !strings.Contains(rec.Body.String(), `"code":42`) {
		t.Fatalf("timeout: %s", rec.Body)
	}
}

func TestHTTPConcurrent(t *testing.T) {
	f := newHTTPFixture(t, HTTPConfig{})
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				want := strings.Repeat("x", 100*g+i)
				req := &Request{Command: "echo", Seq: uint64(i + 1), Payload: json.RawMessage(`"` + want + `"`)}
				frame, _ := f.client.Encode(AppendRequest(nil, req), EncodeOptions{Mode: ModeXOR})
				httpResp, err := f.srv.Client().Post(f.srv.URL, ContentTypeFrame, bytes.NewReader(frame))
				if err != nil {
					errs <- err.Error()
					return
				}
				reply, _ := io.ReadAll(httpResp.Body)
				httpResp.Body.Close()
				body, _, err := f.client.Decode(reply, nil)
				if err != nil || !strings.Contains(string(body), `"in":"`+want+`"`) {
					errs <- "mixed up reply"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

type panickingResolver struct{}

func (panickingResolver) ResolveKeys(context.Context, []byte) (*Keys, error) {
	panic("resolver bug")
}

func TestHTTPRecoversPanicOutsideTheChain(t *testing.T) {
	f := newHTTPFixture(t, HTTPConfig{Keys: panickingResolver{}})
	frame, _ := f.client.Encode(AppendRequest(nil, &Request{Command: "echo"}), EncodeOptions{Mode: ModeAuthenticated, Keys: f.keys, Counter: 1})
	status, _, reply := f.post(t, ContentTypeFrame, frame)
	if status != http.StatusInternalServerError || replyCode(t, f, reply) != CodeInternal || strings.Contains(string(reply), "resolver bug") {
		t.Fatalf("panic in resolver: status %d", status)
	}
	// The server keeps serving.
	frame, _ = f.client.Encode(AppendRequest(nil, &Request{Command: "echo"}), EncodeOptions{})
	if status, _, _ = f.post(t, ContentTypeFrame, frame); status != http.StatusOK {
		t.Fatalf("after the panic: %d", status)
	}
}

func TestHTTPStatusForRefusals(t *testing.T) {
	for code, want := range map[Code]int{
		CodeBadFrame: 400, CodeTooLarge: 413, CodeUnauthorized: 401, CodeKicked: 401, CodeSessionExpired: 401,
		CodeSessionRevoked: 401, CodeReplayed: 401, CodeBlocked: 403, CodeClientTooOld: 403,
		CodeRateLimited: 429, CodeMaintenance: 503, CodeUnavailable: 503, CodeInternal: 500,
	} {
		if got := httpStatusFor(code); got != want {
			t.Errorf("%v: %d, want %d", code, got, want)
		}
	}
}

// TestHTTPSessionRefusalFromTheChain: a session refusal returned by the
// handler chain (a session middleware: unauthorized, expired, kicked,
// revoked, replayed) is answered like one before dispatch, in every mode:
// HTTP 401, an unprotected server frame, no seq or rid (docs/PROTOCOL.md §8,
// §9.2, §11). Other codes from the chain stay 200 in the request's mode.
func TestHTTPSessionRefusalFromTheChain(t *testing.T) {
	f := newHTTPFixture(t, HTTPConfig{})
	var refuse Code
	mux := echoMux()
	mux.HandleFunc("refuse", func(context.Context, *Request) (*Response, error) {
		return nil, &Error{Code: refuse, Message: refuse.String()}
	})
	h, err := NewHTTPHandler(mux, HTTPConfig{Codec: f.server, Keys: f.keyring, Now: func() time.Time { return fixedNow }, AllowPlainJSON: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	f.srv = srv
	counter := uint64(0)
	for _, code := range []Code{CodeUnauthorized, CodeSessionExpired, CodeKicked, CodeSessionRevoked, CodeReplayed, CodeForbidden, CodeBlocked} {
		for _, mode := range []Mode{ModePlain, ModeXOR, ModeAuthenticated} {
			refuse = code
			opts := EncodeOptions{Mode: mode}
			if mode == ModeAuthenticated {
				counter++
				opts.Keys, opts.Counter = f.keys, counter
			}
			status, rh, resp := f.roundTrip(t, &Request{Command: "refuse", Seq: 5, RequestID: "r-5"}, opts)
			if resp.Code != code {
				t.Fatalf("%v in %v: code %v", code, mode, resp.Code)
			}
			if code >= CodeUnauthorized && code <= CodeReplayed {
				if status != http.StatusUnauthorized || ModeOf(rh.Flags) != ModePlain || resp.Seq != 0 || resp.RequestID != "" || resp.ServerTime != fixedNow.UnixMilli() {
					t.Fatalf("%v in %v: status %d, flags %#x, %+v; want 401, an unprotected frame, no seq or rid", code, mode, status, rh.Flags, resp)
				}
				continue
			}
			if status != http.StatusOK || ModeOf(rh.Flags) != mode || resp.Seq != 5 || resp.RequestID != "r-5" {
				t.Fatalf("%v in %v: status %d, flags %#x, %+v; want 200 in the request's mode with seq and rid", code, mode, status, rh.Flags, resp)
			}
		}
	}
	// Plain JSON: the same refusal in plain JSON, 401.
	refuse = CodeKicked
	status, hdr, body := f.post(t, ContentTypeJSON, []byte(`{"cmd":"refuse","seq":5}`))
	if status != http.StatusUnauthorized || hdr.Get("Content-Type") != ContentTypeJSON || !strings.HasPrefix(string(body), `{"code":12,`) {
		t.Fatalf("plain JSON: %d %s %s", status, hdr.Get("Content-Type"), body)
	}
}
