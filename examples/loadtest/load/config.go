package load

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Mode is how virtual users protect their requests after logging in, over
// HTTP and over the Chat scenario's websocket.
type Mode string

// Modes.
const (
	// ModeAuthenticated seals requests with AES-GCM under the session's keys
	// (the login itself is XOR-obfuscated), as a production client does.
	ModeAuthenticated Mode = "auth"
	// ModeXOR only obfuscates frames with the shared XOR key.
	ModeXOR Mode = "xor"
)

// Config configures a run. The zero value (with a URL) is valid: 10 users,
// no ramp-up, no think time, for 30 s or DefaultIterations iterations,
// whichever ends first.
type Config struct {
	// URL is the game server's RPC endpoint, such as
	// "http://127.0.0.1:8080/v1/rpc". Required.
	URL string
	// AllowRemote permits a URL whose host is not loopback (127.0.0.0/8,
	// ::1, localhost). Default false: a load test aimed at someone else's
	// server by a typo is refused (ErrRemote).
	AllowRemote bool
	// WSURL is the realtime (websocket) endpoint of the Chat scenario: the
	// game server's hub or a realtime server's node, as a ws, wss, http or
	// https URL, such as "ws://127.0.0.1:8080/ws". Default: URL's host with
	// the path DefaultWSPath (the game server's own hub) and the scheme ws
	// (wss for https). It is checked like URL (loopback unless
	// AllowRemote). Only the Chat scenario connects to it.
	WSURL string
	// WSDevLogin makes the Chat scenario take its websocket tokens from the
	// realtime node's development login (GET /dev/login?user=<the user's
	// key> on WSURL's host) instead of sending the game session's token.
	// Use it for a realtime server (examples/realtimeserver) in memory
	// mode, which does not know the game server's sessions. A realtime
	// server in Redis mode on the game server's Redis and key prefix, and
	// the game server's own hub, accept the game session's token: leave it
	// false. Default false.
	WSDevLogin bool
	// ChatRooms is how many chat channels the Chat scenario's users spread
	// over: user i joins the world chat partition "world.<i mod
	// ChatRooms>", so each message reaches about Users/ChatRooms users.
	// Default Users/DefaultChatRoomSize rounded up, at most MaxChatRooms
	// (the hub's default number of world partitions).
	ChatRooms int
	// XORKey is the frame obfuscation key the server expects. Default
	// "madang-dev-xor-key" (the game server's default).
	XORKey string
	// Mode protects requests after login, HTTP and websocket. Default
	// ModeAuthenticated.
	Mode Mode
	// Scenario is what each user does repeatedly. Default: the mix
	// DefaultMix.
	Scenario Scenario
	// Users is the number of virtual users. Default 10, at most MaxUsers.
	Users int
	// RampUp spreads the users' starts evenly over this duration. Default 0
	// (all at once); at most Duration.
	RampUp time.Duration
	// Warmup is the start of the run that is not counted: its calls run
	// and stay in the per-second series, but the totals (Report.Commands,
	// Report.Total, their throughput) and the CPU times cover only the
	// calls that complete after it, over the time after it
	// (Report.CountedS). So a run at many users is compared at its steady
	// state, without its ramp-up and the logins that start every user.
	// Default 0; below Duration.
	Warmup time.Duration
	// Duration bounds the run in time. Default DefaultDuration, at most
	// MaxDuration.
	Duration time.Duration
	// Iterations bounds the run in scenario iterations over all users (the
	// logins that start each user are not iterations). Default
	// DefaultIterations, at most MaxIterations. The run ends at whichever
	// bound comes first.
	Iterations int64
	// ThinkMin and ThinkMax are a user's pause after each iteration, drawn
	// uniformly from [ThinkMin, ThinkMax] (fixed when equal; a ThinkMax below
	// ThinkMin is taken as ThinkMin). Default 0: no pause, the users send
	// as fast as the server answers (a capacity test).
	ThinkMin, ThinkMax time.Duration
	// RequestTimeout bounds one call, retries included. Default 10 s.
	RequestTimeout time.Duration
	// MaxAttempts is how often the client sends one call at most when
	// replies are lost or the server answers a retryable code (the same
	// request id each time). Default 3.
	MaxAttempts int
	// DevicePrefix starts every device id the users log in with. Default
	// "lt-" plus a random run id, so each run plays new guests.
	DevicePrefix string
	// MetricsURL, when set, is the server's Prometheus endpoint, sampled
	// every MetricsEvery for process_resident_memory_bytes,
	// process_cpu_seconds_total and go_goroutines (soak mode). A failed
	// sample is counted and skipped.
	MetricsURL string
	// MetricsEvery is the sampling period of MetricsURL. Default 5 s, at
	// least 1 s.
	MetricsEvery time.Duration
	// ServerPID, when positive, is the server's process id on this Linux
	// machine: its CPU time (utime+stime in /proc/<pid>/stat) is read at the
	// start and the end, so the report gives the server's own CPU apart
	// from the generator's.
	ServerPID int
	// HTTPClient sends the requests (and reads MetricsURL). Default: a
	// client of the run's own that keeps one idle connection per user.
	HTTPClient *http.Client
	// Progress receives one progress line per second (nil: none).
	Progress io.Writer
	// ProgressTTY rewrites the progress line in place (a terminal) instead
	// of printing one line per second.
	ProgressTTY bool
	// Logger logs the run's events (nil: silent).
	Logger *slog.Logger
	// Seed seeds the users' random choices (mix, think time); 0 picks one.
	Seed uint64
}

