package realtime_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/realtime/realtimetest"
	"github.com/madang-io/madang/session/sessiontest"
)

func TestFIFOMatchmakerConformance(t *testing.T) {
	realtimetest.RunMatchmakerTests(t, func(t *testing.T, cfg realtimetest.MatchmakerConfig) []realtime.Matchmaker {
		return []realtime.Matchmaker{realtime.NewFIFOMatchmaker(cfg.Size, cfg.MaxQueue)}
	})
}

// redisMatchmakers makes n RedisMatchmakers on c under one fresh prefix
// (n nodes), closed when the test ends.
func redisMatchmakers(t testing.TB, c redis.UniversalClient, n int, cfg realtime.RedisMatchmakerConfig) []*realtime.RedisMatchmaker {
	t.Helper()
	return redisInstances(t, c, n, func(prefix string) (*realtime.RedisMatchmaker, error) {
		cfg.Prefix = prefix
		m, err := realtime.NewRedisMatchmaker(c, cfg)
		if err == nil {
			t.Cleanup(func() { _ = m.Close(context.Background()) })
		}
		return m, err
	})
}

func redisMatchmakerFactory(c redis.UniversalClient) func(t *testing.T, cfg realtimetest.MatchmakerConfig) []realtime.Matchmaker {
	return func(t *testing.T, cfg realtimetest.MatchmakerConfig) []realtime.Matchmaker {
		var out []realtime.Matchmaker
		for _, m := range redisMatchmakers(t, c, 3, realtime.RedisMatchmakerConfig{Size: cfg.Size, MaxQueue: cfg.MaxQueue}) {
			out = append(out, m)
		}
		return out
	}
}

func TestRedisMatchmaker(t *testing.T) {
	realtimetest.RunMatchmakerTests(t, redisMatchmakerFactory(testredis.Client(t)))
}

func TestRedisMatchmakerCluster(t *testing.T) {
	realtimetest.RunMatchmakerTests(t, redisMatchmakerFactory(testredis.Cluster(t)))
}

func TestRedisMatchmakerExpiry(t *testing.T) {
	t.Run("Single", func(t *testing.T) { t.Parallel(); testMatchExpiry(t, testredis.Client(t)) })
	t.Run("Cluster", func(t *testing.T) { t.Parallel(); testMatchExpiry(t, testredis.Cluster(t)) })
}

// testMatchExpiry: the players of a node that died (no refreshes) drop out
// of the queues after WaitTTL; those of a live node stay however long they
// wait; a player a live node queued again (it reconnected there) stays.
func testMatchExpiry(t *testing.T, c redis.UniversalClient) {
	const ttl = time.Second
	ms := redisMatchmakers(t, c, 3, realtime.RedisMatchmakerConfig{Size: 3, WaitTTL: ttl})
	dead, live, other := ms[0], ms[1], ms[2]
	ctx := ctxT(t)
	mustQueue := func(m realtime.Matchmaker, kind string, u int64) {
		t.Helper()
		if g, err := m.Add(ctx, kind, u); err != nil || g != nil {
			t.Fatalf("Add(%q, %d) = %v, %v; want queued", kind, u, g, err)
		}
	}
	mustQueue(dead, "raid", 1)
	mustQueue(live, "raid", 2)
	mustQueue(dead, "pvp", 5)
	mustQueue(live, "pvp", 5) // queued again through a live node: it owns the entry now
	realtime.HaltMatchmaker(dead)
	time.Sleep(ttl * 5 / 2) // past 1's deadline; live refreshed 2 and 5 every ttl/3
	mustQueue(other, "raid", 3)
	if g, err := other.Add(ctx, "raid", 4); err != nil || !slices.Equal(g, []int64{2, 3, 4}) {
		t.Fatalf("group %v, %v; want [2 3 4] (1 expired, 2 kept)", g, err)
	}
	mustQueue(other, "pvp", 6)
	if g, err := other.Add(ctx, "pvp", 7); err != nil || !slices.Equal(g, []int64{5, 6, 7}) {
		t.Fatalf("group %v, %v; want [5 6 7]", g, err)
	}
	// The live node learns at its next refresh that 2 and 5 were matched.
	for deadline := time.Now().Add(wait); live.Waiting() != 0; time.Sleep(ttl / 10) {
		if time.Now().After(deadline) {
			t.Fatalf("the live node still refreshes %d matched players", live.Waiting())
		}
	}
}

