// Package server is madang's reference game server: it composes the madang
// packages into one HTTP service plus an operator (admin) listener. The main
// in examples/gameserver only parses flags and handles signals.
//
// # Backends
//
// Embedded mode (the default, no services needed): SQLite databases under
// Config.DataDir — common.db with the shard directory, accounts, anti-cheat
// tables and live-ops policy, and gamedb01..gamedb04.db, each owning a range
// of user keys, with the game's tables and the idempotency table — memory
// sessions, cache and boards.
//
// Config.MySQLDSN moves the databases to MySQL/MariaDB: the DSN names the
// common database; a first start creates <db>_gamedb01..NN on the same
// server, registers them in the directory (host, port and name only: DSNs
// are formed from the common DSN's credentials) and migrates everything.
// Config.RedisAddr (one node, or a comma list routed by user key) or
// Config.RedisCluster moves sessions, the per-user cache, boards, live-ops
// change notifications and the CCU set to Redis.
//
// # Request chain
//
// Logins (auth.guest) first pass a limit of Config.MaxLogins running at
// once: past it a login waits up to Config.LoginQueueWait and is then
// answered protocol.CodeRateLimited with a retry hint of 1-2 s, so a login
// storm is shed quickly instead of queueing past the clients' timeouts.
// Every request passes session.Middleware (auth.guest and sys.time are
// public), the anti-cheat Guard (block list and speed check), the live-ops
// middleware (maintenance, minimum client version, and at login the APK
// signature check through anticheat.Registry.CheckLogin, review routing and
// data versions), then the mux, where mutating commands add the idempotency
// middleware. A login reads the player's account once (the login gate's
// memo, shared by the guard, live ops and the auth.guest handler); the
// block list and the signature registry are kept in process (a change
// made on another server takes effect here within 10 s and
// SignatureCacheTTL), so a returning player's login costs 3 round trips
// to the common database and a new player's 2 (4 when it reserves the
// next key block): TestLoginRoundTrips.
//
// # In-app purchases
//
// shop.buy_iap redeems receipts once globally through an
// anticheat.Redeemer on the common database's anti-cheat tables, its
// verdicts (forged receipts, other accounts' receipts) in the guard's
// monitor. The receipts are verified by Config.IAPVerifier — production
// must supply the store verifiers there (anticheat.AppleVerifier,
// anticheat.GoogleVerifier) — or, in dev mode without one, by
// game.DevVerifiers ("dev-receipt:<id>:<product>"). Outside dev mode
// without a verifier shop.buy_iap answers protocol.CodeForbidden.
//
// # Game data
//
// The static tables come from a gamedata.Catalog on the common database:
// the embedded gamedata.Default (version "1" in use until a publish) or
// Config.GameDataDir, and the versions uploaded through the ops API (kept
// in the common database). Its client version mappings are the one source
// of data versions: the login answer's liveops.data_version is the
// catalog's version for the client version (liveops client version
// entries carry no data version here). Every publish, rollback or mapping
// resets the per-user cache; each server re-reads the catalog's state
// every Config.LiveOpsPoll and, with Redis, at once on the catalog's
// change notification (a goroutine Close stops). Each request pins the
// catalog's state when it starts (gamedata.Catalog.Pin): it sees one data
// version from start to end.
//
// # Realtime
//
// The game listener also mounts a realtime.Hub on WSPath (/ws): clients
// connect with their session token, chat and receive pushes, and may send
// game commands over the websocket through the same chain as HTTP. In
// memory mode the hub's own broker serves this process; with Redis a
// RedisBroker (key prefix Config.RedisPrefix + "rt:") lets several game
// servers, and realtime nodes sharing the sessions, share channels. Each
// user's chat rate is kept in the limiter of the command limit (so
// reconnecting, or moving to another server, gives nothing back), and a
// user may hold Config.MaxUserConns websockets on one server. At
// shutdown the hub tells its clients going_away before the listeners close.
//
// # Ops listener
//
// Config.AdminAddr serves package ops: the JSON operator API behind a
// bearer token (with the game's mail and ledger endpoints and the
// catalog's under /v1/gamedata/), /healthz, /readyz and /metrics (a
// Prometheus registry of the server's own), and package console, the ops
// console for people, under /console/ (operators signed in with a
// password, their changes audited; the game listener never serves it).
// The first operator is created with RunOperator (gameserver operator
// add). With Config.Pprof (off by default) it also serves the Go
// runtime's profiles under PprofPath, to loopback clients with the bearer
// token; the listener must then be on a loopback address.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/examples/cmdline"
	"github.com/madang-io/madang/examples/gameserver/console"
	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/gamedata"
	"github.com/madang-io/madang/examples/gameserver/liveops"
	"github.com/madang-io/madang/examples/gameserver/ops"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/shard"
)

