package server

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/internal/cli"
	"github.com/madang-io/madang/protocol"
)

// Config is the game server's configuration. The zero value (after
// ParseConfig's defaults) is the embedded mode: everything in one process on
// 127.0.0.1:8080, data in ./data, memory sessions. RedisAddr or RedisCluster
// switch sessions, the cache, boards and live-ops notifications to Redis;
// MySQLDSN switches the databases to MySQL/MariaDB.
type Config struct {
	// Addr is the listen address. Default 127.0.0.1:8080 (flag -addr, env
	// MADANG_ADDR).
	Addr string
	// DataDir holds the embedded SQLite databases. Default ./data (flag
	// -data, env MADANG_DATA_DIR). Unused with MySQLDSN.
	DataDir string
	// Dev accepts plain JSON requests so curl works, and prints a random
	// admin token when AdminToken is empty. Default true (flag -dev, env
	// MADANG_DEV=0 to turn off).
	Dev bool
	// XORKey is the frame obfuscation key shared with the client. Default
	// "madang-dev-xor-key" (flag -xor-key, env MADANG_XOR_KEY).
	XORKey string
	// ShutdownTimeout bounds graceful shutdown. Default 10 s.
	ShutdownTimeout time.Duration
	// LogLevel is the minimum level logged. Default info (flag -log-level).
	LogLevel slog.Level

	// RedisAddr is one Redis node ("host:port") or a comma-separated list
	// of nodes, users routed over them by user key (session.Router,
	// Modulo). Default "" (memory backends). Flag -redis, env
	// MADANG_REDIS_ADDR.
	RedisAddr string
	// RedisCluster is a comma-separated list of Redis Cluster seed nodes;
	// it wins over RedisAddr. Flag -redis-cluster, env MADANG_REDIS_CLUSTER.
	RedisCluster string
	// RedisPrefix starts every Redis key and channel. Default "madang:"
	// (flag -redis-prefix, env MADANG_REDIS_PREFIX). No braces.
	RedisPrefix string
	// MySQLDSN is the common database on MySQL/MariaDB, such as
	// "game:secret@tcp(127.0.0.1:3306)/madang". On first start the server
	// creates the game databases <db>_gamedb01.. on the same server and
	// registers them in the directory; their DSNs are formed from this one's
	// credentials. Default "" (embedded SQLite). Flag -mysql, env
	// MADANG_MYSQL_DSN.
	MySQLDSN string
	// MySQLGameDBs is how many game databases a first start on MySQL
	// creates. Default 4 (flag -mysql-game-dbs, env MADANG_MYSQL_GAME_DBS).
	MySQLGameDBs int

	// MaxLogins is how many logins (auth.guest) the server runs at once;
	// a login past it waits up to LoginQueueWait for one to finish, then
	// is answered protocol.CodeRateLimited (retryable) with a retry hint
	// of 1-2 s (LoginRetryAfter plus jitter). Default DefaultMaxLogins (16),
	// negative: no limit (flag -max-logins, env MADANG_MAX_LOGINS).
	MaxLogins int
	// LoginQueueWait is how long a login past MaxLogins waits for a slot.
	// Default DefaultLoginQueueWait (1 s); negative: not at all.
	LoginQueueWait time.Duration
	// DecodeBudget bounds the bytes of decoded request bodies the server
	// holds at once, shared by the HTTP handler and the realtime hub
	// (protocol.DecodeBudget): a request that finds no room within its
	// Wait is answered rate_limited with a retry hint of 1-2 s. Its zero
	// value takes the protocol.DecodeBudgetConfig defaults: 64 MiB, of
	// which plain and XOR frames at most a quarter; bodies up to 4 KiB
	// free; 1 s wait. Published as madang_decode_budget_* on /metrics.
	DecodeBudget protocol.DecodeBudgetConfig

	// AdminAddr is the ops API's listen address; "off" disables it. Default
	// 127.0.0.1:8081 (flag -admin-addr, env MADANG_ADMIN_ADDR).
	AdminAddr string
	// AdminToken is the ops API's bearer token. Required outside dev mode;
	// in dev mode an empty token is replaced by a random one printed at
	// start. Flag -admin-token, env MADANG_ADMIN_TOKEN.
	AdminToken string
	// LiveOpsPoll is how often each server re-reads the live-ops policy
	// version from the common database (with Redis, changes also arrive by
	// pub/sub at once). Default 5 s (flag -liveops-poll).
	LiveOpsPoll time.Duration

	// GameDataDir is a directory of game data versions (one subdirectory
	// per version, see package gamedata), loaded with os.DirFS. Default ""
	// (the embedded gamedata.Default, versions "1" and "2", "1" in use
	// until a publish). With a directory, the last version in string order
	// is in use until a publish. Flag -gamedata, env MADANG_GAMEDATA_DIR.
	// The catalog's published version and client mappings are re-read
	// every LiveOpsPoll.
	GameDataDir string

	// IAPVerifier verifies shop.buy_iap receipts: a studio embedding the
	// server passes anticheat.StoreVerifiers of anticheat.AppleVerifier
	// and anticheat.GoogleVerifier here (no flag: they need keys and
	// credentials). Nil: in dev mode the development verifier
	// (game.DevVerifiers, receipts "dev-receipt:<id>:<product>");
	// outside dev mode shop.buy_iap answers protocol.CodeForbidden
	// (purchases not configured) — production must supply verifiers.
	// Either way redemptions are recorded once globally in the common
	// database (anticheat tables) and verdicts go to the guard's monitor.
	IAPVerifier anticheat.Verifier
}

