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
	"runtime/debug"
	"syscall"
	_ "time/tzdata" // live-ops event time zones on hosts without a zone database

	"github.com/madang-io/madang/examples/cmdline"
	"github.com/madang-io/madang/examples/gameserver/server"
)

// defaultGCPercent is the garbage collector's target (GOGC) the server runs
// with when the environment sets none. At 1,000 clients the process holds
// about 2,000 goroutines (a connection's and its background read's), and
// every GC cycle scans all their stacks and shrinks the idle ones, which
// then grow again on the connection's next SQLite call: at GOGC 100 the GC
// and the stack growth cost 11-18 µs of server CPU per call at 1,000
// clients against 6-8 µs at 100. At 400 a cycle comes a quarter as often:
// 3-6 µs at 1,000 and about 2.5 µs at 100, for two to three times the
// heap (in use at 1,000 clients: 54-61 MB, then 108-183 MB; BENCHMARKS.md,
// "plateau, part 5"). GOGC (and GOMEMLIMIT, which bounds
// the heap either way) still rule when set.
const defaultGCPercent = 400

// gcPercent returns the GC target to set: defaultGCPercent when getenv
// gives no GOGC, else false (the runtime already applied it).
func gcPercent(getenv func(string) string) (int, bool) {
	if getenv("GOGC") != "" {
		return 0, false
	}
	return defaultGCPercent, true
}

func main() {
	if p, ok := gcPercent(os.Getenv); ok {
		debug.SetGCPercent(p)
	}
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
