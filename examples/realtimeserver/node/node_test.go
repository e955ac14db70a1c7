package node

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
)

// startNode serves n on a random port until the test ends and returns its
// base URL and a func that stops it (waiting for Serve).
func startNode(t *testing.T, n *Node) (base string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx, ln, io.Discard) }()
	var stopped bool
	var serr error
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case serr = <-done:
			case <-time.After(20 * time.Second):
				t.Error("node did not stop")
			}
		}
		return serr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := n.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), stop
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	return resp.StatusCode
}

func devLogin(t *testing.T, base string, user int64, query string) string {
	t.Helper()
	var l DevLogin
	if code := getJSON(t, base+"/dev/login?user="+strconv.FormatInt(user, 10)+query, &l); code != http.StatusOK || l.Token == "" || l.UserKey != user {
		t.Fatalf("dev login %d: %d %+v", user, code, l)
	}
	return l.Token
}

// nextOn returns the next push on channel with topic, skipping others.
func nextOn(ctx context.Context, t *testing.T, c *realtime.Client, channel, topic string) *protocol.Push {
	t.Helper()
	for {
		p, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %s on %s: %v", topic, channel, err)
		}
		if p.Channel == channel && p.Topic == topic {
			return p
		}
	}
}

type chatPayload struct {
	From int64           `json:"from"`
	Data json.RawMessage `json:"data"`
}

