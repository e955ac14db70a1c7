package realtime_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/realtime/realtimetest"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/session/sessiontest"
)

// waitFor polls cond every 20 ms for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", wait, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Presence TTL and heartbeat interval of the two-hub presence tests: short,
// so a dead node's users drop out quickly, and the interval a fifteenth of the
// TTL so a live node's heartbeat is never late on a loaded machine.
const (
	presenceTTL      = 3 * time.Second
	presenceInterval = 200 * time.Millisecond
)

// Two hubs sharing a MemoryPresence in process (and a memory broker).
func TestPresenceTwoHubsMemory(t *testing.T) {
	p := realtime.NewMemoryPresence(realtime.PresenceConfig{TTL: presenceTTL})
	testPresenceTwoHubs(t, sessiontest.NewStore(t, nil), memoryBrokers(t, 2), []realtime.Presence{p, p})
}

// Two hubs sharing Redis: sessions, a RedisBroker and a RedisPresence each.
func TestPresenceTwoHubsRedis(t *testing.T) {
	c := testredis.Client(t)
	prefix := testredis.Prefix(t, c)
	ps := redisInstances(t, c, 2, func(p string) (realtime.Presence, error) {
		return realtime.NewRedisPresence(c, realtime.PresenceConfig{Prefix: p, TTL: presenceTTL})
	})
	testPresenceTwoHubs(t, redisSessions(t, c, prefix), newRedisBrokers(t, c, prefix, 2), ps)
}

func presenceCount(t *testing.T, c *realtime.Client, ch string) (int, protocol.Code) {
	t.Helper()
	r, err := c.Call(ctxT(t), realtime.CmdPresence, map[string]string{"ch": ch})
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != protocol.CodeOK {
		return -1, r.Code
	}
	var out struct {
		Ch    string `json:"ch"`
		Count int    `json:"count"`
	}
	if err := json.Unmarshal(r.Payload, &out); err != nil || out.Ch != ch {
		t.Fatalf("rt.presence reply %s: %v", r.Payload, err)
	}
	return out.Count, r.Code
}

