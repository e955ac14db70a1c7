package realtime_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
)

// Setups shared by the tests of several nodes: brokers, Redis instances
// under one fresh prefix, and nodes with rooms.

// memoryBrokers returns n brokers of one in-process backend (a
// MemoryBroker and its peers), standing for n nodes; closed when the test
// ends.
func memoryBrokers(tb testing.TB, n int) []realtime.Broker {
	root := realtime.NewMemoryBroker(realtime.MemoryBrokerConfig{})
	bs := []realtime.Broker{root}
	for len(bs) < n {
		bs = append(bs, root.Peer())
	}
	tb.Cleanup(func() {
		for i := len(bs) - 1; i >= 0; i-- { // the peers before their root
			_ = bs[i].Close()
		}
	})
	return bs
}

// redisInstances makes n instances of a Redis backend with mk, all under
// one fresh key prefix of c: n nodes sharing one backend.
func redisInstances[T any](tb testing.TB, c redis.UniversalClient, n int, mk func(prefix string) (T, error)) []T {
	tb.Helper()
	prefix := testredis.Prefix(tb, c)
	out := make([]T, n)
	for i := range out {
		v, err := mk(prefix)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = v
	}
	return out
}

// newRedisBrokers returns n RedisBrokers on c under prefix, closed when the
// test ends (after the hubs started later: cleanups run last first).
func newRedisBrokers(tb testing.TB, c redis.UniversalClient, prefix string, n int) []realtime.Broker {
	tb.Helper()
	bs := make([]realtime.Broker, n)
	for i := range bs {
		b, err := realtime.NewRedisBroker(c, realtime.RedisBrokerConfig{Prefix: prefix})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = b.Close() })
		bs[i] = b
	}
	return bs
}

// redisSessions returns a session RedisStore on c under prefix, closed
// when the test ends.
func redisSessions(tb testing.TB, c redis.UniversalClient, prefix string) session.Store {
	tb.Helper()
	store, err := session.NewRedisStore(session.Single(c), session.Config{Prefix: prefix})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = store.Close() })
	return store
}

// deadRedis returns a client of an address nothing listens on, without
// retries (a Redis server that is down), closed when the test ends.
func deadRedis(t *testing.T) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// killPubSub kills (CLIENT KILL ID) the subscribed connection that the
// client named name holds on the Redis server of admin.
func killPubSub(t *testing.T, ctx context.Context, admin *redis.Client, name string) {
	t.Helper()
	list, err := admin.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for line := range strings.SplitSeq(list, "\n") {
		if strings.Contains(line, " name="+name+" ") && !strings.Contains(line, " sub=0 ") {
			for f := range strings.FieldsSeq(line) {
				if v, ok := strings.CutPrefix(f, "id="); ok {
					id = v
				}
			}
		}
	}
	if id == "" {
		t.Fatalf("no pub/sub connection named %s in CLIENT LIST:\n%s", name, list)
	}
	if err := admin.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
		t.Fatalf("CLIENT KILL ID %s: %v", id, err)
	}
}

// roomNodes starts one hub with Rooms per broker, all on store: node i is
// named "n<i+1>" and uses dirs[i % len(dirs)] (one directory: shared). cfg
// is every node's RoomConfig (its Node is set here).
func roomNodes(t *testing.T, store session.Store, brokers []realtime.Broker, dirs []realtime.Directory, cfg realtime.RoomConfig) ([]*node, []*realtime.Rooms) {
	t.Helper()
	ns := make([]*node, len(brokers))
	rs := make([]*realtime.Rooms, len(brokers))
	for i, b := range brokers {
		ns[i] = startHub(t, store, realtime.Config{Broker: b})
		cfg.Node = "n" + string(rune('1'+i))
		rs[i] = startRooms(t, ns[i], dirs[i%len(dirs)], cfg)
	}
	return ns, rs
}

// joinMatched checks that each client got room.matched for room, a raid of
// players 1 and 2, and joins it.
func joinMatched(ctx context.Context, t *testing.T, room string, clients ...*realtime.Client) {
	t.Helper()
	for _, c := range clients {
		raw, err := c.NextTopic(ctx, realtime.TopicRoomMatched)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Room    string
			Kind    string
			Players []int64
		}
		if err := json.Unmarshal(raw, &m); err != nil || m.Room != room || m.Kind != "raid" || !slices.Equal(m.Players, []int64{1, 2}) {
			t.Fatalf("room.matched %s", raw)
		}
		if _, err := c.RoomJoin(ctx, room); err != nil {
			t.Fatal(err)
		}
	}
}
