package privateserver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MariaDBConfig configures NewMariaDB. See shardtest.MariaDBServerConfig,
// which documents the same fields for users.
type MariaDBConfig struct {
	Dir             string
	Port            int
	Bin, InstallBin string
	Args            []string
	Log             string
	StartTimeout    time.Duration
}

// MariaDB is a private mariadbd.
type MariaDB struct {
	*Server
}

// ErrNotInstalled is returned when a server binary is not found.
var ErrNotInstalled = errors.New("not installed")

// NewMariaDB finds the binaries, creates the data directory Dir/data with
// mariadb-install-db unless it holds one already, and returns the server,
// not started.
func NewMariaDB(ctx context.Context, cfg MariaDBConfig) (*MariaDB, error) {
	if cfg.Dir == "" {
		return nil, errors.New("mariadbd: no directory given (MariaDBConfig.Dir)")
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("mariadbd: port %d out of range", cfg.Port)
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&cfg.Bin, "mariadbd")
	def(&cfg.InstallBin, "mariadb-install-db")
	def(&cfg.Log, filepath.Join(cfg.Dir, "mariadbd.log"))
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 2 * time.Minute
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	bin, err := lookBin(cfg.Bin)
	if err != nil {
		return nil, fmt.Errorf("mariadbd: %w (%w)", err, ErrNotInstalled)
	}
	data := filepath.Join(cfg.Dir, "data")
	// A temporary directory of its own: with the default (/tmp) two
	// instances starting at once deleted each other's internal temporary
	// tables ("Error on delete of '/tmp/#sql-temptable-…'") and the
	// installation failed.
	tmp := filepath.Join(cfg.Dir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(data, "mysql")); err != nil {
		install, err := lookBin(cfg.InstallBin)
		if err != nil {
			return nil, fmt.Errorf("mariadbd: %w (%w)", err, ErrNotInstalled)
		}
		args := []string{"--no-defaults", "--datadir=" + data, "--tmpdir=" + tmp, "--auth-root-authentication-method=normal", "--skip-test-db"}
		if os.Geteuid() == 0 {
			args = append(args, "--user=root")
		}
		out, err := exec.CommandContext(ctx, install, args...).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("mariadbd: %s: %w\n%s", install, err, out)
		}
	}
	s := &Server{
		name: "mariadbd", logPath: cfg.Log, timeout: cfg.StartTimeout,
		port: cfg.Port, auto: cfg.Port == 0, freePort: freeTCPPort,
		argv: func(port int) []string {
			a := []string{bin, "--no-defaults", "--datadir=" + data, "--tmpdir=" + tmp,
				"--bind-address=127.0.0.1", "--port=" + strconv.Itoa(port),
				"--socket=" + filepath.Join(cfg.Dir, "mysqld.sock"), "--pid-file=" + filepath.Join(cfg.Dir, "mysqld.pid")}
			if os.Geteuid() == 0 {
				a = append(a, "--user=root")
			}
			return append(a, cfg.Args...)
		},
		probe: pingMySQL,
	}
	return &MariaDB{s}, nil
}

// DSN returns the DSN of database db ("" for none) as root, without a
// password, over TCP, with no parameters.
func (m *MariaDB) DSN(db string) string {
	return "root@tcp(" + m.Addr() + ")/" + db
}

func pingMySQL(ctx context.Context, addr string) error {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr = "root", "tcp", addr
	c.Timeout = 2 * time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	return db.PingContext(ctx)
}
