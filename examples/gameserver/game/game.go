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
	"time"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/internal/clock"
	"github.com/madang-io/madang/internal/sqldialect"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/shard"
)

// Command names.
const (
	CmdGuestLogin = "auth.guest"
	CmdLoad       = "player.load"
	CmdShopBuy    = "shop.buy"
)

// PublicCommands returns the commands that run without a session (for
// session.MiddlewareConfig.Public).
func PublicCommands() []string { return []string{CmdGuestLogin} }

// The game's own result codes (protocol.CodeGameBase and above).
const (
	// CodeNotEnoughGems: the player cannot pay the item's gem price.
	CodeNotEnoughGems = protocol.CodeGameBase + 1
	// CodeUnknownItem: the shop has no item with that id.
	CodeUnknownItem = protocol.CodeGameBase + 2
	// CodeNoPlayer: the session's user has no player row (it is created at
	// login, so this means the data was removed under a live session).
	CodeNoPlayer = protocol.CodeGameBase + 3
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
	ID    string `json:"item_id"`
	Gems  int64  `json:"gems"` // price
	Gold  int64  `json:"gold"` // what it gives
	Title string `json:"title"`
}

// Catalog returns the gem shop's items. (Versioned static game data tables
// come in a later slice; until then the shop is this fixed list.)
func Catalog() []Item {
	return []Item{
		{ID: "gold_small", Gems: 10, Gold: 1000, Title: "Pouch of gold"},
		{ID: "gold_large", Gems: 50, Gold: 6000, Title: "Chest of gold"},
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
// "game"). The idempotency table is created by idempotency.SQLStore.Migrate.
func Migrations() shard.Migrations {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil { // cannot happen: the directory is embedded
		panic(err)
	}
	return shard.Migrations{FS: sub, Source: "game"}
}

// Config wires a Game to its backends. Router, Accounts, Sessions and
// Idempotency are required.
type Config struct {
	// Router routes a user key to the user's game database.
	Router *shard.Router
	// Accounts maps login identities to user keys.
	Accounts *shard.Accounts
	// Sessions keeps login sessions.
	Sessions session.Store
	// Idempotency makes shop.buy run once per request id, in the
	// transaction of the purchase. Its SQLConfig.DB must route by
	// Scope.UserKey through Router, and it should require keys.
	Idempotency *idempotency.SQLStore
	// Dialect of the game databases. Default sqldialect.SQLite.
	Dialect sqldialect.Dialect
	// Clock is the game's clock (stamina, timestamps). Default clock.Real.
	Clock clock.Clock
	// Logger receives logins at debug level. Nil: silent.
	Logger *slog.Logger
}

// Game serves the example game's commands.
type Game struct {
	cfg Config
	log *slog.Logger
}

// New returns a Game over cfg.
func New(cfg Config) (*Game, error) {
	if cfg.Router == nil || cfg.Accounts == nil || cfg.Sessions == nil || cfg.Idempotency == nil {
		return nil, errors.New("game: Router, Accounts, Sessions and Idempotency are required")
	}
	if cfg.Dialect == nil {
		cfg.Dialect = sqldialect.SQLite
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Game{cfg: cfg, log: log}, nil
}

// Register adds the game's commands to mux: the mutating ones wrapped in the
// idempotency middleware. Authentication and anti-cheat are the caller's
// chain around the mux (see package server).
func (g *Game) Register(mux *protocol.Mux) {
	mux.Handle(CmdGuestLogin, protocol.Typed(g.guestLogin))
	mux.Handle(CmdLoad, protocol.Typed(g.load))
	mux.Handle(CmdShopBuy, protocol.Typed(g.buy), idempotency.Middleware(g.cfg.Idempotency))
}

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
	userKey, created, err := g.cfg.Accounts.Register(ctx, shard.Identity{Platform: GuestPlatform, ID: in.DeviceID})
	if err != nil {
		return fail(fmt.Errorf("game: register guest: %w", err))
	}
	// The player row is created on every login if missing (not only when
	// the account is new), so a crash between the two steps heals itself.
	now := g.cfg.Clock.Now().UnixMilli()
	err = g.cfg.Router.Tx(ctx, userKey, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, g.cfg.Dialect.InsertIgnore()+
			" players (user_key, name, gold, gems, stamina, stamina_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
			userKey, fmt.Sprintf("guest-%d", userKey), StartGold, StartGems, StaminaMax, now, now)
		return err
	})
	if err != nil {
		return fail(fmt.Errorf("game: create player %d: %w", userKey, err))
	}
	shardID, _ := g.cfg.Router.LookupID(userKey)
	sess, err := g.cfg.Sessions.Create(ctx, session.NewSession{
		UserKey: userKey, ShardID: shardID, ClientVersion: in.ClientVersion, Platform: in.Platform,
		DeviceID: in.DeviceID, Country: in.Country, Language: in.Language,
	})
	if err != nil {
		return fail(fmt.Errorf("game: session: %w", err))
	}
	g.log.Debug("guest login", "user", userKey, "new", created, "db", shardID)
	return LoginResult{
		Token: sess.Token, KeyID: sess.ID, Secret: base64.StdEncoding.EncodeToString(sess.Secret),
		UserKey: userKey, NewUser: created, ServerTime: g.cfg.Clock.Now().UnixMilli(),
	}, sess.Principal(), nil
}

