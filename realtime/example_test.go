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

// A hub on a memory broker: two players join world chat, one talks, both
// hear it; the server pushes a notice to one of them.
func ExampleHub() {
	ctx := context.Background()
	store := session.NewMemoryStore(session.Config{})
	defer store.Close()
	hub, err := realtime.NewHub(store, realtime.Config{})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(hub) // a real server mounts it at, say, /v1/ws
	defer srv.Close()
	defer hub.Shutdown(ctx)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	var clients []*realtime.Client
	for _, user := range []int64{101, 202} {
		sess, _ := store.Create(ctx, session.CreateParams{UserKey: user, Country: "KR"})
		c, err := realtime.Dial(ctx, url, sess.Token, nil)
		if err != nil {
			panic(err)
		}
		defer c.Close()
		joined, _ := c.Subscribe(ctx, realtime.ChannelWorld, nil)
		fmt.Println(user, "joined", joined.Channel)
		clients = append(clients, c)
	}
	if _, err := clients[0].Publish(ctx, "world.0", "hello"); err != nil {
		panic(err)
	}
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, _ := clients[0].Next(wait)
	fmt.Println("101 got", p.Topic, p.Channel, p.ID, string(p.Payload))
	p, _ = clients[1].Next(wait)
	fmt.Println("202 got", p.Topic, p.Channel, p.ID, string(p.Payload))
	// Pushes of different channels are not ordered with each other, so this
	// one is sent after the chat arrived.
	if err := hub.PushUser(ctx, 202, "mail", json.RawMessage(`{"unread":1}`)); err != nil {
		panic(err)
	}
	p, _ = clients[1].Next(wait)
	fmt.Println("202 got", p.Topic, p.Channel, string(p.Payload))
	// Output:
	// 101 joined world.0
	// 202 joined world.0
	// 101 got chat world.0 1 {"from":101,"data":"hello"}
	// 202 got chat world.0 1 {"from":101,"data":"hello"}
	// 202 got mail user.202 {"unread":1}
}

// The memory broker keeps a short history per channel, so a client that
// missed publications asks for what came after the last offset it saw.
func ExampleMemoryBroker() {
	ctx := context.Background()
	b := realtime.NewMemoryBroker(realtime.MemoryBrokerConfig{})
	defer b.Close()
	opts := realtime.PublishOptions{HistorySize: 100, HistoryTTL: 10 * time.Minute}
	var seen realtime.StreamPosition
	for i, msg := range []string{"a", "b", "c"} {
		pos, _ := b.Publish(ctx, "guild.7", []byte(msg), opts)
		if i == 0 {
			seen = pos // the client saw only the first
		}
	}
	res, _ := b.History(ctx, "guild.7", seen, 10)
	for _, p := range res.Publications {
		fmt.Println(p.Offset, string(p.Data))
	}
	fmt.Println("now at", res.Position.Offset)
	// Output:
	// 2 b
	// 3 c
	// now at 3
}
