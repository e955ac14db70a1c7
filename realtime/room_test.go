package realtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/session/sessiontest"
)

// raidLogic makes RaidBoss rooms; params {"hp"} (default 1,000,000).
func raidLogic(kind string, params json.RawMessage) (realtime.RoomLogic, error) {
	if kind != "raid" {
		return nil, &protocol.Error{Code: protocol.CodeBadRequest, Message: "unknown room kind"}
	}
	p := struct {
		HP int `json:"hp"`
	}{HP: 1_000_000}
	if len(params) > 0 {
		if err := json.Unmarshal(params, &p); err != nil {
			return nil, &protocol.Error{Code: protocol.CodeBadRequest, Message: "bad params"}
		}
	}
	return realtime.NewRaidBoss(p.HP, 8), nil
}

func startRooms(t *testing.T, n *node, dir realtime.Directory, cfg realtime.RoomConfig) *realtime.Rooms {
	t.Helper()
	if cfg.NewLogic == nil {
		cfg.NewLogic = raidLogic
	}
	if cfg.TickRate == 0 {
		cfg.TickRate = 20
	}
	r, err := realtime.NewRooms(n.hub, dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

type raidState struct {
	HP      int                `json:"hp"`
	Players []realtime.RaidHit `json:"players"`
	Hits    []realtime.RaidHit `json:"hits"`
}

// nextSnap waits for the next room.snapshot push.
func nextSnap(t *testing.T, c *realtime.Client) (realtime.RoomSnapshot, raidState) {
	t.Helper()
	raw, err := c.NextTopic(ctxT(t), realtime.TopicRoomSnapshot)
	if err != nil {
		t.Fatalf("room snapshot: %v", err)
	}
	var s realtime.RoomSnapshot
	var st raidState
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(s.State, &st); err != nil {
		t.Fatal(err)
	}
	return s, st
}

// snapUntil reads snapshots until ok(state) holds (up to wait).
func snapUntil(t *testing.T, c *realtime.Client, ok func(raidState) bool) raidState {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if _, st := nextSnap(t, c); ok(st) {
			return st
		}
	}
	t.Fatal("no snapshot with the expected state")
	return raidState{}
}

func players(st raidState) []int64 {
	var out []int64
	for _, p := range st.Players {
		out = append(out, p.User)
	}
	return out
}

func wantCode(t *testing.T, err error, code protocol.Code) {
	t.Helper()
	if protocol.CodeOf(err) != code || err == nil {
		t.Fatalf("err = %v, want code %v", err, code)
	}
}

func TestRoomTickAppliesQueuedInputsInOrder(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{})
	startRooms(t, n, realtime.NewMemoryDirectory(realtime.DirectoryConfig{}), realtime.RoomConfig{})
	a := dial(t, n, sessiontest.Login(t, store, 1), nil)
	ctx := ctxT(t)
	j, err := a.RoomCreate(ctx, "raid", map[string]int{"hp": 1000})
	if err != nil || j.Room == "" || j.Rejoined {
		t.Fatalf("room.create = %+v, %v", j, err)
	}
	for d := 1; d <= 10; d++ {
		if err := a.RoomInput(ctx, j.Room, map[string]int{"damage": d}); err != nil {
			t.Fatalf("input %d: %v", d, err)
		}
	}
	var got []int
	var last raidState
	for len(got) < 10 {
		_, last = nextSnap(t, a)
		for _, h := range last.Hits {
			if h.User != 1 {
				t.Fatalf("hit by %d", h.User)
			}
			got = append(got, h.Damage)
		}
	}
	if fmt.Sprint(got) != "[1 2 3 4 5 6 7 8 9 10]" || last.HP != 1000-55 {
		t.Fatalf("hits %v, hp %d; want 1..10 in order and hp 945", got, last.HP)
	}
	// Bad commands get codes, not panics.
	if _, err := a.RoomCreate(ctx, "nope", nil); protocol.CodeOf(err) != protocol.CodeBadRequest {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, err := a.RoomJoin(ctx, "bad room id!"); protocol.CodeOf(err) != protocol.CodeBadRequest {
		t.Fatalf("bad id: %v", err)
	}
	big := map[string]string{"x": string(make([]byte, 2000))}
	wantCode(t, a.RoomInput(ctx, j.Room, big), protocol.CodeTooLarge)
}

func TestRoomInputQueueBounded(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{CommandRate: 1000, CommandBurst: 1000})
	// One tick per minute: the queue fills before any tick drains it.
	startRooms(t, n, realtime.NewMemoryDirectory(realtime.DirectoryConfig{}), realtime.RoomConfig{TickRate: 1.0 / 60, InputQueueLen: 3})
	a := dial(t, n, sessiontest.Login(t, store, 1), nil)
	ctx := ctxT(t)
	j, err := a.RoomCreate(ctx, "raid", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := a.RoomInput(ctx, j.Room, map[string]int{"damage": 1}); err != nil {
			t.Fatalf("input %d: %v", i, err)
		}
	}
	wantCode(t, a.RoomInput(ctx, j.Room, map[string]int{"damage": 1}), protocol.CodeRateLimited)
}