// Player is player.load's answer.
type Player struct {
	UserKey   int64   `json:"user_key"`
	Name      string  `json:"name"`
	Gold      int64   `json:"gold"`
	Gems      int64   `json:"gems"`
	Stamina   Stamina `json:"stamina"`
	CreatedAt int64   `json:"created_at"` // Unix ms
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
	db, err := g.cfg.Router.DB(ctx, userKey)
	if err != nil {
		return Player{}, err
	}
	p := Player{UserKey: userKey}
	var stamina, staminaAt int64
	err = db.QueryRowContext(ctx, "SELECT name, gold, gems, stamina, stamina_at, created_at FROM players WHERE user_key = ?", userKey).
		Scan(&p.Name, &p.Gold, &p.Gems, &stamina, &staminaAt, &p.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Player{}, protocol.Errorf(CodeNoPlayer, "no player")
	}
	if err != nil {
		return Player{}, fmt.Errorf("game: load player %d: %w", userKey, err)
	}
	p.Stamina = StaminaAt(stamina, staminaAt, g.cfg.Clock.Now())
	return p, nil
}

// Buy is shop.buy's payload.
type Buy struct {
	ItemID string `json:"item_id"`
}

// BuyResult is shop.buy's answer: the balances after the purchase.
type BuyResult struct {
	ItemID string `json:"item_id"`
	Gold   int64  `json:"gold"`
	Gems   int64  `json:"gems"`
}

func (g *Game) buy(ctx context.Context, req *protocol.Request, in Buy) (BuyResult, error) {
	userKey, err := userOf(req)
	if err != nil {
		return BuyResult{}, err
	}
	item, ok := ShopItem(in.ItemID)
	if !ok {
		return BuyResult{}, protocol.Errorf(CodeUnknownItem, "unknown item")
	}
	tx := idempotency.TxFrom(ctx)
	if tx == nil { // the idempotency store requires a key, so this is a wiring bug
		return BuyResult{}, errors.New("game: shop.buy outside an idempotent transaction")
	}
	var gold, gems int64
	err = tx.QueryRowContext(ctx, "SELECT gold, gems FROM players WHERE user_key = ?"+g.cfg.Dialect.ForUpdate(), userKey).Scan(&gold, &gems)
	if errors.Is(err, sql.ErrNoRows) {
		return BuyResult{}, protocol.Errorf(CodeNoPlayer, "no player")
	}
	if err != nil {
		return BuyResult{}, fmt.Errorf("game: read balances of %d: %w", userKey, err)
	}
	if gems < item.Gems {
		// Nothing written yet: a definitive answer, stored and replayed.
		return BuyResult{}, protocol.Errorf(CodeNotEnoughGems, "not enough gems")
	}
	gold, gems = gold+item.Gold, gems-item.Gems
	if _, err := tx.ExecContext(ctx, "UPDATE players SET gold = ?, gems = ? WHERE user_key = ?", gold, gems, userKey); err != nil {
		return BuyResult{}, fmt.Errorf("game: update balances of %d: %w", userKey, err)
	}
	now := g.cfg.Clock.Now().UnixMilli()
	reason := "shop:" + item.ID
	for _, row := range []struct {
		currency       string
		delta, balance int64
	}{{"gems", -item.Gems, gems}, {"gold", item.Gold, gold}} {
		if _, err := tx.ExecContext(ctx, "INSERT INTO ledger (user_key, currency, delta, balance_after, reason, request_id, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
			userKey, row.currency, row.delta, row.balance, reason, req.RequestID, now); err != nil {
			return BuyResult{}, fmt.Errorf("game: ledger of %d: %w", userKey, err)
		}
	}
	return BuyResult{ItemID: item.ID, Gold: gold, Gems: gems}, nil
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
