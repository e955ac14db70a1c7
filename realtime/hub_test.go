package realtime_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/session/sessiontest"
)

const wait = 10 * time.Second

type node struct {
	hub *realtime.Hub
	srv *httptest.Server
	url string
}

func startHub(t *testing.T, store session.Store, cfg realtime.Config) *node {
	t.Helper()
	h, err := realtime.NewHub(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	n := &node{hub: h, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http")}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = h.Shutdown(ctx)
		srv.Close()
	})
	return n
}

func login(t *testing.T, store session.Store, userKey int64, n session.CreateParams) *session.Session {
	t.Helper()
	n.UserKey = userKey
	s, err := store.Create(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func dial(t *testing.T, n *node, sess *session.Session, opts *realtime.DialOptions) *realtime.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := realtime.Dial(ctx, n.url, sess.Token, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func next(t *testing.T, c *realtime.Client) *protocol.Push {
	t.Helper()
	p, err := c.Next(ctxT(t))
	if err != nil {
		t.Fatalf("next push: %v", err)
	}
	return p
}

type chat struct {
	From int64           `json:"from"`
	Data json.RawMessage `json:"data"`
}

func chatOf(t *testing.T, p *protocol.Push) chat {
	t.Helper()
	var c chat
	if err := json.Unmarshal(p.Payload, &c); err != nil {
		t.Fatalf("push payload %s: %v", p.Payload, err)
	}
	return c
}

func waitClosed(t *testing.T, c *realtime.Client) protocol.Code {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(wait):
		t.Fatal("connection not closed")
	}
	code, _ := c.CloseCode()
	return code
}

func TestChatResumeWithoutGap(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{})
	a := dial(t, n, sessiontest.Login(t, store, 1), nil)
	sb := sessiontest.Login(t, store, 2)
	b := dial(t, n, sb, nil)
	ctx := ctxT(t)
	sa, err := a.Subscribe(ctx, "world", nil)
	if err != nil || sa.Channel != "world.0" {
		t.Fatalf("join world: %+v %v", sa, err)
	}
	if _, err := b.Subscribe(ctx, "world", nil); err != nil {
		t.Fatal(err)
	}
	pos, err := a.Publish(ctx, "world.0", "hello")
	if err != nil || pos.Offset != 1 {
		t.Fatalf("publish: %+v %v", pos, err)
	}
	for _, c := range []*realtime.Client{a, b} {
		p := next(t, c)
		if p.Topic != realtime.TopicChat || p.Channel != "world.0" || p.ID != 1 || p.Epoch != pos.Epoch || chatOf(t, p).From != 1 || string(chatOf(t, p).Data) != `"hello"` {
			t.Fatalf("push: %+v %s", p, p.Payload)
		}
	}
	last := realtime.StreamPosition{Offset: 1, Epoch: pos.Epoch}
	b.Close()
	for i := range 5 {
		if _, err := a.Publish(ctx, "world.0", i); err != nil {
			t.Fatal(err)
		}
	}
	b = dial(t, n, sb, nil)
	// A publication racing the resume must come once, in order.
	done := make(chan error, 1)
	go func() {
		_, err := a.Publish(ctx, "world.0", "race")
		done <- err
	}()
	if _, err := b.Subscribe(ctx, "world.0", &last); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := a.Publish(ctx, "world.0", "live"); err != nil {
		t.Fatal(err)
	}
	for want := uint64(2); want <= 8; want++ {
		p := next(t, b)
		if p.ID != want {
			t.Fatalf("resumed push id %d, want %d (%s)", p.ID, want, p.Payload)
		}
	}
	// A position too old: position_lost, not subscribed.
	c := dial(t, n, sessiontest.Login(t, store, 3), nil)
	_, err = c.Subscribe(ctx, "world.0", &realtime.StreamPosition{Offset: 1, Epoch: "gone"})
	if protocol.CodeOf(err) != protocol.CodePositionLost {
		t.Fatalf("stale epoch: %v", err)
	}
	if _, err := c.Publish(ctx, "world.0", "x"); protocol.CodeOf(err) != protocol.CodeNotMember {
		t.Fatalf("publish after a failed subscribe: %v", err)
	}
	// History of a subscribed channel.
	r, err := b.Call(ctx, realtime.CmdHistory, map[string]any{"ch": "world.0", "since": last, "limit": 2})
	if err != nil || r.Code != protocol.CodeOK {
		t.Fatalf("history: %+v %v", r, err)
	}
	var h struct {
		Pubs   []protocol.Push `json:"pubs"`
		Offset uint64          `json:"offset"`
	}
	if err := json.Unmarshal(r.Payload, &h); err != nil || len(h.Pubs) != 2 || h.Pubs[0].ID != 2 || h.Offset != 8 {
		t.Fatalf("history payload %s: %v", r.Payload, err)
	}
}

func TestWorldPartitions(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{WorldPartitionSize: 2})
	ctx := ctxT(t)
	var got []string
	for u := int64(1); u <= 5; u++ {
		c := dial(t, n, sessiontest.Login(t, store, u), nil)
		s, err := c.Subscribe(ctx, realtime.ChannelWorld, nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s.Channel)
	}
	if fmt.Sprint(got) != "[world.0 world.0 world.1 world.1 world.2]" {
		t.Fatalf("partitions: %v", got)
	}
}

