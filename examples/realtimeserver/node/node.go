// Package node is the realtime server example's node: a realtime.Hub on its
// own listener that accepts the game server's session tokens.
//
// Without Redis (the default) a node is one process with a memory broker
// and memory sessions; a dev-only endpoint, GET /dev/login?user=K, makes
// test sessions so a person can try it with no game server. With
// Config.RedisAddr or Config.RedisCluster the node opens the game server's
// Redis session store (session.NewRedisStore over the same router and key
// prefix rules as examples/gameserver/server) and a realtime.RedisBroker
// under RedisPrefix+"rt:", the broker the game server's own /ws hub uses:
// every node and the game server then share channels, a login on the game
// server is accepted here, a newer login kicks the older connection on
// whatever node it is, and notices the game server's ops API broadcasts
// (POST /v1/notices on its admin listener) reach every node's clients
// subscribed to the "system" channel. In Redis mode each user's chat rate
// is kept in a session.RedisLimiter under the same prefix, the one the game
// servers use, so it holds across every node and reconnect; each node also
// caps a user's websockets (realtime.Config.MaxUserConns, default 8).
//
// Endpoints on Config.Addr (default 127.0.0.1:8090):
//
//	GET /ws?token=T&mode=xor       the realtime binding (docs/PROTOCOL.md §16)
//	GET /healthz                   200 "ok" while serving
//	GET /stats                     JSON: node id, mode, hub counters, Redis broker counters
//	GET /dev/login?user=K          dev + memory mode only: {"token", "user_key", "key_id", "secret"}
//	                               (optional &country=&language=&platform=&client_version=)
//	POST /dev/notice?topic=T&message=M
//	                               dev + memory mode only: Broadcast on "system"
//	                               (the game server's POST /v1/notices in Redis mode)
//
// Game commands are not served here (they answer unknown_command): the
// node carries chat, whispers and pushes; the game server serves the game.
//
// # Raid rooms
//
// The node runs realtime's tick rooms with the RaidBoss demo logic: a
// client sends room.create {"kind": "raid", "params": {"hp": n}} (or
// room.match {"kind": "raid"} to be grouped with RaidMatchSize players),
// other players room.join it from any node, every room.input {"damage": d}
// (at most 100) hits the boss at the next tick (10 per second), and the
// members get room.snapshot pushes until the boss falls (room.end). In
// Redis mode the rooms are claimed in a RedisDirectory and room.match
// queues in a RedisMatchmaker (both under the prefix RedisPrefix + "rt:"),
// so players on different nodes are matched together and join rooms on
// other nodes; in memory mode the directory and the FIFO matchmaker are in
// process. See docs/PROTOCOL.md §16.3.1.
package node

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/madang-io/madang/examples/cmdline"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
)

// Defaults of Config. XORKey and RedisPrefix are the game server's.
const (
	DefaultAddr            = "127.0.0.1:8090"
	DefaultXORKey          = "madang-dev-xor-key"
	DefaultRedisPrefix     = "madang:"
	DefaultShutdownTimeout = 10 * time.Second
)

