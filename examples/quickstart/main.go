// Command quickstart is a small game server built from madang's public API
// only, the way a studio starts one: guest login, an idempotent daily
// reward, a weekly leaderboard and pushes over websockets.
// docs/GUIDE.md ("Build your own server") walks through it.
//
//	go run ./examples/quickstart   # SQLite under ./data, sessions in memory, development mode
//	curl -s -d '{"cmd":"auth.login","seq":1,"payload":{"device_id":"my-phone"}}' http://127.0.0.1:8080/v1/rpc
//	curl -s -d '{"cmd":"reward.daily","seq":2,"rid":"day-1","token":"<token>"}' http://127.0.0.1:8080/v1/rpc
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // "sqlite": the embedded default (go-sql-driver/mysql: "mysql")

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/shard"
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
	cfg := Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	addr := fs.String("addr", "127.0.0.1:8080", "listen address: POST /v1/rpc, GET /ws")
	fs.StringVar(&cfg.DataDir, "data", "data", "directory of the SQLite databases")
	fs.BoolVar(&cfg.Dev, "dev", true, "development mode: plain JSON and plain websocket frames, loopback only")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if host, _, _ := net.SplitHostPort(*addr); cfg.Dev && host != "localhost" && !net.ParseIP(host).IsLoopback() {
		return fmt.Errorf("development mode listens on loopback addresses only, not %q (or -dev=false)", *addr)
	}
	srv, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	if ln, err := net.Listen("tcp", *addr); err != nil {
		errc <- err
	} else {
		fmt.Fprintf(out, "quickstart: listening on http://%s (POST /v1/rpc, GET /ws)\n", ln.Addr())
		go func() { errc <- srv.http.Serve(ln) }()
	}
	select {
	case err = <-errc: // the listener failed
	case <-ctx.Done(): // SIGINT, SIGTERM: Serve returns http.ErrServerClosed
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(err, srv.Close(sctx))
}

// Config says where the data lives and how the server talks.
type Config struct {
	DataDir string           // the SQLite files: common.db, gamedb01.db, gamedb02.db
	Dev     bool             // development: plain JSON over HTTP, plain websocket frames
	Now     func() time.Time // the daily reward's clock. Nil: time.Now
	Logger  *slog.Logger     // nil: silent (every package takes a nil logger)
}

// Server is the quickstart game server.
type Server struct {
	cfg      Config
	common   *sql.DB
	router   *shard.Router
	accounts *shard.Accounts
	idem     *idempotency.SQLStore
	sessions *session.MemoryStore
	board    *session.Board
	hub      *realtime.Hub
	http     *http.Server
}

