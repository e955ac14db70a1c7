package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/madang-io/madang/examples/realtimeserver/node"
	"github.com/madang-io/madang/realtime"
)

// A memory node in process: a dev login, a websocket client subscribed to
// the system channel, and a maintenance notice broadcast from Go.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := node.New(ctx, node.Config{Dev: true, NodeID: "example"}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer n.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	serveCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.Serve(serveCtx, ln, io.Discard) }()
	defer func() { stop(); <-done }()
	base := "http://" + ln.Addr().String()

	resp, err := http.Get(base + "/dev/login?user=1001")
	if err != nil {
		fmt.Println(err)
		return
	}
	var login node.DevLogin
	_ = json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()

	c, err := realtime.Dial(ctx, base+"/ws", login.Token, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	if _, err := c.Subscribe(ctx, realtime.ChannelSystem, nil); err != nil {
		fmt.Println(err)
		return
	}
	_, _ = n.Hub().Broadcast(ctx, realtime.Filter{}, "maintenance", json.RawMessage(`{"message":"restart at 04:00"}`))
	p, err := c.Next(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Channel, p.Topic, string(p.Payload))
	// Output:
	// system maintenance {"message":"restart at 04:00"}
}
