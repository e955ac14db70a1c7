package main

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "github.com/go-sql-driver/mysql" // "mysql"
	_ "modernc.org/sqlite"             // "sqlite", the embedded default

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/shard"
)

// Config says where the data lives. The zero value is the embedded default:
// SQLite files under "data", sessions and leaderboard in memory.
type Config struct {
	DataDir     string           // SQLite: common.db, gamedb01.db, gamedb02.db. Default "data"
	MySQLDSN    string           // MySQL/MariaDB instead: one database, common and game tables
	RedisAddr   string           // Redis "host:port" instead of memory
	RedisPrefix string           // Redis key prefix. Default "quickstart:"
	Dev         bool             // plain JSON over HTTP, plain websocket frames
	XORKey      string           // XOR key of obfuscated frames (logins)
	Now         func() time.Time // the daily reward's clock. Nil: time.Now
	Logger      *slog.Logger     // nil: silent (every package takes a nil logger)
}

// Server is the quickstart game server.
type Server struct {
	cfg      Config
	router   *shard.Router
	accounts *shard.Accounts
	idem     *idempotency.SQLStore
	sessions session.Store
	board    *session.Board
	broker   realtime.Broker // nil: the hub's own, in memory
	hub      *realtime.Hub
	hubOnce  sync.Once
	handler  http.Handler
	closers  []func() error // in the order opened; Close runs them backwards
}

// New opens (on first start creates) the databases and builds the handler
// chain that HTTP and the websocket hub share. Close the server when done.
func New(ctx context.Context, cfg Config) (_ *Server, err error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := s.openDatabases(ctx); err != nil {
		return nil, err
	}
	if err := s.openSessions(ctx); err != nil {
		return nil, err
	}
	return s, s.buildHandlers()
}

// openDatabases opens the common database (directory, accounts), registers
// the game databases once, migrates them, and opens the router and the
// idempotency store over them.
func (s *Server) openDatabases(ctx context.Context) error {
	driver, common, games := "mysql", s.cfg.MySQLDSN, []string{s.cfg.MySQLDSN}
	if common == "" {
		dir, err := filepath.Abs(cmp.Or(s.cfg.DataDir, "data")) // the directory keeps the paths
		if err == nil {
			err = os.MkdirAll(dir, 0o755)
		}
		if err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		driver, common = "sqlite", shard.SQLiteDSN(filepath.Join(dir, "common.db"))
		games = []string{shard.SQLiteDSN(filepath.Join(dir, "gamedb01.db")), shard.SQLiteDSN(filepath.Join(dir, "gamedb02.db"))}
	}
	db, err := sql.Open(driver, common)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, db.Close)
	if _, err := shard.Migrate(ctx, db, shard.DirectoryMigrations()); err != nil {
		return fmt.Errorf("common database: %w", err)
	}
	directory, err := shard.NewSQLDirectory(ctx, db, shard.SQLDirectoryConfig{})
	if err != nil {
		return err
	}
	known, err := directory.Databases(ctx)
	if err != nil {
		return err
	}
	// Game database i owns the user keys i*10,000,000 .. i*10,000,000+9,999,999.
	for id := len(known) + 1; id <= len(games); id++ {
		err := directory.Add(ctx, shard.Database{ID: id, Name: fmt.Sprintf("gamedb%02d", id), Driver: driver,
			DSN: games[id-1], FirstKey: int64(id) * 1e7, LastKey: int64(id)*1e7 + 1e7 - 1})
		if err != nil {
			return err
		}
	}
	if s.router, err = shard.NewRouter(ctx, shard.Config{Directory: directory, Logger: s.cfg.Logger}); err != nil {
		return err
	}
	s.closers = append(s.closers, s.router.Close)
	if _, err := s.router.MigrateAll(ctx, gameMigrations()); err != nil {
		return fmt.Errorf("game databases: %w", err)
	}
	s.accounts = shard.NewAccounts(directory, shard.AccountsConfig{})
	// Idempotency keys live in the user's game database, written in the
	// game's transaction: exactly once. The store runs its transactions
	// through the router (one retry policy) and its table is one more
	// migration of every game database. The driver names are the dialect
	// names.
	s.idem, err = idempotency.NewSQLStore(ctx, nil, idempotency.SQLConfig{
		Config:  idempotency.Config{RequireKey: true, Logger: s.cfg.Logger},
		Tx:      s.router.Tx,
		Dialect: driver,
	})
	if err != nil {
		return err
	}
	files, source := s.idem.Migrations()
	_, err = s.router.MigrateAll(ctx, shard.Migrations{FS: files, Source: source})
	return err
}

