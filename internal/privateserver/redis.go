package privateserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// RedisConfig configures NewRedis. See sessiontest.RedisServerConfig,
// which documents the same fields for users.
type RedisConfig struct {
	Dir          string
	Port         int
	Bin          string
	Args         []string
	Log          string
	StartTimeout time.Duration
	// Argv, when set, replaces the command line after the binary (a
	// Sentinel: its config file and --sentinel); Dir and Args are then
	// unused.
	Argv func(port int) []string
}

// Redis is a private redis-server.
type Redis struct {
	*Server
}

// NewRedis finds the binary and returns the server, not started.
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if cfg.Dir == "" {
		return nil, errors.New("redis-server: no directory given (RedisConfig.Dir)")
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("redis-server: port %d out of range", cfg.Port)
	}
	if cfg.Bin == "" {
		cfg.Bin = "redis-server"
	}
	if cfg.Log == "" {
		cfg.Log = filepath.Join(cfg.Dir, "redis.log")
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	bin, err := lookBin(cfg.Bin)
	if err != nil {
		return nil, fmt.Errorf("redis-server: %w (%w)", err, ErrNotInstalled)
	}
	s := &Server{
		name: "redis-server", logPath: cfg.Log, timeout: cfg.StartTimeout,
		port: cfg.Port, auto: cfg.Port == 0, freePort: FreeRedisPort,
		argv: func(port int) []string {
			if cfg.Argv != nil {
				return append([]string{bin}, cfg.Argv(port)...)
			}
			return append([]string{bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
				"--save", "", "--appendonly", "no", "--dir", cfg.Dir, "--daemonize", "no", "--protected-mode", "yes"},
				cfg.Args...)
		},
		probe: pingRedis,
	}
	return &Redis{s}, nil
}

// FreeRedisPort returns a loopback port that is free now and whose Redis
// Cluster bus port (port+10000) is free too, so that a private server can
// run in cluster mode.
func FreeRedisPort() (int, error) {
	for range 100 {
		port, err := freeTCPPort()
		if err != nil {
			return 0, err
		}
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", addr(port+10000))
		if err != nil {
			continue
		}
		bus.Close()
		return port, nil
	}
	return 0, errors.New("no free loopback port with a free cluster bus port")
}

// pingRedis sends PING in RESP and expects +PONG.
func pingRedis(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 7)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != "+PONG\r\n" {
		return fmt.Errorf("redis answered %q", buf[:n])
	}
	return nil
}
