package realtime_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/session/sessiontest"
)

// BenchmarkRoomInput: one room.input round trip (websocket client →
// hub → room goroutine → reply), from a client on the room's node (local)
// and from a client on a second node, whose input crosses a MemoryBroker
// to the owner and whose reply crosses back (remote). The ratio is the
// cost of crossing nodes, without a network. The remote node knows the
// owner from the join (RoomConfig.OwnerCacheTTL, 1 s by default): at most
// one Directory lookup a second.
func BenchmarkRoomInput(b *testing.B) {
	benchRoomInput(b, sessiontest.NewStore(b, nil), memoryBrokers(b, 2), realtime.NewMemoryDirectory(realtime.DirectoryConfig{}))
}

// BenchmarkRoomInputRedis is BenchmarkRoomInput with RedisBrokers and a
// RedisDirectory (MADANG_REDIS_ADDR).
func BenchmarkRoomInputRedis(b *testing.B) {
	c := testredis.Client(b)
	prefix := testredis.Prefix(b, c)
	dir, err := realtime.NewRedisDirectory(c, realtime.DirectoryConfig{Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	benchRoomInput(b, sessiontest.NewStore(b, nil), newRedisBrokers(b, c, prefix, 2), dir)
}

func benchRoomInput(b *testing.B, store session.Store, brokers []realtime.Broker, dir realtime.Directory) {
	cfg := realtime.Config{CommandRate: 1e9, CommandBurst: 1 << 30}
	var nodes [2]*node
	for i, br := range brokers {
		cfg.Broker = br
		nodes[i] = startHubTB(b, store, cfg)
		r, err := realtime.NewRooms(nodes[i].hub, dir, realtime.RoomConfig{NewLogic: raidLogic, InputQueueLen: 4096})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = r.Close() })
	}
	owner := dialTB(b, nodes[0], sessiontest.Login(b, store, 1))
	remote := dialTB(b, nodes[1], sessiontest.Login(b, store, 2))
	ctx := b.Context()
	j, err := owner.RoomCreate(ctx, "raid", nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := remote.RoomJoin(ctx, j.Room); err != nil {
		b.Fatal(err)
	}
	in := map[string]int{"damage": 1}
	b.Run("local", func(b *testing.B) {
		for b.Loop() {
			if err := owner.RoomInput(ctx, j.Room, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("remote", func(b *testing.B) {
		for b.Loop() {
			if err := remote.RoomInput(ctx, j.Room, in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func startHubTB(tb testing.TB, store session.Store, cfg realtime.Config) *node {
	h, err := realtime.NewHub(store, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
		srv.Close()
	})
	return &node{hub: h, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http")}
}

func dialTB(tb testing.TB, n *node, sess *session.Session) *realtime.Client {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := realtime.Dial(ctx, n.url, sess.Token, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}
