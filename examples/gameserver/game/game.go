package game

import (
	"context"
	"database/sql"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/shard"
)

// Command names.
const (
	CmdGuestLogin = "auth.guest"
	CmdLogout     = "auth.logout"
	CmdLoad       = "player.load"
	CmdShopBuy    = "shop.buy"

	CmdMailList     = "mail.list"
	CmdMailClaim    = "mail.claim"
	CmdMailClaimAll = "mail.claim_all"

	CmdDungeonStart  = "dungeon.start"
	CmdDungeonFinish = "dungeon.finish"

	CmdRankTop    = "rank.top"
	CmdRankMe     = "rank.me"
	CmdRankAround = "rank.around"
)

// PublicCommands returns the commands that run without a session (for
// session.MiddlewareConfig.Public).
func PublicCommands() []string { return []string{CmdGuestLogin} }

// The game's own result codes (protocol.CodeGameBase and above).
const (
	// CodeNotEnoughGems: the player cannot pay the item's gem price.
	CodeNotEnoughGems = protocol.CodeGameBase + 1
	// CodeUnknownItem: the shop has no item with that id; from SendMail,
	// an attachment names an item the published game data does not have.
	CodeUnknownItem = protocol.CodeGameBase + 2
	// CodeNoPlayer: the session's user has no player row (it is created at
	// login, so this means the data was removed under a live session).
	CodeNoPlayer = protocol.CodeGameBase + 3
	// CodeNotEnoughStamina: dungeon.start costs more stamina than the
	// player has now.
	CodeNotEnoughStamina = protocol.CodeGameBase + 4
	// CodeUnknownDungeon: no dungeon has that id.
	CodeUnknownDungeon = protocol.CodeGameBase + 5
	// CodeNoMail: the player has no mail with that id (never sent, another
	// player's, or recalled by an operator).
	CodeNoMail = protocol.CodeGameBase + 6
	// CodeMailClaimed: the mail was claimed before (by another request id;
	// a retry of the claiming request gets the claim's answer replayed).
	CodeMailClaimed = protocol.CodeGameBase + 7
	// CodeMailExpired: the mail's expiry passed before it was claimed.
	CodeMailExpired = protocol.CodeGameBase + 8
	// CodeNoRun: the player has no dungeon run with that id.
	CodeNoRun = protocol.CodeGameBase + 9
	// CodeRunFinished: the run was finished before (by another request id;
	// a retry of the finishing request gets its answer replayed).
	CodeRunFinished = protocol.CodeGameBase + 10
	// CodeRunExpired: the run was finished more than MaxRunTime after it
	// started; it ends without rewards.
	CodeRunExpired = protocol.CodeGameBase + 11
	// CodeCheatDetected: the anti-cheat checks refused a dungeon report
	// (impossible damage, play time or clock); the run ends without
	// rewards and the verdicts go to the hack log.
	CodeCheatDetected = protocol.CodeGameBase + 12
	// CodeNotEnoughGold: the player cannot pay a gold price.
	CodeNotEnoughGold = protocol.CodeGameBase + 13
)

// Definitive game errors, stored and replayed by the idempotency layer.
// Functions, not shared values: a *protocol.Error is mutable.
var (
	errNoPlayer      = func() error { return protocol.Errorf(CodeNoPlayer, "no player") }
	errNotEnoughGems = func() error { return protocol.Errorf(CodeNotEnoughGems, "not enough gems") }
	errNotEnoughGold = func() error { return protocol.Errorf(CodeNotEnoughGold, "not enough gold") }
)

// Starting values and stamina rules (see the package doc).
const (
	StartGold       = 1000
	StartGems       = 100
	StaminaMax      = 50
	StaminaInterval = 5 * time.Minute
)

// GuestPlatform is the shard.Identity platform of guest (device) logins.
const GuestPlatform = "guest"