func TestRoomSnapshotsToMembersOnly(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{Authorize: func(context.Context, *protocol.Principal, string, realtime.Action) error { return nil }})
	startRooms(t, n, realtime.NewMemoryDirectory(realtime.DirectoryConfig{}), realtime.RoomConfig{})
	a := dial(t, n, sessiontest.Login(t, store, 1), nil)
	b := dial(t, n, sessiontest.Login(t, store, 2), nil)
	outsider := dial(t, n, sessiontest.Login(t, store, 3), nil)
	ctx := ctxT(t)
	j, err := a.RoomCreate(ctx, "raid", nil)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := b.RoomJoin(ctx, j.Room)
	if err != nil || jb.Room != j.Room || jb.Rejoined {
		t.Fatalf("join = %+v, %v", jb, err)
	}
	// A non-member's input is refused; it cannot subscribe to the room's
	// channel even when Authorize allows every channel.
	wantCode(t, outsider.RoomInput(ctx, j.Room, map[string]int{"damage": 5}), protocol.CodeNotMember)
	wantCode(t, outsider.RoomLeave(ctx, j.Room), protocol.CodeNotMember)
	if _, err := outsider.Subscribe(ctx, realtime.RoomChannel(j.Room), nil); protocol.CodeOf(err) != protocol.CodeForbidden {
		t.Fatalf("subscribe to the room channel: %v", err)
	}
	if _, err := outsider.RoomJoin(ctx, "raid-doesnotexist"); protocol.CodeOf(err) != protocol.CodeNotMember {
		t.Fatalf("join of an unknown room: %v", err)
	}
	if err := b.RoomInput(ctx, j.Room, map[string]int{"damage": 5}); err != nil {
		t.Fatal(err)
	}
	st := snapUntil(t, a, func(s raidState) bool { return len(s.Hits) > 0 })
	if st.Hits[0] != (realtime.RaidHit{User: 2, Damage: 5}) || !slices.Equal(players(st), []int64{1, 2}) {
		t.Fatalf("state %+v", st)
	}
	snapUntil(t, b, func(s raidState) bool { return len(s.Players) == 2 })
	// The outsider got no room push (its pushes are checked after the
	// members saw several snapshots).
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if p, err := outsider.Next(short); err == nil {
		t.Fatalf("outsider got push %s %s", p.Topic, p.Payload)
	}
	// After room.leave b gets no more snapshots and its input is refused.
	if err := b.RoomLeave(ctx, j.Room); err != nil {
		t.Fatal(err)
	}
	wantCode(t, b.RoomInput(ctx, j.Room, map[string]int{"damage": 5}), protocol.CodeNotMember)
	snapUntil(t, a, func(s raidState) bool { return slices.Equal(players(s), []int64{1}) })
}