// openSessions opens the sessions and the leaderboard in memory (one
// server) or on Redis (many servers, whose hubs then share a Redis broker).
func (s *Server) openSessions(ctx context.Context) error {
	var boards session.BoardStore = session.NewBoardMemoryStore(session.BoardMemoryConfig{})
	if s.cfg.RedisAddr == "" {
		s.sessions = session.NewMemoryStore(session.Config{Logger: s.cfg.Logger})
	} else {
		prefix := cmp.Or(s.cfg.RedisPrefix, "quickstart:")
		rc, err := session.OpenRedis(ctx, session.RedisOptions{Addrs: []string{s.cfg.RedisAddr}})
		if err != nil {
			return err
		}
		s.closers = append(s.closers, rc.Close)
		store, err := session.NewRedisStore(rc.Router, session.Config{Prefix: prefix, Logger: s.cfg.Logger})
		if err != nil {
			return err
		}
		s.sessions = store
		if boards, err = session.NewBoardRedisStore(rc.Clients, session.BoardRedisConfig{Prefix: prefix}); err != nil {
			return err
		}
		rb, err := realtime.NewRedisBroker(rc.Clients[0], realtime.RedisBrokerConfig{Prefix: prefix + "rt:"})
		if err != nil {
			return err
		}
		s.broker, s.closers = rb, append(s.closers, rb.Close)
	}
	s.closers = append(s.closers, s.sessions.Close)
	var err error
	s.board, err = session.NewBoard(boards, "stage", session.BoardConfig{Period: session.SeasonWeekly})
	return err
}

// buildHandlers assembles the chain, outermost first: errors classified,
// session, (outside Dev) authenticated frames only, per-user rate limit,
// anti-cheat, then the mux, where a command adds its own middleware
// (idempotency). HTTP and the websocket hub serve the same chain.
func (s *Server) buildHandlers() (err error) {
	mux := protocol.NewMux()
	s.register(mux)
	log := s.cfg.Logger
	limiter := session.NewMemoryLimiter(session.LimiterConfig{}) // NewRedisLimiter: shared by every server
	guard := anticheat.NewGuard(anticheat.GuardConfig{LoginCommand: CmdLogin, Logger: log})
	mws := []protocol.Middleware{
		classifyErrors,
		session.Middleware(s.sessions, session.MiddlewareConfig{Public: []string{CmdLogin}, Logger: log}),
	}
	if !s.cfg.Dev {
		mws = append(mws, requireAuthenticated)
	}
	mws = append(mws, session.RateLimitMiddleware(limiter, session.RateLimitConfig{Logger: log}), guard.Middleware())
	chain := protocol.Chain(mux, mws...)

	var xor []byte // nil: no XOR mode
	if s.cfg.XORKey != "" {
		xor = []byte(s.cfg.XORKey)
	}
	codec, err := protocol.NewCodec(protocol.Config{XORKey: xor})
	if err != nil {
		return err
	}
	budget := protocol.NewDecodeBudget(protocol.DecodeBudgetConfig{}) // one bound for both transports
	rpc, err := protocol.NewHTTPHandler(chain, protocol.HTTPConfig{
		Codec: codec, Keys: session.NewKeyResolver(s.sessions, session.KeyResolverConfig{}),
		AllowPlainJSON: s.cfg.Dev, DecodeBudget: budget, HandlerTimeout: 5 * time.Second, Logger: log,
	})
	if err != nil {
		return err
	}
	// API CHANGE: NewHub takes a small realtime.Sessions interface (session.Store has it).
	s.hub, err = realtime.NewHub(s.sessions, realtime.Config{
		Handler: chain, Broker: s.broker, Codec: protocol.Config{XORKey: xor},
		DecodeBudget: budget, Limiter: limiter, RefusePlain: !s.cfg.Dev, Logger: log,
	})
	if err != nil {
		return err
	}
	h := http.NewServeMux()
	h.Handle("POST "+protocol.DefaultHTTPPath, rpc)
	h.Handle("GET /ws", s.hub)
	s.handler = h
	return nil
}

// classifyErrors makes a backend outage anywhere below unavailable or
// timeout (retryable), never internal.
func classifyErrors(next protocol.Handler) protocol.Handler {
	return protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		resp, err := next.Serve(ctx, req)
		return resp, shard.ClassifyError(err)
	})
}

// requireAuthenticated refuses every command but login in a frame not
// sealed with the session's keys, over HTTP and websocket alike.
func requireAuthenticated(next protocol.Handler) protocol.Handler {
	return protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		if req.Command != CmdLogin && req.Mode != protocol.ModeAuthenticated {
			return nil, protocol.Errorf(protocol.CodeUnauthorized, "authenticated frames required")
		}
		return next.Serve(ctx, req)
	})
}

// Handler serves the game: POST /v1/rpc and the websocket hub on GET /ws.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves on ln until ctx ends, then shuts down in order: the hub
// first (it tells each websocket going_away; http.Server.Shutdown does not
// wait for hijacked connections), then HTTP (requests in flight finish).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := errors.Join(s.shutdownHub(sctx), hs.Shutdown(sctx))
	<-errc // http.ErrServerClosed
	return err
}

// shutdownHub closes every websocket with going_away, once.
func (s *Server) shutdownHub(ctx context.Context) (err error) {
	s.hubOnce.Do(func() {
		if s.hub != nil {
			err = s.hub.Shutdown(ctx)
		}
	})
	return err
}

// Close releases everything, users before what they use: the hub, then
// backwards from opening the session store, broker, Redis clients, game
// databases and common database.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := []error{s.shutdownHub(ctx)}
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	return errors.Join(errs...)
}