// Item is a shop item bought with gems.
type Item struct {
	ID    string      `json:"item_id"`
	Gems  int64       `json:"gems"`            // price
	Gold  int64       `json:"gold"`            // gold it gives
	Items []ItemCount `json:"items,omitempty"` // items it gives
	Title string      `json:"title"`
}

// Catalog returns the gem shop's items. (Versioned static game data tables
// come in a later slice; until then the shop is this fixed list.)
func Catalog() []Item {
	return []Item{
		{ID: "gold_small", Gems: 10, Gold: 1000, Title: "Pouch of gold"},
		{ID: "gold_large", Gems: 50, Gold: 6000, Title: "Chest of gold"},
		{ID: "potion_pack", Gems: 5, Items: []ItemCount{{ItemID: "potion", Count: 3}}, Title: "Three potions"},
		{ID: "adventurer_kit", Gems: 20, Gold: 500, Items: []ItemCount{{ItemID: "potion", Count: 2}, {ItemID: "key_bronze", Count: 1}}, Title: "Adventurer's kit"},
	}
}

// ShopItem returns the catalog item with id.
func ShopItem(id string) (Item, bool) {
	for _, it := range Catalog() {
		if it.ID == id {
			return it, true
		}
	}
	return Item{}, false
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the game's migrations for every game database (source
// "game"). The idempotency table is a set of its own
// (idempotency.SQLStore.Migrations), applied with MigrateAll too.
func Migrations() shard.Migrations { return embedded(migrationFiles, "migrations", "game") }

// embedded returns the migrations in directory dir of files, as source.
func embedded(files embed.FS, dir, source string) shard.Migrations {
	sub, err := fs.Sub(files, dir)
	if err != nil { // cannot happen: the directory is embedded
		panic(err)
	}
	return shard.Migrations{FS: sub, Source: source}
}

// Config wires a Game to its backends. Router, Accounts, Sessions and
// Idempotency are required.
type Config struct {
	// Router routes a user key to the user's game database.
	Router *shard.Router
	// Accounts maps login identities to user keys.
	Accounts *shard.Accounts
	// FindAccount, if set, looks up a login's identity instead of
	// Accounts.Find: a server whose middlewares already looked it up for
	// this request (block list, maintenance allow-list) returns that
	// answer, so a login reads the account row once. It must answer
	// about id, from the same request. Nil: Accounts.Find.
	FindAccount func(ctx context.Context, id shard.Identity) (shard.Found, error)
	// Sessions keeps login sessions.
	Sessions session.Store
	// Idempotency makes shop.buy run once per request id, in the
	// transaction of the purchase. Its SQLConfig.Tx must be Router.Tx (so
	// a deadlock victim runs again, in a new transaction with the same
	// request id, by the router's retry policy: shard.Config.TxRetries),
	// and it should require keys.
	Idempotency *idempotency.SQLStore
	// Dialect of the game databases: shard.DialectSQLite or
	// shard.DialectMySQL. Default shard.DialectSQLite; another name is an
	// error.
	Dialect string
	// MariaDB says the MySQL dialect's game databases are MariaDB 10.5 or
	// later, whose INSERT … RETURNING lets shop.buy lock, update and read
	// the player row in one statement, and a grant of several items get
	// their counts back from its upsert. Set it to false for MySQL behind
	// a server that calls itself MariaDB (a vtgate configured so). Default:
	// asked once (SELECT VERSION(): "MariaDB" in it, version 10.5 or
	// later), in the first transaction that needs it; the game databases
	// are taken to be all one kind of server. Ignored for SQLite.
	MariaDB *bool
	// Now returns the current time; nil means time.Now. It is the game's
	// clock (stamina, timestamps).
	Now func() time.Time
	// Logger receives logins at debug level. Nil: silent.
	Logger *slog.Logger

	// BoardStore keeps the dungeon ranking (BoardName, weekly seasons
	// starting Monday 00:00 UTC). Default: a session.BoardMemoryStore of
	// its own (one process); pass a BoardRedisStore to share rankings
	// between servers.
	BoardStore session.BoardStore
	// Monitor records anti-cheat verdicts of dungeon reports in the hack
	// log (pass the Guard's, so the block list and counters are shared).
	// Default: a Monitor of its own (in memory).
	Monitor *anticheat.Monitor
	// DriftTolerance is how far the client's clock may run ahead of the
	// server's over one dungeon run (from dungeon.start to dungeon.finish)
	// before the report is refused as a speed hack. Default 3 s (the
	// speed checker's threshold).
	DriftTolerance time.Duration
	// PlayTimeSlack is how much longer than the server-measured time since
	// dungeon.start the reported play time may be (the client starts its
	// timer before the start request leaves). Default 2 s.
	PlayTimeSlack time.Duration

	// Data gives the static tables (shop, dungeons, items, IAP products)
	// of the request's client version: FromCatalog over a
	// gamedata.Catalog. Default: DefaultTables for every client version.
	Data DataSource
	// IAP enables shop.buy_iap. Nil: the command answers
	// protocol.CodeForbidden (purchases not configured).
	IAP *IAPConfig
	// Events gives the live-ops events of a player now: login bonus
	// mails, dungeon buffs and shop sales (see Boosts). Nil: none.
	Events EventSource
}

// Defaults of Config.
const (
	DefaultDriftTolerance = 3 * time.Second
	DefaultPlayTimeSlack  = 2 * time.Second
)

// Game serves the example game's commands.
type Game struct {
	cfg      Config
	log      *slog.Logger
	board    *session.Board
	defaults *Tables    // DefaultTables, when Config.Data has none
	sql      sqlDialect // Config.Dialect's SQL
	// mariadb: 0 not known yet (asked in the first transaction that needs
	// it), 1 no, 2 yes (Config.MariaDB).
	mariadb atomic.Int32
}

// New returns a Game over cfg.
func New(cfg Config) (*Game, error) {
	if cfg.Router == nil || cfg.Accounts == nil || cfg.Sessions == nil || cfg.Idempotency == nil {
		return nil, errors.New("game: Router, Accounts, Sessions and Idempotency are required")
	}
	if cfg.Dialect == "" {
		cfg.Dialect = shard.DialectSQLite
	}
	dialect, err := newSQLDialect(cfg.Dialect)
	if err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.BoardStore == nil {
		cfg.BoardStore = session.NewBoardMemoryStore(session.BoardMemoryConfig{})
	}
	if cfg.Monitor == nil {
		cfg.Monitor = anticheat.NewMonitor(anticheat.MonitorConfig{Now: cfg.Now, Logger: cfg.Logger})
	}
	if cfg.DriftTolerance <= 0 {
		cfg.DriftTolerance = DefaultDriftTolerance
	}
	if cfg.PlayTimeSlack <= 0 {
		cfg.PlayTimeSlack = DefaultPlayTimeSlack
	}
	board, err := session.NewBoard(cfg.BoardStore, BoardName, session.BoardConfig{
		Period: session.SeasonWeekly, WeekStart: time.Monday, Now: cfg.Now, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("game: ranking: %w", err)
	}
	g := &Game{cfg: cfg, log: log, board: board, defaults: DefaultTables(), sql: dialect}
	switch {
	case dialect != shard.DialectMySQL:
		g.mariadb.Store(1)
	case cfg.MariaDB != nil && *cfg.MariaDB:
		g.mariadb.Store(2)
	case cfg.MariaDB != nil:
		g.mariadb.Store(1)
	}
	return g, nil
}

// hasReturning reports whether a server of version v (SELECT VERSION())
// is MariaDB 10.5 or later, the first with INSERT … RETURNING.
func hasReturning(v string) bool {
	if !strings.Contains(strings.ToLower(v), "mariadb") {
		return false
	}
	v = strings.TrimPrefix(v, "5.5.5-") // the replication prefix of old clients' handshake
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return major > 10 || major == 10 && minor >= 5
}

// isMariaDB reports whether the game databases are MariaDB 10.5 or later
// (Config.MariaDB), asking the server of tx the first time.
func (g *Game) isMariaDB(ctx context.Context, tx *sql.Tx) (bool, error) {
	m := g.mariadb.Load()
	if m == 0 {
		var v string
		if err := tx.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err != nil {
			return false, fmt.Errorf("game: server version: %w", err)
		}
		m = 1
		if hasReturning(v) {
			m = 2
		}
		g.mariadb.Store(m)
	}
	return m == 2, nil
}

// Register adds the game's commands to mux: the mutating ones wrapped in the
// idempotency middleware (a deadlock victim runs again in the router's
// transaction: see Config.Idempotency). Authentication and anti-cheat are the caller's
// chain around the mux (see package server).
func (g *Game) Register(mux *protocol.Mux) {
	// Every command's errors are classified (shard.ClassifyError): a game
	// database, the common database or Redis that is down, slow or
	// read-only, or a deadlock victim, answers unavailable (41, retryable)
	// or timeout (42), never internal (40).
	cl := ClassifyErrors
	mux.Handle(CmdGuestLogin, protocol.Typed(g.guestLogin), cl)
	mux.HandleFunc(CmdLogout, g.logout, cl)
	mux.Handle(CmdLoad, protocol.Typed(g.load), cl)
	once := idempotency.Middleware(g.cfg.Idempotency)
	mux.Handle(CmdShopBuy, protocol.Typed(g.buy), cl, once)
	mux.Handle(CmdShopBuyIAP, protocol.Typed(g.buyIAP), cl, once)
	mux.Handle(CmdMailList, protocol.Typed(g.mailList), cl)
	mux.Handle(CmdMailClaim, protocol.Typed(g.mailClaim), cl, once)
	mux.Handle(CmdMailClaimAll, protocol.Typed(g.mailClaimAll), cl, once)
	mux.Handle(CmdDungeonStart, protocol.Typed(g.dungeonStart), cl, once)
	mux.Handle(CmdDungeonFinish, protocol.Typed(g.dungeonFinish), cl, once)
	mux.Handle(CmdRankTop, protocol.Typed(g.rankTop), cl)
	mux.Handle(CmdRankMe, protocol.Typed(g.rankMe), cl)
	mux.Handle(CmdRankAround, protocol.Typed(g.rankAround), cl)
}

// ClassifyErrors is a middleware that passes a handler's error through
// shard.ClassifyError, madang's one classification of backend errors: a
// backend that is down, slow, read-only or a deadlock victim answers
// unavailable (41) or timeout (42), never internal (40). Register puts it
// on every command; package server also puts it outermost on its whole
// chain (sessions, anti-cheat, live ops).
func ClassifyErrors(next protocol.Handler) protocol.Handler {
	return protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		resp, err := next.Serve(ctx, req)
		return resp, shard.ClassifyError(err)
	})
}

