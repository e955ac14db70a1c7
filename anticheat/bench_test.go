package anticheat_test

// Benchmarks for BENCHMARKS.md. The goal is a ratio against a baseline run
// in the same process: the per-request anti-cheat path (impl=guard: block
// lookup + speed check through the middleware, memory backends) against one
// protocol HTTP adapter round trip over loopback (impl=http-roundtrip).
//
//	go test ./anticheat -run '^$' -bench RequestPath -benchmem -count 6

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/protocol"
)

var noop = protocol.HandlerFunc(func(context.Context, *protocol.Request) (*protocol.Response, error) { return nil, nil })

// benchGuard returns the guarded no-op handler with 10,000 known sessions
// and 100 blocked users (none of them the one benchmarked).
func benchGuard(tb testing.TB) protocol.Handler {
	tb.Helper()
	store := anticheat.NewMemoryStore(anticheat.MemoryConfig{})
	mon := anticheat.NewMonitor(anticheat.MonitorConfig{Log: store, Blocks: store})
	g := anticheat.NewGuard(anticheat.GuardConfig{Monitor: mon})
	for u := range int64(100) {
		_ = mon.Block(context.Background(), 1_000_000+u, 0, "bench")
	}
	h := g.Middleware()(noop)
	for u := range int64(10_000) {
		req := &protocol.Request{Command: "x", ClientTime: t0.UnixMilli(), ReceivedAt: t0, Principal: &protocol.Principal{UserKey: u, SessionID: "s"}}
		if _, err := h.Serve(context.Background(), req); err != nil {
			tb.Fatal(err)
		}
	}
	return h
}

func guardLoop(b *testing.B, h protocol.Handler, user int64) {
	ctx := context.Background()
	req := &protocol.Request{Command: "stage.clear", Principal: &protocol.Principal{UserKey: user, SessionID: "s"}}
	at := t0
	for b.Loop() {
		at = at.Add(time.Second)
		req.ReceivedAt, req.ClientTime = at, at.UnixMilli()
		if _, err := h.Serve(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRequestPathAllocs(t *testing.T) {
	h := benchGuard(t)
	ctx := context.Background()
	req := &protocol.Request{Command: "stage.clear", Principal: &protocol.Principal{UserKey: 42, SessionID: "s"}}
	at := t0
	allocs := testing.AllocsPerRun(1000, func() {
		at = at.Add(time.Second)
		req.ReceivedAt, req.ClientTime = at, at.UnixMilli()
		if _, err := h.Serve(ctx, req); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per request, want 0", allocs)
	}
}

func BenchmarkRequestPath(b *testing.B) {
	b.Run("impl=guard", func(b *testing.B) {
		h := benchGuard(b)
		b.ReportAllocs()
		guardLoop(b, h, 42)
	})
	b.Run("impl=guard-parallel", func(b *testing.B) {
		h := benchGuard(b)
		b.ReportAllocs()
		ctx := context.Background()
		var next int64
		var mu = make(chan struct{}, 1)
		mu <- struct{}{}
		b.RunParallel(func(pb *testing.PB) {
			<-mu
			next++
			user := next
			mu <- struct{}{}
			req := &protocol.Request{Command: "stage.clear", Principal: &protocol.Principal{UserKey: user, SessionID: "s"}}
			at := t0
			for pb.Next() {
				at = at.Add(time.Second)
				req.ReceivedAt, req.ClientTime = at, at.UnixMilli()
				if _, err := h.Serve(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("impl=http-roundtrip", func(b *testing.B) {
		xorKey := []byte("k3Y-0f-Th3-M4d4ng-Cl13nt-v1.4.2!")
		server, err := protocol.NewCodec(protocol.Config{XORKey: xorKey})
		if err != nil {
			b.Fatal(err)
		}
		client, err := protocol.NewCodec(protocol.Config{XORKey: xorKey, Role: protocol.RoleClient})
		if err != nil {
			b.Fatal(err)
		}
		mux := protocol.NewMux()
		mux.HandleFunc("ping", func(context.Context, *protocol.Request) (*protocol.Response, error) {
			return &protocol.Response{Payload: []byte(`{"pong":true}`)}, nil
		})
		hh, err := protocol.NewHTTPHandler(mux, protocol.HTTPConfig{Codec: server})
		if err != nil {
			b.Fatal(err)
		}
		frame, err := client.Encode(protocol.AppendRequest(nil, &protocol.Request{Command: "ping", Seq: 17, RequestID: "Wm9LZ2V0UmFuZG9tSUQx",
			ClientTime: 1764028800000, Token: "s.10000042.6f1c2a9e4b7d3f80"}), protocol.EncodeOptions{Mode: protocol.ModeXOR})
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(hh)
		defer srv.Close()
		tr := &http.Transport{MaxIdleConns: 16, MaxIdleConnsPerHost: 16, IdleConnTimeout: time.Minute, DisableCompression: true}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr}
		post := func() []byte {
			req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(frame))
			req.Header.Set("Content-Type", protocol.ContentTypeFrame)
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("HTTP %d %v", resp.StatusCode, err)
			}
			return body
		}
		body, _, err := client.Decode(post(), nil)
		var resp protocol.Response
		if err == nil {
			err = protocol.DecodeResponse(body, &resp)
		}
		if err != nil || resp.Code != protocol.CodeOK || resp.Seq != 17 {
			b.Fatalf("reply %+v %v", resp, err)
		}
		b.ReportAllocs()
		for b.Loop() {
			post()
		}
	})
}
