package protocol_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/madang-io/madang/protocol"
)

// A codec turns a JSON body into a frame and back. Bodies of 150 bytes or
// more are LZ4-compressed when that makes the frame smaller.
func ExampleCodec() {
	key := []byte("shared-xor-key")
	server, _ := protocol.NewCodec(protocol.Config{Role: protocol.RoleServer, XORKey: key})
	client, _ := protocol.NewCodec(protocol.Config{Role: protocol.RoleClient, XORKey: key})

	body := []byte(`{"cmd":"mail.list","seq":1,"payload":{"page":` + strings.Repeat(" ", 200) + `1}}`)
	frame, _ := client.Encode(body, protocol.EncodeOptions{Mode: protocol.ModeXOR})

	got, h, err := server.Decode(frame, nil)
	fmt.Println(err, protocol.ModeOf(h.Flags), h.Flags&protocol.FlagCompressed != 0, len(frame) < len(body))
	fmt.Println(string(got) == string(body))
	// Output:
	// <nil> xor true true
	// true
}

// A game server is a Mux of commands behind the HTTP adapter; the Go client
// calls them. Typed handlers decode the payload and encode the result.
func ExampleNewHTTPHandler() {
	mux := protocol.NewMux()
	mux.Handle("player.hello", protocol.Typed(func(ctx context.Context, req *protocol.Request, in struct {
		Name string `json:"name"`
	}) (map[string]string, error) {
		if in.Name == "" {
			return nil, &protocol.Error{Code: protocol.CodeBadRequest, Message: "name is required"}
		}
		return map[string]string{"greeting": "hello, " + in.Name}, nil
	}))
	h, _ := protocol.NewHTTPHandler(mux, protocol.HTTPConfig{})
	srv := httptest.NewServer(h)
	defer srv.Close()

	client, _ := protocol.NewClient(protocol.ClientConfig{URL: srv.URL})
	var out map[string]string
	resp, err := client.Call(context.Background(), "player.hello", map[string]string{"name": "ari"}, &out)
	fmt.Println(out["greeting"], err, resp.ServerTime > 0)

	_, err = client.Call(context.Background(), "player.hello", map[string]string{}, &out)
	var pe *protocol.Error
	fmt.Println(errors.As(err, &pe), pe.Code, pe.Message)
	// Output:
	// hello, ari <nil> true
	// true bad_request name is required
}

// In authenticated mode every frame is sealed with AES-GCM keys derived from
// the session secret issued at login. The server finds the keys by the key id
// in the frame header and refuses replayed counters.
func ExampleNewKeys() {
	secret := []byte("0123456789abcdef0123456789abcdef") // 32 random bytes in real life
	keys, _ := protocol.NewKeys([]byte("10000042.s1"), secret)

	keyring := protocol.NewKeyring() // the session store plays this part in a real server
	keyring.Add(keys)

	mux := protocol.NewMux()
	mux.HandleFunc("whoami", func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		return &protocol.Response{Payload: []byte(fmt.Sprintf("%q", req.KeyID))}, nil
	})
	h, _ := protocol.NewHTTPHandler(mux, protocol.HTTPConfig{Keys: keyring, RequireAuthenticated: true})
	srv := httptest.NewServer(h)
	defer srv.Close()

	client, _ := protocol.NewClient(protocol.ClientConfig{URL: srv.URL})
	client.SetSession("", keys)
	var who string
	_, err := client.Call(context.Background(), "whoami", nil, &who)
	fmt.Println(who, err)
	// Output:
	// 10000042.s1 <nil>
}

// CodeOf maps any error to a result code; *protocol.Error carries its own.
func ExampleCodeOf() {
	fmt.Println(protocol.CodeOf(nil))
	fmt.Println(protocol.CodeOf(&protocol.Error{Code: protocol.CodeMaintenance, Message: "back at 10:00 KST"}))
	fmt.Println(protocol.CodeOf(context.DeadlineExceeded))
	fmt.Println(protocol.CodeOf(errors.New("disk full")))
	// Output:
	// ok
	// maintenance
	// timeout
	// internal
}

// The frame counter belongs to the session keys: a second connection of the
// same session (a websocket next to the HTTP client, another Client) takes
// its counters from the same FrameCounter, so no counter is used twice.
func ExampleClient_Counter() {
	secret := []byte("0123456789abcdef0123456789abcdef")
	keys, _ := protocol.NewKeys([]byte("10000042.s1"), secret)
	keyring := protocol.NewKeyring()
	keyring.Add(keys)
	mux := protocol.NewMux()
	mux.HandleFunc("ping", func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		return &protocol.Response{Payload: []byte(fmt.Sprint(req.Counter))}, nil
	})
	h, _ := protocol.NewHTTPHandler(mux, protocol.HTTPConfig{Keys: keyring, RequireAuthenticated: true})
	srv := httptest.NewServer(h)
	defer srv.Close()

	http1, _ := protocol.NewClient(protocol.ClientConfig{URL: srv.URL})
	http1.SetSession("", keys)
	http2, _ := protocol.NewClient(protocol.ClientConfig{URL: srv.URL})
	http2.SetSessionCounter("", keys, http1.Counter()) // realtime.DialOptions{Counters: ...} likewise
	for _, c := range []*protocol.Client{http1, http2, http1} {
		var counter uint64
		_, err := c.Call(context.Background(), "ping", nil, &counter)
		fmt.Println(counter, err)
	}
	fmt.Println("last", http1.Counter().Last())
	// Output:
	// 1 <nil>
	// 2 <nil>
	// 3 <nil>
	// last 3
}

// A purchase keeps its request id until it is answered: when the app is
// killed after sending it, the next session re-sends it with the same id,
// and the server answers the stored result instead of debiting again. Here
// a toy handler remembers results by request id; idempotency.Middleware
// does this for real.
func ExampleClient_CallWith() {
	var mu sync.Mutex
	results := map[string]json.RawMessage{}
	debits := 0
	mux := protocol.NewMux()
	mux.HandleFunc("shop.buy", func(_ context.Context, req *protocol.Request) (*protocol.Response, error) {
		mu.Lock()
		defer mu.Unlock()
		if r, ok := results[req.RequestID]; ok {
			return &protocol.Response{Payload: r, Replay: true}, nil
		}
		debits++
		results[req.RequestID] = json.RawMessage(`{"gems":90}`)
		return &protocol.Response{Payload: results[req.RequestID]}, nil
	})
	h, _ := protocol.NewHTTPHandler(mux, protocol.HTTPConfig{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx := context.Background()

	rid := protocol.NewRequestID() // stored with the pending purchase
	first, _ := protocol.NewClient(protocol.ClientConfig{URL: srv.URL})
	_, _ = first.CallWith(ctx, "shop.buy", map[string]string{"item": "sword"}, nil, protocol.CallOptions{RequestID: rid})

	// The app restarts before it saw the answer and sends the purchase again.
	again, _ := protocol.NewClient(protocol.ClientConfig{URL: srv.URL})
	var out struct{ Gems int }
	resp, err := again.CallWith(ctx, "shop.buy", map[string]string{"item": "sword"}, &out, protocol.CallOptions{RequestID: rid})
	fmt.Println(err, resp.Replay, out.Gems, debits)
	// Output:
	// <nil> true 90 1
}
