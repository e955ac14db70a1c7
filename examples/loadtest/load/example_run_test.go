package load_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/madang-io/madang/examples/gameserver/server"
	"github.com/madang-io/madang/examples/loadtest/load"
	"github.com/madang-io/madang/protocol"
)

// Run loads a game server: here one started in the process, with two
// users asking the server's clock 20 times in all.
func ExampleRun() {
	dir, err := os.MkdirTemp("", "loadtest-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	srv, err := server.New(context.Background(), server.Config{DataDir: dir, XORKey: "example-key"}, nil)
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln, io.Discard) }()
	defer func() { stop(); <-served }()

	rep, err := load.Run(context.Background(), load.Config{
		URL: "http://" + ln.Addr().String() + protocol.DefaultHTTPPath, XORKey: "example-key",
		Scenario: load.Time{}, Users: 2, Iterations: 20, Duration: time.Minute,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("stopped by", rep.StopReason)
	for _, c := range rep.Commands {
		fmt.Println(c.Command, c.Count, "calls, errors by kind:", c.ErrorsByCode)
	}
	// Output:
	// stopped by iterations
	// auth.guest 2 calls, errors by kind: map[]
	// sys.time 20 calls, errors by kind: map[]
}