// sessionStore is a session.Store with counters (both stores have them).
type sessionStore interface {
	session.Store
	Stats() session.Stats
}

// verifiedSessions is the server's session store behind a
// session.VerifiedCache (Config.SessionCheckAge); Close closes both.
type verifiedSessions struct {
	*session.VerifiedCache
	inner sessionStore
}

// Close cancels the cache's subscription, then closes the store.
func (v *verifiedSessions) Close() error {
	return errors.Join(v.VerifiedCache.Close(), v.inner.Close())
}

// sessionBackend returns the session store under the VerifiedCache (the
// store itself when Config.SessionCheckAge turned it off).
func (s *Server) sessionBackend() sessionStore {
	if v, ok := s.sessions.(*verifiedSessions); ok {
		return v.inner
	}
	return s.sessions
}

// Server is a configured game server.
type Server struct {
	cfg  Config
	log  *slog.Logger
	mux  *protocol.Mux
	http *http.ServeMux
	now  func() time.Time

	store *storage
	// redis holds the clients the server opened (closed by Close); nil in
	// memory mode.
	redis    *session.RedisClients
	sessions sessionStore
	// cache and boards are the per-user cache and leaderboard store, memory
	// or Redis, for the game's packages.
	cache    *session.UserCache
	boards   session.BoardStore
	registry *anticheat.Registry
	guard    *anticheat.Guard
	liveops  *liveops.Manager
	catalog  *gamedata.Catalog
	game     *game.Game
	// hub is the realtime hub on WSPath; hubBroker its Redis broker (nil in
	// memory mode: the hub owns its memory broker). shutdownHub ends them
	// once.
	hub       *realtime.Hub
	hubBroker realtime.Broker
	hubOnce   sync.Once
	// decodeBudget bounds decoded request bodies on HTTP and the hub.
	decodeBudget *protocol.DecodeBudget
	// inFlight bounds the commands served at once on HTTP and the hub.
	inFlight *protocol.InFlightLimit

	// stop ends the goroutines the server owns (the game data poll); wg
	// waits for them. Both run from Close.
	stop   context.CancelFunc
	runCtx context.Context // ends with stop: background loops
	wg     sync.WaitGroup

	admin      *ops.Handler
	console    *console.Handler // the ops console on the admin listener
	adminToken string
	// adminTokenGenerated is set when the token was made up (dev mode).
	adminTokenGenerated bool
	metrics             *prometheus.Registry

	// logins bounds the logins running at once (Config.MaxLogins).
	logins *loginGate
	// limiter keeps the per-user command and chat limits (memory, or Redis
	// shared by every server).
	limiter limiter
}

// limiter is a session.Limiter with counters (both limiters have them).
type limiter interface {
	session.Limiter
	Stats() session.LimiterStats
}

// SignatureCacheTTL is how long a server keeps its copy of the APK
// signature registry (anticheat.RegistryConfig.CacheTTL): an entry set or
// deleted through another server's ops API, or by another tool, takes
// effect here within SignatureCacheTTL plus one read of the registry;
// through this server's own ops API, at once.
const SignatureCacheTTL = 5 * time.Second

// CmdTime is the public clock command.
const CmdTime = "sys.time"

