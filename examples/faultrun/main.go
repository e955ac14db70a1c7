// Command faultrun runs the game server through faults and audits its
// databases against every answer its clients got (see package fault).
//
//	go run ./examples/faultrun -duration 2m
//
// needs mariadbd, mariadb-install-db and redis-server in PATH; it starts
// private instances on free loopback ports in a temporary directory, and
// exits with status 1 when the audit finds a violation (the directory,
// with the servers' logs and every request's answers in requests.jsonl,
// is then kept). Run it with -h for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/madang-io/madang/examples/faultrun/fault"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faultrun:", err)
	}
	os.Exit(code)
}

// run parses the flags, runs the fault run and writes its summary: exit
// status 0 without violations, 1 with, 2 when the run could not be made.
func run(ctx context.Context, args []string, out, logw io.Writer) (int, error) {
	fs := flag.NewFlagSet("faultrun", flag.ContinueOnError)
	fs.SetOutput(out)
	var cfg fault.Config
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long faults are applied while players play (default 2m)")
	fs.IntVar(&cfg.Players, "players", 0, "virtual players (default 24)")
	fs.DurationVar(&cfg.Think, "think", 0, "most a player waits between requests (default 50ms)")
	fs.DurationVar(&cfg.Gap, "gap", 0, "least time between two faults; each gap is gap..2*gap (default 3s)")
	fs.DurationVar(&cfg.Freeze, "freeze", 0, "how long mariadbd stays stopped per freeze (default 5s)")
	fs.DurationVar(&cfg.GiveUp, "give-up", 0, "how long a copy retries after the fault phase or its start (default 60s)")
	fs.DurationVar(&cfg.SweepWait, "sweep-wait", 0, "how long the audit waits for redeemed receipts to be granted (default 15s)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the players' and faults' choices (default random)")
	fs.StringVar(&cfg.GameServer, "gameserver", "", "game server binary (default: go build of examples/gameserver)")
	fs.StringVar(&cfg.MariaDB, "mariadbd", "", "mariadbd binary (default mariadbd in PATH)")
	fs.StringVar(&cfg.MariaDBInstall, "mariadb-install-db", "", "mariadb-install-db binary (default from PATH)")
	fs.StringVar(&cfg.RedisServer, "redis-server", "", "redis-server binary (default from PATH)")
	fs.StringVar(&cfg.Dir, "dir", "", "directory for data, logs and requests.jsonl (default a temporary one, removed after a clean run)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the temporary directory after a clean run")
	quiet := fs.Bool("quiet", false, "no progress lines")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, nil
		}
		return 2, err
	}
	if fs.NArg() > 0 {
		return 2, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if !*quiet {
		cfg.Log = logw
	}
	res, err := fault.Run(ctx, cfg)
	if err != nil {
		return 2, err
	}
	res.WriteSummary(out)
	if res.Violations() > 0 {
		return 1, nil
	}
	return 0, nil
}