// Config configures a Node. New fills the defaults; outside development
// mode (the zero value's) an XOR key of one's own is required, so the
// smallest working Config is {XORKey: "..."}, or {Dev: true} on loopback.
// ParseConfig turns development mode on unless MADANG_DEV=false, like the
// game server.
type Config struct {
	// Addr is the listen address. Default 127.0.0.1:8090 (flag -addr, env
	// MADANG_RT_ADDR).
	Addr string
	// NodeID names the node in /stats and logs. Default "<hostname>-<pid>"
	// (flag -node-id, env MADANG_NODE_ID).
	NodeID string
	// XORKey is the frame obfuscation key shared with clients; it must be
	// the game server's. Required outside development mode, and there it
	// must not be DefaultXORKey (it ships with every copy of madang).
	// Default in development mode "madang-dev-xor-key" (flag -xor-key, env
	// MADANG_XOR_KEY).
	XORKey string
	// Dev is development mode: it accepts plain frames (mode=plain) and
	// the default XOR key and, in memory mode, serves /dev/login (anyone's
	// session) and /dev/notice. Outside it connections must use xor or
	// authenticated frames. It never runs on a non-loopback address (Addr,
	// or the listener Serve is given) unless DevAllowRemote is set too.
	// ParseConfig's default: on (flag -dev, env MADANG_DEV: true or false,
	// strconv.ParseBool's values; anything else refuses to start).
	Dev bool
	// DevAllowRemote lets development mode run on a non-loopback address:
	// everyone who can reach the node may then log in as anyone through
	// /dev/login. Default false (flag -dev-allow-remote, env
	// MADANG_DEV_ALLOW_REMOTE, parsed like MADANG_DEV).
	DevAllowRemote bool
	// RedisAddr is one Redis node or a comma-separated list routed by user
	// key (session.Router, the game server's rule); the broker uses the
	// first. Default "" (memory). Flag -redis, env MADANG_REDIS_ADDR.
	RedisAddr string
	// RedisCluster is a comma-separated list of Redis Cluster seed nodes;
	// it wins over RedisAddr. Flag -redis-cluster, env MADANG_REDIS_CLUSTER.
	RedisCluster string
	// RedisPrefix starts the session keys; the broker's keys start with
	// RedisPrefix+"rt:". It must be the game server's. Default "madang:"
	// (flag -redis-prefix, env MADANG_REDIS_PREFIX). No braces.
	RedisPrefix string
	// ShutdownTimeout bounds graceful shutdown. Default 10 s.
	ShutdownTimeout time.Duration
	// Hub tunes the hub (limits, rates, history); Broker, Codec,
	// RefusePlain and Logger are set by the node. Hub.DecodeBudget may
	// be a budget the embedding process shares with its HTTP handlers;
	// nil: the node makes one with the protocol.DecodeBudgetConfig
	// defaults (64 MiB), its counters under "decode" in /stats.
	Hub realtime.Config
}