// New builds a server for cfg: it connects to the backends and opens (and on
// first start creates) the databases. Close the server when done.
func New(ctx context.Context, cfg Config, log *slog.Logger) (_ *Server, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.XORKey == "" && cfg.Dev {
		cfg.XORKey = DefaultXORKey
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.RedisPrefix == "" {
		cfg.RedisPrefix = DefaultRedisPrefix
	}
	if cfg.LiveOpsPoll == 0 {
		cfg.LiveOpsPoll = DefaultLiveOpsPoll
	}
	if cfg.AdminAddr == "" {
		cfg.AdminAddr = DefaultAdminAddr
	}
	if err := cfg.check(); err != nil { // development mode, secrets, pprof
		return nil, err
	}
	if cfg.Pprof {
		runtime.SetBlockProfileRate(PprofBlockRate)
		runtime.SetMutexProfileFraction(PprofMutexFraction)
	}
	if cfg.GameDataDir != "" { // fail before touching any database
		if st, err := os.Stat(cfg.GameDataDir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("game data directory %q: not a readable directory (%v)", cfg.GameDataDir, err)
		}
	}
	s := &Server{cfg: cfg, log: log, mux: protocol.NewMux(), http: http.NewServeMux(), now: time.Now}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.store, err = openStorage(ctx, storageConfig{DataDir: cfg.DataDir, MySQLDSN: cfg.MySQLDSN, GameDBs: cfg.MySQLGameDBs, wrapCommon: cfg.wrapCommon}, log); err != nil {
		return nil, err
	}
	if err := s.openSessions(ctx); err != nil {
		return nil, err
	}
	if cfg.SessionCheckAge >= 0 {
		s.sessions = &verifiedSessions{
			VerifiedCache: session.NewVerifiedCache(s.sessions, session.VerifiedCacheConfig{MaxAge: cfg.SessionCheckAge}),
			inner:         s.sessions,
		}
	}

	// Anti-cheat: tables in the common database, the whole block list
	// kept in process (a first check of a user costs no query; a block
	// reaches the other servers within the cache's TTL, 10 s), and the
	// APK signature registry too (an entry the ops API sets reaches the
	// other servers within SignatureCacheTTL).
	blocks := anticheat.NewBlockCache(s.store.anticheat, anticheat.BlockCacheConfig{WholeList: true})
	monitor := anticheat.NewMonitor(anticheat.MonitorConfig{Log: s.store.anticheat, Blocks: blocks, Logger: log})
	s.registry = anticheat.NewRegistry(s.store.anticheat, anticheat.RegistryConfig{Logger: log, CacheTTL: SignatureCacheTTL})
	s.guard = anticheat.NewGuard(anticheat.GuardConfig{
		Monitor: monitor, LoginCommand: game.CmdGuestLogin, Logger: log,
		LoginUser: func(ctx context.Context, req *protocol.Request) (int64, bool, error) {
			return s.loginUser(ctx, req.Payload)
		},
	})

	var rdb redis.UniversalClient // global values and pub/sub: the first node
	if s.redis != nil {
		rdb = s.redis.Clients[0]
	}
	if _, err := shard.Migrate(ctx, s.store.common, liveops.Migrations()); err != nil {
		return nil, fmt.Errorf("common database: %w", err)
	}
	if _, err := shard.Migrate(ctx, s.store.common, game.CommonMigrations()); err != nil {
		return nil, fmt.Errorf("common database: %w", err)
	}
	if err := s.openGameData(ctx, rdb); err != nil {
		return nil, err
	}
	if s.liveops, err = liveops.New(ctx, liveops.Config{
		DB: s.store.common, Dialect: s.store.dialect, Write: s.store.commonWrite(), Redis: rdb, Channel: cfg.RedisPrefix + "liveops",
		PollInterval: cfg.LiveOpsPoll, LoginCommand: game.CmdGuestLogin, LoginUser: s.loginUser,
		DAUCountsNewAccounts: true, // a first login: no liveops_logins write
		Exempt:               []string{CmdTime}, Registry: s.registry, Monitor: monitor, Logger: log,
		// One source of data versions: the catalog's client mappings.
		DataVersion: func(ctx context.Context, clientVersion string) string {
			return s.catalog.ForClientIn(ctx, clientVersion).Version
		},
	}); err != nil {
		return nil, err
	}
	iap, err := s.iapConfig()
	if err != nil {
		return nil, err
	}

	if s.game, err = game.New(game.Config{
		Router: s.store.router, Accounts: s.store.accounts, FindAccount: s.findAccount, Sessions: s.sessions,
		Idempotency: s.store.idem, Dialect: s.store.dialect, Logger: log,
		// The dungeon ranking (memory or Redis, like the sessions); dungeon
		// verdicts go to the guard's monitor (one hack log and block list).
		BoardStore: s.boards,
		Monitor:    s.guard.Monitor(),
		Data:       game.FromCatalog(s.catalog),
		IAP:        iap,
		Events:     s.boosts,
	}); err != nil {
		return nil, err
	}
	// The memory board starts empty: refill this week's dungeon ranking
	// from the game databases.
	if _, err := s.game.RebuildRanking(ctx); err != nil {
		return nil, err
	}
	if iap != nil && cfg.IAPSweepInterval >= 0 {
		every := cfg.IAPSweepInterval
		if every == 0 {
			every = DefaultIAPSweepInterval
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.sweepPurchases(s.runCtx, every)
		}()
	}
	s.registerCommands()
	s.logins = newLoginGate(game.CmdGuestLogin, cfg.MaxLogins, cfg.LoginQueueWait)
	mws := []protocol.Middleware{
		// Outermost: an error of any layer below (sessions, anti-cheat,
		// live ops, idempotency, handlers) that says a backend is down is
		// unavailable (41) or timeout (42), never internal (40).
		game.ClassifyErrors,
		// One game data version per request, whatever is published
		// meanwhile.
		s.catalog.Pin(),
		s.logins.middleware(),
		session.Middleware(s.sessions, session.MiddlewareConfig{Public: append(game.PublicCommands(), CmdTime), Logger: log}),
	}
	if cfg.CommandRate >= 0 { // after authentication: counted per user
		mws = append(mws, session.RateLimitMiddleware(s.limiter, session.RateLimitConfig{
			Limit:  session.Limit{Name: "cmd", Rate: cfg.CommandRate, Burst: cfg.CommandBurst},
			Logger: log,
		}))
	}
	chain := protocol.Chain(s.mux, append(mws, s.guard.Middleware(), s.liveops.Middleware())...)

	codec, err := protocol.NewCodec(protocol.Config{XORKey: []byte(cfg.XORKey)})
	if err != nil {
		return nil, err
	}
	// One bound on decoded request bodies for both transports.
	s.decodeBudget = protocol.NewDecodeBudget(cfg.DecodeBudget)
	// One bound on the commands served at once, for both transports: the
	// HTTP handler takes a turn per request, the hub's chain per command.
	s.inFlight = protocol.NewInFlightLimit(cfg.InFlight)
	rpc, err := protocol.NewHTTPHandler(chain, protocol.HTTPConfig{
		Codec:          codec,
		DecodeBudget:   s.decodeBudget,
		InFlight:       s.inFlight,
		Keys:           session.NewKeyResolver(s.sessions, session.KeyResolverConfig{}),
		AllowPlainJSON: cfg.Dev,
		HandlerTimeout: 5 * time.Second,
		Logger:         log,
	})
	if err != nil {
		return nil, err
	}
	s.http.Handle("POST "+protocol.DefaultHTTPPath, rpc)
	hubCfg := realtime.Config{Limiter: s.limiter, ChatRate: cfg.ChatRate, ChatBurst: cfg.ChatBurst, MaxUserConns: cfg.MaxUserConns, DecodeBudget: s.decodeBudget}
	if s.hub, s.hubBroker, err = newRealtimeHub(hubCfg, s.sessions, s.inFlight.Middleware()(chain), []byte(cfg.XORKey), rdb, cfg.RedisPrefix, cfg.Dev, log); err != nil {
		return nil, err
	}
	s.http.Handle("GET "+WSPath, s.hub)
	s.http.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	s.http.HandleFunc("GET /{$}", s.index)
	if err := s.buildAdmin(); err != nil {
		return nil, err
	}
	if err := s.buildConsole(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// sweepPurchases grants, every interval, the in-app purchases noted more
// than an interval ago whose grant never committed (game.IAPConfig.Pending),
// until ctx ends.
func (s *Server) sweepPurchases(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.game.SweepPendingGrants(ctx, every, 100)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("iap sweep", "granted", n, "err", err)
		} else if n > 0 {
			s.log.Info("iap sweep: noted purchases granted", "granted", n)
		}
	}
}

// openSessions connects Redis when configured (session.OpenRedis: the
// cluster seeds win over the node list) and opens the session store, cache
// and board store on it (memory otherwise).
func (s *Server) openSessions(ctx context.Context) error {
	cfg := s.cfg
	opt, ok := cmdline.RedisOptions(cfg.RedisAddr, cfg.RedisCluster)
	if !ok {
		s.sessions = session.NewMemoryStore(session.Config{Logger: s.log})
		s.cache = session.NewMemoryCache(session.CacheConfig{Logger: s.log})
		s.boards = session.NewBoardMemoryStore(session.BoardMemoryConfig{})
		s.limiter = session.NewMemoryLimiter(session.LimiterConfig{})
		return nil
	}
	rc, err := session.OpenRedis(ctx, opt)
	if err != nil {
		return err
	}
	s.redis = rc
	rs, err := session.NewRedisStore(rc.Router, session.Config{Prefix: cfg.RedisPrefix, Logger: s.log})
	if err != nil {
		return err
	}
	s.sessions = rs
	if s.limiter, err = session.NewRedisLimiter(rc.Router, session.LimiterConfig{Prefix: cfg.RedisPrefix}); err != nil {
		return err
	}
	if s.cache, err = session.NewRedisCache(ctx, rc.Router, session.CacheConfig{Prefix: cfg.RedisPrefix, Logger: s.log}); err != nil {
		return err
	}
	s.boards, err = session.NewBoardRedisStore(rc.Clients, session.BoardRedisConfig{Prefix: cfg.RedisPrefix})
	return err
}

// openGameData opens the game data catalog on the common database (the
// embedded versions, or Config.GameDataDir, and the uploaded ones) and
// starts its poll and, with Redis, its change notifications (channel
// Config.RedisPrefix + "gamedata"), owned by the server (stopped by Close).
// Every change resets the per-user cache.
func (s *Server) openGameData(ctx context.Context, rdb redis.UniversalClient) error {
	src, initial := gamedata.Default(), "1"
	if s.cfg.GameDataDir != "" {
		src, initial = os.DirFS(s.cfg.GameDataDir), ""
	}
	cat, err := gamedata.Open(ctx, src, gamedata.Config{
		DB: s.store.common, Write: s.store.commonWrite(), Initial: initial, Logger: s.log,
		Redis: rdb, Channel: s.cfg.RedisPrefix + "gamedata",
		OnPublish: func(ctx context.Context, e gamedata.Event) {
			// A change made here resets the cache for every server (the
			// Redis cache's reset is global); a change seen by the poll
			// was reset by the server that made it, unless the cache is
			// this process's memory.
			if e.Kind == "refresh" && s.redis != nil {
				return
			}
			if err := s.cache.ResetAll(ctx); err != nil {
				s.log.Warn("game data changed, but the user cache reset failed", "kind", e.Kind, "err", err)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("game data: %w", err)
	}
	s.catalog = cat
	runCtx, cancel := context.WithCancel(context.Background())
	s.stop, s.runCtx = cancel, runCtx
	if s.cfg.LiveOpsPoll > 0 || rdb != nil {
		poll := s.cfg.LiveOpsPoll
		if poll <= 0 {
			poll = -1 // notifications only
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			cat.Run(runCtx, poll)
		}()
	}
	return nil
}

// boosts turns the live-ops events running for t into the game's Boosts:
// a login bonus is a mail keyed by the event and the day in the event's
// time zone (once per day per user), buffs add up, the best sale wins.
func (s *Server) boosts(t game.EventTarget, now time.Time) game.Boosts {
	var b game.Boosts
	for _, e := range s.liveops.ActiveEvents(liveops.Target(t), now) {
		switch e.Kind {
		case liveops.EventLoginBonus:
			m := game.Mail{Key: "event:" + e.ID + ":" + e.Day(now), Title: e.Title, Body: e.Body, Gold: e.Gold, Gems: e.Gems}
			for _, it := range e.Items {
				m.Items = append(m.Items, game.ItemCount{ItemID: it.ItemID, Count: it.Count})
			}
			b.LoginBonuses = append(b.LoginBonuses, m)
		case liveops.EventDungeonBuff:
			b.GoldPct += e.GoldPct
			b.ExpPct += e.ExpPct
		case liveops.EventShopSale:
			if b.Sales == nil {
				b.Sales = map[string]int64{}
			}
			items := e.ShopItems
			if len(items) == 0 {
				items = []string{"*"}
			}
			for _, id := range items {
				b.Sales[id] = max(b.Sales[id], e.DiscountPct)
			}
		}
	}
	return b
}

// iapConfig configures shop.buy_iap: Config.IAPVerifier, else the dev
// verifier in dev mode, else nil (the command answers forbidden).
func (s *Server) iapConfig() (*game.IAPConfig, error) {
	v := s.cfg.IAPVerifier
	if v == nil && s.cfg.Dev {
		v = game.DevVerifiers()
	}
	if v == nil {
		return nil, nil
	}
	red, err := anticheat.NewRedeemer(anticheat.RedeemerConfig{
		Verifier: v, Redemptions: s.store.anticheat, Monitor: s.guard.Monitor(),
	})
	if err != nil {
		return nil, err
	}
	return &game.IAPConfig{Redeemer: red, DevReceipts: s.cfg.Dev, Pending: s.store.common, Write: s.store.commonWrite()}, nil
}

// loginUser resolves the account of an auth.guest payload without creating
// it, for the block and maintenance checks before the login runs.
func (s *Server) loginUser(ctx context.Context, payload []byte) (int64, bool, error) {
	memo, _ := ctx.Value(loginMemoKey{}).(*loginMemo) // set by the login gate
	var deviceID string
	if memo != nil && memo.parsed && samePayload(memo.payload, payload) {
		deviceID = memo.deviceID
	} else {
		deviceID = guestDeviceID(payload)
		if memo != nil {
			memo.payload, memo.parsed, memo.deviceID = payload, true, deviceID
		}
	}
	if deviceID == "" {
		return 0, false, nil // the login handler answers bad input
	}
	f, err := s.findAccount(ctx, shard.Identity{Platform: game.GuestPlatform, ID: deviceID})
	if err != nil {
		return 0, false, err
	}
	key, ok := f.UserKey()
	return key, ok, nil
}

// guestDeviceID returns the device id of an auth.guest payload, "" when
// the payload does not decode or its device id is empty or too long.
func guestDeviceID(payload []byte) string {
	var in game.GuestLogin
	if json.Unmarshal(payload, &in) != nil || in.DeviceID == "" || len(in.DeviceID) > shard.MaxIdentityIDLen {
		return ""
	}
	return in.DeviceID
}

// samePayload reports whether a and b are the same slice (not merely equal
// bytes).
func samePayload(a, b []byte) bool {
	return len(a) == len(b) && cap(a) == cap(b) && (len(a) == 0 || &a[0] == &b[0])
}

// findAccount is the login's account lookup, made once per login request
// (the login gate's memo) for the anti-cheat guard, the live-ops
// middleware and the login handler (game.Config.FindAccount).
func (s *Server) findAccount(ctx context.Context, id shard.Identity) (shard.Found, error) {
	memo, _ := ctx.Value(loginMemoKey{}).(*loginMemo) // set by the login gate
	if memo != nil && memo.done && memo.found.Identity() == id {
		return memo.found, nil
	}
	f, err := s.store.accounts.Find(ctx, id)
	if memo != nil && err == nil {
		memo.done, memo.found = true, f
	}
	return f, err
}

// buildAdmin makes the ops handler and the metrics registry.
func (s *Server) buildAdmin() error {
	s.adminToken = s.cfg.AdminToken
	if s.adminToken == "" {
		// Dev mode prints it; otherwise nobody knows it and the /v1 API is
		// closed (ParseConfig requires a token outside dev mode).
		var b [16]byte
		_, _ = rand.Read(b[:])
		s.adminToken = hex.EncodeToString(b[:])
		s.adminTokenGenerated = true
	}
	s.metrics = ops.NewRegistry(ops.NewCollector(ops.Sources{
		Router: s.store.router, Sessions: s.sessions.Stats, Guard: s.guard,
		Idempotency: s.store.idem.Stats, LiveOps: s.liveops,
		LoginsRefused: s.logins.refused.Load, DecodeBudget: s.decodeBudget.Stats, InFlight: s.inFlight.Stats,
		RateLimiter: s.limiter.Stats, WebsocketsRefused: func() int64 { return s.hub.Stats().ConnsRefused },
	}))
	ready := map[string]func(context.Context) error{
		"databases": func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, pingTimeout)
			defer cancel()
			return s.store.Ping(ctx)
		},
	}
	if rc := s.redis; rc != nil {
		ready["redis"] = func(ctx context.Context) error {
			for _, c := range rc.Clients {
				if err := c.Ping(ctx).Err(); err != nil {
					return err
				}
			}
			return nil
		}
	}
	var err error
	s.admin, err = ops.New(ops.Config{
		Token: s.adminToken, LiveOps: s.liveops, Registry: s.registry, Monitor: s.guard.Monitor(),
		RevokeUser: s.sessions.RevokeUser, Ready: ready, Metrics: s.metrics, Logger: s.log,
		Game: s.game, GameData: s.catalog.Handler(),
		Stats: func(context.Context) map[string]any {
			return map[string]any{"sessions": s.sessions.Stats(), "anticheat": s.guard.Stats(), "decode_budget": s.decodeBudget.Stats(), "in_flight": s.inFlight.Stats()}
		},
	})
	return err
}

// Handler returns the server's HTTP handler, for tests and embedding. In
// development mode, serving it on a listener of one's own skips the
// loopback check ServeAll makes: keep such a listener on loopback.
func (s *Server) Handler() http.Handler { return s.http }

// AdminHandler returns the admin listener's handler: the ops API with
// POST /v1/notices, the ops console under /console/, and with
// Config.Pprof the profiles under PprofPath.
func (s *Server) AdminHandler() http.Handler { return s.adminMux() }

// AdminToken returns the ops API's bearer token (generated in dev mode when
// none was configured).
func (s *Server) AdminToken() string { return s.adminToken }

// Close releases everything: live ops, the session store and cache, the
// databases and the Redis clients. Call it after Serve returned.
func (s *Server) Close() error {
	var errs []error
	hubCtx, cancelHub := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	errs = append(errs, s.shutdownHub(hubCtx))
	cancelHub()
	if s.stop != nil {
		s.stop()
		s.wg.Wait()
		s.stop = nil
	}
	if s.liveops != nil {
		errs = append(errs, s.liveops.Close())
	}
	if s.cache != nil {
		errs = append(errs, s.cache.Close())
	}
	if s.sessions != nil {
		errs = append(errs, s.sessions.Close())
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	if s.redis != nil {
		errs = append(errs, s.redis.Close())
	}
	s.liveops, s.cache, s.sessions, s.store, s.redis = nil, nil, nil, nil, nil
	return errors.Join(errs...)
}

// registerCommands adds the game's commands to the protocol mux.
func (s *Server) registerCommands() {
	s.game.Register(s.mux)
	s.mux.Handle(CmdTime, protocol.Typed(func(_ context.Context, r *protocol.Request, _ struct{}) (map[string]int64, error) {
		return map[string]int64{"server_ms": s.now().UnixMilli(), "client_ms": r.ClientTime}, nil
	}))
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "madang game server\n\nPOST frames (or, in dev mode, plain JSON) to http://%s%s\n", r.Host, protocol.DefaultHTTPPath)
	if s.cfg.Dev {
		fmt.Fprintf(w, "\ntry:\n  curl -s -d '{\"cmd\":\"sys.time\",\"seq\":1}' http://%s%s\n", r.Host, protocol.DefaultHTTPPath)
		fmt.Fprintf(w, "  curl -s -d '{\"cmd\":\"auth.guest\",\"seq\":1,\"payload\":{\"device_id\":\"my-phone\"}}' http://%s%s\n", r.Host, protocol.DefaultHTTPPath)
		fmt.Fprintf(w, "  curl -s -d '{\"cmd\":\"player.load\",\"seq\":2,\"token\":\"<token from auth.guest>\"}' http://%s%s\n", r.Host, protocol.DefaultHTTPPath)
	}
}

// ListenAndServe listens on cfg.Addr (and cfg.AdminAddr unless "off"),
// prints where it serves to out, and serves until ctx is done; then it
// shuts down gracefully within cfg.ShutdownTimeout.
func (s *Server) ListenAndServe(ctx context.Context, out io.Writer) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	var admin net.Listener
	if s.cfg.AdminAddr != AdminOff {
		if admin, err = net.Listen("tcp", s.cfg.AdminAddr); err != nil {
			ln.Close()
			return fmt.Errorf("admin listener: %w", err)
		}
	}
	return s.ServeAll(ctx, ln, admin, out)
}

// Serve is ListenAndServe on an existing game listener, without the admin
// listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener, out io.Writer) error {
	return s.ServeAll(ctx, ln, nil, out)
}