// A node's Remove takes out only the entries it queued: the late Remove of
// the node a player left does not undo the room.match it sent through its
// new node. Close removes the node's waiting players.
func TestRedisMatchmakerOwnership(t *testing.T) {
	c := testredis.Client(t)
	ms := redisMatchmakers(t, c, 3, realtime.RedisMatchmakerConfig{Size: 2})
	left, now, other := ms[0], ms[1], ms[2]
	ctx := ctxT(t)
	for _, m := range []*realtime.RedisMatchmaker{left, now} {
		if g, err := m.Add(ctx, "raid", 1); err != nil || g != nil {
			t.Fatalf("Add = %v, %v", g, err)
		}
	}
	left.Remove(ctx, 1)
	if g, err := other.Add(ctx, "raid", 2); err != nil || !slices.Equal(g, []int64{1, 2}) {
		t.Fatalf("group %v, %v; want [1 2]", g, err)
	}
	// Close removes what the node queued; then Add answers ErrClosed.
	if g, err := left.Add(ctx, "raid", 3); err != nil || g != nil {
		t.Fatalf("Add = %v, %v", g, err)
	}
	if err := left.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if g, err := other.Add(ctx, "raid", 4); err != nil || g != nil {
		t.Fatalf("Add after the other's node closed = %v, %v; want queued", g, err)
	}
	if _, err := left.Add(ctx, "raid", 5); !errors.Is(err, realtime.ErrClosed) {
		t.Fatalf("Add after Close: %v", err)
	}
	if err := left.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestRedisMatchmakerLimits(t *testing.T) {
	if _, err := realtime.NewRedisMatchmaker(nil, realtime.RedisMatchmakerConfig{}); err == nil {
		t.Error("nil client accepted")
	}
	if _, err := realtime.NewRedisMatchmaker(deadRedis(t), realtime.RedisMatchmakerConfig{Prefix: "a{"}); err == nil {
		t.Error("prefix with a brace accepted")
	}
	dm, err := realtime.NewRedisMatchmaker(deadRedis(t), realtime.RedisMatchmakerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer dm.Close(context.Background())
	ctx := context.Background()
	if _, err := dm.Add(ctx, "raid", 1); !errors.Is(err, realtime.ErrUnavailable) {
		t.Errorf("Add on a dead server: %v, want ErrUnavailable", err)
	}
	dm.Remove(ctx, 1) // logged, not blocking
	for _, kind := range []string{"", "a{b}", "a b", "012345678901234567890123456789012"} {
		if _, err := dm.Add(ctx, kind, 1); !errors.Is(err, realtime.ErrMatchKind) || protocol.CodeOf(err) != protocol.CodeBadRequest {
			t.Errorf("kind %q: %v, want ErrMatchKind", kind, err)
		}
	}

	c := testredis.Client(t)
	m := redisMatchmakers(t, c, 1, realtime.RedisMatchmakerConfig{Size: 2, MaxKinds: 2})[0]
	for _, kind := range []string{"a", "b", "a"} {
		if _, err := m.Add(ctx, kind, 1); err != nil {
			t.Fatalf("Add(%q): %v", kind, err)
		}
	}
	if _, err := m.Add(ctx, "c", 1); !errors.Is(err, realtime.ErrMatchTooManyKinds) {
		t.Fatalf("a third kind: %v, want ErrMatchTooManyKinds", err)
	}
	if _, err := m.Add(ctx, "c", 2); err != nil {
		t.Fatalf("another player: %v", err)
	}
	m.Remove(ctx, 1)
	if _, err := m.Add(ctx, "c", 1); err != nil {
		t.Fatalf("after Remove: %v", err)
	}
}

func TestRoomMatchAcrossNodesRedis(t *testing.T) {
	c := testredis.Client(t)
	testRoomMatchAcrossNodes(t, c, testredis.Prefix(t, c))
}

func TestRoomMatchAcrossNodesRedisCluster(t *testing.T) {
	c := testredis.Cluster(t)
	testRoomMatchAcrossNodes(t, c, testredis.Prefix(t, c))
}

// testRoomMatchAcrossNodes: players connected to different nodes, each
// with its own RedisMatchmaker, room.match the same kind and meet in one
// room: both get room.matched (the other node's player through the
// broker), join it and receive its snapshots.
func testRoomMatchAcrossNodes(t *testing.T, c redis.UniversalClient, prefix string) {
	store := redisSessions(t, c, prefix)
	brokers := newRedisBrokers(t, c, prefix, 2)
	dir, err := realtime.NewRedisDirectory(c, realtime.DirectoryConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*node
	for i, b := range brokers {
		mm, err := realtime.NewRedisMatchmaker(c, realtime.RedisMatchmakerConfig{Prefix: prefix, Size: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = mm.Close(context.Background()) })
		n := startHub(t, store, realtime.Config{Broker: b})
		startRooms(t, n, dir, realtime.RoomConfig{Node: "n" + string(rune('1'+i)), Matchmaker: mm})
		nodes = append(nodes, n)
	}
	a := dial(t, nodes[0], sessiontest.Login(t, store, 1), nil)
	b := dial(t, nodes[1], sessiontest.Login(t, store, 2), nil)
	ctx := ctxT(t)
	if room, err := a.RoomMatch(ctx, "raid"); err != nil || room != "" {
		t.Fatalf("first match = %q, %v; want queued", room, err)
	}
	room, err := b.RoomMatch(ctx, "raid")
	if err != nil || room == "" {
		t.Fatalf("second match (other node) = %q, %v; want a room", room, err)
	}
	if l, err := dir.Lookup(ctx, room); err != nil || l.Node != "n2" {
		t.Fatalf("room %q on %+v, %v; want n2 (its Add completed the group)", room, l, err)
	}
	joinMatched(ctx, t, room, a, b)
	if err := a.RoomInput(ctx, room, map[string]int{"damage": 3}); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*realtime.Client{a, b} {
		snapUntil(t, cl, func(s raidState) bool {
			return len(s.Players) == 2 && slices.ContainsFunc(s.Players, func(p realtime.RaidHit) bool { return p.User == 1 && p.Damage == 3 })
		})
	}

	// A player who queued on node 1 and disconnected leaves the queue: the
	// next player, on node 2, waits instead of being matched with it.
	gone := dial(t, nodes[0], sessiontest.Login(t, store, 3), nil)
	if room, err := gone.RoomMatch(ctx, "raid"); err != nil || room != "" {
		t.Fatalf("match = %q, %v; want queued", room, err)
	}
	queue := prefix + "{mm:raid}:q"
	if n, err := c.ZCard(ctx, queue).Result(); err != nil || n != 1 {
		t.Fatalf("%s holds %d, %v; want 1 (the key layout changed?)", queue, n, err)
	}
	gone.Close()
	for deadline := time.Now().Add(wait); ; time.Sleep(10 * time.Millisecond) {
		n, err := c.ZCard(ctx, queue).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the disconnected player is still queued")
		}
	}
	d := dial(t, nodes[1], sessiontest.Login(t, store, 4), nil)
	if room, err := d.RoomMatch(ctx, "raid"); err != nil || room != "" {
		t.Fatalf("match after the other player left = %q, %v; want queued", room, err)
	}
}
