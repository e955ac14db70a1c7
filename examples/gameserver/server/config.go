package server

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Config is the game server's configuration. The zero value (after
// ParseConfig's defaults) is the embedded mode: everything in one process on
// 127.0.0.1:8080, data in ./data.
type Config struct {
	// Addr is the listen address. Default 127.0.0.1:8080 (flag -addr, env
	// MADANG_ADDR).
	Addr string
	// DataDir holds the embedded SQLite databases. Default ./data (flag
	// -data, env MADANG_DATA_DIR).
	DataDir string
	// Dev accepts plain JSON requests so curl works. Default true (flag -dev,
	// env MADANG_DEV=0 to turn off).
	Dev bool
	// XORKey is the frame obfuscation key shared with the client. Default
	// "madang-dev-xor-key" (flag -xor-key, env MADANG_XOR_KEY).
	XORKey string
	// ShutdownTimeout bounds graceful shutdown. Default 10 s.
	ShutdownTimeout time.Duration
	// LogLevel is the minimum level logged. Default info (flag -log-level).
	LogLevel slog.Level
}

// Defaults of Config.
const (
	DefaultAddr            = "127.0.0.1:8080"
	DefaultDataDir         = "data"
	DefaultXORKey          = "madang-dev-xor-key"
	DefaultShutdownTimeout = 10 * time.Second
)

// ParseConfig reads flags from args, with MADANG_* environment variables
// (through getenv) as the defaults flags override.
func ParseConfig(args []string, getenv func(string) string) (Config, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("gameserver", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cfg Config
	var level string
	fs.StringVar(&cfg.Addr, "addr", env("MADANG_ADDR", DefaultAddr), "listen address (env MADANG_ADDR)")
	fs.StringVar(&cfg.DataDir, "data", env("MADANG_DATA_DIR", DefaultDataDir), "directory of the embedded SQLite databases (env MADANG_DATA_DIR)")
	fs.BoolVar(&cfg.Dev, "dev", env("MADANG_DEV", "1") != "0", "accept plain JSON requests so curl works (env MADANG_DEV=0 turns it off)")
	fs.StringVar(&cfg.XORKey, "xor-key", env("MADANG_XOR_KEY", DefaultXORKey), "frame obfuscation key shared with clients (env MADANG_XOR_KEY)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", DefaultShutdownTimeout, "graceful shutdown limit")
	fs.StringVar(&level, "log-level", env("MADANG_LOG_LEVEL", "info"), "debug, info, warn or error (env MADANG_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			var b strings.Builder
			fs.SetOutput(&b)
			fs.PrintDefaults()
			return cfg, fmt.Errorf("usage of gameserver:\n%s", b.String())
		}
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return cfg, fmt.Errorf("-log-level: %w", err)
	}
	if cfg.XORKey == "" {
		return cfg, errors.New("-xor-key must not be empty")
	}
	return cfg, nil
}
