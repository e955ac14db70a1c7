package session_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/session/sessiontest"
)

// whoami is a handler that answers with the caller's Principal.
var whoami = protocol.Typed(func(_ context.Context, req *protocol.Request, _ struct{}) (*protocol.Principal, error) {
	if req.Principal == nil {
		return nil, errors.New("no principal")
	}
	return req.Principal, nil
})

func TestMiddlewareCodes(t *testing.T) {
	clk := sessiontest.NewClock(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	store := session.NewMemoryStore(session.Config{Now: clk.Now, TTL: time.Minute, Tombstone: time.Hour})
	defer store.Close()
	mux := protocol.NewMux()
	mux.Handle("whoami", whoami)
	mux.HandleFunc("login", func(_ context.Context, req *protocol.Request) (*protocol.Response, error) {
		if req.Principal != nil {
			t.Error("public command got a principal")
		}
		return nil, nil
	})
	h := protocol.Chain(mux, session.Middleware(store, session.MiddlewareConfig{Public: []string{"login"}}))
	ctx := context.Background()
	call := func(req *protocol.Request) *protocol.Response { return protocol.Dispatch(ctx, h, req, nil) }

	if resp := call(&protocol.Request{Command: "login"}); resp.Code != protocol.CodeOK {
		t.Fatalf("public command: %v %s", resp.Code, resp.Message)
	}
	if resp := call(&protocol.Request{Command: "whoami"}); resp.Code != protocol.CodeUnauthorized {
		t.Fatalf("no token: %v", resp.Code)
	}
	s := sessiontest.Login(t, store, 77)
	resp := call(sessiontest.Request(s, "whoami", ""))
	if resp.Code != protocol.CodeOK || string(resp.Payload) == "" {
		t.Fatalf("valid token: %v %s", resp.Code, resp.Message)
	}
	req := sessiontest.Request(s, "whoami", "")
	call(req)
	if p := req.Principal; p == nil || p.UserKey != 77 || p.SessionID != s.ID || p.Country != "KR" {
		t.Fatalf("principal %+v", p)
	}
	// Key id + counter: accepted once, then replayed.
	frame := &protocol.Request{Command: "whoami", KeyID: []byte(s.ID), Counter: 1}
	if resp := call(frame); resp.Code != protocol.CodeOK {
		t.Fatalf("frame: %v %s", resp.Code, resp.Message)
	}
	if resp := call(&protocol.Request{Command: "whoami", KeyID: []byte(s.ID), Counter: 1}); resp.Code != protocol.CodeReplayed {
		t.Fatalf("replayed frame: %v", resp.Code)
	}
	if resp := call(&protocol.Request{Command: "whoami", Token: "1.nope"}); resp.Code != protocol.CodeUnauthorized {
		t.Fatalf("bad token: %v", resp.Code)
	}
	// Kicked by a newer login.
	s2 := sessiontest.Login(t, store, 77)
	if resp := call(sessiontest.Request(s, "whoami", "")); resp.Code != protocol.CodeKicked {
		t.Fatalf("old token after a new login: %v", resp.Code)
	}
	// Revoked.
	if err := store.Revoke(ctx, s2.ID); err != nil {
		t.Fatal(err)
	}
	if resp := call(sessiontest.Request(s2, "whoami", "")); resp.Code != protocol.CodeSessionRevoked {
		t.Fatalf("revoked: %v", resp.Code)
	}
	// Expired.
	s3 := sessiontest.Login(t, store, 78)
	clk.Advance(2 * time.Minute)
	resp = call(sessiontest.Request(s3, "whoami", ""))
	if resp.Code != protocol.CodeSessionExpired {
		t.Fatalf("expired: %v", resp.Code)
	}
	if resp.Message != session.ErrExpired.Error() {
		t.Fatalf("message %q", resp.Message)
	}
}

// recorder remembers the last frame a client sent.
type recorder struct {
	protocol.Transport
	mu   sync.Mutex
	last []byte
}

func (r *recorder) RoundTrip(ctx context.Context, frame []byte) ([]byte, error) {
	r.mu.Lock()
	r.last = append([]byte(nil), frame...)
	r.mu.Unlock()
	return r.Transport.RoundTrip(ctx, frame)
}

// TestAuthenticatedFramesOverHTTP: the whole path with the HTTP adapter, a
// KeyResolver, authenticated frames and a Redis store (memory without
// Redis): login, calls, a replayed frame, a kick.
func TestAuthenticatedFramesOverHTTP(t *testing.T) {
	memoryAndRedis(t, testAuthenticatedFrames)
}

// postFrame posts frame to the HTTP adapter at url and returns the code of
// the reply, decoded with keys.
func postFrame(t *testing.T, url string, frame []byte, keys *protocol.Keys) protocol.Code {
	t.Helper()
	reply, err := (&protocol.HTTPTransport{URL: url}).RoundTrip(context.Background(), frame)
	if err != nil {
		t.Fatal(err)
	}
	codec, _ := protocol.NewCodec(protocol.Config{Role: protocol.RoleClient})
	body, _, err := codec.Decode(reply, keys)
	if err != nil {
		t.Fatal(err)
	}
	var resp protocol.Response
	if err := protocol.DecodeResponse(body, &resp); err != nil {
		t.Fatal(err)
	}
	return resp.Code
}

type loginReply struct {
	Token  string `json:"token"`
	KeyID  string `json:"key_id"`
	Secret []byte `json:"secret"`
}

func testAuthenticatedFrames(t *testing.T, store session.Store) {
	ctx := context.Background()
	mux := protocol.NewMux()
	mux.Handle("whoami", whoami)
	mux.Handle("login", protocol.Typed(func(ctx context.Context, _ *protocol.Request, in struct{ User int64 }) (loginReply, error) {
		s, err := store.Create(ctx, session.CreateParams{UserKey: in.User, Platform: "android"})
		if err != nil {
			return loginReply{}, err
		}
		return loginReply{Token: s.Token, KeyID: s.ID, Secret: s.Secret}, nil
	}))
	resolver := session.NewKeyResolver(store, session.KeyResolverConfig{})
	h, err := protocol.NewHTTPHandler(
		protocol.Chain(mux, session.Middleware(store, session.MiddlewareConfig{Public: []string{"login"}})),
		protocol.HTTPConfig{Keys: resolver})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	rec := &recorder{Transport: &protocol.HTTPTransport{URL: srv.URL}}
	login := func() (*protocol.Client, loginReply) {
		cl, err := protocol.NewClient(protocol.ClientConfig{Transport: rec, MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		var lr loginReply
		if _, err := cl.Call(ctx, "login", map[string]int64{"User": 501}, &lr); err != nil {
			t.Fatalf("login: %v", err)
		}
		keys, err := protocol.NewKeys([]byte(lr.KeyID), lr.Secret)
		if err != nil {
			t.Fatal(err)
		}
		cl.SetSession(lr.Token, keys)
		return cl, lr
	}
	cl, lr := login()
	for range 3 {
		var p protocol.Principal
		if _, err := cl.Call(ctx, "whoami", nil, &p); err != nil {
			t.Fatalf("whoami: %v", err)
		}
		if p.UserKey != 501 || p.SessionID != lr.KeyID || p.Platform != "android" {
			t.Fatalf("principal %+v", p)
		}
	}
	// Replaying the last frame as captured: refused, even though it decrypts.
	rec.mu.Lock()
	captured := rec.last
	rec.mu.Unlock()
	keys, _ := protocol.NewKeys([]byte(lr.KeyID), lr.Secret)
	if code := postFrame(t, srv.URL, captured, keys); code != protocol.CodeReplayed {
		t.Fatalf("replayed frame answered %v", code)
	}
	// A newer login kicks the first client.
	cl2, _ := login()
	_, err = cl.Call(ctx, "whoami", nil, nil)
	if protocol.CodeOf(err) != protocol.CodeKicked {
		t.Fatalf("kicked client: %v", err)
	}
	if _, err := cl2.Call(ctx, "whoami", nil, nil); err != nil {
		t.Fatalf("new client: %v", err)
	}
}

func TestKeyResolver(t *testing.T) {
	ctx := context.Background()
	store := session.NewMemoryStore(session.Config{AllowMultiple: true})
	defer store.Close()
	r := session.NewKeyResolver(store, session.KeyResolverConfig{MaxEntries: 2})
	a, b, c := sessiontest.Login(t, store, 1), sessiontest.Login(t, store, 2), sessiontest.Login(t, store, 3)
	ka, err := r.ResolveKeys(ctx, []byte(a.ID))
	if err != nil {
		t.Fatal(err)
	}
	if string(ka.ID()) != a.ID {
		t.Fatalf("keys for %q", ka.ID())
	}
	if again, _ := r.ResolveKeys(ctx, []byte(a.ID)); again != ka {
		t.Fatal("keys were derived twice: not cached")
	}
	// Revocation: the cached keys still open frames, the middleware refuses
	// them; forgotten keys are refused at once.
	if err := store.Revoke(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := r.ResolveKeys(ctx, []byte(a.ID)); err != nil || got != ka {
		t.Fatalf("cached keys after revoke: %v", err)
	}
	r.Forget(a.ID)
	if _, err := r.ResolveKeys(ctx, []byte(a.ID)); protocol.CodeOf(err) != protocol.CodeSessionRevoked {
		t.Fatalf("forgotten keys of a revoked session: %v", err)
	}
	if _, err := r.ResolveKeys(ctx, []byte("9.AAAAAAAAAAAA")); protocol.CodeOf(err) != protocol.CodeUnauthorized {
		t.Fatalf("unknown key id: %v", err)
	}
	// More sessions than MaxEntries: all still resolve, and only the entry
	// used least recently is evicted (a cached entry is the same *Keys).
	resolve := func(s *session.Session) *protocol.Keys {
		t.Helper()
		k, err := r.ResolveKeys(ctx, []byte(s.ID))
		if err != nil || string(k.ID()) != s.ID {
			t.Fatalf("ResolveKeys(%s): %v", s.ID, err)
		}
		return k
	}
	kb, kc := resolve(b), resolve(c)
	if resolve(b) != kb || r.Len() != 2 {
		t.Fatalf("b not cached, or %d entries, want 2", r.Len())
	}
	d := sessiontest.Login(t, store, 4)
	kd := resolve(d) // full: evicts c, used least recently
	if r.Len() != 2 {
		t.Fatalf("%d entries, want MaxEntries = 2", r.Len())
	}
	if resolve(b) != kb {
		t.Fatal("b was evicted although c was used less recently")
	}
	if resolve(c) == kc {
		t.Fatal("c was not evicted")
	}
	if resolve(b) != kb { // c's return evicted d, not b
		t.Fatal("b was evicted although d was used less recently")
	}
	if resolve(d) == kd {
		t.Fatal("d was not evicted")
	}
	var _ protocol.KeyResolver = r
	if _, isGuard := any(r).(protocol.CounterGuard); isGuard {
		t.Fatal("KeyResolver must not be a CounterGuard: the middleware checks counters")
	}
}

// TestSealedPublicCommandOnce: a public command in an authenticated frame
// (sealed with a session's keys) runs at most once, like any other frame of
// the session: the same frame posted again is refused as replayed and the
// handler does not run again; a sealed public frame of a session a newer
// login replaced is refused (kicked). Memory and Redis stores.
func TestSealedPublicCommandOnce(t *testing.T) {
	memoryAndRedis(t, testSealedPublicCommandOnce)
}

func testSealedPublicCommandOnce(t *testing.T, store session.Store) {
	ctx := context.Background()
	var mu sync.Mutex
	ran := 0
	mux := protocol.NewMux()
	mux.HandleFunc("sys.time", func(_ context.Context, req *protocol.Request) (*protocol.Response, error) {
		mu.Lock()
		ran++
		mu.Unlock()
		return nil, nil
	})
	h, err := protocol.NewHTTPHandler(
		protocol.Chain(mux, session.Middleware(store, session.MiddlewareConfig{Public: []string{"sys.time"}})),
		protocol.HTTPConfig{Keys: session.NewKeyResolver(store, session.KeyResolverConfig{})})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	sess := sessiontest.Login(t, store, 601)
	keys, err := sess.Keys()
	if err != nil {
		t.Fatal(err)
	}
	codec, _ := protocol.NewCodec(protocol.Config{Role: protocol.RoleClient})
	seal := func(counter uint64) []byte {
		f, err := codec.Encode([]byte(`{"cmd":"sys.time","seq":1}`), protocol.EncodeOptions{Mode: protocol.ModeAuthenticated, Keys: keys, Counter: counter})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	post := func(frame []byte) protocol.Code {
		t.Helper()
		return postFrame(t, srv.URL, frame, keys)
	}
	ranNow := func() int { mu.Lock(); defer mu.Unlock(); return ran }
	first := seal(1)
	if code := post(first); code != protocol.CodeOK {
		t.Fatalf("sealed public command: %v", code)
	}
	for i := range 2 {
		if code := post(first); code != protocol.CodeReplayed {
			t.Fatalf("the same frame again (%d): %v, want replayed", i+1, code)
		}
	}
	if n := ranNow(); n != 1 {
		t.Fatalf("the public handler ran %d times for one frame", n)
	}
	if code := post(seal(2)); code != protocol.CodeOK || ranNow() != 2 {
		t.Fatalf("the next counter: %v, ran %d", code, ranNow())
	}
	// The public frame's counter is the session's: a non-public frame with
	// it is refused too.
	if _, err := store.GetFrame(ctx, sess.ID, 2); protocol.CodeOf(err) != protocol.CodeReplayed {
		t.Fatalf("counter 2 in the store after the public frame: %v, want replayed", err)
	}
	sessiontest.Login(t, store, 601) // kicks sess
	if code := post(seal(3)); code != protocol.CodeKicked || ranNow() != 2 {
		t.Fatalf("sealed public frame of a kicked session: %v, ran %d", code, ranNow())
	}
}