func TestTwoHubsWhisperPushKick(t *testing.T) {
	bs := memoryBrokers(t, 2)
	testTwoHubs(t, sessiontest.NewStore(t, nil), bs[0], bs[1])
}

// testTwoHubs checks that chat, whispers, pushes to a user, kicks and
// revocations cross from one hub to another sharing store and brokers.
func testTwoHubs(t *testing.T, store session.Store, b1, b2 realtime.Broker) {
	n1 := startHub(t, store, realtime.Config{Broker: b1})
	n2 := startHub(t, store, realtime.Config{Broker: b2})
	ctx := ctxT(t)
	a := dial(t, n1, sessiontest.Login(t, store, 10), nil)
	sb := sessiontest.Login(t, store, 20)
	b := dial(t, n2, sb, nil)

	// Chat crosses hubs.
	for _, c := range []*realtime.Client{a, b} {
		if _, err := c.Subscribe(ctx, "world.7", nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Publish(ctx, "world.7", "hi from 1"); err != nil {
		t.Fatal(err)
	}
	if p := next(t, b); p.Channel != "world.7" || chatOf(t, p).From != 10 {
		t.Fatalf("cross-hub chat: %+v", p)
	}
	next(t, a)

	// Whisper and PushUser cross hubs.
	if err := a.Whisper(ctx, 20, "psst"); err != nil {
		t.Fatal(err)
	}
	if p := next(t, b); p.Topic != realtime.TopicWhisper || chatOf(t, p).From != 10 || string(chatOf(t, p).Data) != `"psst"` {
		t.Fatalf("whisper: %+v %s", p, p.Payload)
	}
	if err := n1.hub.PushUser(ctx, 20, "mail", json.RawMessage(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	if p := next(t, b); p.Topic != "mail" || string(p.Payload) != `{"n":1}` || p.Channel != realtime.UserChannel(20) {
		t.Fatalf("push user: %+v", p)
	}
	// Missed whispers are read back with rt.history on the own channel.
	r, err := b.Call(ctx, realtime.CmdHistory, map[string]any{"ch": realtime.UserChannel(20)})
	if err != nil || r.Code != protocol.CodeOK || !strings.Contains(string(r.Payload), "psst") {
		t.Fatalf("own user history: %+v %v", r, err)
	}
	if r, _ := a.Call(ctx, realtime.CmdHistory, map[string]any{"ch": realtime.UserChannel(20)}); r.Code != protocol.CodeForbidden {
		t.Fatalf("someone else's user history: %+v", r)
	}

	// A new login of user 20 (any node) kicks the connection on hub 2.
	sessiontest.Login(t, store, 20)
	if code := waitClosed(t, b); code != protocol.CodeKicked {
		t.Fatalf("kicked connection closed with %v", code)
	}
	// The kicked token cannot reconnect.
	if _, err := realtime.Dial(ctx, n1.url, sb.Token, nil); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("kicked token dialed: %v", err)
	}
	// Revocation closes with session_revoked.
	sa2 := sessiontest.Login(t, store, 30)
	c := dial(t, n2, sa2, nil)
	if err := store.Revoke(ctx, sa2.ID); err != nil {
		t.Fatal(err)
	}
	if code := waitClosed(t, c); code != protocol.CodeSessionRevoked {
		t.Fatalf("revoked connection closed with %v", code)
	}
}

func TestBroadcastFilter(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{})
	ctx := ctxT(t)
	kr := dial(t, n, login(t, store, 1, session.CreateParams{Country: "KR", ClientVersion: "1.4.2"}), nil)
	jp := dial(t, n, login(t, store, 2, session.CreateParams{Country: "JP", ClientVersion: "1.5.0"}), nil)
	for _, c := range []*realtime.Client{kr, jp} {
		if _, err := c.Subscribe(ctx, realtime.ChannelSystem, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.hub.Broadcast(ctx, realtime.Filter{Country: "KR"}, "notice", json.RawMessage(`"kr only"`)); err != nil {
		t.Fatal(err)
	}
	if _, err := n.hub.Broadcast(ctx, realtime.Filter{ClientVersion: "1.5."}, "notice", json.RawMessage(`"1.5 only"`)); err != nil {
		t.Fatal(err)
	}
	if _, err := n.hub.Broadcast(ctx, realtime.Filter{}, "maintenance", json.RawMessage(`"all"`)); err != nil {
		t.Fatal(err)
	}
	if p := next(t, kr); string(p.Payload) != `"kr only"` {
		t.Fatalf("kr first: %s", p.Payload)
	}
	if p := next(t, kr); string(p.Payload) != `"all"` {
		t.Fatalf("kr second: %s", p.Payload)
	}
	if p := next(t, jp); string(p.Payload) != `"1.5 only"` {
		t.Fatalf("jp first: %s", p.Payload)
	}
	if p := next(t, jp); string(p.Payload) != `"all"` || p.Topic != "maintenance" || p.ID != 3 {
		t.Fatalf("jp second: %+v", p)
	}
	// Clients cannot publish on system.
	if _, err := kr.Publish(ctx, realtime.ChannelSystem, "x"); protocol.CodeOf(err) != protocol.CodeForbidden {
		t.Fatalf("client publish on system: %v", err)
	}
}

// A client that stops reading is closed with slow_consumer; the others get
// every message.
func TestSlowConsumer(t *testing.T) {
	for _, size := range pushSizes {
		t.Run(strconv.Itoa(size), func(t *testing.T) { testSlowConsumer(t, size) })
	}
}

func testSlowConsumer(t *testing.T, size int) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{SendQueueLen: 8, MaxBatchBytes: 1, WriteTimeout: time.Minute})
	ctx := ctxT(t)
	slow := dial(t, n, sessiontest.Login(t, store, 1), &realtime.DialOptions{PushBuffer: 1, ReadLimit: 1 << 20})
	fast := dial(t, n, sessiontest.Login(t, store, 2), nil)
	for _, c := range []*realtime.Client{slow, fast} {
		if _, err := c.Subscribe(ctx, "world.0", nil); err != nil {
			t.Fatal(err)
		}
	}
	noise := make([]byte, size*3/4)
	rand.Read(noise)
	big := json.RawMessage(`"` + base64.StdEncoding.EncodeToString(noise) + `"`) // size bytes, incompressible
	total := (128 << 20) / size
	// Publish at the pace of the fast client: it keeps up, the slow one
	// (which never reads) fills its socket buffers, then its queue.
	for i := 1; i <= total; i++ {
		if _, err := n.hub.Publish(ctx, "world.0", "news", big); err != nil {
			t.Fatal(err)
		}
		if p := next(t, fast); p.ID != uint64(i) || !bytes.Equal(p.Payload, big) {
			t.Fatalf("fast client got id %d (%d bytes), want %d", p.ID, len(p.Payload), i)
		}
		if n.hub.Stats().SlowClosed > 0 && i > 20 {
			t.Logf("slow consumer detected after %d publications", i)
			break
		}
	}
	if n.hub.Stats().SlowClosed != 1 {
		t.Fatalf("no slow consumer after %d publications: %+v", total, n.hub.Stats())
	}
	// Once the slow client reads again it finds the close status.
	drained := 0
	for {
		if _, err := slow.Next(ctx); err != nil {
			t.Logf("drained %d pushes: %v", drained, err)
			break
		}
		drained++
	}
	if code := waitClosed(t, slow); code != protocol.CodeSlowConsumer {
		t.Fatalf("slow client closed with %v", code)
	}
	if n.hub.Stats().SlowClosed != 1 {
		t.Fatalf("stats: %+v", n.hub.Stats())
	}
}

func TestBadInput(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{ReadLimit: 4096, CommandRate: 1, CommandBurst: 5})
	ctx := ctxT(t)
	good := dial(t, n, sessiontest.Login(t, store, 1), nil)
	if _, err := good.Subscribe(ctx, "world.0", nil); err != nil {
		t.Fatal(err)
	}

	// Malformed frame: an error reply, the connection stays.
	bad := dial(t, n, sessiontest.Login(t, store, 2), nil)
	if err := bad.SendRaw(ctx, []byte{9, 9, 9, 9, 9, 9, 9}); err != nil {
		t.Fatal(err)
	}
	r, err := bad.Unmatched(ctx)
	if err != nil || r.Code != protocol.CodeBadFrame {
		t.Fatalf("garbage frame: %+v %v", r, err)
	}
	// A valid frame with a malformed envelope.
	codec, _ := protocol.NewCodec(protocol.Config{Role: protocol.RoleClient})
	frame, _ := codec.Encode([]byte(`{"cmd":`), protocol.EncodeOptions{})
	if err := bad.SendRaw(ctx, frame); err != nil {
		t.Fatal(err)
	}
	if r, err := bad.Unmatched(ctx); err != nil || r.Code != protocol.CodeBadRequest {
		t.Fatalf("bad envelope: %+v %v", r, err)
	}
	// Two requests in one message: both answered.
	f1, _ := codec.Encode([]byte(`{"cmd":"rt.unsubscribe","seq":901,"payload":{"ch":"nope"}}`), protocol.EncodeOptions{})
	f2, _ := codec.Encode([]byte(`{"cmd":"no.such","seq":902}`), protocol.EncodeOptions{})
	if err := bad.SendRaw(ctx, append(f1, f2...)); err != nil {
		t.Fatal(err)
	}
	r1, err1 := bad.Unmatched(ctx)
	r2, err2 := bad.Unmatched(ctx)
	if err1 != nil || err2 != nil || r1.Seq != 901 || r1.Code != protocol.CodeNotMember || r2.Seq != 902 || r2.Code != protocol.CodeUnknownCommand {
		t.Fatalf("batched requests: %+v %+v %v %v", r1, r2, err1, err2)
	}

	// Oversize message: closed (websocket status 1009).
	big := dial(t, n, sessiontest.Login(t, store, 3), nil)
	_ = big.SendRaw(ctx, make([]byte, 8192))
	waitClosed(t, big)

	// Flooding: rate_limited replies, then closed with rate_limited.
	flood := dial(t, n, sessiontest.Login(t, store, 4), nil)
	limited := false
	for i := 0; i < 200; i++ {
		if flood.SendRaw(ctx, f2) != nil {
			break
		}
	}
	for {
		r, err := flood.Unmatched(ctx)
		if err != nil {
			break
		}
		if r.Code == protocol.CodeRateLimited {
			limited = true
		}
	}
	if code := waitClosed(t, flood); code != protocol.CodeRateLimited || !limited {
		t.Fatalf("flooder closed with %v (limited replies %v)", code, limited)
	}

	// The good client was not affected.
	if _, err := good.Publish(ctx, "world.0", "still here"); err != nil {
		t.Fatal(err)
	}
	if p := next(t, good); chatOf(t, p).From != 1 {
		t.Fatalf("good client push: %+v", p)
	}
	// XOR mode on a hub without an XOR key is refused at the handshake.
	if _, err := realtime.Dial(ctx, n.url, sessiontest.Login(t, store, 5).Token, &realtime.DialOptions{Mode: protocol.ModeXOR, Codec: protocol.Config{XORKey: []byte("k")}}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("xor without a key: %v", err)
	}
	// Bad tokens never upgrade.
	if _, err := realtime.Dial(ctx, n.url, "1.nope", nil); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("bad token: %v", err)
	}
	if _, err := realtime.Dial(ctx, n.url, "", nil); err == nil {
		t.Fatal("no token accepted")
	}
}

