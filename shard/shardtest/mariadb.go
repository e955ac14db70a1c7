package shardtest

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/privateserver"
)

// MariaDBServerConfig configures StartMariaDBServer.
type MariaDBServerConfig struct {
	// Dir holds the server's files: the data directory Dir/data (created
	// with mariadb-install-db, root without a password, unless it holds a
	// database already), the socket Dir/mysqld.sock, the pid file
	// Dir/mysqld.pid and, unless Log says otherwise, the log
	// Dir/mariadbd.log. Created if missing. Required.
	Dir string
	// Port is the server's port on 127.0.0.1. Default 0: a free port
	// chosen at the start (another one if it was taken meanwhile, up to
	// five tries) and kept across restarts.
	Port int
	// Bin and InstallBin are the mariadbd and mariadb-install-db binaries.
	// Defaults "mariadbd" and "mariadb-install-db", found in PATH (or
	// /usr/sbin, /usr/local/sbin).
	Bin, InstallBin string
	// Args are appended to mariadbd's command line, such as
	// "--max-connections=1000" or "--skip-log-bin". The server always runs
	// with --no-defaults (the server's defaults, no option file),
	// --bind-address=127.0.0.1, and --user=root when run as root.
	Args []string
	// Log is the file the server's output is appended to, a line before
	// each start. Default Dir/mariadbd.log.
	Log string
	// StartTimeout bounds how long a start (InnoDB crash recovery after
	// Kill included) waits for the server to answer. Default 2 minutes.
	StartTimeout time.Duration
}

// MariaDBServer is a private mariadbd: the caller's own, loopback only,
// never the shared server of MADANG_MYSQL_DSN, so that it may be killed
// (kill -9, then Restart: InnoDB crash recovery) or frozen. Its process
// runs in its own process group and, on Linux, is killed when the
// caller's process dies. Safe for concurrent use.
//
// Tests use PrivateMySQL; tools that outlive a test (fault runs, load
// comparisons) use StartMariaDBServer and Stop it when done.
type MariaDBServer struct{ m *privateserver.MariaDB }

// StartMariaDBServer creates the data directory if needed, starts a private
// mariadbd of cfg and waits until it answers. It fails with an error
// wrapping exec.ErrNotFound when mariadbd or mariadb-install-db is not
// installed.
func StartMariaDBServer(ctx context.Context, cfg MariaDBServerConfig) (*MariaDBServer, error) {
	m, err := privateserver.NewMariaDB(ctx, privateserver.MariaDBConfig{Dir: cfg.Dir, Port: cfg.Port, Bin: cfg.Bin,
		InstallBin: cfg.InstallBin, Args: cfg.Args, Log: cfg.Log, StartTimeout: cfg.StartTimeout})
	if err != nil {
		return nil, err
	}
	if err := m.Start(ctx); err != nil {
		return nil, err
	}
	return &MariaDBServer{m}, nil
}

// PrivateMySQL starts a mariadbd of the test's own (StartMariaDBServer,
// its files in t.TempDir(), the extra arguments appended to its command
// line) and kills it when the test ends. It skips the test when mariadbd or
// mariadb-install-db is not installed, except in CI (MADANG_CI set), where
// it fails. Like every MySQL name here, it runs MariaDB.
func PrivateMySQL(t testing.TB, args ...string) *MariaDBServer {
	t.Helper()
	m, err := privateserver.NewMariaDB(context.Background(), privateserver.MariaDBConfig{Dir: t.TempDir(), Args: args})
	if errors.Is(err, privateserver.ErrNotInstalled) {
		if os.Getenv("MADANG_CI") != "" {
			t.Fatalf("%v, and CI must not skip tests that need a private MariaDB", err)
		}
		t.Skipf("this test starts a mariadbd of its own: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Kill)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &MariaDBServer{m}
}

// Addr is the server's host:port, such as "127.0.0.1:41234".
func (s *MariaDBServer) Addr() string { return s.m.Addr() }

// DSN returns a go-sql-driver/mysql DSN of database db ("" for none): user
// root without a password, over TCP, without parameters (append
// "?parseTime=true" and the like).
func (s *MariaDBServer) DSN(db string) string { return s.m.DSN(db) }

// PID is the process id of the server's current process (it changes at
// Restart).
func (s *MariaDBServer) PID() int { return s.m.PID() }

// LogPath is the file the server's output is appended to.
func (s *MariaDBServer) LogPath() string { return s.m.LogPath() }

// Ping reports whether the server answers now.
func (s *MariaDBServer) Ping(ctx context.Context) error { return s.m.Ping(ctx) }

// Kill kills the server with SIGKILL (kill -9, also when frozen) and waits
// until the process has exited. Safe to call more than once.
func (s *MariaDBServer) Kill() { s.m.Kill() }

// Restart kills the server if it runs and starts it again on the same
// port and data directory (after Kill: InnoDB crash recovery), waiting
// (bounded by StartTimeout) until it answers.
func (s *MariaDBServer) Restart(ctx context.Context) error { return s.m.Restart(ctx) }

// Freeze stops the server with SIGSTOP: connections stay open and nothing
// is answered until Thaw.
func (s *MariaDBServer) Freeze() error { return s.m.Freeze() }

// Thaw continues a frozen server with SIGCONT and waits (bounded by
// StartTimeout) until it answers.
func (s *MariaDBServer) Thaw(ctx context.Context) error { return s.m.Thaw(ctx) }

// Stop ends the server: SIGCONT (in case it is frozen), SIGTERM, and
// SIGKILL if it has not exited after grace (a graceful stop leaves a clean
// data directory). Safe to call more than once.
func (s *MariaDBServer) Stop(grace time.Duration) { s.m.Stop(grace) }
