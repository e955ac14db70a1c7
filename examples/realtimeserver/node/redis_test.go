package node

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/server"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session/sessiontest"
)

const testXORKey = "rt-node-test-key"

// gameServer runs the example game server (SQLite data, Redis sessions and
// broker) with its admin listener until the test ends; it returns the game
// and admin base URLs and the admin token.
func gameServer(t *testing.T, cfg server.Config) (base, admin, token string) {
	t.Helper()
	cfg.XORKey = testXORKey
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.LiveOpsPoll = -1
	cfg.AdminToken = "test-admin-token-0123456789abcdef"
	srv, err := server.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeAll(ctx, ln, aln, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("game server: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("game server did not stop")
		}
		if err := srv.Close(); err != nil {
			t.Errorf("game server close: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), "http://" + aln.Addr().String(), srv.AdminToken()
}

func gameLogin(t *testing.T, base, device string) game.LoginResult {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := protocol.NewClient(protocol.ClientConfig{
		Transport: &protocol.HTTPTransport{URL: base + protocol.DefaultHTTPPath, Client: hc},
		Codec:     protocol.Config{XORKey: []byte(testXORKey)}, Mode: protocol.ModeXOR,
	})
	if err != nil {
		t.Fatal(err)
	}
	var res game.LoginResult
	in := game.GuestLogin{DeviceID: device, Platform: "android", ClientVersion: "1.0.0.0", Country: "KR", Language: "ko"}
	if _, err := c.Call(context.Background(), game.CmdGuestLogin, in, &res); err != nil || res.Token == "" {
		t.Fatalf("login %s: %+v %v", device, res, err)
	}
	return res
}

func postNotice(t *testing.T, admin, token string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", admin+server.NoticesPath, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST notice: %d %s", resp.StatusCode, out)
	}
}

// sharedRedis points the game server's config and the node's at the same
// Redis for mode: "redis" the shared server, "cluster" the shared Cluster,
// with one key prefix of the test's own.
func sharedRedis(t *testing.T, mode string, gcfg *server.Config, ncfg *Config) {
	t.Helper()
	switch mode {
	case "redis":
		c := sessiontest.Redis(t)
		gcfg.RedisAddr = os.Getenv(sessiontest.EnvRedisAddr)
		gcfg.RedisPrefix = sessiontest.RedisPrefix(t, c)
		ncfg.RedisAddr = gcfg.RedisAddr
	case "cluster":
		c := sessiontest.RedisCluster(t)
		gcfg.RedisCluster = os.Getenv(sessiontest.EnvRedisCluster)
		gcfg.RedisPrefix = sessiontest.RedisPrefix(t, c)
		ncfg.RedisCluster = gcfg.RedisCluster
	}
	ncfg.RedisPrefix = gcfg.RedisPrefix
}

// Two realtime nodes and the game server share Redis (one node, or
// Cluster): a player logged in on the game server connects to node 2 with
// the game's token, chats with a player on node 1 and gets a whisper from
// him, receives a notice posted to the game server's ops API, and is
// kicked off node 2 by a second login on the game server.
func TestRedisNodesWithGameServer(t *testing.T) {
	for _, mode := range []string{"redis", "cluster"} {
		t.Run(mode, func(t *testing.T) {
			var gcfg server.Config
			var ncfg Config
			sharedRedis(t, mode, &gcfg, &ncfg)
			ncfg.XORKey = testXORKey
			testRedisNodes(t, gcfg, ncfg)
		})
	}
}

func testRedisNodes(t *testing.T, gcfg server.Config, ncfg Config) {
	base, admin, adminToken := gameServer(t, gcfg)
	var urls []string
	var stops []func() error
	for _, id := range []string{"node-1", "node-2"} {
		cfg := ncfg
		cfg.NodeID = id
		n, err := New(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		nb, stop := startNode(t, n)
		stops = append(stops, stop)
		if code := getJSON(t, nb+"/dev/login?user=1", nil); code != http.StatusNotFound {
			t.Fatalf("dev login served in Redis mode: %d", code)
		}
		var st Stats
		if getJSON(t, nb+"/stats", &st); st.Broker == nil || st.Node != id {
			t.Fatalf("stats %+v", st)
		}
		urls = append(urls, "ws"+nb[len("http"):]+"/ws")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := &realtime.DialOptions{Mode: protocol.ModeXOR, Codec: protocol.Config{XORKey: []byte(testXORKey)}}

	pa := gameLogin(t, base, "rt-a")
	pb := gameLogin(t, base, "rt-b")
	a, err := realtime.Dial(ctx, urls[0], pa.Token, opts) // node 1
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := realtime.Dial(ctx, urls[1], pb.Token, opts) // node 2
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var systemEpoch string
	for _, c := range []*realtime.Client{a, b} {
		for _, ch := range []string{"world.0", realtime.ChannelSystem} {
			s, err := c.Subscribe(ctx, ch, nil)
			if err != nil {
				t.Fatal(err)
			}
			if ch == realtime.ChannelSystem {
				systemEpoch = s.Position.Epoch
			}
		}
	}

	// Chat across nodes, and a whisper from node 1 to node 2.
	if _, err := a.Publish(ctx, "world.0", "from node 1"); err != nil {
		t.Fatal(err)
	}
	var m chatPayload
	p := nextOn(ctx, t, b, "world.0", realtime.TopicChat)
	if err := json.Unmarshal(p.Payload, &m); err != nil || m.From != pa.UserKey || string(m.Data) != `"from node 1"` {
		t.Fatalf("chat on node 2: %s %v", p.Payload, err)
	}
	if err := a.Whisper(ctx, pb.UserKey, "psst"); err != nil {
		t.Fatal(err)
	}
	p = nextOn(ctx, t, b, realtime.UserChannel(pb.UserKey), realtime.TopicWhisper)
	if err := json.Unmarshal(p.Payload, &m); err != nil || m.From != pa.UserKey {
		t.Fatalf("whisper on node 2: %s %v", p.Payload, err)
	}

	// A raid created on node 1 is joined from node 2; node 2's hits reach
	// the boss and the snapshots come back (through the Redis directory
	// and broker).
	room, err := a.RoomCreate(ctx, RaidKind, map[string]int{"hp": 1000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.RoomJoin(ctx, room.Room); err != nil {
		t.Fatalf("join node 1's raid from node 2: %v", err)
	}
	if err := b.RoomInput(ctx, room.Room, map[string]int{"damage": 70}); err != nil {
		t.Fatal(err)
	}
	for hp := 1000; hp != 930; {
		payload, err := b.NextTopic(ctx, "room.snapshot")
		if err != nil {
			t.Fatalf("raid snapshot on node 2 (hp %d): %v", hp, err)
		}
		var snap struct {
			State struct {
				HP int `json:"hp"`
			} `json:"state"`
		}
		if err := json.Unmarshal(payload, &snap); err != nil {
			t.Fatal(err)
		}
		hp = snap.State.HP
	}
	if err := b.RoomLeave(ctx, room.Room); err != nil {
		t.Fatal(err)
	}

	// room.match on node 1, then on node 2: the players meet in one raid
	// (the nodes share the RedisMatchmaker's queue), both are told, join
	// it and see it tick.
	if r, err := a.RoomMatch(ctx, RaidKind); err != nil || r != "" {
		t.Fatalf("match on node 1 = %q, %v; want queued", r, err)
	}
	matched, err := b.RoomMatch(ctx, RaidKind)
	if err != nil || matched == "" {
		t.Fatalf("match on node 2 = %q, %v; want the raid", matched, err)
	}
	for _, c := range []*realtime.Client{a, b} {
		payload, err := c.NextTopic(ctx, realtime.TopicRoomMatched)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Room    string  `json:"room"`
			Players []int64 `json:"players"`
		}
		if err := json.Unmarshal(payload, &m); err != nil || m.Room != matched || !slices.Equal(m.Players, []int64{pa.UserKey, pb.UserKey}) {
			t.Fatalf("room.matched %s: %v", payload, err)
		}
		if _, err := c.RoomJoin(ctx, matched); err != nil {
			t.Fatalf("join the matched raid: %v", err)
		}
	}
	for _, c := range []*realtime.Client{a, b} {
		for {
			payload, err := c.NextTopic(ctx, realtime.TopicRoomSnapshot)
			if err != nil {
				t.Fatalf("matched raid snapshot: %v", err)
			}
			var snap struct {
				Room  string `json:"room"`
				State struct {
					Players []struct{} `json:"players"`
				} `json:"state"`
			}
			if err := json.Unmarshal(payload, &snap); err != nil {
				t.Fatal(err)
			}
			if snap.Room == matched && len(snap.State.Players) == 2 {
				break
			}
		}
	}
	for _, c := range []*realtime.Client{a, b} {
		if err := c.RoomLeave(ctx, matched); err != nil {
			t.Fatal(err)
		}
	}

	// A notice from the game server's ops API reaches both nodes' clients.
	postNotice(t, admin, adminToken, map[string]any{"topic": "maintenance", "message": "restart at 04:00", "filter": map[string]string{"platform": "android"}})
	var lastSeen uint64 // a's last system push
	for _, c := range []*realtime.Client{b, a} {
		p = nextOn(ctx, t, c, realtime.ChannelSystem, "maintenance")
		lastSeen = p.ID
		if p.Epoch != "" { // the channel's first publication starts its epoch
			systemEpoch = p.Epoch
		}
		var np server.NoticePayload
		if err := json.Unmarshal(p.Payload, &np); err != nil || np.Message != "restart at 04:00" {
			t.Fatalf("notice %s: %v", p.Payload, err)
		}
	}

	// A second login on the game server kicks the connection on node 2.
	gameLogin(t, base, "rt-b")
	select {
	case <-b.Done():
	case <-ctx.Done():
		t.Fatal("node 2 did not drop the kicked connection")
	}
	if code, _ := b.CloseCode(); code != protocol.CodeKicked {
		t.Fatalf("node 2 closed the connection with %v", code)
	}
	select {
	case <-a.Done():
		t.Fatal("the other player's connection on node 1 was closed")
	default:
	}

	// Node 1 shuts down: its client is told going_away, reconnects to
	// node 2 and resumes the system channel without missing the notice
	// sent while it was away.
	if err := stops[0](); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
	case <-ctx.Done():
		t.Fatal("node 1 shut down without closing its connection")
	}
	if code, _ := a.CloseCode(); code != protocol.CodeGoingAway {
		t.Fatalf("node 1 closed with %v", code)
	}
	postNotice(t, admin, adminToken, map[string]any{"topic": "notice", "message": "while you were away"})
	a2, err := realtime.Dial(ctx, urls[1], pa.Token, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	if _, err := a2.Subscribe(ctx, realtime.ChannelSystem, &realtime.StreamPosition{Offset: lastSeen, Epoch: systemEpoch}); err != nil {
		t.Fatal(err)
	}
	p = nextOn(ctx, t, a2, realtime.ChannelSystem, "notice")
	if p.ID != lastSeen+1 || string(p.Payload) != `{"message":"while you were away"}` {
		t.Fatalf("resumed push %+v %s after %d", p, p.Payload, lastSeen)
	}
}

// A player's chat limit is one across the game server's hub and every
// realtime node sharing its Redis: the burst spent on the game server's
// /ws is spent on a node too.
func TestChatLimitSharedWithGameServer(t *testing.T) {
	for _, mode := range []string{"redis", "cluster"} {
		t.Run(mode, func(t *testing.T) {
			gcfg := server.Config{ChatRate: 0.001, ChatBurst: 3}
			var ncfg Config
			sharedRedis(t, mode, &gcfg, &ncfg)
			ncfg.XORKey = testXORKey
			ncfg.Hub.ChatRate, ncfg.Hub.ChatBurst = 0.001, 3
			base, _, _ := gameServer(t, gcfg)
			n, err := New(context.Background(), ncfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			nb, _ := startNode(t, n)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			opts := &realtime.DialOptions{Mode: protocol.ModeXOR, Codec: protocol.Config{XORKey: []byte(testXORKey)}}
			p := gameLogin(t, base, "chatty")
			g, err := realtime.Dial(ctx, "ws"+base[len("http"):]+server.WSPath, p.Token, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			for i := range 3 {
				if err := g.Whisper(ctx, p.UserKey+1, "hi"); err != nil {
					t.Fatalf("whisper %d on the game server: %v", i+1, err)
				}
			}
			c, err := realtime.Dial(ctx, "ws"+nb[len("http"):]+"/ws", p.Token, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			r, err := c.Call(ctx, realtime.CmdWhisper, map[string]any{"to": p.UserKey + 1, "data": "more"})
			if err != nil || r.Code != protocol.CodeRateLimited || r.RetryAfterMs <= 0 {
				t.Fatalf("whisper on the node after the burst: %+v %v, want rate_limited", r, err)
			}
		})
	}
}