func TestChatLimitsAndValidate(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{
		ChatRate: 0.001, ChatBurst: 3, MaxMessageSize: 20,
		Validate: func(ctx context.Context, m *realtime.ChatMessage) error {
			if strings.Contains(string(m.Data), "badword") {
				return &protocol.Error{Code: protocol.CodeBadRequest, Message: "language"}
			}
			m.Data = json.RawMessage(strings.ReplaceAll(string(m.Data), "darn", "****"))
			return nil
		},
		Authorize: func(ctx context.Context, p *protocol.Principal, ch string, a realtime.Action) error {
			if ch == fmt.Sprintf("guild.%d", p.UserKey%2) {
				return nil
			}
			return errors.New("not in this guild")
		},
	})
	ctx := ctxT(t)
	c := dial(t, n, sessiontest.Login(t, store, 1), nil)
	if _, err := c.Subscribe(ctx, "guild.0", nil); protocol.CodeOf(err) != protocol.CodeInternal && protocol.CodeOf(err) == protocol.CodeOK {
		t.Fatalf("foreign guild: %v", err)
	}
	if _, err := c.Subscribe(ctx, "guild.1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, "guild.1", strings.Repeat("x", 30)); protocol.CodeOf(err) != protocol.CodeTooLarge {
		t.Fatalf("too large: %v", err)
	}
	if _, err := c.Publish(ctx, "guild.1", "badword"); protocol.CodeOf(err) != protocol.CodeBadRequest {
		t.Fatalf("validate: %v", err)
	}
	if _, err := c.Publish(ctx, "guild.1", "oh darn"); err != nil {
		t.Fatal(err)
	}
	if p := next(t, c); string(chatOf(t, p).Data) != `"oh ****"` {
		t.Fatalf("filtered text: %s", p.Payload)
	}
	// The burst of 3: "badword" (refused by Validate, counted before it),
	// "oh darn", "again"; the next is rate limited.
	if _, err := c.Publish(ctx, "guild.1", "again"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, "guild.1", "more"); protocol.CodeOf(err) != protocol.CodeRateLimited {
		t.Fatalf("rate limit: %v", err)
	}
	if _, err := c.Subscribe(ctx, "custom.x", nil); protocol.CodeOf(err) == protocol.CodeOK {
		t.Fatal("custom channel without authorization")
	}
	if _, err := c.Subscribe(ctx, realtime.UserChannel(2), nil); protocol.CodeOf(err) != protocol.CodeForbidden {
		t.Fatalf("subscribe to another user's channel: %v", err)
	}
}

