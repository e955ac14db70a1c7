package load

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/server"
	"github.com/madang-io/madang/examples/realtimeserver/node"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session/sessiontest"
)

// startRealtimeNode runs a realtime server node (examples/realtimeserver)
// with cfg on 127.0.0.1:0 until the test ends, and returns its websocket
// URL and the node.
func startRealtimeNode(t *testing.T, cfg node.Config) (string, *node.Node) {
	t.Helper()
	cfg.XORKey = testXORKey
	n, err := node.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx, ln, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("realtime node: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("realtime node did not shut down")
		}
		if err := n.Close(); err != nil {
			t.Errorf("realtime node close: %v", err)
		}
	})
	return "ws://" + ln.Addr().String() + "/ws", n
}

// realtimeGoroutinesLeft waits up to 10 s for the goroutines of websocket
// connections in this process to end and returns how many are left. A
// reader signals its end from a deferred call, so it can still be on the
// stack for a moment after Close returned: only one that stays is a leak.
func realtimeGoroutinesLeft() int {
	n := realtimeGoroutines()
	for deadline := time.Now().Add(10 * time.Second); n != 0 && time.Now().Before(deadline); n = realtimeGoroutines() {
		time.Sleep(10 * time.Millisecond)
	}
	return n
}

// realtimeGoroutines counts the goroutines of websocket connections in
// this process: the users' push readers and the clients' socket readers.
func realtimeGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			s := string(buf[:n])
			return strings.Count(s, "load.(*rtConn).read(") + strings.Count(s, "realtime.(*Client).readLoop(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

func countsOf(rep *Report) map[string]uint64 {
	counts := map[string]uint64{}
	for _, c := range rep.Commands {
		counts[c.Command] = c.Count
	}
	return counts
}

// checkRealtime checks what every run with the Chat scenario must show:
// no failed call, every publish echoed, pushes that add up (by kind and
// over the series), and no connection left open in this process.
func checkRealtime(t *testing.T, rep *Report) {
	t.Helper()
	checkConsistent(t, rep)
	if rep.Total.Errors != 0 {
		t.Fatalf("errors: %+v", rep.Commands)
	}
	counts := countsOf(rep)
	rt := rep.Realtime
	if rt == nil {
		t.Fatal("no realtime stats")
	}
	if counts[realtime.CmdPublish] == 0 || counts[CmdChatEcho] != counts[realtime.CmdPublish] || rt.Echoes != counts[CmdChatEcho] {
		t.Fatalf("%d publishes, %d echo calls, %d echoes counted", counts[realtime.CmdPublish], counts[CmdChatEcho], rt.Echoes)
	}
	if rt.Connects == 0 || counts[CmdWSConnect] != rt.Connects || counts[realtime.CmdSubscribe] != rt.Connects {
		t.Fatalf("%d connections; calls %v", rt.Connects, counts)
	}
	if rt.Pushes != rt.Echoes+rt.Chat+rt.Whispers+rt.Other || rt.PushesPerS <= 0 {
		t.Fatalf("pushes: %+v", rt)
	}
	if !(rt.DeliveryP50Ms > 0 && rt.DeliveryP50Ms <= rt.DeliveryP99Ms && rt.DeliveryP99Ms <= rt.DeliveryMaxMs) {
		t.Fatalf("delivery latency: %+v", rt)
	}
	var series uint64
	for _, p := range rep.Series {
		series += p.Pushes
	}
	if series != rt.Pushes {
		t.Fatalf("series counts %d pushes, the total %d", series, rt.Pushes)
	}
	// The users closed their connections and waited for their readers.
	if n := realtimeGoroutinesLeft(); n != 0 {
		t.Fatalf("%d websocket goroutines left after the run", n)
	}
}

func TestRunChatAgainstGameServerHub(t *testing.T) {
	url := startGameServer(t)
	var progress bytes.Buffer
	// 200 ms between messages for 2 s stays within the hub's chat limit
	// (a burst of 10, then 2 per second).
	rep, err := Run(context.Background(), Config{
		URL: url, XORKey: testXORKey, Scenario: Chat{Interval: 200 * time.Millisecond, WhisperEvery: 3},
		Users: 6, ChatRooms: 2, Duration: 2 * time.Second, Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkRealtime(t, rep)
	counts := countsOf(rep)
	rt := rep.Realtime
	if rt.URL != "ws://"+strings.TrimSuffix(strings.TrimPrefix(url, "http://"), protocol.DefaultHTTPPath)+"/ws" || rt.Rooms != 2 || rt.DevLogin || rt.Mode != ModeAuthenticated {
		t.Fatalf("realtime stats %+v (target %s)", rt, url)
	}
	// One connection per user, never dropped; each room has three users, so
	// each publication reaches two others (the last ones may not arrive
	// before the connections close).
	if rt.Connects != 6 || len(rt.Drops) != 0 || rt.Other != 0 {
		t.Fatalf("realtime stats %+v", rt)
	}
	if pubs := counts[realtime.CmdPublish]; rt.Chat == 0 || rt.Chat > 2*pubs {
		t.Fatalf("%d chat messages of others received for %d publications in rooms of 3", rt.Chat, pubs)
	}
	if w := counts[realtime.CmdWhisper]; w == 0 || rt.Whispers == 0 || rt.Whispers > w {
		t.Fatalf("%d whispers sent, %d received", w, rt.Whispers)
	}
	if !strings.Contains(progress.String(), "pushes ") {
		t.Errorf("progress lines:\n%s", progress.String())
	}

	var sum bytes.Buffer
	if err := WriteSummary(&sum, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{CmdChatEcho, realtime.CmdPublish, "pushes ", "delivery  p50", "/ws (auth frames)"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}
	var page bytes.Buffer
	if err := WriteHTML(&page, rep); err != nil {
		t.Fatal(err)
	}
	series := svgSeries(t, page.Bytes())
	if series["pushes"] == 0 || series["p99:"+CmdChatEcho] == 0 || !strings.Contains(page.String(), "<h2>Realtime</h2>") || !strings.Contains(page.String(), "(auth frames)") {
		t.Fatalf("page series %v", series)
	}
}

// Chat between HTTP calls (sys.time, player.load), in both modes: in auth
// mode the websocket and HTTP frames of a session take their counters from
// one counter, so neither path's frames are refused.
func TestRunMixWithChat(t *testing.T) {
	for _, mode := range []Mode{ModeAuthenticated, ModeXOR} {
		t.Run(string(mode), func(t *testing.T) { testRunMixWithChat(t, mode) })
	}
}

func testRunMixWithChat(t *testing.T, mode Mode) {
	url := startGameServer(t)
	mix, err := ParseMix("login=1,chat=3,time=1,load=1")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Config{
		URL: url, XORKey: testXORKey, Scenario: mix, Users: 4, Duration: 2 * time.Second, Mode: mode,
		ThinkMin: 10 * time.Millisecond, ThinkMax: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkRealtime(t, rep)
	if rep.Realtime.Mode != mode {
		t.Fatalf("websocket mode %q, want %q", rep.Realtime.Mode, mode)
	}
	// A login kicks the user's connection (a new session); the next chat
	// connects again. Nothing else closes them.
	for kind := range rep.Realtime.Drops {
		if kind != "kicked" {
			t.Fatalf("drops %v", rep.Realtime.Drops)
		}
	}
	counts := countsOf(rep)
	// The mix is random: on a busy machine a user may make few choices, so
	// ask for HTTP calls between the chats, not for each kind.
	if counts[server.CmdTime]+counts[game.CmdLoad] == 0 || rep.Realtime.Rooms != 1 {
		t.Fatalf("calls %v, rooms %d", counts, rep.Realtime.Rooms)
	}
	// Four users in one room: they hear each other.
	if rep.Realtime.Chat == 0 {
		t.Fatalf("realtime %+v", rep.Realtime)
	}
}

// A realtime server in memory mode does not know the game server's
// sessions: its users take tokens from its /dev/login.
func TestRunChatAgainstRealtimeNodeDevLogin(t *testing.T) {
	url := startGameServer(t)
	wsURL, n := startRealtimeNode(t, node.Config{Dev: true})
	cfg := Config{
		URL: url, XORKey: testXORKey, WSURL: wsURL, WSDevLogin: true, Scenario: Chat{Interval: 200 * time.Millisecond},
		Users: 4, Duration: 2 * time.Second,
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkRealtime(t, rep)
	if rep.Realtime.URL != wsURL || !rep.Realtime.DevLogin || rep.Realtime.Connects != 4 || rep.Realtime.Mode != ModeAuthenticated {
		t.Fatalf("realtime %+v", rep.Realtime)
	}
	// The node saw the connections end.
	deadline := time.Now().Add(10 * time.Second)
	for n.Hub().Stats().Connections != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the node still has %d connections", n.Hub().Stats().Connections)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Without /dev/login the node refuses the game's tokens (HTTP 401,
	// recorded as unauthorized): every connection fails, and the run still
	// ends.
	cfg.WSDevLogin, cfg.Users, cfg.Duration = false, 2, time.Second
	rep, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, rep)
	counts := countsOf(rep)
	for _, c := range rep.Commands {
		if c.Command == CmdWSConnect && (c.Errors == 0 || c.Errors != c.Count || c.ErrorsByCode["unauthorized"] != c.Errors) {
			t.Fatalf("ws.connect %+v", c)
		}
	}
	if counts[CmdWSConnect] == 0 || counts[realtime.CmdPublish] != 0 || rep.Realtime.Connects != 0 {
		t.Fatalf("calls %v, realtime %+v", counts, rep.Realtime)
	}
	if n := realtimeGoroutinesLeft(); n != 0 {
		t.Fatalf("%d websocket goroutines left", n)
	}
}

// A realtime server in Redis mode on the game server's Redis and prefix
// accepts the game's tokens.
func TestRunChatAgainstRealtimeNodeRedis(t *testing.T) {
	c := sessiontest.Redis(t)
	addr, prefix := os.Getenv(sessiontest.EnvRedisAddr), sessiontest.RedisPrefix(t, c)
	url := startGameServerWith(t, server.Config{
		DataDir: filepath.Join(t.TempDir(), "data"), XORKey: testXORKey, RedisAddr: addr, RedisPrefix: prefix, LiveOpsPoll: -1,
	})
	wsURL, _ := startRealtimeNode(t, node.Config{RedisAddr: addr, RedisPrefix: prefix})
	rep, err := Run(context.Background(), Config{
		URL: url, XORKey: testXORKey, WSURL: wsURL, Scenario: Chat{Interval: 200 * time.Millisecond},
		Users: 4, ChatRooms: 2, Duration: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkRealtime(t, rep)
	if rep.Realtime.Connects != 4 || rep.Realtime.Chat == 0 || len(rep.Realtime.Drops) != 0 {
		t.Fatalf("realtime %+v", rep.Realtime)
	}
}

func TestDefaultWSPathMatchesServer(t *testing.T) {
	if DefaultWSPath != server.WSPath {
		t.Fatalf("DefaultWSPath %q, the game server mounts its hub at %q", DefaultWSPath, server.WSPath)
	}
	if MaxChatRooms != realtime.DefaultMaxWorldPartitions {
		t.Fatalf("MaxChatRooms %d, the hub's world partitions %d", MaxChatRooms, realtime.DefaultMaxWorldPartitions)
	}
}

func TestChatConfig(t *testing.T) {
	for _, tc := range []struct {
		url, ws, want string
		users, rooms  int
		wantRooms     int
	}{
		{url: "http://127.0.0.1:8080/v1/rpc", want: "ws://127.0.0.1:8080/ws", wantRooms: 1},
		{url: "https://localhost/v1/rpc?x=1", want: "wss://localhost/ws", users: 45, wantRooms: 3},
		{url: "http://127.0.0.1:8080/v1/rpc", ws: "ws://127.0.0.1:8090/ws", want: "ws://127.0.0.1:8090/ws", users: 10000, wantRooms: 500},
		{url: "http://127.0.0.1:8080/v1/rpc", ws: "http://[::1]:8090/ws", want: "http://[::1]:8090/ws", users: 100, rooms: 7, wantRooms: 7},
	} {
		cfg, err := Config{URL: tc.url, WSURL: tc.ws, Users: tc.users, ChatRooms: tc.rooms}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.WSURL != tc.want || cfg.ChatRooms != tc.wantRooms {
			t.Errorf("%+v: websocket %s, %d rooms; want %s, %d", tc, cfg.WSURL, cfg.ChatRooms, tc.want, tc.wantRooms)
		}
	}
	for _, rooms := range []int{-1, MaxChatRooms + 1} {
		if _, err := (Config{URL: "http://127.0.0.1/", ChatRooms: rooms}).withDefaults(); err == nil {
			t.Errorf("%d chat rooms accepted", rooms)
		}
	}
	if _, err := (Config{URL: "http://127.0.0.1/", WSURL: "ws://203.0.113.7/ws"}).withDefaults(); !errors.Is(err, ErrRemote) {
		t.Errorf("remote websocket: %v", err)
	}
	if _, err := (Config{URL: "http://127.0.0.1/", WSURL: "ws://203.0.113.7/ws", AllowRemote: true}).withDefaults(); err != nil {
		t.Errorf("remote websocket with AllowRemote: %v", err)
	}
	if _, err := (Config{URL: "http://127.0.0.1/", WSURL: "ftp://127.0.0.1/ws"}).withDefaults(); err == nil || errors.Is(err, ErrRemote) {
		t.Errorf("ftp websocket: %v", err)
	}
}

// wsGameChat is a test scenario: a game command the session store checks
// (player.load) over HTTP, the same over the user's websocket, then a chat
// message. The store accepts each counter of the session once, so every
// frame must take its counter from the session's one counter.
type wsGameChat struct{ chat Chat }

const cmdWSLoad = "ws." + game.CmdLoad

func (wsGameChat) Name() string { return "ws-game-chat" }

func (s wsGameChat) Run(ctx context.Context, vu *VU) error {
	if _, err := vu.Call(ctx, game.CmdLoad, nil, nil); err != nil {
		return err
	}
	rc, err := vu.realtime(ctx)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, vu.e.cfg.RequestTimeout)
	defer cancel()
	t0 := time.Now()
	r, err := rc.c.Call(cctx, game.CmdLoad, nil)
	end := time.Now()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil && r.Code != protocol.CodeOK {
		err = &protocol.Error{Code: r.Code, Message: r.Message}
	}
	err = rtError(err)
	vu.e.rec.Record(cmdWSLoad, end, end.Sub(t0), err, false)
	if err != nil {
		return err
	}
	return s.chat.Run(ctx, vu)
}

// In auth mode a user's HTTP requests and websocket frames share the
// session's counter: game commands over both, which the session store
// checks, are never refused as replays. (With a counter of its own, the
// websocket's first player.load reuses a counter HTTP took: replayed.)
func TestRunAuthWebsocketSharesCounter(t *testing.T) {
	url := startGameServer(t)
	rep, err := Run(context.Background(), Config{
		URL: url, XORKey: testXORKey, Scenario: wsGameChat{Chat{Interval: 200 * time.Millisecond, WhisperEvery: -1}},
		Users: 3, Duration: 2 * time.Second, Mode: ModeAuthenticated,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkRealtime(t, rep)
	counts := countsOf(rep)
	// The run may end between a user's steps.
	if counts[cmdWSLoad] == 0 || counts[cmdWSLoad] < counts[realtime.CmdPublish] || counts[game.CmdLoad] < counts[cmdWSLoad] {
		t.Fatalf("calls %v", counts)
	}
}

// A handshake the hub refused is recorded by its result code (see
// TestRunChatAgainstRealtimeNodeDevLogin: unauthorized); an error page
// without one by its status; a server that cannot be reached is a
// transport error.
func TestWSConnectErrorKinds(t *testing.T) {
	url := startGameServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "ws://" + ln.Addr().String() + "/ws"
	ln.Close()
	for _, tc := range []struct {
		ws, want string
	}{
		{ws: strings.TrimSuffix(strings.Replace(url, "http://", "ws://", 1), protocol.DefaultHTTPPath) + "/no-such-hub", want: "http_404"}, // not a hub's answer
		{ws: closed, want: "transport"},
	} {
		rep, err := Run(context.Background(), Config{
			URL: url, XORKey: testXORKey, WSURL: tc.ws, Scenario: Chat{}, Users: 1, Iterations: 2, Duration: 5 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range rep.Commands {
			if c.Command == CmdWSConnect && (c.Errors == 0 || c.ErrorsByCode[tc.want] != c.Errors) {
				t.Errorf("%s: ws.connect %+v, want every error %s", tc.ws, c, tc.want)
			}
		}
	}
}
