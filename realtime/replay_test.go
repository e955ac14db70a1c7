package realtime_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/session/sessiontest"
)

// TestHubCommandReplayedOnOtherConnections: captured authenticated frames
// of the hub's own commands (rt.subscribe, rt.publish, rt.whisper) run once
// per session, whatever the connection: replayed on a connection of the
// session that was open before they were sent (its own counter is behind
// them) and on a new connection, they are refused as replayed — with the
// frame's seq and rid — and nothing is delivered again. Memory and Redis
// session stores.
func TestHubCommandReplayedOnOtherConnections(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		testHubCommandReplay(t, sessiontest.NewStore(t, nil))
	})
	t.Run("redis", func(t *testing.T) {
		c := testredis.Client(t)
		testHubCommandReplay(t, redisSessions(t, c, testredis.Prefix(t, c)))
	})
}

func testHubCommandReplay(t *testing.T, store session.Store) {
	n := startHub(t, store, realtime.Config{})
	ctx := ctxT(t)
	sess := sessiontest.Login(t, store, 21)
	keys, err := sess.Keys()
	if err != nil {
		t.Fatal(err)
	}
	fc := protocol.NewFrameCounter(sess.Counter) // the session's one sequence
	auth := &realtime.DialOptions{Mode: protocol.ModeAuthenticated, Keys: keys, Counters: fc}
	a := dial(t, n, sess, auth)
	b := dial(t, n, sess, auth) // open before the frames are sent
	r := dial(t, n, sessiontest.Login(t, store, 22), nil)
	for _, c := range []*realtime.Client{r, b} {
		if _, err := c.Subscribe(ctx, "world.0", nil); err != nil {
			t.Fatal(err)
		}
	}
	codec, _ := protocol.NewCodec(protocol.Config{Role: protocol.RoleClient})
	seal := func(body string) []byte {
		f, err := codec.Encode([]byte(body), protocol.EncodeOptions{Mode: protocol.ModeAuthenticated, Keys: keys, Counter: fc.Next()})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	captured := [][]byte{
		seal(`{"cmd":"rt.subscribe","seq":100,"rid":"sub","payload":{"ch":"world.0"}}`),
		seal(`{"cmd":"rt.publish","seq":101,"rid":"pub","payload":{"ch":"world.0","data":"once"}}`),
		seal(`{"cmd":"rt.whisper","seq":102,"rid":"wsp","payload":{"to":22,"data":"psst"}}`),
	}
	// reply sends a raw frame and returns the reply, which has no pending
	// call: it comes through Unmatched.
	reply := func(c *realtime.Client, frame []byte) *protocol.Response {
		t.Helper()
		if err := c.SendRaw(ctx, frame); err != nil {
			t.Fatal(err)
		}
		resp, err := c.Unmatched(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for i, f := range captured {
		if resp := reply(a, f); resp.Code != protocol.CodeOK || resp.Seq != uint64(100+i) {
			t.Fatalf("frame %d on its own connection: %+v", i, resp)
		}
	}
	rids := []string{"sub", "pub", "wsp"}
	replay := func(who string, c *realtime.Client, frames [][]byte, from int) {
		t.Helper()
		for i, f := range frames {
			resp := reply(c, f)
			if resp.Code != protocol.CodeReplayed || resp.Seq != uint64(100+from+i) || resp.RequestID != rids[from+i] {
				t.Fatalf("frame %d replayed on %s: %+v, want replayed with seq %d and rid %q", from+i, who, resp, 100+from+i, rids[from+i])
			}
		}
	}
	replay("a connection open before (b)", b, captured[1:], 1) // b is subscribed already
	replay("a new connection", dial(t, n, sess, auth), captured, 0)
	replay("a second new connection", dial(t, n, sess, &realtime.DialOptions{Mode: protocol.ModeAuthenticated, Keys: keys}), captured, 0)

	// r got "once" and "psst" once: the next pushes are the markers.
	if _, err := a.Publish(ctx, "world.0", "marker"); err != nil {
		t.Fatal(err)
	}
	if err := a.Whisper(ctx, 22, "marker"); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for got[realtime.TopicChat+`"marker"`] == 0 || got[realtime.TopicWhisper+`"marker"`] == 0 {
		p := next(t, r)
		got[p.Topic+string(chatOf(t, p).Data)]++
	}
	want := map[string]int{
		realtime.TopicChat + `"once"`: 1, realtime.TopicWhisper + `"psst"`: 1,
		realtime.TopicChat + `"marker"`: 1, realtime.TopicWhisper + `"marker"`: 1,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the other player got %v, want each message once: %v", got, want)
	}
	// The session's counter moved on in the store: an HTTP frame (or a game
	// command) with a replayed counter is refused there too.
	if _, err := store.GetFrame(ctx, sess.ID, 3); protocol.CodeOf(err) != protocol.CodeReplayed {
		t.Fatalf("the rt.publish frame's counter in the store: %v, want replayed", err)
	}
}

// TestDocumentedWebsocketRules pins two rules of docs/PROTOCOL.md §16 that
// a client written from the document tripped on: rt.history needs a
// subscription (the caller's own user channel excepted), and a text
// websocket message closes the connection with 4002 bad_frame.
func TestDocumentedWebsocketRules(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{})
	ctx := ctxT(t)
	sess := sessiontest.Login(t, store, 31)
	c := dial(t, n, sess, nil)
	if r, err := c.Call(ctx, realtime.CmdHistory, map[string]any{"ch": "world.0"}); err != nil || r.Code != protocol.CodeNotMember {
		t.Fatalf("rt.history without a subscription: %+v %v, want not_member", r, err)
	}
	if r, err := c.Call(ctx, realtime.CmdHistory, map[string]any{"ch": realtime.UserChannel(31)}); err != nil || r.Code != protocol.CodeOK {
		t.Fatalf("rt.history of the own user channel: %+v %v", r, err)
	}
	if _, err := c.Subscribe(ctx, "world.0", nil); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Call(ctx, realtime.CmdHistory, map[string]any{"ch": "world.0"}); err != nil || r.Code != protocol.CodeOK {
		t.Fatalf("rt.history after subscribing: %+v %v", r, err)
	}

	ws, _, err := websocket.Dial(ctx, n.url+"?token="+sess.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"cmd":"rt.history"}`)); err != nil {
		t.Fatal(err)
	}
	_, _, err = ws.Read(ctx)
	if st := websocket.CloseStatus(err); st != 4002 {
		t.Fatalf("text message: %v (status %d), want close 4002", err, st)
	}
	if code, ok := realtime.CodeOfClose(4002); !ok || code != protocol.CodeBadFrame {
		t.Fatalf("4002 is %v %v, want bad_frame", code, ok)
	}
}

// downStore is a session store whose GetFrame fails while down is set (a
// session store whose Redis is down).
type downStore struct {
	session.Store
	down atomic.Bool
}

func (d *downStore) GetFrame(ctx context.Context, keyID string, counter uint64) (*session.Session, error) {
	if d.down.Load() {
		return nil, fmt.Errorf("%w: test: redis down", session.ErrUnavailable)
	}
	return d.Store.GetFrame(ctx, keyID, counter)
}

// TestHubCommandWhileSessionStoreDown: while the session store cannot
// accept a frame's counter, the hub's commands on an authenticated
// connection answer unavailable (retryable, with the frame's seq), the
// connection stays, and the next frame works once the store is back
// (docs/FAILURES.md, a realtime node).
func TestHubCommandWhileSessionStoreDown(t *testing.T) {
	store := &downStore{Store: sessiontest.NewStore(t, nil)}
	n := startHub(t, store, realtime.Config{})
	ctx := ctxT(t)
	sess := sessiontest.Login(t, store, 51)
	keys, _ := sess.Keys()
	c := dial(t, n, sess, &realtime.DialOptions{Mode: protocol.ModeAuthenticated, Keys: keys})
	if _, err := c.Subscribe(ctx, "world.0", nil); err != nil {
		t.Fatal(err)
	}
	store.down.Store(true)
	r, err := c.Call(ctx, realtime.CmdPublish, map[string]any{"ch": "world.0", "data": "x"})
	if err != nil || r.Code != protocol.CodeUnavailable || r.Seq == 0 {
		t.Fatalf("publish with the session store down: %+v %v, want unavailable with its seq", r, err)
	}
	store.down.Store(false)
	if _, err := c.Publish(ctx, "world.0", "y"); err != nil {
		t.Fatalf("publish after the store is back: %v", err)
	}
	if p := next(t, c); string(chatOf(t, p).Data) != `"y"` {
		t.Fatalf("push %s, want only the message sent after the outage", p.Payload)
	}
}

// TestRoomCommandReplayedOnANewConnection: with rooms, room.* commands are
// the hub's own too: a captured sealed room.create replayed on a new
// connection of the session is refused, so it creates no second room.
func TestRoomCommandReplayedOnANewConnection(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{})
	startRooms(t, n, realtime.NewMemoryDirectory(realtime.DirectoryConfig{}), realtime.RoomConfig{})
	ctx := ctxT(t)
	sess := sessiontest.Login(t, store, 61)
	keys, _ := sess.Keys()
	fc := protocol.NewFrameCounter(sess.Counter)
	auth := &realtime.DialOptions{Mode: protocol.ModeAuthenticated, Keys: keys, Counters: fc}
	a := dial(t, n, sess, auth)
	codec, _ := protocol.NewCodec(protocol.Config{Role: protocol.RoleClient})
	create, err := codec.Encode([]byte(`{"cmd":"room.create","seq":300,"payload":{"kind":"raid"}}`), protocol.EncodeOptions{Mode: protocol.ModeAuthenticated, Keys: keys, Counter: fc.Next()})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SendRaw(ctx, create); err != nil {
		t.Fatal(err)
	}
	if r, err := a.Unmatched(ctx); err != nil || r.Code != protocol.CodeOK || r.Seq != 300 {
		t.Fatalf("room.create: %+v %v", r, err)
	}
	b := dial(t, n, sess, &realtime.DialOptions{Mode: protocol.ModeAuthenticated, Keys: keys})
	if err := b.SendRaw(ctx, create); err != nil {
		t.Fatal(err)
	}
	if r, err := b.Unmatched(ctx); err != nil || r.Code != protocol.CodeReplayed || r.Seq != 300 {
		t.Fatalf("room.create replayed on a new connection: %+v %v, want replayed with seq 300", r, err)
	}
}
