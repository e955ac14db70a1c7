package sessiontest

import (
	"context"
	"time"

	"github.com/madang-io/madang/internal/privateserver"
)

// RedisServerConfig configures StartRedisServer.
type RedisServerConfig struct {
	// Dir is the server's working directory (--dir), created if missing;
	// its log goes there too unless Log says otherwise. Required.
	Dir string
	// Port is the server's port on 127.0.0.1. Default 0: a free port
	// whose cluster bus port (port+10000) is free too, chosen at the start
	// (another one if it was taken meanwhile, up to five tries) and kept
	// across restarts.
	Port int
	// Bin is the redis-server binary. Default "redis-server", found in
	// PATH (or /usr/sbin, /usr/local/sbin).
	Bin string
	// Args are appended to the command line, such as "--cluster-enabled",
	// "yes". The server always runs with --bind 127.0.0.1 --save ""
	// --appendonly no (no persistence: a restart brings it back empty)
	// --daemonize no --protected-mode yes.
	Args []string
	// Log is the file the server's output is appended to, a line before
	// each start. Default Dir/redis.log.
	Log string
	// StartTimeout bounds how long a start waits for PING to answer.
	// Default 30 s.
	StartTimeout time.Duration
}

// RedisServer is a private redis-server: the caller's own, loopback only,
// never a shared server, so that it may be killed, restarted empty or
// frozen. Its process runs in its own process group and, on Linux, is
// killed when the caller's process dies. Safe for concurrent use.
//
// Tests use PrivateRedis; tools that outlive a test (fault runs, load
// comparisons) use StartRedisServer and Stop it when done.
type RedisServer struct{ r *privateserver.Redis }

// StartRedisServer starts a private redis-server of cfg and waits until it
// answers PING. It fails with an error wrapping exec.ErrNotFound when
// redis-server is not installed.
func StartRedisServer(ctx context.Context, cfg RedisServerConfig) (*RedisServer, error) {
	r, err := privateserver.NewRedis(privateserver.RedisConfig{Dir: cfg.Dir, Port: cfg.Port, Bin: cfg.Bin,
		Args: cfg.Args, Log: cfg.Log, StartTimeout: cfg.StartTimeout})
	if err != nil {
		return nil, err
	}
	if err := r.Start(ctx); err != nil {
		return nil, err
	}
	return &RedisServer{r}, nil
}

// Addr is the server's host:port, such as "127.0.0.1:41234".
func (s *RedisServer) Addr() string { return s.r.Addr() }

// PID is the process id of the server's current process (it changes at
// Restart).
func (s *RedisServer) PID() int { return s.r.PID() }

// LogPath is the file the server's output is appended to.
func (s *RedisServer) LogPath() string { return s.r.LogPath() }

// Ping reports whether the server answers PING now.
func (s *RedisServer) Ping(ctx context.Context) error { return s.r.Ping(ctx) }

// Kill kills the server with SIGKILL (kill -9, also when frozen) and waits
// until the process has exited. Safe to call more than once.
func (s *RedisServer) Kill() { s.r.Kill() }

// Restart kills the server if it runs and starts it again, empty, on the
// same port and directory, waiting (bounded by StartTimeout) until it
// answers.
func (s *RedisServer) Restart(ctx context.Context) error { return s.r.Restart(ctx) }

// Freeze stops the server with SIGSTOP: connections stay open and nothing
// is answered until Thaw.
func (s *RedisServer) Freeze() error { return s.r.Freeze() }

// Thaw continues a frozen server with SIGCONT and waits (bounded by
// StartTimeout) until it answers.
func (s *RedisServer) Thaw(ctx context.Context) error { return s.r.Thaw(ctx) }

// Stop ends the server: SIGCONT (in case it is frozen), SIGTERM, and
// SIGKILL if it has not exited after grace. Safe to call more than once.
func (s *RedisServer) Stop(grace time.Duration) { s.r.Stop(grace) }
