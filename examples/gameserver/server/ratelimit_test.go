package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
)

// floodClient is an XOR client that does not retry (a flood sees every
// answer).
func floodClient(t *testing.T, base string) *protocol.Client {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := protocol.NewClient(protocol.ClientConfig{
		Transport: &protocol.HTTPTransport{URL: base + protocol.DefaultHTTPPath, Client: hc},
		Codec:     protocol.Config{XORKey: []byte(testXORKey)}, Mode: protocol.ModeXOR, MaxAttempts: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCommandRateLimit: one user's flood of game commands is answered
// rate_limited with a retry hint once past its burst, over HTTP and the
// websocket alike (one limit per user), while another user is served;
// logins are not counted.
func TestCommandRateLimit(t *testing.T) {
	cfg := testConfig(t)
	cfg.CommandRate, cfg.CommandBurst = 0.01, 5 // one per 100 s after 5
	base, _ := startServerOn(t, cfg)
	ctx := context.Background()
	a, b := floodClient(t, base), floodClient(t, base)
	ra := login(t, a, "flood-a")
	login(t, b, "flood-b")
	for i := range 5 {
		if _, err := a.Call(ctx, game.CmdLoad, nil, nil); err != nil {
			t.Fatalf("command %d of the burst: %v", i+1, err)
		}
	}
	limited := 0
	for range 20 {
		resp, err := a.Call(ctx, game.CmdLoad, nil, nil)
		if protocol.CodeOf(err) != protocol.CodeRateLimited || resp == nil || resp.RetryAfterMs < 1000 {
			t.Fatalf("command past the burst: %+v %v, want rate_limited with a retry hint", resp, err)
		}
		limited++
	}
	if _, err := b.Call(ctx, game.CmdLoad, nil, nil); err != nil {
		t.Fatalf("another user during the flood: %v", err)
	}
	// The websocket's game commands share the user's limit.
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	ws, err := realtime.Dial(wctx, "ws"+strings.TrimPrefix(base, "http")+WSPath, ra.Token,
		&realtime.DialOptions{Mode: protocol.ModeXOR, Codec: protocol.Config{XORKey: []byte(testXORKey)}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if r, err := ws.Call(wctx, game.CmdLoad, nil); err != nil || r.Code != protocol.CodeRateLimited || r.RetryAfterMs <= 0 {
		t.Fatalf("a game command over the websocket: %+v %v, want rate_limited", r, err)
	}
	// Logging in again is not a counted command.
	login(t, a, "flood-a")
}

// TestCommandRateLimitOff: a negative CommandRate turns the limit off.
func TestCommandRateLimitOff(t *testing.T) {
	cfg := testConfig(t)
	cfg.CommandRate, cfg.CommandBurst = -1, 1
	base, _ := startServerOn(t, cfg)
	c := floodClient(t, base)
	login(t, c, "unlimited")
	for i := range 10 {
		if _, err := c.Call(context.Background(), game.CmdLoad, nil, nil); err != nil {
			t.Fatalf("command %d: %v", i+1, err)
		}
	}
}

// TestMaxWebsocketsPerUser: the server caps each user's websockets
// (Config.MaxUserConns): one more is refused with 429 rate_limited.
func TestMaxWebsocketsPerUser(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxUserConns = 2
	base, srv := startServerOn(t, cfg)
	res := login(t, floodClient(t, base), "ws-cap")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(base, "http") + WSPath
	opts := &realtime.DialOptions{Mode: protocol.ModeXOR, Codec: protocol.Config{XORKey: []byte(testXORKey)}}
	for range 2 {
		c, err := realtime.Dial(ctx, url, res.Token, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	_, err := realtime.Dial(ctx, url, res.Token, opts)
	if he, ok := err.(*realtime.HandshakeError); !ok || he.Status != http.StatusTooManyRequests || he.Code != protocol.CodeRateLimited {
		t.Fatalf("third websocket: %v, want 429 rate_limited", err)
	}
	if n := srv.hub.Stats().ConnsRefused; n != 1 {
		t.Fatalf("ConnsRefused %d", n)
	}
}
