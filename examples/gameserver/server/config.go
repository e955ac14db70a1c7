package server

import (
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/examples/cmdline"
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
	// Dev is development mode: plain JSON requests (so curl works) on the
	// RPC path and plain frames on the websocket, development receipts for
	// shop.buy_iap (free gems, see IAPVerifier), the default XOR key, a
	// short admin token, and a random admin token printed at start when
	// AdminToken is empty. It never runs on a non-loopback address (Addr,
	// AdminAddr, or the listeners Serve is given) unless DevAllowRemote is
	// set too. The zero value is off; ParseConfig's default is on (the
	// server then listens on loopback only). Flag -dev, env MADANG_DEV:
	// true or false (strconv.ParseBool's values; anything else refuses to
	// start).
	Dev bool
	// DevAllowRemote lets development mode run on a non-loopback address
	// — everyone who can reach the server then gets its development
	// features. Default false (flag -dev-allow-remote, env
	// MADANG_DEV_ALLOW_REMOTE, parsed like MADANG_DEV).
	DevAllowRemote bool
	// XORKey is the frame obfuscation key shared with the client. Required
	// outside development mode, and there it must not be DefaultXORKey
	// (that key ships with every copy of madang). Default in development
	// mode "madang-dev-xor-key" (flag -xor-key, env MADANG_XOR_KEY).
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
	// credentials. The server adds parseTime=true, and interpolateParams=true
	// where shard.MySQLDSN finds it safe (one round trip per statement);
	// interpolateParams=false in the DSN keeps prepared statements. Default
	// "" (embedded SQLite). Flag -mysql, env MADANG_MYSQL_DSN.
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
	// InFlight bounds the game commands the server serves at once, HTTP
	// and websocket together (protocol.InFlightLimit): past Max a command
	// queues, in arrival order, when its expected wait (its place in the
	// queue times the observed time a command holds its turn, over Max)
	// is within Wait, and waits up to MaxWait; otherwise it is answered
	// unavailable (retryable) at once, with a retry hint of about that
	// expected wait. So with more clients than the server can serve at
	// once the queue is at the door, not in the database pools. Its zero
	// value takes the protocol.InFlightConfig defaults: 64 at once, 5 s
	// expected wait, 15 s at most (flags -max-inflight, env
	// MADANG_MAX_INFLIGHT, negative: no limit; -inflight-wait and
	// -inflight-max-wait).
	InFlight protocol.InFlightConfig

	// CommandRate and CommandBurst limit each user's game commands (HTTP
	// and websocket together, every connection, every server sharing the
	// Redis): past the burst a command is answered
	// protocol.CodeRateLimited with retry_ms, without running. Logins and
	// sys.time are not counted (logins have MaxLogins). Defaults
	// session.DefaultCommandRate (20/s) and DefaultCommandBurst (40);
	// negative CommandRate: no limit (flags -cmd-rate, -cmd-burst, env
	// MADANG_CMD_RATE, MADANG_CMD_BURST).
	CommandRate  float64
	CommandBurst int
	// SessionCheckAge is how long a bearer token the session store accepted
	// is accepted again from the server's memory (session.VerifiedCache)
	// instead of asking the store (in Redis mode: one script round trip
	// per command). It is also how late a kick or revocation made on
	// another server takes effect here at worst, when its event is lost;
	// on this server, and when the event arrives, it takes effect at once.
	// Authenticated frames always reach the store (their counter). Default
	// session.DefaultVerifiedMaxAge (1 s), at most 10 s; negative: every
	// command asks the store.
	SessionCheckAge time.Duration
	// ChatRate and ChatBurst limit each user's chat messages and whispers
	// on the realtime hub (realtime.Config.ChatRate), per user across
	// reconnects and servers. Defaults realtime.DefaultChatRate (2/s) and
	// DefaultChatBurst (10) (flags -chat-rate, -chat-burst, env
	// MADANG_CHAT_RATE, MADANG_CHAT_BURST).
	ChatRate  float64
	ChatBurst int
	// MaxUserConns is how many websocket connections one user may hold on
	// this server; one more is refused at the handshake with HTTP 429
	// rate_limited (realtime.Config.MaxUserConns). Default
	// realtime.DefaultMaxUserConns (8); negative: no cap (flag
	// -max-ws-per-user, env MADANG_MAX_WS_PER_USER).
	MaxUserConns int

	// AdminAddr is the ops API's listen address; "off" disables it. Default
	// 127.0.0.1:8081 (flag -admin-addr, env MADANG_ADMIN_ADDR).
	AdminAddr string
	// AdminToken is the ops API's bearer token. Outside development mode
	// it must be at least MinAdminTokenLen bytes (ParseConfig also
	// requires one unless AdminAddr is "off"; New with an empty token
	// makes a random one nobody is told, closing the /v1 API). In
	// development mode any length works, and an empty token is replaced
	// by a random one printed at start. Never all or partly whitespace
	// at either end, nor with control characters. Flag -admin-token, env
	// MADANG_ADMIN_TOKEN.
	AdminToken string
	// Pprof serves the Go runtime's profiles (CPU, heap, goroutines,
	// block, mutex, execution trace) under PprofPath on the admin
	// listener, to loopback clients with the AdminToken, and turns on the
	// block and mutex profiles (PprofBlockRate, PprofMutexFraction). It
	// needs the admin listener on a loopback address: with AdminAddr off
	// or not loopback the server refuses to start (DevAllowRemote does
	// not change that). Default false (flag -pprof, env MADANG_PPROF:
	// true or false, strconv.ParseBool's values; anything else refuses to
	// start).
	Pprof bool
	// ConsoleSecureCookies marks the ops console's cookies Secure even on
	// plain HTTP, for an admin listener behind a TLS proxy (a request that
	// came over TLS gets Secure cookies anyway). Default false (flag
	// -console-secure-cookies, env MADANG_CONSOLE_SECURE_COOKIES).
	ConsoleSecureCookies bool
	// consolePasswordCost, set by tests, is the bcrypt cost of new
	// console passwords (0: bcrypt's default).
	consolePasswordCost int
	// LiveOpsPoll is how often each server re-reads the live-ops policy
	// version from the common database (with Redis, changes also arrive by
	// pub/sub at once). Default 5 s (flag -liveops-poll).
	LiveOpsPoll time.Duration

	// GameDataDir is a directory of game data files (data_v<version>.bytes,
	// built by the data tool, see package gamedata), loaded with os.DirFS.
	// Default "" (the embedded gamedata.Default, versions "1" and "2", "1"
	// in use until a publish). With a directory, the last version in
	// string order is in use until a publish. Versions uploaded through
	// the ops API are added from the common database. Flag -gamedata, env
	// MADANG_GAMEDATA_DIR. The catalog's state is re-read every
	// LiveOpsPoll and, with Redis, at once on a change notification.
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
	// IAPSweepInterval is how often the server grants the in-app
	// purchases whose receipt was redeemed while their grant never
	// committed (game.IAPConfig.Pending) and that were noted more than
	// one interval ago; a player's own are also granted at their next
	// login. Default DefaultIAPSweepInterval (1 minute); negative: no
	// sweep (logins still grant them).
	IAPSweepInterval time.Duration

	// wrapCommon, set by tests, replaces the common database's pool (to
	// count what it is sent); nil: none.
	wrapCommon func(db *sql.DB, dsn string) *sql.DB
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
	// DefaultIAPSweepInterval is Config.IAPSweepInterval's default.
	DefaultIAPSweepInterval = time.Minute
)

