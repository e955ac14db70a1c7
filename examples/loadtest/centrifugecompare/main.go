// Command centrifugecompare is the centrifuge side of madang issue 17's
// side-by-side realtime measurement: a centrifuge v0.40.1 node with its
// memory broker and default settings, one websocket endpoint, each client
// subscribed server-side to its own personal channel "#<token>" (the token
// the client sends in its connect command is taken as its user id, no
// check), free to subscribe to any channel (the shared one: "chat"), and
// POST /publish?ch=chat&data=... publishing to a channel from the server.
//
//	go build -o /tmp/cfserver . && /tmp/cfserver -addr 127.0.0.1:0
//
// It prints the address it listens on and serves until stdin closes.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/centrifugal/centrifuge"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	node, err := centrifuge.New(centrifuge.Config{})
	if err != nil {
		log.Fatal(err)
	}
	node.OnConnecting(func(ctx context.Context, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		return centrifuge.ConnectReply{
			Credentials:   &centrifuge.Credentials{UserID: e.Token},
			Subscriptions: map[string]centrifuge.SubscribeOptions{"#" + e.Token: {}},
		}, nil
	})
	node.OnConnect(func(c *centrifuge.Client) {
		c.OnSubscribe(func(e centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
			cb(centrifuge.SubscribeReply{}, nil)
		})
	})
	if err := node.Run(); err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/connection/websocket", centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{
		CheckOrigin: func(*http.Request) bool { return true },
	}))
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if _, err := node.Publish(q.Get("ch"), []byte(q.Get("data"))); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "{}")
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "{\"clients\":%d}", node.Hub().NumClients())
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr().String())
	go http.Serve(ln, mux)
	io.Copy(io.Discard, os.Stdin)
	_ = node.Shutdown(context.Background())
}
