package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
)

// The gate lets max logins run at once; one more waits, then is refused
// with the retryable rate_limited code and a retry hint; other commands
// pass; a slot freed is taken again.
func TestLoginGateSheds(t *testing.T) {
	ctx := context.Background()
	g := newLoginGate("login", 2, time.Millisecond)
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	h := g.middleware()(protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		if req.Command == "login" {
			entered <- struct{}{}
			<-release
		}
		return &protocol.Response{}, nil
	}))
	done := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := h.Serve(ctx, &protocol.Request{Command: "login"})
			done <- err
		}()
	}
	<-entered
	<-entered
	_, err := h.Serve(ctx, &protocol.Request{Command: "login"})
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeRateLimited || !pe.Code.Retryable() ||
		pe.RetryAfter < LoginRetryAfter || pe.RetryAfter >= 2*LoginRetryAfter {
		t.Fatalf("third login while two run: %v", err)
	}
	if g.refused.Load() != 1 {
		t.Fatalf("refused %d", g.refused.Load())
	}
	if _, err := h.Serve(ctx, &protocol.Request{Command: "other"}); err != nil {
		t.Fatalf("another command while logins are full: %v", err)
	}
	close(release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Serve(ctx, &protocol.Request{Command: "login"}); err != nil {
		t.Fatalf("login after the others ended: %v", err)
	}
}

// With no slot free, the server answers auth.guest rate_limited at once
// (HTTP 200 with the code and a retry hint, nothing else run), and logs
// the player in once a slot is free again.
func TestLoginShedByServer(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxLogins, cfg.LoginQueueWait = 1, -1
	base, srv := startServerOn(t, cfg)
	srv.logins.slots <- struct{}{} // a login in progress
	c := floodClient(t, base)
	in := game.GuestLogin{DeviceID: "storm-1", Platform: "android", ClientVersion: "1.0.0.0"}
	resp, err := c.Call(context.Background(), game.CmdGuestLogin, in, nil)
	if protocol.CodeOf(err) != protocol.CodeRateLimited || resp == nil || resp.RetryAfterMs < LoginRetryAfter.Milliseconds() {
		t.Fatalf("login with no slot: %+v %v", resp, err)
	}
	if _, ok, err := srv.store.accounts.Lookup(context.Background(), shard.Identity{Platform: game.GuestPlatform, ID: "storm-1"}); ok || err != nil {
		t.Fatalf("a refused login registered the account (%v)", err)
	}
	<-srv.logins.slots
	login(t, c, "storm-1")
}

// The gate's memo makes the account lookup of a login once for the
// guard and the live-ops middleware.
func TestLoginUserMemo(t *testing.T) {
	_, srv := startServerOn(t, testConfig(t))
	memo := &loginMemo{}
	ctx := context.WithValue(context.Background(), loginMemoKey{}, memo)
	payload := []byte(`{"device_id":"memo-1"}`)
	if _, ok, err := srv.loginUser(ctx, payload); ok || err != nil {
		t.Fatalf("before registration: %v %v", ok, err)
	}
	if !memo.parsed || memo.deviceID != "memo-1" || !memo.done {
		t.Fatalf("memo after the first call: %+v", memo)
	}
	// Another payload in the same context is decoded on its own.
	other := []byte(`{"device_id":"memo-2"}`)
	if _, ok, err := srv.loginUser(ctx, other); ok || err != nil || memo.deviceID != "memo-2" {
		t.Fatalf("another payload: %v %v, memo %+v", ok, err, memo)
	}
	if _, ok, err := srv.loginUser(ctx, payload); ok || err != nil || memo.deviceID != "memo-1" {
		t.Fatalf("the first payload again: %v %v, memo %+v", ok, err, memo)
	}
	key, _, err := srv.store.accounts.Register(context.Background(), shard.Identity{Platform: game.GuestPlatform, ID: "memo-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := srv.loginUser(ctx, payload); ok || err != nil {
		t.Fatalf("same request after registration: %v %v (not the memo)", ok, err)
	}
	fresh := context.WithValue(context.Background(), loginMemoKey{}, &loginMemo{})
	if k, ok, err := srv.loginUser(fresh, payload); !ok || err != nil || k != key {
		t.Fatalf("another request: %d %v %v, want %d", k, ok, err, key)
	}
}
