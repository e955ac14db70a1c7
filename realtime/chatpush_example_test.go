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

// A Go client decodes chat and whisper pushes with ChatPush.
func ExampleChatPush() {
	ctx := context.Background()
	store := session.NewMemoryStore(session.Config{})
	defer store.Close()
	hub, err := realtime.NewHub(store, realtime.Config{})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(hub)
	defer srv.Close()
	defer hub.Shutdown(ctx)
	sess, _ := store.Create(ctx, session.CreateParams{UserKey: 7})
	c, err := realtime.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), sess.Token, nil)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if _, err := c.Subscribe(ctx, "world.1", nil); err != nil {
		panic(err)
	}
	if _, err := c.Publish(ctx, "world.1", map[string]string{"text": "gg"}); err != nil {
		panic(err)
	}
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, err := c.Next(wait)
	if err != nil {
		panic(err)
	}
	var m realtime.ChatPush
	if err := json.Unmarshal(p.Payload, &m); err != nil {
		panic(err)
	}
	fmt.Println(p.Topic, p.Channel, "from", m.From, string(m.Data))
	// Output:
	// chat world.1 from 7 {"text":"gg"}
}