// Limits and defaults of Config.
const (
	DefaultUsers          = 10
	MaxUsers              = 10000
	DefaultDuration       = 30 * time.Second
	MaxDuration           = 24 * time.Hour
	DefaultIterations     = 1_000_000
	MaxIterations         = 1_000_000_000
	DefaultRequestTimeout = 10 * time.Second
	DefaultMaxAttempts    = 3
	DefaultMetricsEvery   = 5 * time.Second
	DefaultXORKey         = "madang-dev-xor-key"
	// DefaultWSPath is where the game server mounts its realtime hub
	// (server.WSPath), the path of the default WSURL.
	DefaultWSPath = "/ws"
	// DefaultChatRoomSize is the users per chat room by default
	// (Config.ChatRooms), so a message reaches about 20 users.
	DefaultChatRoomSize = 20
	// MaxChatRooms bounds Config.ChatRooms: the hub's default number of
	// world chat partitions (realtime.DefaultMaxWorldPartitions).
	MaxChatRooms = 1000
	// MaxLoginBackoff caps a user's wait between failed logins (it starts
	// at 1 s and doubles, with jitter).
	MaxLoginBackoff = 30 * time.Second
)

// ErrRemote is returned for a target that is not loopback while
// Config.AllowRemote is false.
var ErrRemote = errors.New("load: target is not loopback (127.0.0.1, ::1, localhost); pass -allow-remote to load a remote server")