// Board returns the dungeon ranking (for operators and tests).
func (g *Game) Board() *session.Board { return g.board }

// Monitor returns the anti-cheat monitor dungeon verdicts go to.
func (g *Game) Monitor() *anticheat.Monitor { return g.cfg.Monitor }

// GuestLogin is auth.guest's payload.
type GuestLogin struct {
	DeviceID      string `json:"device_id"`
	Platform      string `json:"platform"` // client platform: "android", "ios", ...
	ClientVersion string `json:"client_version"`
	Country       string `json:"country"`
	Language      string `json:"language"`
}

// LoginResult is auth.guest's answer. Send Token in every request, or
// switch to authenticated frames with protocol.NewKeys(KeyID, Secret).
type LoginResult struct {
	Token      string `json:"token"`
	KeyID      string `json:"key_id"`
	Secret     string `json:"secret"` // base64 (standard encoding) of the session secret
	UserKey    int64  `json:"user_key"`
	NewUser    bool   `json:"new_user"`
	ServerTime int64  `json:"server_time"` // Unix ms
}

func badRequest(format string, args ...any) error {
	return protocol.Errorf(protocol.CodeBadRequest, format, args...)
}

func (g *Game) guestLogin(ctx context.Context, req *protocol.Request, in GuestLogin) (LoginResult, error) {
	res, principal, err := g.Login(ctx, in)
	if err != nil {
		return LoginResult{}, err
	}
	// The anti-cheat guard checks the block list on the login's Principal.
	req.Principal = principal
	return res, nil
}

