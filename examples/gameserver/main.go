// Command gameserver is madang's reference mobile game server.
//
//	go run ./examples/gameserver
//
// starts it on embedded defaults (no Redis, no MySQL) on 127.0.0.1:8080.
// Flags and MADANG_* environment variables switch it to real backends; run
// it with -h for the list. The server's logic lives in package server; this
// main only wires signals, flags and output.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // live-ops event time zones on hosts without a zone database

	"github.com/madang-io/madang/examples/cmdline"
	"github.com/madang-io/madang/examples/gameserver/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gameserver:", err)
		os.Exit(1)
	}
}

// run parses the configuration, starts the server and blocks until ctx is
// done and the server has shut down. For -h or -help it writes the usage
// to out and returns nil. "gameserver operator ..." manages the ops
// console's operators instead (server.RunOperator), a password read from in.
func run(ctx context.Context, args []string, getenv func(string) string, in io.Reader, out io.Writer) error {
	if len(args) > 0 && args[0] == "operator" {
		return cmdline.Help(out, server.RunOperator(ctx, args[1:], getenv, in, out))
	}
	cfg, err := server.ParseConfig(args, getenv)
	if err != nil {
		return cmdline.Help(out, err) // -h: the usage, nil
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: cfg.LogLevel}))
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	err = srv.ListenAndServe(ctx, out)
	if cerr := srv.Close(); err == nil {
		err = cerr
	}
	return err
}
