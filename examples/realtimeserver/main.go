// Command realtimeserver runs a madang realtime node: chat channels,
// whispers and server pushes over websockets, accepting the game server's
// sessions. See package node for the endpoints and the Redis mode.
//
//	go run ./examples/realtimeserver                        # memory, dev login
//	go run ./examples/realtimeserver -redis 127.0.0.1:6379  # with the game server
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/madang-io/madang/examples/cmdline"
	"github.com/madang-io/madang/examples/realtimeserver/node"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run parses the configuration, starts the node and serves until ctx ends
// (SIGINT/SIGTERM in main), then shuts down gracefully. For -h or -help it
// writes the usage to stdout and returns nil.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := node.ParseConfig(args, getenv)
	if err != nil {
		return cmdline.Help(stdout, err) // -h: the usage, nil
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	n, err := node.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	serr := n.ListenAndServe(ctx, stdout)
	return errors.Join(serr, n.Close())
}