// A memory node in process: two dev logins chat on world, whisper, get a
// broadcast on system (filtered), show in /stats; a second dev login kicks
// the first connection; shutdown says going_away.
func TestMemoryNode(t *testing.T) {
	n, err := New(context.Background(), Config{Dev: true, NodeID: "test-1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base, stop := startNode(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wsURL := "ws" + base[len("http"):] + "/ws"

	if code := getJSON(t, base+"/dev/login?user=abc", nil); code != http.StatusBadRequest {
		t.Fatalf("dev login of a bad user: %d", code)
	}
	tokA := devLogin(t, base, 1001, "&country=KR&platform=android&client_version=1.2.0")
	tokB := devLogin(t, base, 1002, "&country=JP&platform=ios&client_version=1.2.0")
	xor := &realtime.DialOptions{Mode: protocol.ModeXOR, Codec: protocol.Config{XORKey: []byte(DefaultXORKey)}}
	a, err := realtime.Dial(ctx, wsURL, tokA, xor)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := realtime.Dial(ctx, wsURL, tokB, nil) // plain: dev mode
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := realtime.Dial(ctx, wsURL, "1003.nope", nil); err == nil {
		t.Fatal("a bad token was accepted")
	}

	var world string
	for _, c := range []*realtime.Client{a, b} {
		s, err := c.Subscribe(ctx, realtime.ChannelWorld, nil)
		if err != nil {
			t.Fatal(err)
		}
		if world != "" && s.Channel != world {
			t.Fatalf("world partitions %s and %s", world, s.Channel)
		}
		world = s.Channel
		if _, err := c.Subscribe(ctx, realtime.ChannelSystem, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Publish(ctx, world, "hello world"); err != nil {
		t.Fatal(err)
	}
	var m chatPayload
	p := nextOn(ctx, t, b, world, realtime.TopicChat)
	if err := json.Unmarshal(p.Payload, &m); err != nil || m.From != 1001 || string(m.Data) != `"hello world"` {
		t.Fatalf("chat %s: %v", p.Payload, err)
	}
	if err := b.Whisper(ctx, 1001, "psst"); err != nil {
		t.Fatal(err)
	}
	p = nextOn(ctx, t, a, realtime.UserChannel(1001), realtime.TopicWhisper)
	if err := json.Unmarshal(p.Payload, &m); err != nil || m.From != 1002 || string(m.Data) != `"psst"` {
		t.Fatalf("whisper %s: %v", p.Payload, err)
	}

	// Broadcast from Go on the node's hub, filtered then not.
	if _, err := n.Hub().Broadcast(ctx, realtime.Filter{Country: "JP"}, "notice", json.RawMessage(`{"message":"jp only"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Hub().Broadcast(ctx, realtime.Filter{}, "maintenance", json.RawMessage(`{"message":"all"}`)); err != nil {
		t.Fatal(err)
	}
	if p := nextOn(ctx, t, b, realtime.ChannelSystem, "notice"); string(p.Payload) != `{"message":"jp only"}` {
		t.Fatalf("notice %s", p.Payload)
	}
	pa, err := a.Next(ctx) // the KR client's next push is the unfiltered one
	if err != nil || pa.Topic != "maintenance" || pa.Channel != realtime.ChannelSystem {
		t.Fatalf("KR client got %+v %v", pa, err)
	}

	// The dev notice endpoint does the same over HTTP.
	resp, err := http.Post(base+"/dev/notice?topic=event&message=double+gold&platform=ios", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("dev notice: %d", resp.StatusCode)
	}
	if p := nextOn(ctx, t, b, realtime.ChannelSystem, "event"); string(p.Payload) != `{"message":"double gold"}` {
		t.Fatalf("dev notice %s", p.Payload)
	}
	if resp, err = http.Post(base+"/dev/notice", "", nil); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("dev notice without a message: %d", resp.StatusCode)
	}

	// A command body above the decode budget's free 4 KiB is charged to
	// the node's budget (counted in /stats).
	if r, err := a.Call(ctx, "game.nothing", json.RawMessage(`"`+strings.Repeat("x", 8<<10)+`"`)); err != nil || r.Code != protocol.CodeUnknownCommand {
		t.Fatalf("large unknown command: %+v %v", r, err)
	}
	var st Stats
	if code := getJSON(t, base+"/stats", &st); code != http.StatusOK || st.Node != "test-1" || st.Mode != "memory" || st.Hub.Connections != 2 || st.Hub.Delivered < 5 || st.Broker != nil {
		t.Fatalf("stats %d %+v", code, st)
	}
	if d := st.Decode; d.Bytes != protocol.DefaultDecodeBudget || d.Charged < 1 || d.Peak < 8<<10 || d.Refused != 0 {
		t.Fatalf("decode stats %+v", d)
	}
	if code := getJSON(t, base+"/healthz", nil); code != http.StatusOK {
		t.Fatalf("healthz %d", code)
	}

	// A newer login of user 1002 kicks its connection.
	devLogin(t, base, 1002, "")
	select {
	case <-b.Done():
	case <-ctx.Done():
		t.Fatal("kicked connection not closed")
	}
	if code, _ := b.CloseCode(); code != protocol.CodeKicked {
		t.Fatalf("kicked with %v", code)
	}

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
	case <-ctx.Done():
		t.Fatal("connection not closed at shutdown")
	}
	if code, _ := a.CloseCode(); code != protocol.CodeGoingAway {
		t.Fatalf("closed at shutdown with %v", code)
	}
}

// Outside dev mode: no /dev/login, plain frames refused.
func TestProductionNodeRefusesPlainAndDevLogin(t *testing.T) {
	n, err := New(context.Background(), Config{XORKey: testXORKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := startNode(t, n)
	if code := getJSON(t, base+"/dev/login?user=1", nil); code != http.StatusNotFound {
		t.Fatalf("dev login outside dev mode: %d", code)
	}
	if resp, err := http.Post(base+"/dev/notice?message=x", "", nil); err != nil || resp.Body.Close() != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("dev notice outside dev mode: %v %v", resp, err)
	}
	s, err := n.Sessions().Create(context.Background(), sessionFor(7))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wsURL := "ws" + base[len("http"):] + "/ws"
	if _, err := realtime.Dial(ctx, wsURL, s.Token, nil); err == nil {
		t.Fatal("plain frames accepted outside dev mode")
	}
	c, err := realtime.Dial(ctx, wsURL, s.Token, &realtime.DialOptions{Mode: protocol.ModeXOR, Codec: protocol.Config{XORKey: []byte(testXORKey)}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Game commands are not served by a realtime node.
	r, err := c.Call(ctx, "player.load", nil)
	if err != nil || r.Code != protocol.CodeUnknownCommand {
		t.Fatalf("game command on a realtime node: %+v %v", r, err)
	}
}

func TestParseConfig(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	cfg, err := ParseConfig(nil, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != DefaultAddr || cfg.XORKey != DefaultXORKey || cfg.RedisPrefix != DefaultRedisPrefix || !cfg.Dev || cfg.RedisAddr != "" {
		t.Fatalf("defaults %+v", cfg)
	}
	env["MADANG_REDIS_ADDR"] = "127.0.0.1:6379"
	env["MADANG_DEV"] = "0"
	env["MADANG_REDIS_PREFIX"] = "game1:"
	cfg, err = ParseConfig([]string{"-addr", "127.0.0.1:9000", "-node-id", "rt-2", "-xor-key", "k"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:9000" || cfg.NodeID != "rt-2" || cfg.XORKey != "k" || cfg.Dev || cfg.RedisAddr != "127.0.0.1:6379" || cfg.RedisPrefix != "game1:" {
		t.Fatalf("parsed %+v", cfg)
	}
	for _, args := range [][]string{{"-redis-prefix", "a{b}:"}, {"-nope"}, {"extra"}} {
		if _, err := ParseConfig(args, getenv); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func sessionFor(user int64) session.CreateParams {
	return session.CreateParams{UserKey: user, Platform: "android", ClientVersion: "1.0.0"}
}