func TestHandlerAndModes(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	mux := protocol.NewMux()
	mux.HandleFunc("game.huge", func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		return &protocol.Response{Payload: json.RawMessage(`"` + strings.Repeat("z", 5<<20) + `"`)}, nil
	})
	mux.HandleFunc("game.whoami", func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		return &protocol.Response{Payload: json.RawMessage(fmt.Sprintf(`{"user":%d,"country":%q}`, req.Principal.UserKey, req.Principal.Country))}, nil
	})
	// The same chain as HTTP, session middleware included.
	h := protocol.Chain(mux, session.Middleware(store, session.MiddlewareConfig{}))
	xorKey := []byte("madang-xor")
	n := startHub(t, store, realtime.Config{Handler: h, Codec: protocol.Config{XORKey: xorKey, CompressThreshold: 10}})
	ctx := ctxT(t)
	for _, mode := range []protocol.Mode{protocol.ModePlain, protocol.ModeXOR, protocol.ModeAuthenticated} {
		sess := sessiontest.Login(t, store, 7)
		keys, err := sess.Keys()
		if err != nil {
			t.Fatal(err)
		}
		c := dial(t, n, sess, &realtime.DialOptions{Mode: mode, Keys: keys, Counter: sess.Counter, Codec: protocol.Config{XORKey: xorKey}, BearerHeader: mode == protocol.ModeXOR})
		r, err := c.Call(ctx, "game.whoami", nil)
		if err != nil || r.Code != protocol.CodeOK || string(r.Payload) != `{"user":7,"country":"KR"}` {
			t.Fatalf("%v: whoami %+v %v", mode, r, err)
		}
		if _, err := c.Subscribe(ctx, "world.3", nil); err != nil {
			t.Fatal(err)
		}
		// A reply over the body limit still answers, with too_large.
		if r, err := c.Call(ctx, "game.huge", nil); err != nil || r.Code != protocol.CodeTooLarge {
			code := protocol.Code(-1)
			if r != nil {
				code = r.Code
			}
			t.Fatalf("%v: huge reply: code %v, %v", mode, code, err)
		}
		if _, err := c.Publish(ctx, "world.3", strings.Repeat("compressible ", 20)); err != nil {
			t.Fatal(err)
		}
		if p := next(t, c); chatOf(t, p).From != 7 {
			t.Fatalf("%v: push %+v", mode, p)
		}
		c.Close()
	}
}