// AdminOff as Config.AdminAddr disables the ops API.
const AdminOff = "off"

// MinAdminTokenLen is the shortest Config.AdminToken accepted outside
// development mode: 32 bytes, such as 16 random bytes in hex or 24 in
// base64 (openssl rand -hex 16).
const MinAdminTokenLen = 32

// devFeatures names what development mode turns on, for error messages.
const devFeatures = "plain JSON, development receipts (free gems), the default XOR key, a printed admin token"

// check enforces the rules of development mode and secrets on cfg (after
// defaults): outside development mode a real XOR key and a long enough
// admin token; in it, loopback listen addresses unless DevAllowRemote.
func (cfg *Config) check() error {
	if t := cfg.AdminToken; t != "" {
		if strings.TrimSpace(t) != t || strings.IndexFunc(t, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
			return errors.New("-admin-token (MADANG_ADMIN_TOKEN) must not start or end with whitespace nor contain control characters")
		}
	}
	if cfg.Pprof {
		switch {
		case cfg.AdminAddr == AdminOff:
			return errors.New("-pprof (MADANG_PPROF) serves the profiles on the admin listener: it needs -admin-addr (MADANG_ADMIN_ADDR), not off")
		case !cmdline.IsLoopbackListen(cfg.AdminAddr):
			return fmt.Errorf("-pprof (MADANG_PPROF) needs the admin listener on a loopback address, not %q: profiles show the server's memory", cfg.AdminAddr)
		}
	}
	if !cfg.Dev {
		switch {
		case strings.TrimSpace(cfg.XORKey) == "":
			return errors.New("-xor-key (MADANG_XOR_KEY) is required outside development mode")
		case cfg.XORKey == DefaultXORKey:
			return fmt.Errorf("-xor-key (MADANG_XOR_KEY) is the default %q, which ships with every copy of madang: choose your own outside development mode", DefaultXORKey)
		case cfg.AdminToken != "" && len(cfg.AdminToken) < MinAdminTokenLen:
			return fmt.Errorf("-admin-token (MADANG_ADMIN_TOKEN) is %d bytes; outside development mode it must be at least %d (for example: openssl rand -hex 16)", len(cfg.AdminToken), MinAdminTokenLen)
		}
		return nil
	}
	if cfg.DevAllowRemote {
		return nil
	}
	if !cmdline.IsLoopbackListen(cfg.Addr) {
		return cmdline.DevRemoteError("-addr (MADANG_ADDR)", cfg.Addr, devFeatures)
	}
	if cfg.AdminAddr != AdminOff && !cmdline.IsLoopbackListen(cfg.AdminAddr) {
		return cmdline.DevRemoteError("-admin-addr (MADANG_ADMIN_ADDR)", cfg.AdminAddr, devFeatures)
	}
	return nil
}

