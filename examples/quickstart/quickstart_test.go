package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/idempotency/idempotencytest"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session/sessiontest"
	"github.com/madang-io/madang/shard"
	"github.com/madang-io/madang/shard/shardtest"
)

// TestQuickstart plays the game in production mode (Dev off) on SQLite
// files and memory sessions: login, the daily reward (one request id sent
// twice, over HTTP and over the websocket, gets one grant and replays; a
// second claim that day is refused; the next day pays again), the
// leaderboard, and pushes on the websocket.
func TestQuickstart(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	clock := sessiontest.NewClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)) // the reward's clock
	srv, err := New(ctx, Config{DataDir: t.TempDir(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(context.Background()); err != nil {
			t.Error("close:", err)
		}
	})
	hs := httptest.NewServer(srv.http.Handler)
	t.Cleanup(hs.Close)

	alice := login(t, ctx, hs.URL, "alice-phone")
	bob := login(t, ctx, hs.URL, "bob-phone")
	aliceWS, bobWS := alice.dial(t, ctx, hs.URL), bob.dial(t, ctx, hs.URL)
	if _, err := bobWS.Subscribe(ctx, realtime.ChannelSystem, nil); err != nil {
		t.Fatal(err)
	}

	// The daily reward, and the same request sent again (the client never
	// heard the reply): the stored answer, granted once.
	rid := protocol.NewRequestID()
	var got map[string]int64
	resp, err := alice.CallWith(ctx, CmdDaily, nil, &got, protocol.CallOptions{RequestID: rid})
	if err != nil || resp.Replay || got["gold"] != DailyGold {
		t.Fatalf("daily reward: %+v %v, gold %v; want gold %d", resp, err, got, DailyGold)
	}
	got = nil
	resp, err = alice.CallWith(ctx, CmdDaily, nil, &got, protocol.CallOptions{RequestID: rid})
	if err != nil || !resp.Replay || got["gold"] != DailyGold {
		t.Fatalf("daily reward sent again: %+v %v, gold %v; want a replay of gold %d", resp, err, got, DailyGold)
	}
	// Over the websocket the same request id gets the same replay: one chain.
	r, err := aliceWS.CallWith(ctx, CmdDaily, nil, protocol.CallOptions{RequestID: rid})
	if err != nil || r.Code != protocol.CodeOK || !r.Replay || !strings.Contains(string(r.Payload), `"gold":100`) {
		t.Fatalf("daily reward over the websocket: %+v %v; want a replay of gold %d", r, err, DailyGold)
	}
	push, err := aliceWS.Next(ctx)
	if err != nil || push.Topic != "reward" || !strings.Contains(string(push.Payload), `"gold":100`) {
		t.Fatalf("reward push: %+v %v", push, err)
	}
	// Another claim the same day (a new request id) is refused.
	if _, err := alice.Call(ctx, CmdDaily, nil, nil); protocol.CodeOf(err) != CodeAlreadyClaimed {
		t.Fatalf("second claim on one day: %v, want code %d", err, CodeAlreadyClaimed)
	}
	// The next day it pays again.
	clock.Advance(24 * time.Hour)
	if _, err := alice.Call(ctx, CmdDaily, nil, &got); err != nil || got["gold"] != 2*DailyGold {
		t.Fatalf("claim the next day: %v, gold %v", err, got)
	}
	// One push per grant, none for the replays: the user channel's history.
	hist, err := aliceWS.Call(ctx, realtime.CmdHistory, map[string]string{"ch": realtime.UserChannel(alice.key)})
	var pubs struct{ Pubs []protocol.Push }
	if err != nil || hist.Code != protocol.CodeOK || json.Unmarshal(hist.Payload, &pubs) != nil || len(pubs.Pubs) != 2 {
		t.Fatalf("alice's pushes: %+v %v, want 2 rewards", hist, err)
	}

	// Leaderboard: alice takes first place, and bob's websocket hears of it.
	var rank rankReply
	if _, err := alice.Call(ctx, CmdSubmit, map[string]int64{"score": 1200}, &rank); err != nil || rank != (rankReply{Rank: 1, Score: 1200}) {
		t.Fatalf("alice's score: %+v %v", rank, err)
	}
	push, err = bobWS.Next(ctx)
	if err != nil || push.Topic != "notice" || !strings.Contains(string(push.Payload), `"score":1200`) {
		t.Fatalf("champion notice: %+v %v", push, err)
	}
	if _, err := bob.Call(ctx, CmdSubmit, map[string]int64{"score": 1500}, &rank); err != nil || rank != (rankReply{Rank: 1, Score: 1500}) {
		t.Fatalf("bob's score: %+v %v", rank, err)
	}
	// A lower score keeps the week's best; alice, over the websocket, is second.
	if _, err := bob.Call(ctx, CmdSubmit, map[string]int64{"score": 1000}, &rank); err != nil || rank != (rankReply{Rank: 1, Score: 1500}) {
		t.Fatalf("bob's lower score: %+v %v, want the best kept", rank, err)
	}
	r, err = aliceWS.Call(ctx, CmdSubmit, map[string]int64{"score": 1100})
	if err != nil || r.Code != protocol.CodeOK || json.Unmarshal(r.Payload, &rank) != nil || rank != (rankReply{Rank: 2, Score: 1200}) {
		t.Fatalf("alice's score over the websocket: %+v %v %+v", r, err, rank)
	}

	// Outside development mode a frame not sealed with the session's keys
	// carries nothing but a login.
	plain, err := protocol.NewClient(protocol.ClientConfig{URL: hs.URL + protocol.DefaultHTTPPath})
	if err != nil {
		t.Fatal(err)
	}
	plain.SetSession(alice.Token(), nil)
	if _, err := plain.Call(ctx, CmdSubmit, map[string]int64{"score": 1}, nil); protocol.CodeOf(err) != protocol.CodeUnauthorized {
		t.Fatalf("rank.submit in a plain frame: %v, want unauthorized", err)
	}
}