func testPresenceTwoHubs(t *testing.T, store session.Store, bs []realtime.Broker, ps []realtime.Presence) {
	var n [2]*node
	for i := range n {
		n[i] = startHub(t, store, realtime.Config{
			Broker: bs[i], Presence: ps[i], NodeID: fmt.Sprintf("node%d", i+1),
			PresenceInterval: presenceInterval, WorldPartitionSize: 2,
		})
	}
	ctx := ctxT(t)
	online := func(h *realtime.Hub, uk int64) (bool, []string) {
		t.Helper()
		ok, nodes, err := h.Online(ctx, uk)
		if err != nil {
			t.Fatal(err)
		}
		return ok, nodes
	}

	// Users 1 and 2 on hub 1 fill world partition 0; user 3, joining
	// "world" on hub 2, is sent to partition 1: partitions are counted
	// across nodes.
	c1 := dial(t, n[0], sessiontest.Login(t, store, 1), nil)
	c2 := dial(t, n[0], sessiontest.Login(t, store, 2), nil)
	c3 := dial(t, n[1], sessiontest.Login(t, store, 3), nil)
	for i, c := range []*realtime.Client{c1, c2, c3} {
		s, err := c.Subscribe(ctx, realtime.ChannelWorld, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"world.0", "world.0", "world.1"}[i]
		if s.Channel != want {
			t.Fatalf("user %d joined %s, want %s", i+1, s.Channel, want)
		}
	}

	// A user online on hub 1 is seen from hub 2, with its node.
	if ok, nodes := online(n[1].hub, 1); !ok || fmt.Sprint(nodes) != "[node1]" {
		t.Fatalf("user 1 seen from hub 2: %v %v", ok, nodes)
	}
	if ok, _ := online(n[1].hub, 99); ok {
		t.Fatal("user 99 never connected but is online")
	}
	// rt.presence counts users across nodes, on channels the caller may read.
	if cnt, code := presenceCount(t, c3, "world.0"); code != protocol.CodeOK || cnt != 2 {
		t.Fatalf("world.0 count from hub 2: %d %v", cnt, code)
	}
	if _, code := presenceCount(t, c3, "guild.1"); code != protocol.CodeForbidden {
		t.Fatalf("presence of a guild without Authorize: %v", code)
	}
	if _, code := presenceCount(t, c3, realtime.UserChannel(1)); code != protocol.CodeForbidden {
		t.Fatalf("presence of a user channel: %v", code)
	}

	// Leaving a channel and disconnecting take effect within one heartbeat:
	// a heartbeat that read user 2's channels just before the leave may
	// still report world.0 after it, until the next heartbeat (a race a
	// loaded machine widens: the count was 2 once in a fresh clone).
	if err := c2.Unsubscribe(ctx, "world.0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "world.0 count 1 after user 2 left", func() bool { cnt, _ := presenceCount(t, c3, "world.0"); return cnt == 1 })
	if _, err := c2.Subscribe(ctx, "world.0", nil); err != nil {
		t.Fatal(err)
	}
	c1.Close()
	waitFor(t, "user 1 offline after closing", func() bool { ok, _ := online(n[1].hub, 1); return !ok })

	// Hub 1 dies (stops heartbeating without reporting its disconnects):
	// its user 2 drops out after the TTL; user 3 on hub 2 stays.
	if ok, _ := online(n[1].hub, 2); !ok {
		t.Fatal("user 2 not online before hub 1 died")
	}
	realtime.PausePresence(n[0].hub)
	waitFor(t, "user 2 of the dead hub offline", func() bool { ok, _ := online(n[1].hub, 2); return !ok })
	waitFor(t, "world.0 count 0", func() bool { cnt, _ := presenceCount(t, c3, "world.0"); return cnt == 0 })
	if ok, nodes := online(n[0].hub, 3); !ok || fmt.Sprint(nodes) != "[node2]" {
		t.Fatalf("user 3 on the live hub after the other died: %v %v", ok, nodes)
	}
	if cnt, _ := presenceCount(t, c3, "world.1"); cnt != 1 {
		t.Fatalf("world.1 count: %d", cnt)
	}
}

type pushPos struct {
	Ch     string `json:"ch"`
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// After live deliveries were lost (FakeBroker drops them, as when the
// node's broker connection was cut), the hub delivers them from history in
// order and without duplicates: on Resync, or when the next live
// publication shows the gap. A gap larger than one history read is a
// position_lost push.
func TestResyncAfterDroppedDeliveries(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limit  int
		resync bool
	}{
		{"resync fills the gap", 0, true},
		{"resync position lost", 2, true},
		{"live publication fills the gap", 0, false},
		{"live publication position lost", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := sessiontest.NewStore(t, nil)
			fb := realtimetest.NewFakeBroker(realtime.NewMemoryBroker(realtime.MemoryBrokerConfig{}))
			t.Cleanup(func() { fb.Close() })
			n := startHub(t, store, realtime.Config{Broker: fb, HistoryLimit: tc.limit})
			ctx := ctxT(t)
			c := dial(t, n, sessiontest.Login(t, store, 1), nil)
			if _, err := c.Subscribe(ctx, "world.1", nil); err != nil {
				t.Fatal(err)
			}
			pub := func(i int) {
				if _, err := n.hub.Publish(ctx, "world.1", "t", json.RawMessage(fmt.Sprint(i))); err != nil {
					t.Fatal(err)
				}
			}
			expect := func(want uint64) {
				t.Helper()
				if p := next(t, c); p.ID != want || string(p.Payload) != fmt.Sprint(want) {
					t.Fatalf("want push %d, got %+v %s", want, p, p.Payload)
				}
			}
			pub(1)
			expect(1)
			fb.DropNext(3)
			for i := 2; i <= 4; i++ {
				pub(i)
			}
			waitFor(t, "3 deliveries dropped", func() bool { return len(fb.Dropped()) == 3 })
			if tc.resync {
				n.hub.Resync()
			} else {
				pub(5)
			}
			if tc.limit > 0 {
				p := next(t, c)
				var pp pushPos
				if p.Topic != realtime.TopicPositionLost || json.Unmarshal(p.Payload, &pp) != nil || pp.Ch != "world.1" || pp.Offset != 4 {
					t.Fatalf("want position_lost at 4, got %+v %s", p, p.Payload)
				}
			} else {
				for want := uint64(2); want <= 4; want++ {
					expect(want)
				}
			}
			// Live delivery goes on; another Resync adds nothing.
			n.hub.Resync()
			if tc.resync {
				pub(5)
			}
			expect(5)
			pub(6)
			expect(6)
		})
	}
}

