// Command quickstart is a small game server built from madang's public API
// only, the way a studio starts one: guest login, an idempotent daily
// reward, a weekly leaderboard, and pushes over the realtime hub.
// docs/GUIDE.md ("Build your own server") walks through it.
//
//	go run ./examples/quickstart   # SQLite under ./data, sessions in memory, development mode
//	curl -s -d '{"cmd":"auth.login","seq":1,"payload":{"device_id":"my-phone"}}' http://127.0.0.1:8080/v1/rpc
//	curl -s -d '{"cmd":"reward.daily","seq":2,"rid":"day-1","token":"<token>"}' http://127.0.0.1:8080/v1/rpc
//
// -mysql and -redis move the data to MySQL/MariaDB and Redis; -h lists the flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// run parses the flags, opens the server and serves until ctx ends.
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	var cfg Config
	addr := fs.String("addr", "127.0.0.1:8080", "listen address: POST /v1/rpc, GET /ws")
	fs.StringVar(&cfg.DataDir, "data", "data", "directory of the SQLite databases")
	fs.StringVar(&cfg.MySQLDSN, "mysql", "", "a MySQL/MariaDB database instead of SQLite (DSN)")
	fs.StringVar(&cfg.RedisAddr, "redis", "", "Redis host:port for sessions, leaderboard and hub (default: memory)")
	fs.BoolVar(&cfg.Dev, "dev", true, "development mode: plain JSON and plain websocket frames, loopback only")
	fs.StringVar(&cfg.XORKey, "xor-key", "", "key of XOR-obfuscated frames")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if host, _, _ := net.SplitHostPort(*addr); cfg.Dev && host != "localhost" && !net.ParseIP(host).IsLoopback() {
		return fmt.Errorf("development mode listens on loopback addresses only, not %q (or -dev=false)", *addr)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))

	srv, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "quickstart: listening on http://%s (POST /v1/rpc, GET /ws)\n", ln.Addr())
	return srv.Serve(ctx, ln)
}
