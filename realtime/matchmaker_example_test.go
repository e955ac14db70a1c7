package realtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
	"github.com/redis/go-redis/v9"
)

// Players waiting for a kind form groups of Size in arrival order; a player
// asking twice keeps its place.
func ExampleFIFOMatchmaker() {
	ctx := context.Background()
	m := realtime.NewFIFOMatchmaker(3, 0)
	for _, u := range []int64{7, 8, 8, 9} {
		group, _ := m.Add(ctx, "raid", u)
		fmt.Println(u, group)
	}
	// Output:
	// 7 []
	// 8 []
	// 8 []
	// 9 [7 8 9]
}

// Every realtime node gives its Rooms a RedisMatchmaker on the shared
// Redis: players asking room.match on different nodes meet in one room,
// created by the node whose player completed the group; every member gets
// room.matched through the broker. (Needs a Redis at 127.0.0.1:6379, so it
// is compiled but not run.)
func ExampleNewRedisMatchmaker() {
	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"}) // or a *redis.ClusterClient
	defer rc.Close()

	mm, err := realtime.NewRedisMatchmaker(rc, realtime.RedisMatchmakerConfig{
		Prefix:  "game:rt:",
		Size:    4,                // a raid party; the same on every node
		WaitTTL: 15 * time.Second, // a dead node's players leave the queues after it
	})
	if err != nil {
		panic(err)
	}
	// Closed after the hub (Hub.Shutdown): this node's waiting players
	// leave the queues at once.
	defer mm.Close(ctx)

	broker, _ := realtime.NewRedisBroker(rc, realtime.RedisBrokerConfig{Prefix: "game:rt:"})
	dir, _ := realtime.NewRedisDirectory(rc, realtime.DirectoryConfig{Prefix: "game:rt:"})
	store, _ := session.NewRedisStore(session.Single(rc), session.Config{Prefix: "game:"}) // the game server's sessions
	defer store.Close()
	hub, _ := realtime.NewHub(store, realtime.Config{Broker: broker})
	defer hub.Shutdown(ctx)
	_, _ = realtime.NewRooms(hub, dir, realtime.RoomConfig{
		Matchmaker: mm,
		NewLogic: func(kind string, _ json.RawMessage) (realtime.RoomLogic, error) {
			return realtime.NewRaidBoss(10_000, 4), nil
		},
	})

	// The matchmaker alone: four players, whichever nodes they ask on.
	for u := int64(1); u <= 4; u++ {
		group, _ := mm.Add(ctx, "raid", u)
		fmt.Println(u, group) // 4 [1 2 3 4]: the caller creates the room
	}
}