func TestShutdownGoingAway(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	h, err := realtime.NewHub(store, realtime.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	n := &node{hub: h, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http")}
	c := dial(t, n, sessiontest.Login(t, store, 1), nil)
	if _, err := c.Subscribe(ctxT(t), "world.0", nil); err != nil {
		t.Fatal(err)
	}
	if err := h.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if code := waitClosed(t, c); code != protocol.CodeGoingAway {
		t.Fatalf("closed with %v", code)
	}
	if _, err := realtime.Dial(ctxT(t), n.url, "1.x", nil); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("dial after shutdown: %v", err)
	}
}

// A hub dies (shuts down); its clients reconnect to the other hub and resume
// from history: every publication arrives once, in order.
func TestFailoverResume(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	bs := memoryBrokers(t, 2)
	b1, b2 := bs[0], bs[1]
	h1, err := realtime.NewHub(store, realtime.Config{Broker: b1})
	if err != nil {
		t.Fatal(err)
	}
	srv1 := httptest.NewServer(h1)
	defer srv1.Close()
	n1 := &node{hub: h1, srv: srv1, url: "ws" + strings.TrimPrefix(srv1.URL, "http")}
	n2 := startHub(t, store, realtime.Config{Broker: b2})
	ctx := ctxT(t)
	sess := sessiontest.Login(t, store, 5)
	c := dial(t, n1, sess, nil)
	sub, err := c.Subscribe(ctx, "world.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := func(i int) {
		if _, err := n2.hub.Publish(ctx, "world.0", "tick", json.RawMessage(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	last := sub.Position
	for i := 1; i <= 3; i++ {
		pub(i)
		p := next(t, c)
		if p.Epoch != "" {
			last.Epoch = p.Epoch
		}
		last.Offset = p.ID
	}
	sdCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := h1.Shutdown(sdCtx); err != nil {
		t.Fatal(err)
	}
	// Whatever was queued before going_away is still read.
	for {
		p, err := c.Next(ctx)
		if err != nil {
			break
		}
		last.Offset = p.ID
	}
	if code, _ := c.CloseCode(); code != protocol.CodeGoingAway {
		t.Fatalf("closed with %v", code)
	}
	for i := 4; i <= 6; i++ { // published while the client is away
		pub(i)
	}
	c2 := dial(t, n2, sess, nil)
	if _, err := c2.Subscribe(ctx, "world.0", &last); err != nil {
		t.Fatal(err)
	}
	pub(7)
	for want := last.Offset + 1; want <= 7; want++ {
		if p := next(t, c2); p.ID != want || string(p.Payload) != fmt.Sprint(want) {
			t.Fatalf("after failover: push %d %s, want %d", p.ID, p.Payload, want)
		}
	}
	_ = n1
}

// Authenticated frames: a replayed counter is refused, the connection goes on.
func TestAuthenticatedReplay(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{})
	ctx := ctxT(t)
	sess := sessiontest.Login(t, store, 9)
	keys, _ := sess.Keys()
	c := dial(t, n, sess, &realtime.DialOptions{Mode: protocol.ModeAuthenticated, Keys: keys})
	if _, err := c.Subscribe(ctx, "world.0", nil); err != nil { // counter 1
		t.Fatal(err)
	}
	codec, _ := protocol.NewCodec(protocol.Config{Role: protocol.RoleClient})
	frame, err := codec.Encode([]byte(`{"cmd":"rt.unsubscribe","seq":77,"payload":{"ch":"world.0"}}`), protocol.EncodeOptions{Mode: protocol.ModeAuthenticated, Keys: keys, Counter: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendRaw(ctx, frame); err != nil {
		t.Fatal(err)
	}
	// The refusal carries the frame's seq (docs/PROTOCOL.md §16.2).
	if r, err := c.Unmatched(ctx); err != nil || r.Code != protocol.CodeReplayed || r.Seq != 77 {
		t.Fatalf("replayed frame: %+v %v, want replayed with seq 77", r, err)
	}
	// A plain frame on an authenticated connection is refused too.
	plain, _ := codec.Encode([]byte(`{"cmd":"rt.unsubscribe","seq":78,"payload":{"ch":"world.0"}}`), protocol.EncodeOptions{})
	if err := c.SendRaw(ctx, plain); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Unmatched(ctx); err != nil || r.Code != protocol.CodeBadFrame {
		t.Fatalf("plain frame on an authenticated connection: %+v %v", r, err)
	}
	// Still subscribed: the refused frames did nothing.
	if _, err := c.Publish(ctx, "world.0", "ok"); err != nil {
		t.Fatal(err)
	}
}

// A connection re-validates its session: an ended session (here expired on
// the store's clock, with no event) closes it with the store's code.
func TestSessionRefresh(t *testing.T) {
	clk := sessiontest.NewClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	store := sessiontest.NewStore(t, clk.Now)
	n := startHub(t, store, realtime.Config{SessionRefresh: 20 * time.Millisecond})
	c := dial(t, n, sessiontest.Login(t, store, 1), nil)
	if _, err := c.Subscribe(ctxT(t), "world.0", nil); err != nil {
		t.Fatal(err)
	}
	clk.Advance(24 * time.Hour)
	if code := waitClosed(t, c); code != protocol.CodeSessionExpired && code != protocol.CodeUnauthorized {
		t.Fatalf("closed with %v", code)
	}
}

// keepalivePongTimeout is the pong timeout of the keepalive tests: long
// enough that a loaded machine answers a ping in time (the tests never wait
// for a pong that must come sooner), so only the behaviour under test can
// close a connection.
const keepalivePongTimeout = 2 * time.Second

// Keepalive: commands longer than the pong timeout do not cost the
// connection, even when a ping was in flight as one began (its pong waits
// behind the command: the websocket library reads pongs only while the
// connection is read).
func TestKeepaliveSlowCommands(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	mux := protocol.NewMux()
	mux.HandleFunc("game.slow", func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		time.Sleep(keepalivePongTimeout + keepalivePongTimeout/2)
		return nil, nil
	})
	mux.HandleFunc("game.fast", func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		return nil, nil
	})
	// A ping every millisecond: one is often in flight when the next
	// command arrives, so a slow command meets a ping waiting for its pong.
	n := startHub(t, store, realtime.Config{Handler: mux, PingInterval: time.Millisecond, PongTimeout: keepalivePongTimeout})
	c := dial(t, n, sessiontest.Login(t, store, 1), nil)
	call := func(cmd string) {
		t.Helper()
		cctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if r, err := c.Call(cctx, cmd, nil); err != nil || r.Code != protocol.CodeOK {
			t.Fatalf("%s: %+v %v", cmd, r, err)
		}
	}
	for range 2 {
		// Fast commands between the slow ones keep pings going out in
		// between (each needs a pong, which comes in time).
		for range 20 {
			call("game.fast")
		}
		call("game.slow")
	}
	if st := n.hub.Stats(); st.Connections != 1 {
		t.Fatalf("connections %+v", st)
	}
}

// Keepalive: a client that stops reading (so never answers pings) is closed
// with timeout; the other connections stay.
func TestKeepaliveDropsUnresponsive(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{PingInterval: 20 * time.Millisecond, PongTimeout: keepalivePongTimeout})
	ctx := ctxT(t)
	c := dial(t, n, sessiontest.Login(t, store, 1), nil)
	// The client's reader blocks on its full push buffer: pings go unanswered.
	stuck := dial(t, n, sessiontest.Login(t, store, 2), &realtime.DialOptions{PushBuffer: 1})
	if err := n.hub.PushUser(ctx, 2, "a", nil); err != nil {
		t.Fatal(err)
	}
	if err := n.hub.PushUser(ctx, 2, "b", nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait + keepalivePongTimeout)
	for n.hub.Stats().Connections != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("unresponsive client not dropped: %+v", n.hub.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for {
		if _, err := stuck.Next(ctx); err != nil {
			break
		}
	}
	if code := waitClosed(t, stuck); code != protocol.CodeTimeout && code != 0 {
		t.Fatalf("unresponsive client closed with %v", code)
	}
	if _, err := c.Subscribe(ctx, "world.0", nil); err != nil {
		t.Fatalf("the other connection: %v", err)
	}
}

// The writer goroutine runs only while there is traffic: it exits when idle
// and a new one starts for the next message.
func TestWriterOnDemand(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{})
	realtime.SetWriterIdle(n.hub, 30*time.Millisecond)
	ctx := ctxT(t)
	c := dial(t, n, sessiontest.Login(t, store, 1), nil)
	for round := range 3 {
		if _, err := c.Subscribe(ctx, fmt.Sprintf("world.%d", round), nil); err != nil {
			t.Fatal(err)
		}
		if err := n.hub.PushUser(ctx, 1, "ping", nil); err != nil {
			t.Fatal(err)
		}
		if p := next(t, c); p.Topic != "ping" {
			t.Fatalf("push %+v", p)
		}
		deadline := time.Now().Add(wait)
		for realtime.WritersRunning(n.hub, 1) != 0 {
			if time.Now().After(deadline) {
				t.Fatal("idle writer still running")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// stuckWriter dials a client that stops reading (its push buffer holds one
// push) and queues it pushes of about size bytes (incompressible) until
// the socket buffers are full: the hub's writer for it blocks in a
// websocket write. Pushes of 16 KiB and less are written by the delivering
// goroutine while the socket takes them (conn.sendInline), so the writer
// is blocked on the rest of one it began.
func stuckWriter(t *testing.T, n *node, store session.Store, userKey int64, size int) {
	t.Helper()
	// Minutes, not ctxT's seconds: under -race on a busy machine framing
	// 32 MiB of pushes alone took longer than 10 s (the broker's queue
	// then stayed full past ctxT's deadline).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dial(t, n, sessiontest.Login(t, store, userKey), &realtime.DialOptions{PushBuffer: 1, ReadLimit: 1 << 20})
	noise := make([]byte, size*3/4)
	rand.Read(noise)
	big := json.RawMessage(`"` + base64.StdEncoding.EncodeToString(noise) + `"`)
	// 32 MiB in all: more than loopback's socket buffers take.
	for range (32 << 20) / size {
		if err := n.hub.PushUser(ctx, userKey, "big", big); err != nil {
			t.Fatal(err)
		}
	}
}

// pushSizes are the sizes of the pushes the slow-client tests send: larger
// than a frame the delivering goroutine writes itself, and one it does.
var pushSizes = []int{128 << 10, 12 << 10}

// A write that the client does not take within WriteTimeout closes the
// connection (timeout), not slow_consumer: the queue never filled.
func TestWriteTimeoutDropsStuckClient(t *testing.T) {
	for _, size := range pushSizes {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			store := sessiontest.NewStore(t, nil)
			const writeTimeout = 300 * time.Millisecond
			n := startHub(t, store, realtime.Config{SendQueueLen: 4096, WriteTimeout: writeTimeout})
			other := dial(t, n, sessiontest.Login(t, store, 1), nil)
			start := time.Now()
			stuckWriter(t, n, store, 2, size)
			deadline := time.Now().Add(wait)
			for n.hub.Stats().Connections != 1 {
				if time.Now().After(deadline) {
					t.Fatalf("stuck client not dropped after %v: %+v", wait, n.hub.Stats())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if took := time.Since(start); took < writeTimeout {
				t.Fatalf("dropped after %v, before the write timeout", took)
			}
			if st := n.hub.Stats(); st.SlowClosed != 0 {
				t.Fatalf("closed as a slow consumer, not by the write timeout: %+v", st)
			}
			if _, err := other.Subscribe(ctxT(t), "world.0", nil); err != nil {
				t.Fatalf("the other connection: %v", err)
			}
		})
	}
}

// Shutdown that gives up waiting ends a write stuck on a client that does
// not read at once, not after WriteTimeout.
func TestShutdownEndsStuckWrite(t *testing.T) {
	for _, size := range pushSizes {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			store := sessiontest.NewStore(t, nil)
			n := startHub(t, store, realtime.Config{SendQueueLen: 4096, WriteTimeout: time.Minute})
			stuckWriter(t, n, store, 1, size)
			time.Sleep(100 * time.Millisecond) // let the writer block
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := n.hub.Shutdown(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Shutdown: %v, want the context's deadline (the connection could not close cleanly)", err)
			}
			if took := time.Since(start); took > wait {
				t.Fatalf("Shutdown took %v: the stuck write waited for its timeout", took)
			}
		})
	}
}

// Pushes to connections with nothing queued are written by the delivering
// goroutine itself (conn.sendInline), the others queued for the writer
// goroutine; a channel's subscribers are split among goroutines. Bursts
// of publications of every size mix both paths: each client must get
// every push whole and in order.
func TestInlineWritesInOrder(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{})
	realtime.SetFanoutChunk(n.hub, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // slow under -race on a busy machine
	defer cancel()
	var clients []*realtime.Client
	for u := range int64(7) {
		c := dial(t, n, sessiontest.Login(t, store, u+1), &realtime.DialOptions{ReadLimit: 1 << 20})
		if _, err := c.Subscribe(ctx, "world.0", nil); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	sizes := []int{0, 1, 100, 150, 400, 5000, 16 << 10, 24 << 10}
	const total = 240
	want := make([]json.RawMessage, total)
	for i := range want {
		b := make([]byte, sizes[i%len(sizes)]*3/4)
		rand.Read(b) // incompressible: the 24 KiB ones go through the queue
		want[i] = json.RawMessage(`"` + base64.StdEncoding.EncodeToString(b) + `"`)
	}
	done := make(chan error, len(clients))
	for _, c := range clients {
		go func() {
			for i := range total {
				p, err := c.Next(ctx)
				if err != nil {
					done <- err
					return
				}
				if p.ID != uint64(i+1) || !bytes.Equal(p.Payload, want[i]) {
					done <- fmt.Errorf("push %d: got id %d, %d bytes", i+1, p.ID, len(p.Payload))
					return
				}
			}
			done <- nil
		}()
	}
	for i := range total {
		if _, err := n.hub.Publish(ctx, "world.0", "news", want[i]); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			time.Sleep(20 * time.Millisecond) // let the queues drain: the next ones go inline
		}
	}
	for range clients {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	w, all := realtime.InlineWrites(n.hub), int64(total*len(clients))
	t.Logf("%d of %d pushes written by the delivering goroutine", w, all)
	if w == 0 || w >= all {
		t.Fatalf("%d of %d pushes written by the delivering goroutine: want some, not all", w, all)
	}
}