// Defaults of Config.
const (
	DefaultAddr            = "127.0.0.1:8080"
	DefaultAdminAddr       = "127.0.0.1:8081"
	DefaultDataDir         = "data"
	DefaultXORKey          = "madang-dev-xor-key"
	DefaultRedisPrefix     = "madang:"
	DefaultShutdownTimeout = 10 * time.Second
	DefaultLiveOpsPoll     = 5 * time.Second
)

// AdminOff as Config.AdminAddr disables the ops API.
const AdminOff = "off"

// ParseConfig reads flags from args, with MADANG_* environment variables
// (through getenv) as the defaults flags override. For -h or -help it
// returns a *cli.HelpError: errors.Is(err, flag.ErrHelp) holds and the
// message is the usage text.
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
	fs.BoolVar(&cfg.Dev, "dev", env("MADANG_DEV", "1") != "0", "accept plain JSON requests so curl works, print a random admin token (env MADANG_DEV=0 turns it off)")
	fs.StringVar(&cfg.XORKey, "xor-key", env("MADANG_XOR_KEY", DefaultXORKey), "frame obfuscation key shared with clients (env MADANG_XOR_KEY)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", DefaultShutdownTimeout, "graceful shutdown limit")
	fs.StringVar(&level, "log-level", env("MADANG_LOG_LEVEL", "info"), "debug, info, warn or error (env MADANG_LOG_LEVEL)")
	fs.StringVar(&cfg.RedisAddr, "redis", env("MADANG_REDIS_ADDR", ""), "Redis node host:port, or a comma list of nodes routed by user key (env MADANG_REDIS_ADDR)")
	fs.StringVar(&cfg.RedisCluster, "redis-cluster", env("MADANG_REDIS_CLUSTER", ""), "Redis Cluster seed nodes, comma-separated (env MADANG_REDIS_CLUSTER)")
	fs.StringVar(&cfg.RedisPrefix, "redis-prefix", env("MADANG_REDIS_PREFIX", DefaultRedisPrefix), "prefix of every Redis key and channel (env MADANG_REDIS_PREFIX)")
	fs.StringVar(&cfg.MySQLDSN, "mysql", env("MADANG_MYSQL_DSN", ""), "DSN of the common database on MySQL/MariaDB; game databases are created next to it (env MADANG_MYSQL_DSN)")
	gameDBs, err := strconv.Atoi(env("MADANG_MYSQL_GAME_DBS", strconv.Itoa(EmbeddedGameDBs)))
	if err != nil {
		return cfg, fmt.Errorf("MADANG_MYSQL_GAME_DBS: %w", err)
	}
	fs.IntVar(&cfg.MySQLGameDBs, "mysql-game-dbs", gameDBs, "game databases a first start on MySQL creates (env MADANG_MYSQL_GAME_DBS)")
	maxLogins, err := strconv.Atoi(env("MADANG_MAX_LOGINS", strconv.Itoa(DefaultMaxLogins)))
	if err != nil {
		return cfg, fmt.Errorf("MADANG_MAX_LOGINS: %w", err)
	}
	fs.IntVar(&cfg.MaxLogins, "max-logins", maxLogins, "logins run at once; more wait up to 1 s, then are answered rate_limited; negative: no limit (env MADANG_MAX_LOGINS)")
	fs.StringVar(&cfg.AdminAddr, "admin-addr", env("MADANG_ADMIN_ADDR", DefaultAdminAddr), "ops API listen address, or off (env MADANG_ADMIN_ADDR)")
	fs.StringVar(&cfg.AdminToken, "admin-token", env("MADANG_ADMIN_TOKEN", ""), "ops API bearer token; required unless -dev (env MADANG_ADMIN_TOKEN)")
	fs.DurationVar(&cfg.LiveOpsPoll, "liveops-poll", DefaultLiveOpsPoll, "how often the live-ops policy and game data versions are re-read")
	fs.StringVar(&cfg.GameDataDir, "gamedata", env("MADANG_GAMEDATA_DIR", ""), "directory of game data versions (default: the embedded versions) (env MADANG_GAMEDATA_DIR)")
	if err := cli.Parse(fs, args); err != nil {
		return cfg, err // -h: a *cli.HelpError, flag.ErrHelp
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
	if cfg.MySQLGameDBs < 1 || cfg.MySQLGameDBs > 99 {
		return cfg, errors.New("-mysql-game-dbs must be 1..99")
	}
	if strings.ContainsAny(cfg.RedisPrefix, "{}") {
		return cfg, errors.New("-redis-prefix must not contain braces")
	}
	if !cfg.Dev && cfg.AdminAddr != AdminOff && cfg.AdminToken == "" {
		return cfg, errors.New("-admin-token (MADANG_ADMIN_TOKEN) is required outside dev mode, or -admin-addr off")
	}
	return cfg, nil
}