// TestDailyRewardStore runs the idempotency suite on the quickstart's setup:
// a SQL store over a router of two SQLite game databases (docs/GUIDE.md).
func TestDailyRewardStore(t *testing.T) {
	first, _ := shardtest.Range(2) // a user of the second game database
	idempotencytest.RunDoerTests(t, func(t testing.TB, cfg idempotency.Config) idempotency.Doer {
		dir := shardtest.Static(t, shardtest.SQLiteDatabases(t, 2)...)
		router, err := shard.NewRouter(t.Context(), shard.Config{Directory: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { router.Close() })
		store, err := idempotency.NewSQLStore(t.Context(), nil, idempotency.SQLConfig{Config: cfg, Tx: router.Tx, Dialect: shard.DialectSQLite})
		if err != nil {
			t.Fatal(err)
		}
		files, source := store.Migrations()
		if _, err := router.MigrateAll(t.Context(), shard.Migrations{FS: files, Source: source}); err != nil {
			t.Fatal(err)
		}
		return store
	}, idempotencytest.Options{UserKey: first + 42, BusyIsUnavailable: true}) // SQLite: a busy writer is unavailable
}

// player is a logged-in test client that seals its frames with the
// session's keys.
type player struct {
	*protocol.Client
	key  int64
	keys *protocol.Keys
}

// login logs device in over HTTP (a plain frame: the client has no keys
// yet) and switches the client to authenticated frames.
func login(t *testing.T, ctx context.Context, url, device string) *player {
	t.Helper()
	c, err := protocol.NewClient(protocol.ClientConfig{URL: url + protocol.DefaultHTTPPath})
	if err != nil {
		t.Fatal(err)
	}
	var out loginReply
	if _, err := c.Call(ctx, CmdLogin, loginArgs{DeviceID: device, Version: "1.0.0"}, &out); err != nil {
		t.Fatal("login:", err)
	}
	keys, err := protocol.NewKeys([]byte(out.KeyID), out.Secret)
	if err != nil {
		t.Fatal(err)
	}
	c.SetSession(out.Token, keys)
	return &player{Client: c, key: out.UserKey, keys: keys}
}

// dial opens the player's websocket, sealed with the session's keys and
// taking its frame counters from the HTTP client's (no counter twice).
func (p *player) dial(t *testing.T, ctx context.Context, url string) *realtime.Client {
	t.Helper()
	ws, err := realtime.Dial(ctx, url+"/ws", p.Token(), &realtime.DialOptions{
		Mode: protocol.ModeAuthenticated, Keys: p.keys, Counters: p.Counter(),
	})
	if err != nil {
		t.Fatal("websocket:", err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// run, as main calls it: development mode answers plain JSON (curl), and
// the server stops when ctx ends.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"-addr", "127.0.0.1:0", "-data", t.TempDir()}, w)
		w.CloseWithError(err)
		done <- err
	}()
	line, err := bufio.NewReader(out).ReadString('\n') // "quickstart: listening on http://ADDR ..."
	_, addr, ok := strings.Cut(line, "http://")
	addr, _, _ = strings.Cut(addr, " ")
	if err != nil || !ok {
		t.Fatalf("start: %q %v", line, err)
	}
	res, err := http.Post("http://"+addr+protocol.DefaultHTTPPath, "application/json",
		strings.NewReader(`{"cmd":"auth.login","seq":1,"payload":{"device_id":"my-phone"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var reply struct {
		Code    protocol.Code
		Payload loginReply
	}
	err = json.NewDecoder(res.Body).Decode(&reply)
	res.Body.Close()
	if err != nil || reply.Code != protocol.CodeOK || reply.Payload.UserKey != 10_000_000 || reply.Payload.Token == "" {
		t.Fatalf("plain JSON login: %+v %v", reply, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal("run:", err)
	}
}
