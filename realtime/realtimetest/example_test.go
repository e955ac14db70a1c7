package realtimetest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/realtime/realtimetest"
	"github.com/madang-io/madang/session"
)

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
	ws, err := realtimetest.Dial(ctx, wsSrv.URL, sess.Token, &realtimetest.DialOptions{
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

	_, err = realtimetest.Dial(ctx, wsSrv.URL, "1001.unknown", nil)
	var he *realtimetest.HandshakeError
	fmt.Println(errors.As(err, &he), he.Status, protocol.CodeOf(err))
	// Output:
	// http 1 <nil>
	// ws 2 <nil>
	// http 3 <nil>
	// true 401 unauthorized
}