// Login is auth.guest without the transport: it registers the device,
// creates the player if missing and opens a session (kicking the user's
// older one). It returns the answer and the new session's Principal.
func (g *Game) Login(ctx context.Context, in GuestLogin) (LoginResult, *protocol.Principal, error) {
	fail := func(err error) (LoginResult, *protocol.Principal, error) { return LoginResult{}, nil, err }
	if in.DeviceID == "" || len(in.DeviceID) > shard.MaxIdentityIDLen {
		return fail(badRequest("device_id must be 1..%d bytes", shard.MaxIdentityIDLen))
	}
	for name, v := range map[string]string{"platform": in.Platform, "client_version": in.ClientVersion, "country": in.Country, "language": in.Language} {
		if len(v) > session.MaxFieldLen {
			return fail(badRequest("%s longer than %d bytes", name, session.MaxFieldLen))
		}
	}
	userKey, created, err := g.register(ctx, shard.Identity{Platform: GuestPlatform, ID: in.DeviceID})
	if err != nil {
		return fail(fmt.Errorf("game: register guest: %w", err))
	}
	// The player row is created on every login if missing (not only when
	// the account is new), so a crash between the two steps heals itself.
	nowT := g.cfg.Now()
	now := nowT.UnixMilli()
	bonuses := g.boosts(EventTarget{Country: in.Country, Language: in.Language, Platform: in.Platform, ClientVersion: in.ClientVersion}).LoginBonuses
	data := g.clientTables(ctx, in.ClientVersion)
	// A new player gets the welcome mail in the same transaction, and
	// every player the running login bonuses (once each, by mail key).
	err = g.cfg.Router.Tx(ctx, userKey, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, g.sql.InsertIgnore()+
			" players (user_key, name, gold, gems, stamina, stamina_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
			userKey, fmt.Sprintf("guest-%d", userKey), StartGold, StartGems, StaminaMax, now, now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n > 0 {
			if err := g.queueMailTx(ctx, tx, userKey, WelcomeMail(), now); err != nil {
				return err
			}
		}
		return g.sendLoginBonuses(ctx, tx, userKey, bonuses, data, nowT)
	})
	if err != nil {
		return fail(fmt.Errorf("game: create player %d: %w", userKey, err))
	}
	// In-app purchases redeemed while their grant never committed (the
	// game database died in between) are granted now, without waiting for
	// the client to send the receipt again. A failure here does not fail
	// the login: the server's sweep grants them later. A new account has
	// none (a purchase needs a session, and its key was never used).
	if !created {
		if n, err := g.GrantPending(ctx, userKey); err != nil {
			g.log.Warn("game: grant noted purchases at login", "user", userKey, "err", err)
		} else if n > 0 {
			g.log.Info("game: noted purchases granted at login", "user", userKey, "granted", n)
		}
	}
	shardID, _ := g.cfg.Router.LookupID(userKey)
	sess, err := g.cfg.Sessions.Create(ctx, session.CreateParams{
		UserKey: userKey, ShardID: shardID, ClientVersion: in.ClientVersion, Platform: in.Platform,
		DeviceID: in.DeviceID, Country: in.Country, Language: in.Language,
	})
	if err != nil {
		return fail(fmt.Errorf("game: session: %w", err))
	}
	g.log.Debug("guest login", "user", userKey, "new", created, "db", shardID)
	return LoginResult{
		Token: sess.Token, KeyID: sess.ID, Secret: base64.StdEncoding.EncodeToString(sess.Secret),
		UserKey: userKey, NewUser: created, ServerTime: g.cfg.Now().UnixMilli(),
	}, sess.Principal(), nil
}

