package realtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
)

// A bot connects with a session token, runs a game command through the
// hub's handler chain and re-sends it with the same request id, as it
// would on a new connection after losing the answer: the idempotency layer
// answers the stored result (a replay) and the purchase ran once. Here a
// toy handler stands for idempotency.Middleware.
func ExampleClient_CallWith() {
	ctx := context.Background()
	store := session.NewMemoryStore(session.Config{})
	defer store.Close()
	var mu sync.Mutex
	stored := map[string][]byte{}
	runs := 0
	mux := protocol.NewMux()
	mux.HandleFunc("shop.buy", func(_ context.Context, req *protocol.Request) (*protocol.Response, error) {
		mu.Lock()
		defer mu.Unlock()
		if b, ok := stored[req.RequestID]; ok {
			return &protocol.Response{Payload: b, Replay: true}, nil
		}
		runs++
		stored[req.RequestID] = []byte(`{"gems":90}`)
		return &protocol.Response{Payload: stored[req.RequestID]}, nil
	})
	hub, _ := realtime.NewHub(store, realtime.Config{Handler: protocol.Chain(mux, session.Middleware(store, session.MiddlewareConfig{}))})
	srv := httptest.NewServer(hub) // a game server mounts it at, say, /ws
	defer srv.Close()
	defer hub.Shutdown(ctx)

	sess, _ := store.Create(ctx, session.CreateParams{UserKey: 7})
	c, err := realtime.Dial(ctx, srv.URL, sess.Token, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	rid := protocol.NewRequestID() // kept until the purchase is answered
	for range 2 {
		r, err := c.CallWith(ctx, "shop.buy", json.RawMessage(`{"item":"sword"}`), protocol.CallOptions{RequestID: rid})
		fmt.Println(err, r.Code, string(r.Payload), r.Replay, r.RequestID == rid)
	}
	fmt.Println("runs", runs)
	// Output:
	// <nil> ok {"gems":90} false true
	// <nil> ok {"gems":90} true true
	// runs 1
}

// One session, authenticated frames over HTTP and over a websocket: the
// websocket client takes its counters from the HTTP client's FrameCounter,
// so the two never use a counter twice. A refused handshake is a
// *HandshakeError with the hub's result code.
func ExampleDial_sharedCounter() {
	ctx := context.Background()
	store := session.NewMemoryStore(session.Config{})
	defer store.Close()
	mux := protocol.NewMux()
	mux.HandleFunc("counter", func(_ context.Context, req *protocol.Request) (*protocol.Response, error) {
		return &protocol.Response{Payload: []byte(fmt.Sprint(req.Counter))}, nil
	})
	chain := protocol.Chain(mux, session.Middleware(store, session.MiddlewareConfig{}))
	rpc, _ := protocol.NewHTTPHandler(chain, protocol.HTTPConfig{Keys: session.NewKeyResolver(store, session.KeyResolverConfig{})})
	hub, _ := realtime.NewHub(store, realtime.Config{Handler: chain})
	httpSrv, wsSrv := httptest.NewServer(rpc), httptest.NewServer(hub)
	defer httpSrv.Close()
	defer wsSrv.Close()
	defer hub.Shutdown(ctx)

	sess, _ := store.Create(ctx, session.CreateParams{UserKey: 1001})
	keys, _ := sess.Keys()
	client, _ := protocol.NewClient(protocol.ClientConfig{URL: httpSrv.URL})
	client.SetSession(sess.Token, keys)
	ws, err := realtime.Dial(ctx, wsSrv.URL, sess.Token, &realtime.DialOptions{
		Mode: protocol.ModeAuthenticated, Keys: keys, Counters: client.Counter(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ws.Close()

	var n uint64
	_, err = client.Call(ctx, "counter", nil, &n)
	fmt.Println("http", n, err)
	r, err := ws.Call(ctx, "counter", nil)
	fmt.Println("ws", string(r.Payload), err)
	_, err = client.Call(ctx, "counter", nil, &n)
	fmt.Println("http", n, err)

	_, err = realtime.Dial(ctx, wsSrv.URL, "1001.unknown", nil)
	var he *realtime.HandshakeError
	fmt.Println(errors.As(err, &he), he.Status, protocol.CodeOf(err))
	// Output:
	// http 1 <nil>
	// ws 2 <nil>
	// http 3 <nil>
	// true 401 unauthorized
}