func TestRoomReconnectWithinGrace(t *testing.T) {
	t.Parallel() // waits out grace periods and leases
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{})
	startRooms(t, n, realtime.NewMemoryDirectory(realtime.DirectoryConfig{}), realtime.RoomConfig{Grace: 3 * time.Second})
	a := dial(t, n, sessiontest.Login(t, store, 1), nil)
	sb := sessiontest.Login(t, store, 2)
	b := dial(t, n, sb, nil)
	ctx := ctxT(t)
	j, err := a.RoomCreate(ctx, "raid", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.RoomJoin(ctx, j.Room); err != nil {
		t.Fatal(err)
	}
	if err := b.RoomInput(ctx, j.Room, map[string]int{"damage": 42}); err != nil {
		t.Fatal(err)
	}
	snapUntil(t, a, func(s raidState) bool { return len(s.Hits) > 0 })
	b.Close()
	b2 := dial(t, n, sb, nil)
	// A new connection must join before sending inputs.
	wantCode(t, b2.RoomInput(ctx, j.Room, map[string]int{"damage": 1}), protocol.CodeNotMember)
	jb, err := b2.RoomJoin(ctx, j.Room)
	if err != nil || !jb.Rejoined {
		t.Fatalf("rejoin within grace = %+v, %v; want rejoined", jb, err)
	}
	var st raidState
	if err := json.Unmarshal(jb.Snapshot, &st); err != nil || !slices.Equal(players(st), []int64{1, 2}) || st.HP != 1_000_000-42 {
		t.Fatalf("rejoin snapshot %s (%v)", jb.Snapshot, err)
	}
	// Dropped again and not back: removed after the grace period.
	b2.Close()
	snapUntil(t, a, func(s raidState) bool { return slices.Equal(players(s), []int64{1}) })
	b3 := dial(t, n, sb, nil)
	jb, err = b3.RoomJoin(ctx, j.Room)
	if err != nil || jb.Rejoined {
		t.Fatalf("join after grace = %+v, %v; want a new member", jb, err)
	}
}

func TestRoomsTwoHubsMemory(t *testing.T) {
	testRoomsTwoHubs(t, sessiontest.NewStore(t, nil), memoryBrokers(t, 2), []realtime.Directory{realtime.NewMemoryDirectory(realtime.DirectoryConfig{})})
}

func TestRoomsTwoHubsRedis(t *testing.T) {
	c := testredis.Client(t)
	prefix := testredis.Prefix(t, c)
	dirs := redisInstances(t, c, 2, func(p string) (realtime.Directory, error) {
		return realtime.NewRedisDirectory(c, realtime.DirectoryConfig{Prefix: p})
	})
	testRoomsTwoHubs(t, redisSessions(t, c, prefix), newRedisBrokers(t, c, prefix, 2), dirs)
}

// testRoomsTwoHubs: a player on hub 2 joins a room owned by hub 1; inputs
// and snapshots cross; it reconnects through hub 1 within the grace; the
// owner shuts down and the player on hub 2 is told going_away, and the
// room is gone.
func testRoomsTwoHubs(t *testing.T, store session.Store, brokers []realtime.Broker, dirs []realtime.Directory) {
	ns, rs := roomNodes(t, store, brokers, dirs, realtime.RoomConfig{Grace: 5 * time.Second})
	n1, n2, r1, d2 := ns[0], ns[1], rs[0], dirs[len(dirs)-1]
	a := dial(t, n1, sessiontest.Login(t, store, 1), nil)
	sb := sessiontest.Login(t, store, 2)
	b := dial(t, n2, sb, nil)
	ctx := ctxT(t)
	j, err := a.RoomCreate(ctx, "raid", nil)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := d2.Lookup(ctx, j.Room); err != nil || l.Node != r1.Node() {
		t.Fatalf("directory: %+v, %v", l, err)
	}
	if jb, err := b.RoomJoin(ctx, j.Room); err != nil || jb.Rejoined {
		t.Fatalf("remote join = %+v, %v", jb, err)
	}
	for d := 1; d <= 3; d++ {
		if err := b.RoomInput(ctx, j.Room, map[string]int{"damage": d}); err != nil {
			t.Fatalf("remote input: %v", err)
		}
	}
	var got []int
	for len(got) < 3 {
		_, st := nextSnap(t, a)
		for _, h := range st.Hits {
			if h.User == 2 {
				got = append(got, h.Damage)
			}
		}
	}
	if fmt.Sprint(got) != "[1 2 3]" {
		t.Fatalf("remote inputs applied as %v", got)
	}
	snapUntil(t, b, func(s raidState) bool { return s.HP == 1_000_000-6 })
	// The remote member reconnects through the owner's node.
	b.Close()
	bb := dial(t, n1, sb, nil)
	if jb, err := bb.RoomJoin(ctx, j.Room); err != nil || !jb.Rejoined {
		t.Fatalf("rejoin on the other node = %+v, %v", jb, err)
	}
	// and back to hub 2 again, still a member.
	bb.Close()
	b = dial(t, n2, sb, nil)
	if jb, err := b.RoomJoin(ctx, j.Room); err != nil || !jb.Rejoined {
		t.Fatalf("rejoin on hub 2 = %+v, %v", jb, err)
	}
	nextSnap(t, b)
	// The owner shuts down: the remote member is told, the room is gone.
	sctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := n1.hub.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if code := waitClosed(t, a); code != protocol.CodeGoingAway {
		t.Fatalf("owner-node client closed with %v", code)
	}
	raw, err := b.NextTopic(ctx, realtime.TopicRoomEnd)
	if err != nil {
		t.Fatal(err)
	}
	var end struct{ Room, Reason string }
	if err := json.Unmarshal(raw, &end); err != nil || end.Room != j.Room || end.Reason != "going_away" {
		t.Fatalf("room.end %s", raw)
	}
	wantCode(t, b.RoomInput(ctx, j.Room, map[string]int{"damage": 1}), protocol.CodeNotMember)
	if _, err := d2.Lookup(ctx, j.Room); !errors.Is(err, realtime.ErrRoomNotFound) {
		t.Fatalf("lookup after the owner left: %v", err)
	}
}