// ParseConfig reads flags from args, with environment variables (through
// getenv) as the defaults flags override. For -h or -help it returns a
// *cmdline.HelpError: errors.Is(err, flag.ErrHelp) holds and the message is the
// usage text.
func ParseConfig(args []string, getenv func(string) string) (Config, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("realtimeserver", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cfg Config
	fs.StringVar(&cfg.Addr, "addr", env("MADANG_RT_ADDR", DefaultAddr), "listen address (env MADANG_RT_ADDR)")
	fs.StringVar(&cfg.NodeID, "node-id", env("MADANG_NODE_ID", ""), "node name in /stats and logs (env MADANG_NODE_ID; default hostname-pid)")
	fs.StringVar(&cfg.XORKey, "xor-key", env("MADANG_XOR_KEY", DefaultXORKey), "frame XOR key, the game server's; the default is refused outside -dev (env MADANG_XOR_KEY)")
	dev, err := cmdline.EnvBool(getenv, "MADANG_DEV", true)
	if err != nil {
		return cfg, fmt.Errorf("realtimeserver: %w", err)
	}
	devRemote, err := cmdline.EnvBool(getenv, "MADANG_DEV_ALLOW_REMOTE", false)
	if err != nil {
		return cfg, fmt.Errorf("realtimeserver: %w", err)
	}
	fs.BoolVar(&cfg.Dev, "dev", dev, "development mode: plain frames, the default XOR key, /dev/login in memory mode; loopback addresses only (env MADANG_DEV; -dev=false or MADANG_DEV=false turns it off)")
	fs.BoolVar(&cfg.DevAllowRemote, "dev-allow-remote", devRemote, "let development mode listen on a non-loopback address (env MADANG_DEV_ALLOW_REMOTE)")
	fs.StringVar(&cfg.RedisAddr, "redis", env("MADANG_REDIS_ADDR", ""), "Redis node(s), comma-separated, the game server's (env MADANG_REDIS_ADDR)")
	fs.StringVar(&cfg.RedisCluster, "redis-cluster", env("MADANG_REDIS_CLUSTER", ""), "Redis Cluster seeds, comma-separated (env MADANG_REDIS_CLUSTER)")
	fs.StringVar(&cfg.RedisPrefix, "redis-prefix", env("MADANG_REDIS_PREFIX", DefaultRedisPrefix), "Redis key prefix, the game server's (env MADANG_REDIS_PREFIX)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", DefaultShutdownTimeout, "graceful shutdown bound")
	if err := cmdline.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err // the usage, unprefixed
		}
		return cfg, fmt.Errorf("realtimeserver: %w", err)
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("realtimeserver: unexpected argument %q", fs.Arg(0))
	}
	if strings.ContainsAny(cfg.RedisPrefix, "{}") {
		return cfg, errors.New("realtimeserver: -redis-prefix must not contain braces")
	}
	if err := cfg.check(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// devFeatures names what development mode turns on, for error messages.
const devFeatures = "plain frames, the default XOR key, /dev/login handing out anyone's session"

// check enforces the rules of development mode on cfg (after defaults):
// outside it an XOR key of one's own; in it a loopback Addr unless
// DevAllowRemote.
func (cfg *Config) check() error {
	if !cfg.Dev {
		switch {
		case strings.TrimSpace(cfg.XORKey) == "":
			return errors.New("realtimeserver: -xor-key (MADANG_XOR_KEY) is required outside development mode")
		case cfg.XORKey == DefaultXORKey:
			return fmt.Errorf("realtimeserver: -xor-key (MADANG_XOR_KEY) is the default %q, which ships with every copy of madang: choose your own (the game server's) outside development mode", DefaultXORKey)
		}
		return nil
	}
	if !cfg.DevAllowRemote && !cmdline.IsLoopbackListen(cfg.Addr) {
		return fmt.Errorf("realtimeserver: %w", cmdline.DevRemoteError("-addr (MADANG_RT_ADDR)", cfg.Addr, devFeatures))
	}
	return nil
}

// Node is one realtime server: the hub, its broker, the session store and
// the HTTP handler that serves them.
type Node struct {
	cfg      Config
	log      *slog.Logger
	redis    *session.RedisClients // nil in memory mode
	sessions session.Store
	broker   *realtime.RedisBroker     // nil in memory mode (the hub owns its broker)
	mm       *realtime.RedisMatchmaker // nil in memory mode (rooms use a FIFOMatchmaker)
	limiter  *session.RedisLimiter     // nil in memory mode (the hub keeps chat limits in memory)
	hub      *realtime.Hub
	budget   *protocol.DecodeBudget // the hub's decode budget
	mux      *http.ServeMux

	shutdownOnce sync.Once
	shutdownErr  error
}

// New opens the node's backends (pinging Redis) and builds its hub. Close
// it when done (after Serve returned, or instead of serving).
func New(ctx context.Context, cfg Config, log *slog.Logger) (_ *Node, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.XORKey == "" && cfg.Dev {
		cfg.XORKey = DefaultXORKey
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.RedisPrefix == "" {
		cfg.RedisPrefix = DefaultRedisPrefix
	}
	if strings.ContainsAny(cfg.RedisPrefix, "{}") {
		return nil, errors.New("realtimeserver: RedisPrefix must not contain braces")
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.NodeID == "" {
		host, _ := os.Hostname()
		cfg.NodeID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	n := &Node{cfg: cfg, log: log.With("node", cfg.NodeID), mux: http.NewServeMux()}
	defer func() {
		if err != nil {
			_ = n.Close()
		}
	}()
	if err := n.openBackends(ctx); err != nil {
		return nil, err
	}
	hc := cfg.Hub
	hc.Codec = protocol.Config{XORKey: []byte(cfg.XORKey)}
	hc.RefusePlain = !cfg.Dev
	hc.Logger = n.log
	if hc.DecodeBudget == nil {
		hc.DecodeBudget = protocol.NewDecodeBudget(protocol.DecodeBudgetConfig{})
	}
	n.budget = hc.DecodeBudget
	if n.broker != nil {
		hc.Broker = n.broker
	}
	if hc.Limiter == nil && n.limiter != nil {
		hc.Limiter = n.limiter // chat limits shared with the game servers
	}
	if n.hub, err = realtime.NewHub(n.sessions, hc); err != nil {
		return nil, fmt.Errorf("realtimeserver: %w", err)
	}
	if err := n.startRooms(); err != nil {
		return nil, err
	}
	n.mux.Handle("GET /ws", n.hub)
	n.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	n.mux.HandleFunc("GET /stats", n.stats)
	if n.devLogin() {
		n.mux.HandleFunc("GET /dev/login", n.login)
		n.mux.HandleFunc("POST /dev/notice", n.notice)
	}
	return n, nil
}

// devLogin reports whether /dev/login is served: dev mode with memory
// sessions only (never against the game server's shared store).
func (n *Node) devLogin() bool { return n.cfg.Dev && n.redis == nil }

// openBackends opens the session store and, with Redis, the broker, on the
// game server's rules (session.OpenRedis: a cluster client routed as one
// node, or a list of nodes routed by user key, default rule; the cluster
// seeds win over the list); sessions under RedisPrefix, the broker on the
// first client under RedisPrefix+"rt:".
func (n *Node) openBackends(ctx context.Context) error {
	cfg := n.cfg
	opt, ok := cmdline.RedisOptions(cfg.RedisAddr, cfg.RedisCluster)
	if !ok {
		n.sessions = session.NewMemoryStore(session.Config{Logger: n.log})
		return nil
	}
	rc, err := session.OpenRedis(ctx, opt)
	if err != nil {
		return fmt.Errorf("realtimeserver: %w", err)
	}
	n.redis = rc
	rs, err := session.NewRedisStore(rc.Router, session.Config{Prefix: cfg.RedisPrefix, Logger: n.log})
	if err != nil {
		return fmt.Errorf("realtimeserver: %w", err)
	}
	n.sessions = rs
	if n.limiter, err = session.NewRedisLimiter(rc.Router, session.LimiterConfig{Prefix: cfg.RedisPrefix}); err != nil {
		return fmt.Errorf("realtimeserver: %w", err)
	}
	if n.broker, err = realtime.NewRedisBroker(rc.Clients[0], realtime.RedisBrokerConfig{Prefix: cfg.RedisPrefix + "rt:", Logger: n.log}); err != nil {
		return fmt.Errorf("realtimeserver: %w", err)
	}
	return nil
}

// Hub returns the node's hub (to Publish, Broadcast or PushUser from Go).
func (n *Node) Hub() *realtime.Hub { return n.hub }

// Handler returns the node's HTTP handler, for tests and embedding.
func (n *Node) Handler() http.Handler { return n.mux }

// Sessions returns the node's session store.
func (n *Node) Sessions() session.Store { return n.sessions }

// Stats is the /stats answer.
type Stats struct {
	Node   string       `json:"node"`
	Mode   string       `json:"mode"` // "memory", "redis" or "redis-cluster"
	Hub    HubStats     `json:"hub"`
	Broker *BrokerStats `json:"broker,omitempty"` // Redis mode only
	Decode DecodeStats  `json:"decode"`
}

// DecodeStats are protocol.DecodeBudgetStats in JSON: the bound on decoded
// client frames the hub holds at once.
type DecodeStats struct {
	Bytes                int64  `json:"bytes"`                  // the budget
	InUse                int64  `json:"in_use"`                 // bytes held now
	UnauthenticatedInUse int64  `json:"unauthenticated_in_use"` // of which by plain and XOR frames
	Peak                 int64  `json:"peak"`                   // the most held at once
	Charged              uint64 `json:"charged"`                // frames charged (larger than the free size)
	Waited               uint64 `json:"waited"`                 // frames that waited for room
	Refused              uint64 `json:"refused"`                // frames answered rate_limited for want of room
}

// HubStats are realtime.Stats in JSON.
type HubStats struct {
	Connections int64 `json:"connections"` // open connections now
	Published   int64 `json:"published"`   // publications delivered to this node by the broker
	Delivered   int64 `json:"delivered"`   // pushes queued to connections
	SlowClosed  int64 `json:"slow_closed"` // connections closed with slow_consumer
	// ConnsRefused counts handshakes refused by the per-user connection
	// cap; LimiterErrors chat messages let through while the chat limiter
	// failed.
	ConnsRefused  int64 `json:"conns_refused"`
	LimiterErrors int64 `json:"limiter_errors"`
}

// BrokerStats are realtime.RedisBrokerStats in JSON.
type BrokerStats struct {
	Published  uint64 `json:"published"`
	Delivered  uint64 `json:"delivered"`
	Foreign    uint64 `json:"foreign"`
	Malformed  uint64 `json:"malformed"`
	Reconnects uint64 `json:"reconnects"`
	Failures   uint64 `json:"failures"`
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	hs := n.hub.Stats()
	s := Stats{Node: n.cfg.NodeID, Mode: n.mode(), Hub: HubStats{
		Connections: hs.Connections, Published: hs.Published, Delivered: hs.Delivered, SlowClosed: hs.SlowClosed,
		ConnsRefused: hs.ConnsRefused, LimiterErrors: hs.LimiterErrors,
	}}
	ds := n.budget.Stats()
	s.Decode = DecodeStats{
		Bytes: ds.Bytes, InUse: ds.InUse, UnauthenticatedInUse: ds.UnauthenticatedInUse, Peak: ds.Peak,
		Charged: ds.Charged, Waited: ds.Waited, Refused: ds.Refused,
	}
	if n.broker != nil {
		bs := n.broker.Stats()
		s.Broker = &BrokerStats{
			Published: bs.Published, Delivered: bs.Delivered, Foreign: bs.Foreign,
			Malformed: bs.Malformed, Reconnects: bs.Reconnects, Failures: bs.Failures,
		}
	}
	return s
}

func (n *Node) mode() string {
	switch {
	case n.cfg.RedisCluster != "":
		return "redis-cluster"
	case n.redis != nil:
		return "redis"
	}
	return "memory"
}

func (n *Node) stats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, n.Stats())
}

// DevLogin is the /dev/login answer: the session's token, and its key id
// and secret (base64, standard encoding) for authenticated frames
// (protocol.NewKeys(KeyID, Secret)), as a game login gives them.
type DevLogin struct {
	Token   string `json:"token"`
	UserKey int64  `json:"user_key"`
	KeyID   string `json:"key_id"`
	Secret  string `json:"secret"`
}

// login makes a memory session for user K (dev only): the same kick rule
// as a game login applies, so a second /dev/login of K kicks the first.
func (n *Node) login(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	uk, err := strconv.ParseInt(q.Get("user"), 10, 64)
	if err != nil || uk <= 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "user must be a positive integer user key"})
		return
	}
	s, err := n.sessions.Create(r.Context(), session.CreateParams{
		UserKey: uk, Platform: q.Get("platform"), ClientVersion: q.Get("client_version"),
		Country: q.Get("country"), Language: q.Get("language"), DeviceID: "dev-login",
	})
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, DevLogin{Token: s.Token, UserKey: uk, KeyID: s.ID, Secret: base64.StdEncoding.EncodeToString(s.Secret)})
}

