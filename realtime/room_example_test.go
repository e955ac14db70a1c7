package realtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
)

// The demo raid boss, driven by hand as a room's goroutine drives it:
// inputs, then a tick that returns the snapshot.
func ExampleRaidBoss() {
	boss := realtime.NewRaidBoss(150, 4)
	_ = boss.Join(1)
	_ = boss.Join(2)
	boss.Input(1, json.RawMessage(`{"damage":40}`))
	boss.Input(2, json.RawMessage(`{"damage":500}`)) // clamped to MaxDamage (100)
	snap, done := boss.Tick(time.Now(), 100*time.Millisecond)
	fmt.Println(string(snap), done)
	boss.Input(1, json.RawMessage(`{"damage":30}`))
	snap, done = boss.Tick(time.Now(), 100*time.Millisecond)
	fmt.Println(string(snap), done)
	// Output:
	// {"hp":10,"players":[{"user":1,"damage":40},{"user":2,"damage":100}],"hits":[{"user":1,"damage":40},{"user":2,"damage":100}]} false
	// {"hp":0,"players":[{"user":1,"damage":50},{"user":2,"damage":100}],"hits":[{"user":1,"damage":10}]} true
}

// Rooms on a hub: a player creates a raid, another joins it, both hit the
// boss; snapshots come after each tick until the boss falls and the room
// ends. With several hubs, give each its Rooms on the shared Broker and a
// shared Directory (RedisDirectory): players on any node join the room.
func ExampleNewRooms() {
	ctx := context.Background()
	store := session.NewMemoryStore(session.Config{})
	defer store.Close()
	hub, err := realtime.NewHub(store, realtime.Config{})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(hub)
	defer srv.Close()
	defer hub.Shutdown(ctx) // closes the rooms too
	_, err = realtime.NewRooms(hub, realtime.NewMemoryDirectory(realtime.DirectoryConfig{}), realtime.RoomConfig{
		TickRate: 20,
		Grace:    30 * time.Second,
		NewLogic: func(kind string, params json.RawMessage) (realtime.RoomLogic, error) {
			return realtime.NewRaidBoss(150, 4), nil
		},
	})
	if err != nil {
		panic(err)
	}
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	dial := func(user int64) *realtime.Client {
		sess, _ := store.Create(ctx, session.CreateParams{UserKey: user})
		c, err := realtime.Dial(ctx, url, sess.Token, nil)
		if err != nil {
			panic(err)
		}
		return c
	}
	alice, bob := dial(1), dial(2)
	defer alice.Close()
	defer bob.Close()

	created, err := alice.RoomCreate(ctx, "raid", nil)
	if err != nil {
		panic(err)
	}
	joined, err := bob.RoomJoin(ctx, created.Room)
	if err != nil {
		panic(err)
	}
	fmt.Println("bob joined, rejoined:", joined.Rejoined)
	_ = alice.RoomInput(ctx, created.Room, map[string]int{"damage": 100})
	_ = bob.RoomInput(ctx, created.Room, map[string]int{"damage": 80})

	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		raw, err := bob.NextTopic(wait, realtime.TopicRoomSnapshot)
		if err != nil {
			panic(err)
		}
		var s struct{ State struct{ HP int } }
		_ = json.Unmarshal(raw, &s)
		if s.State.HP == 0 {
			fmt.Println("boss down")
			break
		}
	}
	raw, _ := bob.NextTopic(wait, realtime.TopicRoomEnd)
	var end struct{ Reason string }
	_ = json.Unmarshal(raw, &end)
	fmt.Println("room ended:", end.Reason)
	// Output:
	// bob joined, rejoined: false
	// boss down
	// room ended: done
}