// register registers a login's identity, reading its account once:
// Config.FindAccount's answer (or Accounts.Find's) passed on to
// Accounts.RegisterFound.
func (g *Game) register(ctx context.Context, id shard.Identity) (int64, bool, error) {
	find := g.cfg.FindAccount
	if find == nil {
		find = g.cfg.Accounts.Find
	}
	f, err := find(ctx, id)
	if err != nil {
		return 0, false, err
	}
	if f.Identity() != id { // a FindAccount answering about another identity
		return g.cfg.Accounts.Register(ctx, id)
	}
	return g.cfg.Accounts.RegisterFound(ctx, f)
}

// Player is player.load's answer.
type Player struct {
	UserKey   int64   `json:"user_key"`
	Name      string  `json:"name"`
	Gold      int64   `json:"gold"`
	Gems      int64   `json:"gems"`
	Exp       int64   `json:"exp"`
	Level     int     `json:"level"` // LevelOf(Exp)
	Stamina   Stamina `json:"stamina"`
	CreatedAt int64   `json:"created_at"` // Unix ms
	// Items is the inventory: items with a positive count, by item id.
	Items []ItemCount `json:"items"`
}

// ExpPerLevel is the experience each level takes; MaxLevel caps levels.
const (
	ExpPerLevel = 100
	MaxLevel    = 99
)

