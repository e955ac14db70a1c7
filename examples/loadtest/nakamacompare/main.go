// Command nakamacompare runs the production-path comparison of issue 17
// against one or two game server binaries: new-device logins (scenario
// login-new) and one authenticated write (scenario write: shop.buy), each
// at 16 and 64 clients, with the game server on Redis + MariaDB and on its
// embedded SQLite. Nakama is not run: its figures, measured side by side
// on the same 2-core machine (issue 17), are the reference.
//
//	go build -o /tmp/before ./examples/gameserver   # at the old commit
//	go build -o /tmp/after ./examples/gameserver    # at the new one
//	go run ./examples/loadtest/nakamacompare -a /tmp/before -b /tmp/after
//
// (examples/loadtest/nakama-compare.sh builds the binaries from git
// revisions.) Binary A and binary B run in interleaved rounds, A B A B A B
// (-rounds, default 3), each round on a fresh server: a new database (a
// new data directory in embedded mode), a flushed Redis, a warm-up
// (-warmup) and then every scenario at every client count for -duration
// (default 15 s). The MariaDB (mariadbd) and the Redis (redis-server) are
// private: started by this program in a temporary directory on their own
// ports (-mysql-port, -redis-port), stopped and removed at the end, so the
// load neither disturbs nor is disturbed by the machine's shared services.
// The server runs in production mode (-dev=false, a random XOR key, the
// ops API off) without its per-user command rate limit (-cmd-rate=-1: at
// its default of 20 calls/s per user, 16 clients could not send more than
// 320 writes/s, and the figures are above that); its login queue
// (-max-logins) keeps its default. -server-args adds or overrides flags.
//
// One load generator in this process (package load) drives both binaries
// over HTTP keep-alive, 127.0.0.1 only. Per run it records the requests per
// second (of the scenario's command: auth.guest, shop.buy), all calls and
// errors, p50 and p99, the CPU time per call of the server process, of
// mariadbd and of redis-server (utime+stime from /proc/<pid>/stat at the
// start and the end of the run, divided by all the run's calls), the
// generator's own, and the load average (/proc/loadavg) at the start and
// the end. It prints a side-by-side table per mode — medians over the
// rounds with their range, B/A, and the ratios to Nakama's figures — and
// writes every run's report (JSON) and the servers' logs to -out.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "nakamacompare:", err)
		os.Exit(1)
	}
}
