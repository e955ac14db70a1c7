package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/shard/shardtest"
)

// The embedded default: SQLite files, sessions and leaderboard in memory.
func TestQuickstart(t *testing.T) {
	play(t, Config{DataDir: t.TempDir()})
}

// The same game on MariaDB (MADANG_MYSQL_DSN: a fresh database per test).
func TestQuickstartMariaDB(t *testing.T) {
	play(t, Config{MySQLDSN: shardtest.MariaDB().NewDSN(t)})
}

// The same game with sessions, leaderboard and hub on Redis (MADANG_REDIS_ADDR).
func TestQuickstartRedis(t *testing.T) {
	addr := os.Getenv("MADANG_REDIS_ADDR")
	if addr == "" {
		if os.Getenv("MADANG_CI") != "" {
			t.Fatal("MADANG_REDIS_ADDR is not set, and CI must not skip Redis tests")
		}
		t.Skip("MADANG_REDIS_ADDR is not set")
	}
	play(t, Config{DataDir: t.TempDir(), RedisAddr: addr, RedisPrefix: "quickstart-test-" + rand.Text()[:10] + ":"})
}

const testXORKey = "quickstart-test-xor-key"

// play runs the game in production mode (Dev off): login, the daily reward
// (a lost reply retried with the same request id gets the replay; a second
// claim that day is refused; the next day pays again), the leaderboard,
// and pushes on the websocket.
func play(t *testing.T, cfg Config) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var now atomic.Int64 // the reward's clock, Unix seconds
	now.Store(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC).Unix())
	cfg.Now = func() time.Time { return time.Unix(now.Load(), 0) }
	cfg.XORKey = testXORKey
	srv, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error("close:", err)
		}
	})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)

	alice := login(t, ctx, hs.URL, "alice-phone")
	bob := login(t, ctx, hs.URL, "bob-phone")
	aliceWS := alice.dial(t, ctx, hs.URL)
	bobWS := bob.dial(t, ctx, hs.URL)
	if _, err := bobWS.Subscribe(ctx, realtime.ChannelSystem, nil); err != nil {
		t.Fatal(err)
	}

	// The daily reward's reply is lost: the client sends the request again
	// with the same request id and gets the stored answer, granted once.
	alice.loseNextReply.Store(true)
	var got map[string]int64
	resp, err := alice.Call(ctx, CmdDaily, nil, &got)
	if err != nil || !resp.Replay || got["gold"] != DailyGold {
		t.Fatalf("daily reward after a lost reply: %+v %v, gold %v; want a replay of gold %d", resp, err, got, DailyGold)
	}
	push, err := aliceWS.Next(ctx)
	if err != nil || push.Topic != "reward" || !strings.Contains(string(push.Payload), `"gold":100`) {
		t.Fatalf("reward push: %+v %v", push, err)
	}

	// Another claim the same day (a new request id) is refused.
	_, err = alice.Call(ctx, CmdDaily, nil, nil)
	if protocol.CodeOf(err) != CodeAlreadyClaimed {
		t.Fatalf("second claim on one day: %v, want code %d", err, CodeAlreadyClaimed)
	}
	// The next day it pays again.
	now.Add(24 * 60 * 60)
	if _, err := alice.Call(ctx, CmdDaily, nil, &got); err != nil || got["gold"] != 2*DailyGold {
		t.Fatalf("claim the next day: %v, gold %v", err, got)
	}
	// One push per grant, none for the replay: the user channel's history.
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
	if _, err := bob.Call(ctx, CmdSubmit, map[string]int64{"score": 1500}, &rank); err != nil || rank.Rank != 1 {
		t.Fatalf("bob's score: %+v %v", rank, err)
	}
	if _, err := bob.Call(ctx, CmdSubmit, map[string]int64{"score": 1000}, &rank); err != nil || rank != (rankReply{Rank: 1, Score: 1500}) {
		t.Fatalf("bob's lower score: %+v %v, want the best kept", rank, err)
	}
	// Game commands over the websocket run the same chain as over HTTP.
	r, err := aliceWS.Call(ctx, CmdRank, nil)
	if err != nil || r.Code != protocol.CodeOK || json.Unmarshal(r.Payload, &rank) != nil || rank != (rankReply{Rank: 2, Score: 1200}) {
		t.Fatalf("alice's rank over the websocket: %+v %v %+v", r, err, rank)
	}

	// Outside development mode a frame that is not sealed with the session's
	// keys carries nothing but a login.
	xor, err := protocol.NewClient(protocol.ClientConfig{URL: hs.URL + protocol.DefaultHTTPPath, Mode: protocol.ModeXOR, Codec: protocol.Config{XORKey: []byte(testXORKey)}})
	if err != nil {
		t.Fatal(err)
	}
	xor.SetSession(alice.Token(), nil)
	if _, err := xor.Call(ctx, CmdRank, nil, nil); protocol.CodeOf(err) != protocol.CodeUnauthorized {
		t.Fatalf("rank.me in an XOR frame: %v, want unauthorized", err)
	}
}

// player is a logged-in test client with authenticated frames.
type player struct {
	*protocol.Client
	key           int64
	keys          *protocol.Keys
	loseNextReply atomic.Bool
}

// login logs device in over HTTP (an XOR frame: the client has no keys
// yet) and switches the client to authenticated frames.
func login(t *testing.T, ctx context.Context, url, device string) *player {
	t.Helper()
	p := &player{}
	tr := &lossyTransport{next: &protocol.HTTPTransport{URL: url + protocol.DefaultHTTPPath}, lose: &p.loseNextReply}
	c, err := protocol.NewClient(protocol.ClientConfig{Transport: tr, Mode: protocol.ModeXOR, Codec: protocol.Config{XORKey: []byte(testXORKey)}})
	if err != nil {
		t.Fatal(err)
	}
	var out loginReply
	if _, err := c.Call(ctx, CmdLogin, loginArgs{DeviceID: device, Platform: "android", Version: "1.0.0"}, &out); err != nil {
		t.Fatal("login:", err)
	}
	if p.keys, err = protocol.NewKeys([]byte(out.KeyID), out.Secret); err != nil {
		t.Fatal(err)
	}
	c.SetSession(out.Token, p.keys)
	p.Client, p.key = c, out.UserKey
	return p
}

// dial opens the player's websocket, sealed with the session's keys and
// taking its frame counters from the HTTP client's.
// API CHANGE: realtime gets a public Go websocket client (realtime.Dial).
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

// lossyTransport loses the reply of one request when lose is set: the
// server ran it, the client never hears.
// API CHANGE: with a per-call request id in protocol.Client, a test can
// also send one request id twice itself.
type lossyTransport struct {
	next protocol.Transport
	lose *atomic.Bool
}

func (l *lossyTransport) RoundTrip(ctx context.Context, frame []byte) ([]byte, error) {
	reply, err := l.next.RoundTrip(ctx, frame)
	if err == nil && l.lose.CompareAndSwap(true, false) {
		return nil, &protocol.TransportError{Err: errors.New("reply lost")}
	}
	return reply, err
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