// New opens the databases (on first start it creates them) and builds the
// handler chain that HTTP and the websocket hub share. Close it when done.
func New(ctx context.Context, cfg Config) (_ *Server, err error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, sessions: session.NewMemoryStore(session.Config{Logger: cfg.Logger})}
	defer func() {
		if err != nil {
			s.Close(ctx)
		}
	}()
	// The common database holds the directory of game databases and the
	// accounts; the directory keeps the game databases' paths, so absolute.
	dir, err := filepath.Abs(cfg.DataDir)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return nil, err
	}
	dsn := func(name string) string { return shard.SQLiteDSN(filepath.Join(dir, name+".db")) }
	if s.common, err = shard.OpenSQLite(dsn("common")); err != nil {
		return nil, err
	}
	if _, err := shard.Migrate(ctx, s.common, shard.DirectoryMigrations()); err != nil {
		return nil, fmt.Errorf("common database: %w", err)
	}
	directory, err := shard.NewSQLDirectory(ctx, s.common, shard.SQLDirectoryConfig{Dialect: shard.DialectSQLite})
	if err != nil {
		return nil, err
	}
	known, err := directory.Databases(ctx)
	if err != nil {
		return nil, err
	}
	for id := len(known) + 1; id <= 2; id++ { // gamedb0<id> owns the user keys id*10^7 .. id*10^7+9,999,999
		err := directory.Add(ctx, shard.Database{ID: id, Name: fmt.Sprintf("gamedb%02d", id), Driver: "sqlite",
			DSN: dsn(fmt.Sprintf("gamedb%02d", id)), FirstKey: int64(id) * 1e7, LastKey: int64(id)*1e7 + 1e7 - 1})
		if err != nil {
			return nil, err
		}
	}
	s.accounts = shard.NewAccounts(directory, shard.AccountsConfig{})
	if s.router, err = shard.NewRouter(ctx, shard.Config{Directory: directory, Logger: cfg.Logger}); err != nil {
		return nil, err
	}
	// Idempotency keys live in the player's game database, written in the
	// game's own transaction (through router.Tx: one retry policy).
	s.idem, err = idempotency.NewSQLStore(ctx, nil, idempotency.SQLConfig{
		Config: idempotency.Config{RequireKey: true, Logger: cfg.Logger},
		Tx:     s.router.Tx, Dialect: shard.DialectSQLite,
	})
	if err != nil {
		return nil, err
	}
	files, source := s.idem.Migrations()
	for _, m := range []shard.Migrations{gameMigrations(), {FS: files, Source: source}} {
		if _, err := s.router.MigrateAll(ctx, m); err != nil {
			return nil, fmt.Errorf("game databases: %w", err)
		}
	}
	boards := session.NewBoardMemoryStore(session.BoardMemoryConfig{})
	if s.board, err = session.NewBoard(boards, "stage", session.BoardConfig{Period: session.SeasonWeekly}); err != nil {
		return nil, err
	}

	// The handler chain, outermost first; then the mux, where a command adds
	// its own middleware (idempotency).
	log, mux := cfg.Logger, protocol.NewMux()
	s.register(mux)
	limiter := session.NewMemoryLimiter(session.LimiterConfig{}) // per user
	chain := protocol.Chain(mux,
		classifyErrors,
		session.Middleware(s.sessions, session.MiddlewareConfig{Public: []string{CmdLogin}, Logger: log}),
		s.requireAuthenticated,
		session.RateLimitMiddleware(limiter, session.RateLimitConfig{Logger: log}),
		anticheat.NewGuard(anticheat.GuardConfig{LoginCommand: CmdLogin, Logger: log}).Middleware(),
	)

	// HTTP and the websocket hub serve the same chain, under one decode budget.
	budget := protocol.NewDecodeBudget(protocol.DecodeBudgetConfig{})
	rpc, err := protocol.NewHTTPHandler(chain, protocol.HTTPConfig{
		Keys:           session.NewKeyResolver(s.sessions, session.KeyResolverConfig{}),
		AllowPlainJSON: cfg.Dev, DecodeBudget: budget, HandlerTimeout: 5 * time.Second, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	s.hub, err = realtime.NewHub(s.sessions, realtime.Config{
		Handler: chain, DecodeBudget: budget, Limiter: limiter, RefusePlain: !cfg.Dev, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	h := http.NewServeMux()
	h.Handle("POST "+protocol.DefaultHTTPPath, rpc) // /v1/rpc
	h.Handle("GET /ws", s.hub)
	s.http = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	return s, nil
}

// classifyErrors makes a backend outage anywhere below unavailable or
// timeout (retryable), never internal.
func classifyErrors(next protocol.Handler) protocol.Handler {
	return protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		resp, err := next.Serve(ctx, req)
		return resp, shard.ClassifyError(err)
	})
}

// requireAuthenticated refuses (outside Dev) every command but login in a
// frame not sealed with the session's keys, over HTTP and websocket alike.
func (s *Server) requireAuthenticated(next protocol.Handler) protocol.Handler {
	return protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		if !s.cfg.Dev && req.Command != CmdLogin && req.Mode != protocol.ModeAuthenticated {
			return nil, protocol.Errorf(protocol.CodeUnauthorized, "authenticated frames required")
		}
		return next.Serve(ctx, req)
	})
}

// Close shuts down in order, users before what they use: the hub first (it
// closes each websocket with going_away; http.Server.Shutdown does not wait
// for these hijacked connections), then HTTP (requests in flight finish
// within ctx), the session store, the game databases, the common database.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	if s.http != nil {
		errs = append(errs, s.hub.Shutdown(ctx), s.http.Shutdown(ctx))
	}
	errs = append(errs, s.sessions.Close())
	if s.router != nil {
		errs = append(errs, s.router.Close())
	}
	if s.common != nil {
		errs = append(errs, s.common.Close())
	}
	return errors.Join(errs...)
}