// notice broadcasts {"message": M} with topic T on the system channel (dev
// only: in Redis mode notices come from the game server's ops API).
func (n *Node) notice(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	topic, msg := q.Get("topic"), q.Get("message")
	if topic == "" {
		topic = "notice"
	}
	if msg == "" || len(msg) > 2000 || len(topic) > 64 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "message (1-2000 bytes) is required; topic at most 64 bytes"})
		return
	}
	payload, _ := json.Marshal(map[string]string{"message": msg})
	f := realtime.Filter{
		ClientVersion: q.Get("client_version"), Country: q.Get("country"),
		Language: q.Get("language"), Platform: q.Get("platform"),
	}
	pos, err := n.hub.Broadcast(r.Context(), f, topic, payload)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, pos)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ListenAndServe listens on Config.Addr and serves until ctx ends.
func (n *Node) ListenAndServe(ctx context.Context, out io.Writer) error {
	ln, err := net.Listen("tcp", n.cfg.Addr)
	if err != nil {
		return fmt.Errorf("realtimeserver: %w", err)
	}
	return n.Serve(ctx, ln, out)
}

// Serve serves on ln until ctx ends, then shuts down gracefully: the hub
// closes every websocket with going_away (clients reconnect to another
// node and resume), then the listener stops, bounded by
// Config.ShutdownTimeout. It prints where it listens to out.
//
// In development mode without Config.DevAllowRemote it refuses (and closes)
// a listener that is not on a loopback address, before serving anything.
func (n *Node) Serve(ctx context.Context, ln net.Listener, out io.Writer) error {
	if n.cfg.Dev && !n.cfg.DevAllowRemote && !cmdline.IsLoopbackAddr(ln.Addr()) {
		ln.Close()
		return fmt.Errorf("realtimeserver: %w", cmdline.DevRemoteError("the listener", ln.Addr().String(), devFeatures))
	}
	srv := &http.Server{Handler: n.mux, ReadHeaderTimeout: 10 * time.Second}
	addr := ln.Addr().String()
	fmt.Fprintf(out, "madang realtime node %s listening on http://%s (%s)\n", n.cfg.NodeID, addr, n.describe())
	fmt.Fprintf(out, "  ws:      ws://%s/ws?token=<token>&mode=xor (plain too in dev mode)\n", addr)
	fmt.Fprintf(out, "  stats:   http://%s/stats   health: http://%s/healthz\n", addr, addr)
	if n.devLogin() {
		fmt.Fprintf(out, "  dev:     curl 'http://%s/dev/login?user=1001' → a test token (dev mode, memory sessions only)\n", addr)
		fmt.Fprintf(out, "  dev:     curl -X POST 'http://%s/dev/notice?topic=maintenance&message=hi' → a push on \"system\"\n", addr)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("realtimeserver: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
	defer cancel()
	// The hub first: hijacked websockets are not waited for by Shutdown.
	herr := n.shutdownHub(sctx)
	serr := srv.Shutdown(sctx)
	<-errc
	fmt.Fprintln(out, "madang realtime node stopped")
	return errors.Join(herr, serr)
}

func (n *Node) describe() string {
	switch n.mode() {
	case "redis-cluster":
		return "Redis Cluster " + n.cfg.RedisCluster + ", prefix " + n.cfg.RedisPrefix
	case "redis":
		return "Redis " + n.cfg.RedisAddr + ", prefix " + n.cfg.RedisPrefix
	}
	return "memory broker and sessions"
}

// shutdownHub ends the hub (going_away to every client) and its Redis
// broker, once.
func (n *Node) shutdownHub(ctx context.Context) error {
	n.shutdownOnce.Do(func() {
		if n.hub != nil {
			n.shutdownErr = n.hub.Shutdown(ctx)
		}
		if n.mm != nil { // after the hub: no room.match runs any more
			n.shutdownErr = errors.Join(n.shutdownErr, n.mm.Close(ctx))
		}
		if n.broker != nil {
			n.shutdownErr = errors.Join(n.shutdownErr, n.broker.Close())
		}
	})
	return n.shutdownErr
}

// Close shuts the hub down if Serve did not, then closes the session store
// and the Redis clients.
func (n *Node) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
	defer cancel()
	errs := []error{n.shutdownHub(ctx)}
	if n.sessions != nil {
		errs = append(errs, n.sessions.Close())
	}
	if n.redis != nil {
		errs = append(errs, n.redis.Close())
	}
	return errors.Join(errs...)
}

// Raid demo settings (see the package doc, "Raid rooms").
const (
	RaidKind       = "raid"
	RaidDefaultHP  = 10_000
	RaidMaxHP      = 1_000_000
	RaidMaxPlayers = 8
	RaidMatchSize  = 2
)

// startRooms attaches the raid rooms to the hub (Hub.Shutdown closes them).
func (n *Node) startRooms() error {
	var dir realtime.Directory = realtime.NewMemoryDirectory(realtime.DirectoryConfig{})
	var mm realtime.Matchmaker // memory mode: the rooms' FIFOMatchmaker
	if n.redis != nil {
		rd, err := realtime.NewRedisDirectory(n.redis.Clients[0], realtime.DirectoryConfig{Prefix: n.cfg.RedisPrefix + "rt:"})
		if err != nil {
			return fmt.Errorf("realtimeserver: room directory: %w", err)
		}
		dir = rd
		n.mm, err = realtime.NewRedisMatchmaker(n.redis.Clients[0], realtime.RedisMatchmakerConfig{
			Prefix: n.cfg.RedisPrefix + "rt:", Size: RaidMatchSize, Logger: n.log,
		})
		if err != nil {
			return fmt.Errorf("realtimeserver: matchmaker: %w", err)
		}
		mm = n.mm
	}
	_, err := realtime.NewRooms(n.hub, dir, realtime.RoomConfig{
		Node:       n.cfg.NodeID,
		Matchmaker: mm,
		MatchSize:  RaidMatchSize,
		NewLogic:   newRaid,
		Logger:     n.log,
	})
	if err != nil {
		return fmt.Errorf("realtimeserver: rooms: %w", err)
	}
	return nil
}

// newRaid makes a raid boss for room.create {"kind": "raid", "params":
// {"hp": n}} (hp optional, 1..RaidMaxHP) or a match.
func newRaid(kind string, params json.RawMessage) (realtime.RoomLogic, error) {
	if kind != RaidKind {
		return nil, &protocol.Error{Code: protocol.CodeBadRequest, Message: fmt.Sprintf("unknown room kind %q (this node runs %q)", kind, RaidKind)}
	}
	var p struct {
		HP int `json:"hp"`
	}
	if len(params) > 0 && string(params) != "null" {
		if err := json.Unmarshal(params, &p); err != nil {
			return nil, &protocol.Error{Code: protocol.CodeBadRequest, Message: "raid params: " + err.Error()}
		}
	}
	switch {
	case p.HP == 0:
		p.HP = RaidDefaultHP
	case p.HP < 0 || p.HP > RaidMaxHP:
		return nil, &protocol.Error{Code: protocol.CodeBadRequest, Message: fmt.Sprintf("raid hp must be 1..%d", RaidMaxHP)}
	}
	return realtime.NewRaidBoss(p.HP, RaidMaxPlayers), nil
}