// LevelOf is the level of a player with exp experience: 1 + exp /
// ExpPerLevel, at most MaxLevel.
func LevelOf(exp int64) int {
	if exp < 0 {
		return 1
	}
	if l := 1 + exp/ExpPerLevel; l < MaxLevel {
		return int(l)
	}
	return MaxLevel
}

// Stamina is the player's stamina as of the server time.
type Stamina struct {
	Current int64 `json:"current"`
	Max     int64 `json:"max"`
	// NextAt is when the next point comes (Unix ms), 0 at or above Max.
	NextAt int64 `json:"next_at"`
	// IntervalMs is the regeneration interval.
	IntervalMs int64 `json:"interval_ms"`
}

// StaminaAt computes the stamina at now from the stored value and the time
// it was written (Unix ms), by the rule in the package doc.
func StaminaAt(stored, storedAt int64, now time.Time) Stamina {
	st := Stamina{Current: stored, Max: StaminaMax, IntervalMs: StaminaInterval.Milliseconds()}
	if stored >= StaminaMax {
		return st
	}
	elapsed := now.UnixMilli() - storedAt
	if elapsed < 0 { // a clock step back: no regeneration, never negative
		elapsed = 0
	}
	gained := elapsed / st.IntervalMs
	if stored+gained >= StaminaMax {
		st.Current = StaminaMax
		return st
	}
	st.Current = stored + gained
	st.NextAt = storedAt + (gained+1)*st.IntervalMs
	return st
}

// logout ends the caller's session (auth.logout): Sessions.Revoke, which
// also closes its websocket connections on every node (session_revoked).
func (g *Game) logout(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
	if _, err := userOf(req); err != nil {
		return nil, err
	}
	if err := g.cfg.Sessions.Revoke(ctx, req.Principal.SessionID); err != nil {
		return nil, fmt.Errorf("game: logout: %w", err)
	}
	return nil, nil
}

func userOf(req *protocol.Request) (int64, error) {
	if req.Principal == nil || req.Principal.UserKey <= 0 {
		return 0, protocol.Errorf(protocol.CodeUnauthorized, "no session")
	}
	return req.Principal.UserKey, nil
}

func (g *Game) load(ctx context.Context, req *protocol.Request, _ struct{}) (Player, error) {
	userKey, err := userOf(req)
	if err != nil {
		return Player{}, err
	}
	return g.LoadPlayer(ctx, userKey)
}

