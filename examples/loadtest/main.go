// Command loadtest drives a madang game server and its realtime hub with
// virtual users, as the studio in the talk did with JMeter, and reports
// throughput and latency per command.
//
//	go run ./examples/loadtest -inproc -duration 10s -users 20
//
// starts a game server inside the process and loads it with the mixed
// scenario; without -inproc it loads the server at -url (loopback only,
// unless -allow-remote). Every run is bounded by -duration and
// -iterations. Run it with -h for the flags.
//
//	go run ./examples/loadtest -inproc -scenario chat -users 100 -chat-rooms 5
//
// chats over websockets instead: each user joins one of 5 rooms on the
// game server's hub (/ws; -ws-url names a realtime server's node instead,
// with -ws-dev-login for one in memory mode), publishes, and times its
// message's way back (chat.echo); the report adds the pushes received per
// second and their delivery latency. -mix "login=1,chat=3" mixes it with
// the other scenarios. For CI,
//
//	go run ./examples/loadtest -inproc -duration 10s -max-error-rate 0.01
//
// exits with status 1 when more than 1 % of the calls failed (or none
// completed), after writing the summary and the reports. The logic lives
// in package load; this main only parses flags and writes the outputs.
// capacity.sh measures the server's capacity with it; nakamacompare (and
// nakama-compare.sh) runs issue 17's production-path comparison of two
// server binaries (scenarios login-new and write).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// defaultGCPercent is the garbage collector's target (GOGC) of the load
// tool when the environment sets none. Each virtual user holds three
// goroutines (its own and its connection's read and write loops) and the
// tool's live heap is small, so at GOGC 100 a GC cycle comes often and
// scans every user's stacks: at 1,000 users the GC cost 15-20 µs of the
// tool's CPU per call against 10 at 100, CPU taken from the server it
// shares the machine with; at 400, 3.5 and 2.5 µs (BENCHMARKS.md,
// "plateau, part 5"). GOGC still rules when set.
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
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// isTerminal reports whether w is a character device (a terminal), where
// the progress line is rewritten in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
