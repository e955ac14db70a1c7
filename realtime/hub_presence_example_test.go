package realtime_test

import (
	"context"
	"fmt"

	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
)

// Nodes sharing a Presence (a RedisPresence in production) see each
// other's users: here another node's heartbeat reported user 7 in world
// chat partition 0.
func ExampleHub_Online() {
	ctx := context.Background()
	store := session.NewMemoryStore(session.Config{})
	defer store.Close()
	presence := realtime.NewMemoryPresence(realtime.PresenceConfig{})
	hub, err := realtime.NewHub(store, realtime.Config{Presence: presence, NodeID: "node-a"})
	if err != nil {
		panic(err)
	}
	defer hub.Shutdown(ctx)

	// What node-b's hub does for each of its connections.
	_ = presence.Touch(ctx, realtime.PresenceEntry{
		PresenceConn: realtime.PresenceConn{UserKey: 7, Node: "node-b", ConnID: "1"},
		Channels:     []string{"world.0"},
	})

	online, nodes, _ := hub.Online(ctx, 7)
	count, _ := hub.OnlineCount(ctx, "world.0")
	fmt.Println(online, nodes, count)
	// Output: true [node-b] 1
}