// withDefaults validates cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.URL == "" {
		return cfg, errors.New("load: no target URL")
	}
	if err := CheckTarget(cfg.URL, cfg.AllowRemote); err != nil {
		return cfg, err
	}
	if cfg.MetricsURL != "" {
		if err := CheckTarget(cfg.MetricsURL, cfg.AllowRemote); err != nil {
			return cfg, fmt.Errorf("metrics URL: %w", err)
		}
	}
	if cfg.WSURL == "" {
		cfg.WSURL = defaultWSURL(cfg.URL)
	}
	if err := CheckTarget(cfg.WSURL, cfg.AllowRemote); err != nil {
		return cfg, fmt.Errorf("websocket URL: %w", err)
	}
	if cfg.XORKey == "" {
		cfg.XORKey = DefaultXORKey
	}
	switch cfg.Mode {
	case "":
		cfg.Mode = ModeAuthenticated
	case ModeAuthenticated, ModeXOR:
	default:
		return cfg, fmt.Errorf("load: mode %q: want auth or xor", cfg.Mode)
	}
	if cfg.Scenario == nil {
		m, err := ParseMix(DefaultMix)
		if err != nil {
			return cfg, err
		}
		cfg.Scenario = m
	}
	bounded := func(name string, v *int64, def, limit int64) error {
		switch {
		case *v < 0:
			return fmt.Errorf("load: %s must not be negative", name)
		case *v == 0:
			*v = def
		case *v > limit:
			return fmt.Errorf("load: %s %d is above the limit %d", name, *v, limit)
		}
		return nil
	}
	users, dur, timeout := int64(cfg.Users), int64(cfg.Duration), int64(cfg.RequestTimeout)
	attempts, every := int64(cfg.MaxAttempts), int64(cfg.MetricsEvery)
	for _, b := range []struct {
		name         string
		v            *int64
		def, maximum int64
	}{
		{"users", &users, DefaultUsers, MaxUsers},
		{"duration", &dur, int64(DefaultDuration), int64(MaxDuration)},
		{"iterations", &cfg.Iterations, DefaultIterations, MaxIterations},
		{"request timeout", &timeout, int64(DefaultRequestTimeout), int64(time.Hour)},
		{"attempts", &attempts, DefaultMaxAttempts, 100},
		{"metrics period", &every, int64(DefaultMetricsEvery), int64(time.Hour)},
	} {
		if err := bounded(b.name, b.v, b.def, b.maximum); err != nil {
			return cfg, err
		}
	}
	cfg.Users, cfg.Duration, cfg.RequestTimeout = int(users), time.Duration(dur), time.Duration(timeout)
	cfg.MaxAttempts, cfg.MetricsEvery = int(attempts), max(time.Duration(every), time.Second)
	if cfg.RampUp < 0 || cfg.RampUp > cfg.Duration {
		return cfg, fmt.Errorf("load: ramp-up %v must be within 0..duration (%v)", cfg.RampUp, cfg.Duration)
	}
	if cfg.Warmup < 0 || cfg.Warmup >= cfg.Duration {
		return cfg, fmt.Errorf("load: warm-up %v must be within 0..duration (%v), below it", cfg.Warmup, cfg.Duration)
	}
	if cfg.ThinkMin < 0 || cfg.ThinkMax < 0 {
		return cfg, errors.New("load: think time must not be negative")
	}
	cfg.ThinkMax = max(cfg.ThinkMax, cfg.ThinkMin)
	switch {
	case cfg.ChatRooms < 0 || cfg.ChatRooms > MaxChatRooms:
		return cfg, fmt.Errorf("load: chat rooms %d: want 1..%d (0: the default)", cfg.ChatRooms, MaxChatRooms)
	case cfg.ChatRooms == 0:
		cfg.ChatRooms = min((cfg.Users+DefaultChatRoomSize-1)/DefaultChatRoomSize, MaxChatRooms)
	}
	if cfg.DevicePrefix == "" {
		cfg.DevicePrefix = fmt.Sprintf("lt-%08x-", rand.Uint32())
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	return cfg, nil
}

// defaultWSURL returns the game server's hub on rpcURL's host: scheme ws
// (wss for https), path DefaultWSPath. A URL that does not parse is
// returned as is, for CheckTarget to refuse.
func defaultWSURL(rpcURL string) string {
	u, err := url.Parse(rpcURL)
	if err != nil {
		return rpcURL
	}
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	case "http":
		u.Scheme = "ws"
	}
	u.Path, u.RawPath, u.RawQuery, u.Fragment = DefaultWSPath, "", "", ""
	return u.String()
}

// CheckTarget returns ErrRemote when rawURL's host is not a loopback
// address or "localhost" and allowRemote is false, and an error when rawURL
// is not an http, https, ws or wss URL with a host.
func CheckTarget(rawURL string, allowRemote bool) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("load: target %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return fmt.Errorf("load: target %q: want an http, https, ws or wss URL", rawURL)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("load: target %q has no host", rawURL)
	}
	if allowRemote || IsLoopback(host) {
		return nil
	}
	return fmt.Errorf("%w: %q", ErrRemote, host)
}

// IsLoopback reports whether host (a name or an address, without port) is
// "localhost" or a loopback address. Other names are not resolved: a name
// that points at loopback still needs -allow-remote.
func IsLoopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