// A hub on a RedisBroker resyncs by itself when the broker's pub/sub
// connection is killed (CLIENT KILL of its own connection): every
// publication made around the cut reaches the client once, in order.
func TestResyncAfterRedisReconnect(t *testing.T) {
	shared := testredis.Client(t)
	var nb [4]byte
	_, _ = rand.Read(nb[:])
	name := "rthub-" + hex.EncodeToString(nb[:])
	rc := redis.NewClient(&redis.Options{Addr: shared.Options().Addr, ClientName: name})
	t.Cleanup(func() { rc.Close() })
	prefix := testredis.Prefix(t, shared)
	cfg := realtime.RedisBrokerConfig{Prefix: prefix, ReconnectBackoff: 300 * time.Millisecond}
	b, err := realtime.NewRedisBroker(rc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	other, err := realtime.NewRedisBroker(shared, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{Broker: b})
	pubHub := startHub(t, store, realtime.Config{Broker: other})
	ctx := ctxT(t)
	c := dial(t, n, sessiontest.Login(t, store, 1), nil)
	if _, err := c.Subscribe(ctx, "world.2", nil); err != nil {
		t.Fatal(err)
	}
	seq := 0
	pub := func() {
		seq++
		if _, err := pubHub.hub.Publish(ctx, "world.2", "t", json.RawMessage(fmt.Sprint(seq))); err != nil {
			t.Fatal(err)
		}
	}
	pub()
	if p := next(t, c); p.ID != 1 {
		t.Fatalf("first push: %+v", p)
	}

	killPubSub(t, ctx, shared, name)
	// Publish during the reconnect backoff (these are not delivered live),
	// then stop: only the resync brings them.
	for range 5 {
		pub()
	}
	for want := uint64(2); want <= uint64(seq); want++ {
		if p := next(t, c); p.ID != want {
			t.Fatalf("push %d after the reconnect: got %+v", want, p)
		}
	}
	pub()
	if p := next(t, c); p.ID != uint64(seq) {
		t.Fatalf("live push after the reconnect: %+v", p)
	}
	if st := b.Stats(); st.Reconnects == 0 {
		t.Fatalf("broker did not reconnect: %+v", st)
	}
}

// downPresence is a Presence whose backend is down while down is set.
type downPresence struct {
	realtime.Presence
	down atomic.Bool
}

func (p *downPresence) err() error {
	if p.down.Load() {
		return fmt.Errorf("%w: test: presence down", realtime.ErrUnavailable)
	}
	return nil
}

func (p *downPresence) Touch(ctx context.Context, e ...realtime.PresenceEntry) error {
	if err := p.err(); err != nil {
		return err
	}
	return p.Presence.Touch(ctx, e...)
}

func (p *downPresence) Count(ctx context.Context, ch string) (int, error) {
	if err := p.err(); err != nil {
		return 0, err
	}
	return p.Presence.Count(ctx, ch)
}

func (p *downPresence) Where(ctx context.Context, uk int64) ([]realtime.PresenceConn, error) {
	if err := p.err(); err != nil {
		return nil, err
	}
	return p.Presence.Where(ctx, uk)
}

// While the broker's and presence's backend (Redis) is down, connected
// clients stay connected: publish, subscribe and rt.presence answer
// unavailable (retryable), "world" joins fall back to this node's counts;
// once it is back everything works again, with no gap for subscribers.
func TestBackendDown(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	fb := realtimetest.NewFakeBroker(realtime.NewMemoryBroker(realtime.MemoryBrokerConfig{}))
	t.Cleanup(func() { fb.Close() })
	pr := &downPresence{Presence: realtime.NewMemoryPresence(realtime.PresenceConfig{})}
	n := startHub(t, store, realtime.Config{Broker: fb, Presence: pr, PresenceInterval: presenceInterval, WorldPartitionSize: 1})
	ctx := ctxT(t)
	a := dial(t, n, sessiontest.Login(t, store, 1), nil)
	b := dial(t, n, sessiontest.Login(t, store, 2), nil)
	if s, err := a.Subscribe(ctx, "world", nil); err != nil || s.Channel != "world.0" {
		t.Fatalf("join world: %+v %v", s, err)
	}
	if _, err := a.Publish(ctx, "world.0", "one"); err != nil {
		t.Fatal(err)
	}
	next(t, a)

	fb.SetDown(realtimetest.OpAll)
	pr.down.Store(true)
	code := func(r *protocol.Response, err error) protocol.Code {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r.Code
	}
	if c := code(a.Call(ctx, realtime.CmdPublish, map[string]any{"ch": "world.0", "data": "two"})); c != protocol.CodeUnavailable {
		t.Fatalf("publish while down: %v", c)
	}
	if c := code(b.Call(ctx, realtime.CmdSubscribe, map[string]any{"ch": "world.5"})); c != protocol.CodeUnavailable {
		t.Fatalf("subscribe while down: %v", c)
	}
	if c := code(b.Call(ctx, realtime.CmdPresence, map[string]any{"ch": "world.0"})); c != protocol.CodeUnavailable {
		t.Fatalf("rt.presence while down: %v", c)
	}
	if _, _, err := n.hub.Online(ctx, 1); err == nil {
		t.Fatal("Online answered while presence is down")
	}
	if err := n.hub.PushUser(ctx, 2, "mail", nil); err == nil {
		t.Fatal("PushUser succeeded while the broker is down")
	}

	// The broker is back, presence not yet: a "world" join counts this
	// node's members (user 1 fills world.0, size 1), so user 2 goes to
	// world.1.
	fb.Heal()
	time.Sleep(1100 * time.Millisecond) // past the hub's 1 s cache of partition counts
	if s, err := b.Subscribe(ctx, "world", nil); err != nil || s.Channel != "world.1" {
		t.Fatalf("join world with presence down: %+v %v", s, err)
	}
	pr.down.Store(false)
	if c := code(b.Call(ctx, realtime.CmdPresence, map[string]any{"ch": "world.0"})); c != protocol.CodeOK {
		t.Fatalf("rt.presence after recovery: %v", c)
	}
	if _, err := a.Publish(ctx, "world.0", "three"); err != nil {
		t.Fatal(err)
	}
	if p := next(t, a); p.ID != 2 || string(chatOf(t, p).Data) != `"three"` {
		t.Fatalf("after recovery: %+v", p)
	}
	select {
	case <-a.Done():
		t.Fatal("client a was disconnected")
	case <-b.Done():
		t.Fatal("client b was disconnected")
	default:
	}
}