// LoadPlayer returns userKey's player as player.load answers it (for
// operators and tests). A user without a player row is CodeNoPlayer; a
// game database that is down or slow is CodeUnavailable (retryable).
func (g *Game) LoadPlayer(ctx context.Context, userKey int64) (Player, error) {
	p, err := g.loadPlayer(ctx, userKey)
	return p, shard.ClassifyError(err)
}

func (g *Game) loadPlayer(ctx context.Context, userKey int64) (Player, error) {
	db, err := g.cfg.Router.DB(ctx, userKey)
	if err != nil {
		return Player{}, err
	}
	p := Player{UserKey: userKey}
	var stamina, staminaAt int64
	err = db.QueryRowContext(ctx, "SELECT name, gold, gems, exp, stamina, stamina_at, created_at FROM players WHERE user_key = ?", userKey).
		Scan(&p.Name, &p.Gold, &p.Gems, &p.Exp, &stamina, &staminaAt, &p.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Player{}, errNoPlayer()
	}
	if err != nil {
		return Player{}, fmt.Errorf("game: load player %d: %w", userKey, err)
	}
	p.Level = LevelOf(p.Exp)
	p.Stamina = StaminaAt(stamina, staminaAt, g.cfg.Now())
	if p.Items, err = inventory(ctx, db, userKey); err != nil {
		return Player{}, err
	}
	return p, nil
}

// Buy is shop.buy's payload.
type Buy struct {
	ItemID string `json:"item_id"`
}

// BuyResult is shop.buy's answer: the balances after the purchase and the
// items it gave.
type BuyResult struct {
	ItemID string      `json:"item_id"`
	Gold   int64       `json:"gold"`
	Gems   int64       `json:"gems"`
	Items  []ItemCount `json:"items,omitempty"`
	// Paid is the gem price paid; DiscountPct the shop sale that lowered
	// it (0: none).
	Paid        int64 `json:"paid"`
	DiscountPct int64 `json:"discount_pct,omitempty"`
}

func (g *Game) buy(ctx context.Context, req *protocol.Request, in Buy) (BuyResult, error) {
	userKey, err := userOf(req)
	if err != nil {
		return BuyResult{}, err
	}
	item, ok := g.tables(ctx, req).ShopItem(in.ItemID)
	if !ok {
		return BuyResult{}, protocol.Errorf(CodeUnknownItem, "unknown item")
	}
	tx, err := txOf(ctx, CmdShopBuy)
	if err != nil {
		return BuyResult{}, err
	}
	// A running shop sale lowers the price.
	pct := g.boosts(targetOf(req.Principal)).discount(item.ID)
	price := salePrice(item.Gems, pct)
	// A refusal (not enough gems) is returned before anything is written:
	// a definitive answer, stored and replayed.
	b, err := g.lockApply(ctx, tx, userKey, change{Gold: item.Gold, Gems: -price, Items: item.Items}, "shop:"+item.ID, req.RequestID)
	if err != nil {
		return BuyResult{}, err
	}
	return BuyResult{ItemID: item.ID, Gold: b.Gold, Gems: b.Gems, Items: item.Items, Paid: price, DiscountPct: pct}, nil
}

// txOf returns the idempotent transaction of a mutating command.
func txOf(ctx context.Context, cmd string) (*sql.Tx, error) {
	tx := idempotency.TxFrom(ctx)
	if tx == nil { // the idempotency store requires a key, so this is a wiring bug
		return nil, fmt.Errorf("game: %s outside an idempotent transaction", cmd)
	}
	return tx, nil
}

// LedgerEntry is one ledger row.
type LedgerEntry struct {
	ID           int64  `json:"id"`
	UserKey      int64  `json:"user_key"`
	Currency     string `json:"currency"`
	Delta        int64  `json:"delta"`
	BalanceAfter int64  `json:"balance_after"`
	Reason       string `json:"reason"`
	RequestID    string `json:"request_id"`
	At           int64  `json:"at"` // Unix ms
}

