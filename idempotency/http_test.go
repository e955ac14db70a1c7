package idempotency_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/protocol"
)

// fakeAuth is a stand-in for the session middleware: the token is the user.
func fakeAuth(next protocol.Handler) protocol.Handler {
	return protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		req.Principal = &protocol.Principal{UserKey: int64(len(req.Token))}
		return next.Serve(ctx, req)
	})
}

// httpServer serves mux behind auth, the idempotency middleware over d, the
// protocol HTTP adapter (plain JSON allowed) and HTTPStatus. The server
// clock moves one second per response, so stamped times differ.
func httpServer(t *testing.T, d idempotency.Doer, mux *protocol.Mux) *httptest.Server {
	t.Helper()
	var tick atomic.Int64
	h, err := protocol.NewHTTPHandler(protocol.Chain(mux, fakeAuth, idempotency.Middleware(d)), protocol.HTTPConfig{
		AllowPlainJSON: true,
		Codec:          mustCodec(t, protocol.RoleServer),
		Now:            func() time.Time { return time.Unix(1_700_000_000+tick.Add(1), 0) },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(idempotency.HTTPStatus(h))
	t.Cleanup(srv.Close)
	return srv
}

var testXORKey = []byte("idempotency-test")

func mustCodec(t testing.TB, role protocol.Role) *protocol.Codec {
	c, err := protocol.NewCodec(protocol.Config{Role: role, XORKey: testXORKey})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type httpReply struct {
	status  int
	ctype   string
	retry   string
	body    []byte
	resp    protocol.Response
	problem map[string]any
}

func post(t *testing.T, url, idemKey string, body []byte) httpReply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if idemKey != "" {
		req.Header.Set(protocol.HeaderIdempotencyKey, idemKey)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := httpReply{status: res.StatusCode, ctype: res.Header.Get("Content-Type"), retry: res.Header.Get("Retry-After"), body: b}
	switch r.ctype {
	case protocol.ContentTypeJSON:
		if err := protocol.DecodeResponse(b, &r.resp); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	case idempotency.ContentTypeProblem:
		if err := json.Unmarshal(b, &r.problem); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	case protocol.ContentTypeFrame:
		body, _, err := mustCodec(t, protocol.RoleClient).Decode(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := protocol.DecodeResponse(body, &r.resp); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func TestHTTPHeaderPath(t *testing.T) {
	keeper, _ := idempotency.NewKeeper(idempotency.NewMemoryStore(nil), idempotency.Config{InFlight: idempotency.AnswerInFlight, RetryAfter: 1500 * time.Millisecond})
	var runs atomic.Int32
	started, release := make(chan struct{}, 1), make(chan struct{})
	mux := protocol.NewMux()
	mux.HandleFunc("shop.buy", func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		runs.Add(1)
		return &protocol.Response{Message: "bought", Payload: json.RawMessage(`{"gems": 90}`)}, nil
	})
	mux.HandleFunc("slow", func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		started <- struct{}{}
		<-release
		return nil, nil
	})
	srv := httpServer(t, keeper, mux)

	first := post(t, srv.URL, "key-1", []byte(`{"cmd":"shop.buy","seq":5,"token":"u","payload":{"item":1}}`))
	if first.status != 200 || first.resp.Code != 0 || first.resp.Replay || string(first.resp.Payload) != `{"gems": 90}` || first.resp.RequestID != "key-1" {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	again := post(t, srv.URL, "key-1", []byte(`{"cmd":"shop.buy","seq":6,"token":"u","payload":{"item":1}}`))
	if again.status != 200 || !again.resp.Replay || string(again.resp.Payload) != `{"gems": 90}` || again.resp.Message != "bought" {
		t.Fatalf("replay: %d %s", again.status, again.body)
	}
	if again.resp.Seq != 6 || again.resp.ServerTime == first.resp.ServerTime {
		t.Fatalf("replay not stamped fresh: seq %d, stime %d (first %d)", again.resp.Seq, again.resp.ServerTime, first.resp.ServerTime)
	}
	if runs.Load() != 1 {
		t.Fatalf("ran %d times", runs.Load())
	}

	reused := post(t, srv.URL, "key-1", []byte(`{"cmd":"shop.buy","token":"u","payload":{"item":2}}`))
	if reused.status != http.StatusUnprocessableEntity || reused.ctype != idempotency.ContentTypeProblem ||
		reused.problem["code"] != float64(protocol.CodeRequestIDReused) || reused.problem["status"] != float64(422) || reused.problem["rid"] != "key-1" {
		t.Fatalf("reused: %d %s %s", reused.status, reused.ctype, reused.body)
	}

	// Another user may use the same key.
	other := post(t, srv.URL, "key-1", []byte(`{"cmd":"shop.buy","token":"uu","payload":{"item":2}}`))
	if other.status != 200 || other.resp.Replay || runs.Load() != 2 {
		t.Fatalf("other user: %d %s", other.status, other.body)
	}

	// In flight: 409 with Retry-After.
	done := make(chan httpReply, 1)
	go func() { done <- post(t, srv.URL, "key-slow", []byte(`{"cmd":"slow","token":"u"}`)) }()
	<-started
	dup := post(t, srv.URL, "key-slow", []byte(`{"cmd":"slow","token":"u"}`))
	close(release)
	if r := <-done; r.status != 200 || r.resp.Code != 0 {
		t.Fatalf("slow: %d %s", r.status, r.body)
	}
	if dup.status != http.StatusConflict || dup.retry != "2" || dup.problem["code"] != float64(protocol.CodeInFlight) || dup.problem["retry_ms"] != float64(1500) {
		t.Fatalf("in flight: %d retry-after %q %s", dup.status, dup.retry, dup.body)
	}

	// The envelope's own rid is not the header path: answers stay 200.
	post(t, srv.URL, "", []byte(`{"cmd":"shop.buy","rid":"env-1","token":"u","payload":1}`))
	env := post(t, srv.URL, "", []byte(`{"cmd":"shop.buy","rid":"env-1","token":"u","payload":2}`))
	if env.status != 200 || env.resp.Code != protocol.CodeRequestIDReused {
		t.Fatalf("envelope rid reuse: %d %s", env.status, env.body)
	}

	// A frame request on the header path keeps its frame; only the status
	// changes, so madang's client can still read it.
	frame, err := mustCodec(t, protocol.RoleClient).Encode(protocol.AppendRequest(nil, &protocol.Request{Command: "shop.buy", Token: "u", Payload: json.RawMessage(`{"item":3}`)}), protocol.EncodeOptions{Mode: protocol.ModeXOR})
	if err != nil {
		t.Fatal(err)
	}
	fr := post(t, srv.URL, "key-1", frame)
	if fr.status != http.StatusUnprocessableEntity || fr.ctype != protocol.ContentTypeFrame || fr.resp.Code != protocol.CodeRequestIDReused {
		t.Fatalf("frame reuse: %d %s code %v", fr.status, fr.ctype, fr.resp.Code)
	}
}

func TestHTTPMissingKeyRequired(t *testing.T) {
	keeper, _ := idempotency.NewKeeper(idempotency.NewMemoryStore(nil), idempotency.Config{RequireKey: true})
	mux := protocol.NewMux()
	mux.HandleFunc("shop.buy", func(context.Context, *protocol.Request) (*protocol.Response, error) {
		t.Error("ran without a key")
		return nil, nil
	})
	srv := httpServer(t, keeper, mux)
	r := post(t, srv.URL, "", []byte(`{"cmd":"shop.buy","token":"u"}`))
	if r.status != http.StatusBadRequest || r.ctype != idempotency.ContentTypeProblem || r.problem["code"] != float64(protocol.CodeBadRequest) {
		t.Fatalf("missing: %d %s %s", r.status, r.ctype, r.body)
	}
	if !strings.Contains(r.problem["title"].(string), "missing") {
		t.Fatalf("title %v", r.problem["title"])
	}
}

func TestMiddlewareWithoutHTTPStatusAnswers200(t *testing.T) {
	keeper, _ := idempotency.NewKeeper(idempotency.NewMemoryStore(nil), idempotency.Config{})
	mux := protocol.NewMux()
	mux.HandleFunc("a", func(context.Context, *protocol.Request) (*protocol.Response, error) { return nil, nil })
	h, _ := protocol.NewHTTPHandler(protocol.Chain(mux, idempotency.Middleware(keeper)), protocol.HTTPConfig{AllowPlainJSON: true})
	srv := httptest.NewServer(h)
	defer srv.Close()
	post(t, srv.URL, "k", []byte(`{"cmd":"a","payload":1}`))
	r := post(t, srv.URL, "k", []byte(`{"cmd":"a","payload":2}`))
	if r.status != 200 || r.resp.Code != protocol.CodeRequestIDReused {
		t.Fatalf("%d %s", r.status, r.body)
	}
}
