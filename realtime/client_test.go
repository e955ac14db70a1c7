package realtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/session/sessiontest"
)

// gameStack is a game server in miniature: one session store, one handler
// chain behind session.Middleware served over HTTP and over a hub.
type gameStack struct {
	store *session.MemoryStore
	hub   *realtime.Hub
	http  string // the HTTP endpoint
	ws    string // the hub
}

func newGameStack(t *testing.T, cfg realtime.Config) *gameStack {
	t.Helper()
	store := session.NewMemoryStore(session.Config{})
	t.Cleanup(func() { store.Close() })
	mux := protocol.NewMux()
	// "who" answers the frame counter it was sent with: session.Middleware
	// checked it against the session's last accepted one.
	mux.HandleFunc("who", func(_ context.Context, req *protocol.Request) (*protocol.Response, error) {
		b, _ := json.Marshal(map[string]any{"user": req.Principal.UserKey, "counter": req.Counter})
		return &protocol.Response{Payload: b}, nil
	})
	chain := protocol.Chain(mux, session.Middleware(store, session.MiddlewareConfig{}))
	rpc, err := protocol.NewHTTPHandler(chain, protocol.HTTPConfig{Keys: session.NewKeyResolver(store, session.KeyResolverConfig{})})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Handler = chain
	hub, err := realtime.NewHub(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	httpSrv := httptest.NewServer(rpc)
	wsSrv := httptest.NewServer(hub)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hub.Shutdown(ctx)
		wsSrv.Close()
		httpSrv.Close()
	})
	return &gameStack{store: store, hub: hub, http: httpSrv.URL, ws: wsSrv.URL}
}

// wsWho calls "who" over the websocket and returns its counter.
func wsWho(t *testing.T, c *realtime.Client) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // a deadline for a failure, not a speed check
	defer cancel()
	r, err := c.Call(ctx, "who", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != protocol.CodeOK {
		t.Fatalf("who: %v %s", r.Code, r.Message)
	}
	var out struct{ Counter uint64 }
	if err := json.Unmarshal(r.Payload, &out); err != nil {
		t.Fatal(err)
	}
	return out.Counter
}

