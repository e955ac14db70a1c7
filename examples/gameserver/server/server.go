// Package server is madang's reference game server: it composes the madang
// packages into one HTTP service. The main in examples/gameserver only parses
// flags and handles signals.
//
// Embedded mode (the only mode so far): SQLite databases under
// Config.DataDir — common.db with the shard directory and accounts, and
// gamedb01..gamedb04.db, each owning a range of user keys, with the game's
// tables and the idempotency table — memory sessions, and an in-memory
// anti-cheat monitor. Every request passes session.Middleware (auth.guest
// and sys.time are public), then the anti-cheat Guard (block list and speed
// check), then the mux, where mutating commands add the idempotency
// middleware.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
)

// Server is a configured game server.
type Server struct {
	cfg  Config
	log  *slog.Logger
	mux  *protocol.Mux
	http *http.ServeMux
	now  func() time.Time

	store    *storage
	sessions *session.MemoryStore
	guard    *anticheat.Guard
	game     *game.Game
}

// CmdTime is the public clock command.
const CmdTime = "sys.time"

// New builds a server for cfg: it opens (and on first start creates) the
// databases under cfg.DataDir. Close the server when done.
func New(ctx context.Context, cfg Config, log *slog.Logger) (_ *Server, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.XORKey == "" {
		cfg.XORKey = DefaultXORKey
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	s := &Server{cfg: cfg, log: log, mux: protocol.NewMux(), http: http.NewServeMux(), now: time.Now}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.store, err = openStorage(ctx, cfg.DataDir, log); err != nil {
		return nil, err
	}
	s.sessions = session.NewMemoryStore(session.Config{Logger: log})
	s.guard = anticheat.NewGuard(anticheat.GuardConfig{LoginCommand: game.CmdGuestLogin, Logger: log})
	if s.game, err = game.New(game.Config{
		Router: s.store.router, Accounts: s.store.accounts, Sessions: s.sessions,
		Idempotency: s.store.idem, Logger: log,
		// Embedded mode: the dungeon ranking in memory; dungeon verdicts
		// go to the guard's monitor (one hack log and block list).
		BoardStore: session.NewBoardMemoryStore(session.BoardMemoryConfig{}),
		Monitor:    s.guard.Monitor(),
	}); err != nil {
		return nil, err
	}
	// The memory board starts empty: refill this week's dungeon ranking
	// from the game databases.
	if _, err := s.game.RebuildRanking(ctx); err != nil {
		return nil, err
	}
	s.registerCommands()
	chain := protocol.Chain(s.mux,
		session.Middleware(s.sessions, session.MiddlewareConfig{Public: append(game.PublicCommands(), CmdTime), Logger: log}),
		s.guard.Middleware(),
	)

	codec, err := protocol.NewCodec(protocol.Config{XORKey: []byte(cfg.XORKey)})
	if err != nil {
		return nil, err
	}
	rpc, err := protocol.NewHTTPHandler(chain, protocol.HTTPConfig{
		Codec:          codec,
		Keys:           session.NewKeyResolver(s.sessions, session.KeyResolverConfig{}),
		AllowPlainJSON: cfg.Dev,
		HandlerTimeout: 5 * time.Second,
		Logger:         log,
	})
	if err != nil {
		return nil, err
	}
	s.http.Handle("POST "+protocol.DefaultHTTPPath, rpc)
	s.http.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	s.http.HandleFunc("GET /{$}", s.index)
	return s, nil
}

// Handler returns the server's HTTP handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.http }

// Close releases the databases and the session store. Call it after Serve
// returned.
func (s *Server) Close() error {
	var errs []error
	if s.sessions != nil {
		errs = append(errs, s.sessions.Close())
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	return errors.Join(errs...)
}

// registerCommands adds the game's commands to the protocol mux.
func (s *Server) registerCommands() {
	s.game.Register(s.mux)
	s.mux.Handle(CmdTime, protocol.Typed(func(_ context.Context, r *protocol.Request, _ struct{}) (map[string]int64, error) {
		return map[string]int64{"server_ms": s.now().UnixMilli(), "client_ms": r.ClientTime}, nil
	}))
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "madang game server\n\nPOST frames (or, in dev mode, plain JSON) to http://%s%s\n", r.Host, protocol.DefaultHTTPPath)
	if s.cfg.Dev {
		fmt.Fprintf(w, "\ntry:\n  curl -s -d '{\"cmd\":\"sys.time\",\"seq\":1}' http://%s%s\n", r.Host, protocol.DefaultHTTPPath)
		fmt.Fprintf(w, "  curl -s -d '{\"cmd\":\"auth.guest\",\"seq\":1,\"payload\":{\"device_id\":\"my-phone\"}}' http://%s%s\n", r.Host, protocol.DefaultHTTPPath)
		fmt.Fprintf(w, "  curl -s -d '{\"cmd\":\"player.load\",\"seq\":2,\"token\":\"<token from auth.guest>\"}' http://%s%s\n", r.Host, protocol.DefaultHTTPPath)
	}
}

// ListenAndServe listens on cfg.Addr, prints where it serves to out, and
// serves until ctx is done; then it shuts down gracefully within
// cfg.ShutdownTimeout.
func (s *Server) ListenAndServe(ctx context.Context, out io.Writer) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln, out)
}

// Serve is ListenAndServe on an existing listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener, out io.Writer) error {
	hs := &http.Server{
		Handler:           s.http,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "madang game server listening on %s\n", base)
	fmt.Fprintf(out, "  rpc:     POST %s%s\n", base, protocol.DefaultHTTPPath)
	fmt.Fprintf(out, "  health:  GET  %s/healthz\n", base)
	fmt.Fprintf(out, "  data:    %s (SQLite: common.db, gamedb01..%02d.db)\n", s.cfg.DataDir, EmbeddedGameDBs)
	if s.cfg.Dev {
		fmt.Fprintf(out, "  try:     curl -s -d '{\"cmd\":\"sys.time\",\"seq\":1}' %s%s\n", base, protocol.DefaultHTTPPath)
	}
	fmt.Fprintln(out, "Ctrl-C stops it.")

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(shutdownCtx)
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	s.log.Info("game server stopped")
	return err
}
