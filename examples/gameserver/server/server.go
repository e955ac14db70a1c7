// Package server is madang's reference game server: it composes the madang
// packages into one HTTP service. The main in examples/gameserver only parses
// flags and handles signals.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/madang-io/madang/protocol"
)

// Server is a configured game server.
type Server struct {
	cfg  Config
	log  *slog.Logger
	mux  *protocol.Mux
	http *http.ServeMux
	now  func() time.Time
}

// New builds a server for cfg. It creates cfg.DataDir if needed.
func New(_ context.Context, cfg Config, log *slog.Logger) (*Server, error) {
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
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
	}
	s := &Server{cfg: cfg, log: log, mux: protocol.NewMux(), http: http.NewServeMux(), now: time.Now}
	s.registerCommands()

	codec, err := protocol.NewCodec(protocol.Config{XORKey: []byte(cfg.XORKey)})
	if err != nil {
		return nil, err
	}
	rpc, err := protocol.NewHTTPHandler(s.mux, protocol.HTTPConfig{
		Codec:          codec,
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

// registerCommands adds the game's commands to the protocol mux.
func (s *Server) registerCommands() {
	s.mux.Handle("sys.time", protocol.Typed(func(_ context.Context, r *protocol.Request, _ struct{}) (map[string]int64, error) {
		return map[string]int64{"server_ms": s.now().UnixMilli(), "client_ms": r.ClientTime}, nil
	}))
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "madang game server\n\nPOST frames (or, in dev mode, plain JSON) to http://%s%s\n", r.Host, protocol.DefaultHTTPPath)
	if s.cfg.Dev {
		fmt.Fprintf(w, "\ntry:\n  curl -s -d '{\"cmd\":\"sys.time\",\"seq\":1}' http://%s%s\n", r.Host, protocol.DefaultHTTPPath)
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