// One session over HTTP and a websocket at once: with the HTTP client's
// FrameCounter shared, every frame (game commands the session store checks,
// and the hub's own commands) has a counter of its own and none is refused.
// A websocket client counting on its own from the session's counter at
// dial time reuses counters the HTTP client took, and the store refuses its
// game commands as replays.
func TestSharedCounterHTTPAndWebsocket(t *testing.T) {
	st := newGameStack(t, realtime.Config{})
	ctx := context.Background()
	sess := sessiontest.Login(t, st.store, 42)
	keys, err := sess.Keys()
	if err != nil {
		t.Fatal(err)
	}
	hc, err := protocol.NewClient(protocol.ClientConfig{URL: st.http, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	hc.SetSession(sess.Token, keys)
	httpWho := func() uint64 {
		var out struct{ Counter uint64 }
		if _, err := hc.Call(ctx, "who", nil, &out); err != nil {
			t.Fatalf("HTTP who: %v", err)
		}
		return out.Counter
	}
	httpWho() // 1

	ws, err := realtime.Dial(ctx, st.ws, sess.Token, &realtime.DialOptions{Mode: protocol.ModeAuthenticated, Keys: keys, Counters: hc.Counter()})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var used []uint64
	for i := range 5 {
		used = append(used, httpWho(), wsWho(t, ws))
		if _, err := ws.Subscribe(ctx, realtime.WorldChannel(i), nil); err != nil { // the hub's own command
			t.Fatalf("subscribe: %v", err)
		}
	}
	// HTTP, websocket, (subscribe), HTTP, ...: each counter once, in order.
	for i, c := range used {
		if want := uint64(2 + i + i/2); c != want {
			t.Fatalf("counters %v, want 2, 3, 5, 6, 8, ...", used)
		}
	}
	if last := hc.Counter().Last(); last != 1+3*5 {
		t.Fatalf("last counter %d, want 16", last)
	}

	// Not shared: a second connection counting on its own from a copy of
	// the counter. Its first frame reuses the counter (and nonce) of the
	// HTTP request sent in between, and the store refuses it.
	own, err := realtime.Dial(ctx, st.ws, sess.Token, &realtime.DialOptions{Mode: protocol.ModeAuthenticated, Keys: keys, Counter: hc.Counter().Last()})
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	httpWho() // takes the counter own is about to use
	if r, err := own.Call(ctx, "who", nil); err != nil || r.Code != protocol.CodeReplayed {
		t.Fatalf("own counter: %+v %v, want replayed", r, err)
	}
}

// Frames of one session on two connections may reach the session store
// out of counter order (an HTTP request overtaken by a websocket game
// command that took a later counter): the store accepts the overtaken one,
// once, while it is less than protocol.ReplayWindowSize below the highest
// accepted (docs/PROTOCOL.md §7.4).
func TestOvertakenCounterAccepted(t *testing.T) {
	// 130 commands on one connection: above the default burst.
	st := newGameStack(t, realtime.Config{CommandRate: 1000, CommandBurst: 1000})
	ctx := context.Background()
	sess := sessiontest.Login(t, st.store, 43)
	keys, _ := sess.Keys()
	fc := protocol.NewFrameCounter(0)
	held := fc.Next() // an HTTP request's counter, still on its way
	ws, err := realtime.Dial(ctx, st.ws, sess.Token, &realtime.DialOptions{Mode: protocol.ModeAuthenticated, Keys: keys, Counters: fc})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if got := wsWho(t, ws); got != held+1 {
		t.Fatalf("ws counter %d", got)
	}
	send := func(counter uint64) error {
		hc, _ := protocol.NewClient(protocol.ClientConfig{URL: st.http, MaxAttempts: 1})
		hc.SetSessionCounter(sess.Token, keys, protocol.NewFrameCounter(counter-1))
		_, err := hc.Call(ctx, "who", nil, nil)
		return err
	}
	if err := send(held); err != nil {
		t.Fatalf("overtaken HTTP request: %v, want accepted", err)
	}
	if err := send(held); protocol.CodeOf(err) != protocol.CodeReplayed {
		t.Fatalf("the same counter again: %v, want replayed", err)
	}
	// At the window's edge: a counter taken (and held back) before
	// ReplayWindowSize-1 websocket frames is still accepted; one held back
	// for ReplayWindowSize frames is not.
	inWindow := fc.Next()
	for range protocol.ReplayWindowSize - 1 {
		wsWho(t, ws)
	}
	if err := send(inWindow); err != nil {
		t.Fatalf("counter %d, %d below the highest: %v, want accepted", inWindow, fc.Last()-inWindow, err)
	}
	tooLate := fc.Next()
	for range protocol.ReplayWindowSize {
		wsWho(t, ws)
	}
	if err := send(tooLate); protocol.CodeOf(err) != protocol.CodeReplayed {
		t.Fatalf("counter %d, %d below the highest: %v, want replayed", tooLate, fc.Last()-tooLate, err)
	}
}

func TestDialHandshakeError(t *testing.T) {
	st := newGameStack(t, realtime.Config{})
	ctx := context.Background()
	check := func(name string, err error, status int, code protocol.Code) {
		t.Helper()
		var he *realtime.HandshakeError
		if !errors.As(err, &he) || he.Status != status || he.ResultCode() != code || protocol.CodeOf(err) != code {
			t.Fatalf("%s: %v (%#v), want HTTP %d %v", name, err, he, status, code)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("HTTP %d", status)) {
			t.Fatalf("%s: message %q", name, err)
		}
	}
	_, err := realtime.Dial(ctx, st.ws, "1.nope", nil)
	check("unknown token", err, http.StatusUnauthorized, protocol.CodeUnauthorized)

	old := sessiontest.Login(t, st.store, 7)
	sessiontest.Login(t, st.store, 7) // kicks old
	_, err = realtime.Dial(ctx, st.ws, old.Token, nil)
	check("kicked", err, http.StatusForbidden, protocol.CodeKicked)

	_, err = realtime.Dial(ctx, st.ws, old.Token, &realtime.DialOptions{Mode: protocol.ModeXOR, Codec: protocol.Config{XORKey: []byte("k")}})
	check("xor not configured", err, http.StatusBadRequest, protocol.CodeBadRequest)

	// A proxy's error page names no code: the status decides.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "<html>Bad Gateway</html>", http.StatusBadGateway)
	}))
	defer proxy.Close()
	_, err = realtime.Dial(ctx, proxy.URL, "1.x", nil)
	check("proxy", err, http.StatusBadGateway, protocol.CodeUnavailable)
	if he := (*realtime.HandshakeError)(nil); !errors.As(err, &he) || he.Code != protocol.CodeOK || !strings.Contains(he.Body, "Bad Gateway") {
		t.Fatalf("proxy: %#v", he)
	}

	// Nothing listening: no HandshakeError.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, err = realtime.Dial(ctx, "ws://"+addr+"/", "1.x", nil)
	var he *realtime.HandshakeError
	if err == nil || errors.As(err, &he) {
		t.Fatalf("closed port: %v", err)
	}

	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := st.hub.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	_, err = realtime.Dial(ctx, st.ws, "1.x", nil)
	check("shutting down", err, http.StatusServiceUnavailable, protocol.CodeGoingAway)
}