// Ledger returns the user's ledger rows, oldest first (for operators and
// tests).
func (g *Game) Ledger(ctx context.Context, userKey int64) ([]LedgerEntry, error) {
	db, err := g.cfg.Router.DB(ctx, userKey)
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, "SELECT id, user_key, currency, delta, balance_after, reason, request_id, at FROM ledger WHERE user_key = ? ORDER BY id", userKey)
	if err != nil {
		return nil, fmt.Errorf("game: ledger of %d: %w", userKey, err)
	}
	defer rows.Close()
	var out []LedgerEntry
	for rows.Next() {
		var e LedgerEntry
		if err := rows.Scan(&e.ID, &e.UserKey, &e.Currency, &e.Delta, &e.BalanceAfter, &e.Reason, &e.RequestID, &e.At); err != nil {
			return nil, fmt.Errorf("game: ledger of %d: %w", userKey, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// MaxLedgerPage bounds RecentLedger's and LedgerBefore's limit.
const MaxLedgerPage = 1000

// LedgerBefore returns a page of the user's ledger, newest first: at most
// limit rows (1..MaxLedgerPage; out of range means MaxLedgerPage) with ids
// below before (0 or less: from the newest). The next page is the rows
// below the last id returned: keyset paging on the (user_key, id) index,
// so any page costs the same however long the ledger is.
func (g *Game) LedgerBefore(ctx context.Context, userKey, before int64, limit int) ([]LedgerEntry, error) {
	if before <= 0 {
		return g.RecentLedger(ctx, userKey, limit)
	}
	if limit <= 0 || limit > MaxLedgerPage {
		limit = MaxLedgerPage
	}
	db, err := g.cfg.Router.DB(ctx, userKey)
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, "SELECT id, user_key, currency, delta, balance_after, reason, request_id, at FROM ledger WHERE user_key = ? AND id < ? ORDER BY id DESC LIMIT ?", userKey, before, limit)
	if err != nil {
		return nil, fmt.Errorf("game: ledger of %d: %w", userKey, shard.ClassifyError(err))
	}
	return scanLedger(userKey, rows)
}

func scanLedger(userKey int64, rows *sql.Rows) ([]LedgerEntry, error) {
	defer rows.Close()
	out := []LedgerEntry{}
	for rows.Next() {
		var e LedgerEntry
		if err := rows.Scan(&e.ID, &e.UserKey, &e.Currency, &e.Delta, &e.BalanceAfter, &e.Reason, &e.RequestID, &e.At); err != nil {
			return nil, fmt.Errorf("game: ledger of %d: %w", userKey, shard.ClassifyError(err))
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("game: ledger of %d: %w", userKey, shard.ClassifyError(err))
	}
	return out, nil
}

// RecentLedger returns the user's newest ledger rows, newest first, at most
// limit (1..MaxLedgerPage; out of range means MaxLedgerPage), for the
// operators' ledger view.
func (g *Game) RecentLedger(ctx context.Context, userKey int64, limit int) ([]LedgerEntry, error) {
	if limit <= 0 || limit > MaxLedgerPage {
		limit = MaxLedgerPage
	}
	db, err := g.cfg.Router.DB(ctx, userKey)
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, "SELECT id, user_key, currency, delta, balance_after, reason, request_id, at FROM ledger WHERE user_key = ? ORDER BY id DESC LIMIT ?", userKey, limit)
	if err != nil {
		return nil, fmt.Errorf("game: ledger of %d: %w", userKey, err)
	}
	defer rows.Close()
	out := []LedgerEntry{}
	for rows.Next() {
		var e LedgerEntry
		if err := rows.Scan(&e.ID, &e.UserKey, &e.Currency, &e.Delta, &e.BalanceAfter, &e.Reason, &e.RequestID, &e.At); err != nil {
			return nil, fmt.Errorf("game: ledger of %d: %w", userKey, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("game: ledger of %d: %w", userKey, err)
	}
	return out, nil
}