// A room whose owner stops answering (its node died without closing) is
// gone for other nodes once its lease expires: requests to it time out as
// unavailable meanwhile, then answer not_member.
func TestRoomOwnerDiesLostAfterLease(t *testing.T) {
	t.Parallel() // waits out grace periods and leases
	store := sessiontest.NewStore(t, nil)
	dir := realtime.NewMemoryDirectory(realtime.DirectoryConfig{})
	n2 := startHub(t, store, realtime.Config{})
	startRooms(t, n2, dir, realtime.RoomConfig{Node: "n2", RequestTimeout: 500 * time.Millisecond})
	// A dead node's lease: claimed, never renewed, nobody serves it. It
	// lasts long enough for a loaded machine to dial and send the first
	// join (answered unavailable only while the lease lasts).
	if _, err := dir.Claim(ctxT(t), "raid-ghost", "dead", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	b := dial(t, n2, sessiontest.Login(t, store, 2), nil)
	ctx := ctxT(t)
	if _, err := b.RoomJoin(ctx, "raid-ghost"); protocol.CodeOf(err) != protocol.CodeUnavailable {
		t.Fatalf("join of a room whose owner is silent: %v, want unavailable", err)
	}
	deadline := time.Now().Add(wait)
	for {
		_, err := b.RoomJoin(ctx, "raid-ghost")
		if protocol.CodeOf(err) == protocol.CodeNotMember {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("room still there after its lease: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestRoomMatchmaking(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	n := startHub(t, store, realtime.Config{})
	startRooms(t, n, realtime.NewMemoryDirectory(realtime.DirectoryConfig{}), realtime.RoomConfig{MatchSize: 2})
	a := dial(t, n, sessiontest.Login(t, store, 1), nil)
	b := dial(t, n, sessiontest.Login(t, store, 2), nil)
	ctx := ctxT(t)
	room, err := a.RoomMatch(ctx, "raid")
	if err != nil || room != "" {
		t.Fatalf("first match = %q, %v; want queued", room, err)
	}
	room, err = b.RoomMatch(ctx, "raid")
	if err != nil || room == "" {
		t.Fatalf("second match = %q, %v; want a room", room, err)
	}
	joinMatched(ctx, t, room, a, b)
	snapUntil(t, a, func(s raidState) bool { return len(s.Players) == 2 })
}

func TestFIFOMatchmaker(t *testing.T) {
	m := realtime.NewFIFOMatchmaker(3, 4)
	ctx := context.Background()
	add := func(kind string, u int64) []int64 {
		t.Helper()
		g, err := m.Add(ctx, kind, u)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	add("pvp", 1)
	if add("pvp", 1) != nil || add("pvp", 2) != nil || add("raid", 3) != nil { // 1 twice counts once
		t.Fatal("a group before 3 players")
	}
	m.Remove(ctx, 2)
	if add("pvp", 4) != nil {
		t.Fatal("a removed player counted")
	}
	if g := add("pvp", 5); !slices.Equal(g, []int64{1, 4, 5}) {
		t.Fatalf("group %v", g)
	}
	// The queue is bounded per kind.
	small := realtime.NewFIFOMatchmaker(10, 2)
	for u := range int64(2) {
		if _, err := small.Add(ctx, "pvp", u); err != nil {
			t.Fatal(err)
		}
	}
	_, err := small.Add(ctx, "pvp", 9)
	wantCode(t, err, protocol.CodeRateLimited)
	if _, err := small.Add(ctx, "raid", 9); err != nil {
		t.Fatalf("another kind's queue: %v", err)
	}
}

// A node that shuts down reports its players as disconnected to the rooms
// of other nodes: their grace periods start and they are removed after it.
func TestRoomMemberNodeShutdownStartsGrace(t *testing.T) {
	t.Parallel() // waits out grace periods and leases
	rr := startRemoteMember(t, realtime.NewMemoryDirectory(realtime.DirectoryConfig{}), realtime.RoomConfig{Grace: 500 * time.Millisecond})
	if err := rr.nodes[1].hub.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if code := waitClosed(t, rr.b); code != protocol.CodeGoingAway {
		t.Fatalf("closed with %v", code)
	}
	snapUntil(t, rr.a, func(s raidState) bool { return slices.Equal(players(s), []int64{1}) })
}

// A member connected through another node stays a member while that node's
// heartbeats come (longer than the grace period); when the node dies
// silently the member is removed after the grace.
func TestRoomMemberNodeCrash(t *testing.T) {
	t.Parallel() // waits out grace periods and leases
	const grace = 1500 * time.Millisecond
	rr := startRemoteMember(t, realtime.NewMemoryDirectory(realtime.DirectoryConfig{}), realtime.RoomConfig{Grace: grace})
	until := time.Now().Add(2 * grace)
	for time.Now().Before(until) {
		if _, st := nextSnap(t, rr.a); len(st.Players) != 2 {
			t.Fatalf("a remote member with a live node was dropped: %+v", st)
		}
	}
	realtime.CrashRooms(rr.rooms[1])
	snapUntil(t, rr.a, func(s raidState) bool { return slices.Equal(players(s), []int64{1}) })
}

// remoteMember is a raid on node n1 created by user 1 (a, on n1) and
// joined by user 2 (b) through node n2: two nodes on a memory broker.
type remoteMember struct {
	store session.Store
	nodes []*node
	rooms []*realtime.Rooms
	a, b  *realtime.Client
	room  string
}

// startRemoteMember starts it with dir and cfg on both nodes, and returns
// once a's snapshots show both players.
func startRemoteMember(t *testing.T, dir realtime.Directory, cfg realtime.RoomConfig) remoteMember {
	t.Helper()
	rr := remoteMember{store: sessiontest.NewStore(t, nil)}
	rr.nodes, rr.rooms = roomNodes(t, rr.store, memoryBrokers(t, 2), []realtime.Directory{dir}, cfg)
	rr.a = dial(t, rr.nodes[0], sessiontest.Login(t, rr.store, 1), nil)
	rr.b = dial(t, rr.nodes[1], sessiontest.Login(t, rr.store, 2), nil)
	ctx := ctxT(t)
	j, err := rr.a.RoomCreate(ctx, "raid", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rr.b.RoomJoin(ctx, j.Room); err != nil {
		t.Fatal(err)
	}
	rr.room = j.Room
	snapUntil(t, rr.a, func(s raidState) bool { return len(s.Players) == 2 })
	return rr
}

// countingDirectory counts the Lookups of the Directory it wraps.
type countingDirectory struct {
	realtime.Directory
	lookups atomic.Int64
}

func (d *countingDirectory) Lookup(ctx context.Context, room string) (realtime.Lease, error) {
	d.lookups.Add(1)
	return d.Directory.Lookup(ctx, room)
}

func wantLookups(t *testing.T, d *countingDirectory, want int64) {
	t.Helper()
	if n := d.lookups.Load(); n != want {
		t.Fatalf("%d directory lookups, want %d", n, want)
	}
}

// A member's requests to a room of another node look its owner up in the
// Directory once, not once per request.
func TestRoomOwnerCached(t *testing.T) {
	dir := &countingDirectory{Directory: realtime.NewMemoryDirectory(realtime.DirectoryConfig{})}
	// Grace long enough that no heartbeat (a lookup too) runs during the
	// test; the cache outlives the test.
	rr := startRemoteMember(t, dir, realtime.RoomConfig{Grace: time.Hour, OwnerCacheTTL: time.Hour})
	wantLookups(t, dir, 1) // b's room.join
	ctx := ctxT(t)
	for range 20 {
		if err := rr.b.RoomInput(ctx, rr.room, map[string]int{"damage": 1}); err != nil {
			t.Fatal(err)
		}
	}
	snapUntil(t, rr.a, func(s raidState) bool { return s.HP == 1_000_000-20 })
	if err := rr.b.RoomLeave(ctx, rr.room); err != nil {
		t.Fatal(err)
	}
	wantLookups(t, dir, 1)
	snapUntil(t, rr.a, func(s raidState) bool { return slices.Equal(players(s), []int64{1}) })
}

// A cached owner that no longer runs the room answers so without applying
// the request, and the member's node looks the room up again once: when
// the room ended and a room with the same id runs on another node, the
// request reaches that room; when the room ended for good, the member is
// told not_member.
func TestRoomOwnerCacheReResolves(t *testing.T) {
	store := sessiontest.NewStore(t, nil)
	dir := &countingDirectory{Directory: realtime.NewMemoryDirectory(realtime.DirectoryConfig{})}
	ns, rs := roomNodes(t, store, memoryBrokers(t, 3), []realtime.Directory{dir},
		realtime.RoomConfig{Grace: time.Hour, OwnerCacheTTL: time.Hour, NewLogic: func(string, json.RawMessage) (realtime.RoomLogic, error) {
			return realtime.NewRaidBoss(5, 8), nil // a room ends after 5 damage
		}})
	ctx := ctxT(t)
	const id = "raid-moving"
	// kill creates the room on node i and ends it there through user u
	// connected to that node.
	create := func(i int) {
		t.Helper()
		for {
			err := realtime.CreateRoomID(ctx, rs[i], id, "raid")
			if err == nil {
				return
			}
			if !errors.Is(err, realtime.ErrRoomTaken) || ctx.Err() != nil {
				t.Fatalf("create %q on %s: %v", id, rs[i].Node(), err)
			}
			time.Sleep(10 * time.Millisecond) // the last owner releases its lease after room.end
		}
	}
	end := func(c *realtime.Client) {
		t.Helper()
		if _, err := c.RoomJoin(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := c.RoomInput(ctx, id, map[string]int{"damage": 5}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.NextTopic(ctx, realtime.TopicRoomEnd); err != nil {
			t.Fatal(err)
		}
	}
	// b, through n2, joins and leaves the room on n1: n2 caches n1 as its
	// owner and no longer follows the room (it will not see its room.end).
	b := dial(t, ns[1], sessiontest.Login(t, store, 2), nil)
	create(0)
	if _, err := b.RoomJoin(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := b.RoomLeave(ctx, id); err != nil {
		t.Fatal(err)
	}
	wantLookups(t, dir, 1)
	// The room ends on n1; a room with the same id starts on n3.
	end(dial(t, ns[0], sessiontest.Login(t, store, 1), nil))
	create(2)
	if got := realtime.CachedOwner(rs[1], id); got != "n1" {
		t.Fatalf("n2 caches owner %q, want the stale n1", got)
	}
	// b's join goes to n1, which has no such room; n2 looks it up again
	// and joins the room on n3.
	jb, err := b.RoomJoin(ctx, id)
	if err != nil || jb.Rejoined {
		t.Fatalf("join of the room on n3 = %+v, %v", jb, err)
	}
	wantLookups(t, dir, 2)
	if got := realtime.CachedOwner(rs[1], id); got != "n3" {
		t.Fatalf("n2 caches owner %q, want n3", got)
	}
	if err := b.RoomInput(ctx, id, map[string]int{"damage": 1}); err != nil {
		t.Fatal(err)
	}
	if st := snapUntil(t, b, func(s raidState) bool { return len(s.Hits) > 0 }); st.HP != 4 {
		t.Fatalf("the room on n3: %+v", st)
	}
	if err := b.RoomLeave(ctx, id); err != nil {
		t.Fatal(err)
	}
	// The room on n3 ends for good: b's join is refused, after one more
	// lookup.
	end(dial(t, ns[2], sessiontest.Login(t, store, 3), nil))
	if got := realtime.CachedOwner(rs[1], id); got != "n3" {
		t.Fatalf("n2 caches owner %q, want the stale n3", got)
	}
	_, err = b.RoomJoin(ctx, id)
	wantCode(t, err, protocol.CodeNotMember)
	wantLookups(t, dir, 3)
	if got := realtime.CachedOwner(rs[1], id); got != "" {
		t.Fatalf("n2 still caches owner %q of an ended room", got)
	}
}