// ParseConfig reads flags from args, with MADANG_* environment variables
// (through getenv) as the defaults flags override. For -h or -help it
// returns a *cmdline.HelpError: errors.Is(err, flag.ErrHelp) holds and the
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
	dev, err := cmdline.EnvBool(getenv, "MADANG_DEV", true)
	if err != nil {
		return cfg, err
	}
	devRemote, err := cmdline.EnvBool(getenv, "MADANG_DEV_ALLOW_REMOTE", false)
	if err != nil {
		return cfg, err
	}
	pprofOn, err := cmdline.EnvBool(getenv, "MADANG_PPROF", false)
	if err != nil {
		return cfg, err
	}
	fs.BoolVar(&cfg.Pprof, "pprof", pprofOn, "serve Go profiles under /debug/pprof/ on the admin listener (loopback only, admin token) (env MADANG_PPROF)")
	fs.BoolVar(&cfg.Dev, "dev", dev, "development mode: plain JSON so curl works, development receipts, the default XOR key, a printed admin token; loopback addresses only (env MADANG_DEV; -dev=false or MADANG_DEV=false turns it off)")
	fs.BoolVar(&cfg.DevAllowRemote, "dev-allow-remote", devRemote, "let development mode listen on a non-loopback address (env MADANG_DEV_ALLOW_REMOTE)")
	fs.StringVar(&cfg.XORKey, "xor-key", env("MADANG_XOR_KEY", DefaultXORKey), "frame obfuscation key shared with clients; the default is refused outside -dev (env MADANG_XOR_KEY)")
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
	maxInFlight, err := strconv.Atoi(env("MADANG_MAX_INFLIGHT", strconv.Itoa(protocol.DefaultMaxInFlight)))
	if err != nil {
		return cfg, fmt.Errorf("MADANG_MAX_INFLIGHT: %w", err)
	}
	fs.IntVar(&cfg.InFlight.Max, "max-inflight", maxInFlight, "game commands served at once (HTTP and websocket); more queue (see -inflight-wait) or are answered unavailable; negative: no limit (env MADANG_MAX_INFLIGHT)")
	fs.DurationVar(&cfg.InFlight.Wait, "inflight-wait", protocol.DefaultInFlightWait, "the longest expected wait a game command past -max-inflight is queued for (its place in the queue times the observed time a command holds its turn, over -max-inflight); longer: answered unavailable at once with a retry hint of that wait; negative: not queued at all")
	fs.DurationVar(&cfg.InFlight.MaxWait, "inflight-max-wait", 0, "the longest a queued game command waits for its turn before it is answered unavailable (default 3 × -inflight-wait)")
	if err := limitFlags(fs, &cfg, env); err != nil {
		return cfg, err
	}
	fs.StringVar(&cfg.AdminAddr, "admin-addr", env("MADANG_ADMIN_ADDR", DefaultAdminAddr), "ops API listen address, or off (env MADANG_ADMIN_ADDR)")
	fs.StringVar(&cfg.AdminToken, "admin-token", env("MADANG_ADMIN_TOKEN", ""), "ops API bearer token, at least 32 bytes; required unless -dev or -admin-addr off (env MADANG_ADMIN_TOKEN)")
	secureCookies, err := cmdline.EnvBool(getenv, "MADANG_CONSOLE_SECURE_COOKIES", false)
	if err != nil {
		return cfg, err
	}
	fs.BoolVar(&cfg.ConsoleSecureCookies, "console-secure-cookies", secureCookies, "mark the ops console's cookies Secure on plain HTTP too, behind a TLS proxy (env MADANG_CONSOLE_SECURE_COOKIES)")
	fs.DurationVar(&cfg.LiveOpsPoll, "liveops-poll", DefaultLiveOpsPoll, "how often the live-ops policy and game data versions are re-read")
	fs.StringVar(&cfg.GameDataDir, "gamedata", env("MADANG_GAMEDATA_DIR", ""), "directory of game data files data_v*.bytes (default: the embedded versions) (env MADANG_GAMEDATA_DIR)")
	if err := cmdline.Parse(fs, args); err != nil {
		return cfg, err // -h: a *cmdline.HelpError, flag.ErrHelp
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
	if err := cfg.check(); err != nil {
		return cfg, err
	}
	if cfg.MySQLGameDBs < 1 || cfg.MySQLGameDBs > 99 {
		return cfg, errors.New("-mysql-game-dbs must be 1..99")
	}
	if strings.ContainsAny(cfg.RedisPrefix, "{}") {
		return cfg, errors.New("-redis-prefix must not contain braces")
	}
	if !cfg.Dev && cfg.AdminAddr != AdminOff && cfg.AdminToken == "" {
		return cfg, fmt.Errorf("-admin-token (MADANG_ADMIN_TOKEN, at least %d bytes) is required outside development mode, or -admin-addr off", MinAdminTokenLen)
	}
	return cfg, nil
}