// ServeAll serves the game on ln and, when admin is not nil, the ops API on
// admin, until ctx is done; then it shuts both down gracefully.
//
// In development mode (Config.Dev) without Config.DevAllowRemote it refuses
// a listener that is not on a loopback address, before serving anything.
func (s *Server) ServeAll(ctx context.Context, ln, admin net.Listener, out io.Writer) error {
	if s.cfg.Pprof && admin != nil && !cmdline.IsLoopbackAddr(admin.Addr()) {
		ln.Close()
		admin.Close()
		return fmt.Errorf("-pprof needs the admin listener on a loopback address, not %s", admin.Addr())
	}
	if s.cfg.Dev && !s.cfg.DevAllowRemote {
		for _, l := range []net.Listener{ln, admin} {
			if l != nil && !cmdline.IsLoopbackAddr(l.Addr()) {
				ln.Close()
				if admin != nil {
					admin.Close()
				}
				return cmdline.DevRemoteError("the listener", l.Addr().String(), devFeatures)
			}
		}
	}
	newHTTP := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      15 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
	}
	servers := []*http.Server{newHTTP(s.http)}
	listeners := []net.Listener{ln}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "madang game server listening on %s\n", base)
	fmt.Fprintf(out, "  rpc:     POST %s%s\n", base, protocol.DefaultHTTPPath)
	fmt.Fprintf(out, "  health:  GET  %s/healthz\n", base)
	fmt.Fprintf(out, "  ws:      ws://%s%s?token=<token> (realtime: chat, pushes; game commands too)\n", ln.Addr().String(), WSPath)
	fmt.Fprintf(out, "  data:    %s\n", s.describeBackends())
	if s.catalog != nil {
		pub, _ := s.catalog.Published()
		fmt.Fprintf(out, "  gamedata: version %s in use of %v\n", pub, s.catalog.Versions())
	}
	if admin != nil {
		servers = append(servers, newHTTP(s.AdminHandler()))
		listeners = append(listeners, admin)
		abase := "http://" + admin.Addr().String()
		fmt.Fprintf(out, "  ops:     %s/v1/... (Authorization: Bearer <token>), %s/metrics, %s/readyz\n", abase, abase, abase)
		fmt.Fprintf(out, "  console: %s/console/ (operators: gameserver operator add -name NAME -role operator)\n", abase)
		fmt.Fprintf(out, "  try:     curl -s -H 'Authorization: Bearer <token>' %s/v1/gamedata/ (also /v1/events, /v1/mail, /v1/ledger?user=K)\n", abase)
		if s.cfg.Pprof {
			fmt.Fprintf(out, "  pprof:   %s%s (loopback, Authorization: Bearer <token>)\n", abase, PprofPath)
		}
		if s.adminTokenGenerated && s.cfg.Dev {
			fmt.Fprintf(out, "  token:   %s (dev mode, random; set MADANG_ADMIN_TOKEN to choose one)\n", s.adminToken)
		}
	}
	if s.cfg.Dev {
		fmt.Fprintf(out, "  try:     curl -s -d '{\"cmd\":\"sys.time\",\"seq\":1}' %s%s\n", base, protocol.DefaultHTTPPath)
	}
	fmt.Fprintln(out, "Ctrl-C stops it.")

	errc := make(chan error, len(servers))
	for i, hs := range servers {
		go func() { errc <- hs.Serve(listeners[i]) }()
	}
	var err error
	select {
	case err = <-errc: // a listener failed: shut the other down too
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	// Websocket connections are hijacked: http.Server.Shutdown does not
	// wait for them, so the hub tells them going_away first.
	if herr := s.shutdownHub(shutdownCtx); herr != nil {
		s.log.Warn("realtime hub shutdown", "err", herr)
	}
	for _, hs := range servers {
		if serr := hs.Shutdown(shutdownCtx); err == nil {
			err = serr
		}
	}
	remaining := len(servers)
	if ctx.Err() == nil {
		remaining-- // one already returned
	}
	for range remaining {
		if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
			err = serveErr
		}
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	// Last CCU flush, so the other servers stop counting our users later.
	if s.liveops != nil {
		fctx, fcancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.liveops.FlushActive(fctx)
		fcancel()
	}
	s.log.Info("game server stopped")
	return err
}

func (s *Server) describeBackends() string {
	var db, kv string
	if s.cfg.MySQLDSN != "" {
		db = fmt.Sprintf("MySQL/MariaDB (%d game databases)", len(s.store.router.Databases()))
	} else {
		db = fmt.Sprintf("%s (SQLite: common.db, gamedb01..%02d.db)", s.cfg.DataDir, EmbeddedGameDBs)
	}
	switch {
	case s.cfg.RedisCluster != "":
		kv = "Redis Cluster " + s.cfg.RedisCluster
	case s.cfg.RedisAddr != "":
		kv = "Redis " + s.cfg.RedisAddr
	default:
		kv = "memory sessions"
	}
	return db + "; " + kv
}