// A purchase over the websocket runs through the same handler chain as
// over HTTP (session → idempotency → handler): sent twice with one request
// id it debits once and the second answer is the stored one, marked as a
// replay; Call gives every call a fresh id, so two Calls are two
// purchases. A frame without a request id is refused by an idempotency
// layer that requires one.
func TestClientRequestIDIdempotentPurchase(t *testing.T) {
	store := session.NewMemoryStore(session.Config{})
	t.Cleanup(func() { store.Close() })
	keysStore, err := idempotency.NewMemoryStoreConfig(idempotency.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	keeper, err := idempotency.NewKeeper(keysStore, idempotency.Config{RequireKey: true})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	gems := map[int64]int{}
	mux := protocol.NewMux()
	mux.HandleFunc("shop.buy", func(_ context.Context, req *protocol.Request) (*protocol.Response, error) {
		mu.Lock()
		defer mu.Unlock()
		gems[req.Principal.UserKey] -= 10
		b, _ := json.Marshal(map[string]any{"gems": gems[req.Principal.UserKey], "rid": req.RequestID})
		return &protocol.Response{Payload: b}, nil
	})
	chain := protocol.Chain(mux, session.Middleware(store, session.MiddlewareConfig{}), idempotency.Middleware(keeper))
	hub, err := realtime.NewHub(store, realtime.Config{Handler: chain})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hub)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hub.Shutdown(ctx)
		srv.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a deadline for a failure, not a speed check
	defer cancel()
	sess := sessiontest.Login(t, store, 77)
	dial := func() *realtime.Client {
		c, err := realtime.Dial(ctx, srv.URL, sess.Token, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	type bought struct {
		Gems int
		RID  string
	}
	buy := func(c *realtime.Client, opts protocol.CallOptions) (bought, *protocol.Response) {
		t.Helper()
		r, err := c.CallWith(ctx, "shop.buy", map[string]string{"item": "sword"}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if r.Code != protocol.CodeOK {
			t.Fatalf("shop.buy: %v %s", r.Code, r.Message)
		}
		var out bought
		if err := json.Unmarshal(r.Payload, &out); err != nil {
			t.Fatal(err)
		}
		return out, r
	}

	c := dial()
	rid := protocol.NewRequestID()
	first, r1 := buy(c, protocol.CallOptions{RequestID: rid})
	if first.Gems != -10 || first.RID != rid || r1.RequestID != rid || r1.Replay {
		t.Fatalf("first purchase: %+v, reply rid %q replay %v", first, r1.RequestID, r1.Replay)
	}
	// Sent again on a new connection (the first one's answer was lost).
	again, r2 := buy(dial(), protocol.CallOptions{RequestID: rid})
	if again != first || !r2.Replay || r2.RequestID != rid {
		t.Fatalf("second purchase with the same request id: %+v replay %v, want %+v replayed", again, r2.Replay, first)
	}
	mu.Lock()
	if gems[77] != -10 {
		t.Fatalf("gems %d after one purchase sent twice: debited twice", gems[77])
	}
	mu.Unlock()

	// Call: a fresh request id each time, so two purchases.
	var rids []string
	for range 2 {
		r, err := c.Call(ctx, "shop.buy", map[string]string{"item": "sword"})
		if err != nil || r.Code != protocol.CodeOK || r.Replay {
			t.Fatalf("Call: %+v %v", r, err)
		}
		rids = append(rids, r.RequestID)
	}
	if rids[0] == "" || rids[0] == rids[1] || rids[0] == rid {
		t.Fatalf("Call request ids %q", rids)
	}
	mu.Lock()
	if gems[77] != -30 {
		t.Fatalf("gems %d after three purchases", gems[77])
	}
	mu.Unlock()

	// An envelope without a request id (what the test client sent before
	// it had them) is refused: the command does not run.
	body := protocol.AppendRequest(nil, &protocol.Request{Command: "shop.buy", Seq: 1000, Payload: json.RawMessage(`{"item":"sword"}`)})
	codec, _ := protocol.NewCodec(protocol.Config{Role: protocol.RoleClient})
	frame, err := codec.Encode(body, protocol.EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendRaw(ctx, frame); err != nil {
		t.Fatal(err)
	}
	r, err := c.Unmatched(ctx)
	if err != nil || r.Seq != 1000 || r.Code != protocol.CodeOf(idempotency.ErrMissingKey) {
		t.Fatalf("purchase without a request id: %+v %v, want %v", r, err, protocol.CodeOf(idempotency.ErrMissingKey))
	}
	mu.Lock()
	if gems[77] != -30 {
		t.Fatalf("gems %d: the purchase without a request id ran", gems[77])
	}
	mu.Unlock()

	long := strings.Repeat("x", protocol.MaxRequestIDLen+1)
	if _, err := c.CallWith(ctx, "shop.buy", nil, protocol.CallOptions{RequestID: long}); !errors.Is(err, protocol.ErrEnvelope) {
		t.Fatalf("long request id: %v", err)
	}
}