// limitFlags declares the per-user limit flags (-cmd-rate, -cmd-burst,
// -chat-rate, -chat-burst, -max-ws-per-user) with their MADANG_* defaults.
func limitFlags(fs *flag.FlagSet, cfg *Config, env func(name, def string) string) error {
	num := func(name string) (float64, error) {
		v, err := strconv.ParseFloat(env(name, "0"), 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		return v, nil
	}
	var vals [5]float64
	for i, name := range []string{"MADANG_CMD_RATE", "MADANG_CMD_BURST", "MADANG_CHAT_RATE", "MADANG_CHAT_BURST", "MADANG_MAX_WS_PER_USER"} {
		v, err := num(name)
		if err != nil {
			return err
		}
		vals[i] = v
	}
	fs.Float64Var(&cfg.CommandRate, "cmd-rate", vals[0], "game commands per second per user (0: 20; negative: no limit) (env MADANG_CMD_RATE)")
	fs.IntVar(&cfg.CommandBurst, "cmd-burst", int(vals[1]), "game commands per user at once (0: 40) (env MADANG_CMD_BURST)")
	fs.Float64Var(&cfg.ChatRate, "chat-rate", vals[2], "chat messages per second per user (0: 2) (env MADANG_CHAT_RATE)")
	fs.IntVar(&cfg.ChatBurst, "chat-burst", int(vals[3]), "chat messages per user at once (0: 10) (env MADANG_CHAT_BURST)")
	fs.IntVar(&cfg.MaxUserConns, "max-ws-per-user", int(vals[4]), "websocket connections per user on this server (0: 8; negative: no cap) (env MADANG_MAX_WS_PER_USER)")
	return nil
}
