package liveops

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/shard"
)

// Limits of the policy. Calls over them fail with ErrInvalid.
const (
	// MaxBatch is the most user keys one AddUserMaintenance or
	// RemoveUserMaintenance call takes.
	MaxBatch = 100
	// MaxPlatformLen bounds platform names.
	MaxPlatformLen = 32
	// MaxURLLen bounds update and review URLs.
	MaxURLLen = 512
	// MaxMessageLen bounds the maintenance message.
	MaxMessageLen = 1024
	// MaxCommentLen bounds a per-user maintenance comment.
	MaxCommentLen = 255
	// MaxOperatorLen bounds operator names.
	MaxOperatorLen = 64
	// MaxDataVersionLen bounds data and asset version strings.
	MaxDataVersionLen = 64
	// MaxAllowUsers bounds the global maintenance allow-list.
	MaxAllowUsers = 1000
)

// DirectiveForceClose is the login answer's directive_code telling the
// client to close itself at close_at (a repackaged APK).
const DirectiveForceClose = 1

// Errors.
var (
	// ErrInvalid: input outside the documented limits or malformed.
	ErrInvalid = errors.New("liveops: invalid input")
	// ErrClosed: the Manager was closed.
	ErrClosed = errors.New("liveops: closed")
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the liveops tables' migrations for the common database
// (source "liveops"); apply them with shard.Migrate before New.
func Migrations() shard.Migrations {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil { // cannot happen: the directory is embedded
		panic(err)
	}
	return shard.Migrations{FS: sub, Source: "liveops"}
}

// PlatformPolicy is one platform's version rule.
type PlatformPolicy struct {
	Platform string `json:"platform"` // "android", "ios", ...
	// MinVersion is the lowest client version allowed to play
	// ("x.y.z.w", compared numerically); "" allows every version.
	MinVersion string `json:"min_version"`
	// UpdateURL is sent with "update required" (the store page).
	UpdateURL string    `json:"update_url"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ClientVersion is what the server knows of one client build.
type ClientVersion struct {
	Platform string `json:"platform"`
	Version  string `json:"version"` // canonical "x.y.z.w"
	// Review marks a build in store review: its logins get ReviewURL.
	Review bool `json:"review"`
	// ReviewURL is the review server's URL for this build.
	ReviewURL string `json:"review_url"`
	// DataVersion and AssetVersion are the game-data and asset-bundle
	// versions this build loads.
	DataVersion  string    `json:"data_version"`
	AssetVersion string    `json:"asset_version"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Maintenance is the global maintenance switch.
type Maintenance struct {
	Active  bool   `json:"active"`
	Message string `json:"message"`
	// EndsAt is shown to players (the expected end); maintenance ends when
	// an operator sets Active false, not at EndsAt.
	EndsAt time.Time `json:"ends_at"`
	// AllowUsers may play during maintenance (testers, operators).
	AllowUsers []int64   `json:"allow_users"`
	Operator   string    `json:"operator"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// UserMaintenance is one user held in maintenance.
type UserMaintenance struct {
	UserKey   int64     `json:"user_key"`
	Operator  string    `json:"operator"`
	Comment   string    `json:"comment"`
	CreatedAt time.Time `json:"created_at"`
}

// Policy is one consistent snapshot of the whole policy.
type Policy struct {
	Version     int64             `json:"version"` // liveops_meta.version it was read at
	Platforms   []PlatformPolicy  `json:"platforms"`
	Versions    []ClientVersion   `json:"client_versions"`
	Maintenance Maintenance       `json:"maintenance"`
	Users       []UserMaintenance `json:"-"` // per-user maintenance (see Manager.UserMaintenance)
	Events      []Event           `json:"events"`

	platforms map[string]platformRule
	versions  map[string][]versionRule // by platform, ascending
	allow     map[int64]struct{}
	users     map[int64]*UserMaintenance
}

type platformRule struct {
	min    [4]uint32
	hasMin bool
	p      *PlatformPolicy
}

type versionRule struct {
	v [4]uint32
	c *ClientVersion
}

func less(a, b [4]uint32) bool { return slices.Compare(a[:], b[:]) < 0 }

// index builds the lookup structures of p.
func (p *Policy) index() {
	p.platforms = make(map[string]platformRule, len(p.Platforms))
	for i := range p.Platforms {
		pp := &p.Platforms[i]
		r := platformRule{p: pp}
		if pp.MinVersion != "" {
			if v, err := anticheat.ParseVersion(pp.MinVersion); err == nil {
				r.min, r.hasMin = v, true
			}
		}
		p.platforms[pp.Platform] = r
	}
	p.versions = make(map[string][]versionRule)
	for i := range p.Versions {
		c := &p.Versions[i]
		v, err := anticheat.ParseVersion(c.Version)
		if err != nil {
			continue
		}
		p.versions[c.Platform] = append(p.versions[c.Platform], versionRule{v, c})
	}
	for _, rs := range p.versions {
		sort.Slice(rs, func(i, j int) bool { return less(rs[i].v, rs[j].v) })
	}
	p.allow = make(map[int64]struct{}, len(p.Maintenance.AllowUsers))
	for _, u := range p.Maintenance.AllowUsers {
		p.allow[u] = struct{}{}
	}
	p.users = make(map[int64]*UserMaintenance, len(p.Users))
	for i := range p.Users {
		p.users[p.Users[i].UserKey] = &p.Users[i]
	}
}

// TooOld reports whether version is below platform's minimum; a version
// that does not parse is too old when there is a minimum.
func (p *Policy) TooOld(platform, version string) (bool, PlatformPolicy) {
	r, ok := p.platforms[platform]
	if !ok || !r.hasMin {
		return false, PlatformPolicy{}
	}
	v, err := anticheat.ParseVersion(version)
	if err != nil || less(v, r.min) {
		return true, *r.p
	}
	return false, *r.p
}

// Build returns the entry of platform's version: its own, else the highest
// non-review entry below it. ok is false when there is none.
func (p *Policy) Build(platform, version string) (ClientVersion, bool) {
	v, err := anticheat.ParseVersion(version)
	if err != nil {
		return ClientVersion{}, false
	}
	rs := p.versions[platform]
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].v == v {
			return *rs[i].c, true
		}
		if less(rs[i].v, v) && !rs[i].c.Review {
			return *rs[i].c, true
		}
	}
	return ClientVersion{}, false
}

// InMaintenance returns why userKey may not play now: "" (may play),
// "global" or "user". userKey 0 is a request without a session.
func (p *Policy) InMaintenance(userKey int64) string {
	if userKey > 0 {
		if _, ok := p.users[userKey]; ok {
			return "user"
		}
	}
	if p.Maintenance.Active {
		if _, ok := p.allow[userKey]; !ok || userKey <= 0 {
			return "global"
		}
	}
	return ""
}

// Config configures a Manager. DB is required.
type Config struct {
	// DB is the common database, migrated with Migrations.
	DB *sql.DB
	// Dialect of DB: shard.DialectMySQL or shard.DialectSQLite. Default:
	// detected (shard.DetectDialect); another name is an error.
	Dialect string
	// Write, when set, runs each of the manager's writes to DB — a
	// login's liveops_logins row, a policy change's transaction — given as
	// fn: the game server passes the common database's SQLite writer
	// queue (shard.SQLDirectory.Write), so these writers wait their turn
	// there instead of in the driver's busy handler. Nil: fn runs
	// directly.
	Write func(ctx context.Context, fn func(ctx context.Context) error) error
	// Redis, when set, carries change notifications (pub/sub on Channel)
	// and the cross-server active-user set for CCU.
	Redis redis.UniversalClient
	// Channel is the pub/sub channel and the prefix of the active-user
	// key ("<Channel>:active", hash-tagged for Cluster). Default
	// "madang:liveops".
	Channel string
	// PollInterval is how often liveops_meta.version is read, and the CCU
	// sampled for the day's peak (RecordCCU). Default 5 s; negative
	// disables polling (Refresh and RecordCCU still work).
	PollInterval time.Duration
	// MaxUserMaintenance bounds the per-user maintenance rows loaded into
	// memory; more are ignored (and logged). Default 100,000.
	MaxUserMaintenance int
	// LoginCommand is the login command's name. Default "auth.guest".
	LoginCommand string
	// PlatformField and VersionField name the login payload's members.
	// Defaults "platform" and "client_version".
	PlatformField, VersionField string
	// LoginUser resolves the account of a login before it runs, so a user
	// in maintenance is refused before a session is made. Nil: checked on
	// the Principal the login filled in, after it ran.
	LoginUser func(ctx context.Context, payload []byte) (userKey int64, ok bool, err error)
	// DAUCountsNewAccounts makes DAU count the accounts created on the
	// day (shard_accounts.created_at in DB, as NRU reads it) as logins of
	// that day, so a login whose account LoginUser did not find (a new
	// player, whose account the login creates) writes no liveops_logins
	// row: one write less per first login. Needs LoginUser and the shard
	// package's shard_accounts in DB. Default false: every successful
	// login writes its row.
	DAUCountsNewAccounts bool
	// Exempt lists commands never gated (a clock sync, a version check).
	Exempt []string
	// DataVersion, when set, is the one source of game-data versions: the
	// login answer's data_version is DataVersion(client_version) for every
	// login (the game server passes its gamedata.Catalog's mapping), and
	// SetClientVersion refuses entries with a DataVersion (ErrInvalid), so
	// operators map data versions in one place only. Nil: data_version is
	// the client version entry's (ClientVersion.DataVersion). ctx is the
	// login request's: a source that pins its state per request (the game
	// server's gamedata.Catalog.Pin) answers with the version the login
	// itself was served.
	DataVersion func(ctx context.Context, clientVersion string) string
	// Registry, when set, checks the APK signature of logins from
	// APKPlatforms with anticheat's login check (Registry.CheckLogin, the
	// one anticheat's Guard runs): a mismatch (a repackaged APK) is
	// recorded in Monitor's hack log and answered with
	// DirectiveForceClose at the registry's random close time. A version
	// without an entry (and no "latest") passes unrecorded: the registry
	// is the operators' to fill.
	Registry *anticheat.Registry
	// Monitor records signature verdicts. Nil: not recorded.
	Monitor *anticheat.Monitor
	// APKPlatforms are the platforms whose logins carry an APK signature.
	// Default {"android"}.
	APKPlatforms []string
	// APKField and CertField name the login payload's APK signature MD5
	// (hex string) and signing-certificate SHA-256 digests (array of hex
	// strings). Defaults "apk_sig" and "cert_sha256".
	APKField, CertField string
	// ActiveWindow: a user is counted in CCU for this long after a request.
	// Default 5 min.
	ActiveWindow time.Duration
	// FlushInterval is how often active users are written to Redis.
	// Default 10 s. Ignored without Redis.
	FlushInterval time.Duration
	// MaxActive bounds the users tracked in memory for CCU; beyond it new
	// users are not tracked until old ones expire. Default 1,000,000.
	MaxActive int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives reload failures. Nil: silent.
	Logger *slog.Logger
}

// Stats are a Manager's counters since it was created.
type Stats struct {
	Version        int64  // policy version in use
	Reloads        uint64 // policy reloads
	ReloadErrors   uint64 // failed polls and reloads
	Notifications  uint64 // change notifications received by pub/sub
	Maintenance    uint64 // requests refused with CodeMaintenance
	UpdateRequired uint64 // requests refused with CodeClientTooOld
	ReviewRouted   uint64 // logins answered with a review server URL
	ForceClosed    uint64 // logins answered with DirectiveForceClose
	UsersInMaint   int    // users in per-user maintenance now
	GlobalMaint    bool   // global maintenance active now
}

// Manager holds the policy and serves the middleware. Safe for concurrent
// use; Close stops its goroutines.
type Manager struct {
	cfg     Config
	dialect sqlDialect
	log     *slog.Logger
	policy  atomic.Pointer[Policy]
	reload  sync.Mutex // one reload at a time

	exempt map[string]bool
	act    *activity

	peakMu  sync.Mutex // RecordCCU: the day and peak this Manager stored last
	peakDay int64
	peak    int64

	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool

	reloads, reloadErrs, notes, maint, tooOld, review, forceClosed atomic.Uint64
}

// New loads the policy from cfg.DB and starts polling (and, with Redis,
// listening for change notifications). Close the Manager when done.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.DB == nil {
		return nil, errors.New("liveops: Config.DB is required")
	}
	switch cfg.Dialect {
	case "":
		d, err := shard.DetectDialect(ctx, cfg.DB)
		if err != nil {
			return nil, fmt.Errorf("liveops: %w", err)
		}
		cfg.Dialect = d
	case shard.DialectMySQL, shard.DialectSQLite:
	default:
		return nil, fmt.Errorf("liveops: unknown dialect %q", cfg.Dialect)
	}
	if cfg.Channel == "" {
		cfg.Channel = "madang:liveops"
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 5 * time.Second
	}
	if cfg.MaxUserMaintenance <= 0 {
		cfg.MaxUserMaintenance = 100_000
	}
	if cfg.LoginCommand == "" {
		cfg.LoginCommand = "auth.guest"
	}
	if cfg.PlatformField == "" {
		cfg.PlatformField = "platform"
	}
	if cfg.VersionField == "" {
		cfg.VersionField = "client_version"
	}
	if cfg.APKPlatforms == nil {
		cfg.APKPlatforms = []string{"android"}
	}
	if cfg.APKField == "" {
		cfg.APKField = "apk_sig"
	}
	if cfg.CertField == "" {
		cfg.CertField = "cert_sha256"
	}
	if cfg.ActiveWindow <= 0 {
		cfg.ActiveWindow = 5 * time.Minute
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 10 * time.Second
	}
	if cfg.MaxActive <= 0 {
		cfg.MaxActive = 1_000_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Manager{cfg: cfg, dialect: sqlDialect(cfg.Dialect), log: cfg.Logger, exempt: map[string]bool{}}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	for _, c := range cfg.Exempt {
		m.exempt[c] = true
	}
	m.act = newActivity(cfg)
	if err := m.Refresh(ctx); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	if cfg.PollInterval > 0 {
		m.wg.Add(1)
		go m.poll(runCtx)
	}
	if cfg.Redis != nil {
		sub := cfg.Redis.Subscribe(runCtx, cfg.Channel)
		m.wg.Add(2)
		go m.listen(runCtx, sub)
		go m.flush(runCtx)
	}
	return m, nil
}

// Close stops the goroutines and waits for them. The database and Redis
// client stay open.
func (m *Manager) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	m.cancel()
	m.wg.Wait()
	return nil
}

func (m *Manager) poll(ctx context.Context) {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Refresh(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("liveops: poll", "err", err)
			}
			if _, err := m.RecordCCU(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("liveops: record CCU", "err", err)
			}
		}
	}
}

func (m *Manager) listen(ctx context.Context, sub *redis.PubSub) {
	defer m.wg.Done()
	defer sub.Close()
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
			m.notes.Add(1)
			if err := m.Refresh(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("liveops: reload after notification", "err", err)
			}
		}
	}
}

// Policy returns the snapshot in use. Do not modify it.
func (m *Manager) Policy() *Policy { return m.policy.Load() }

// Stats returns the counters.
func (m *Manager) Stats() Stats {
	p := m.policy.Load()
	return Stats{
		Version: p.Version, Reloads: m.reloads.Load(), ReloadErrors: m.reloadErrs.Load(),
		Notifications: m.notes.Load(), Maintenance: m.maint.Load(), UpdateRequired: m.tooOld.Load(),
		ReviewRouted: m.review.Load(), ForceClosed: m.forceClosed.Load(),
		UsersInMaint: len(p.users), GlobalMaint: p.Maintenance.Active,
	}
}

// Refresh reloads the policy when liveops_meta.version changed (always on
// the first call).
func (m *Manager) Refresh(ctx context.Context) error {
	if m.closed.Load() {
		return ErrClosed
	}
	m.reload.Lock()
	defer m.reload.Unlock()
	var version int64
	if err := m.cfg.DB.QueryRowContext(ctx, "SELECT version FROM liveops_meta WHERE id = 1").Scan(&version); err != nil {
		m.reloadErrs.Add(1)
		return fmt.Errorf("liveops: read version: %w", err)
	}
	if cur := m.policy.Load(); cur != nil && cur.Version == version {
		return nil
	}
	p, err := m.load(ctx)
	if err != nil {
		m.reloadErrs.Add(1)
		return err
	}
	p.index()
	m.policy.Store(p)
	m.reloads.Add(1)
	return nil
}

// load reads the whole policy in one read transaction.
func (m *Manager) load(ctx context.Context) (*Policy, error) {
	tx, err := m.cfg.DB.BeginTx(ctx, &sql.TxOptions{ReadOnly: m.dialect == shard.DialectMySQL})
	if err != nil {
		return nil, fmt.Errorf("liveops: load: %w", err)
	}
	defer tx.Rollback()
	p := &Policy{}
	fail := func(err error) (*Policy, error) { return nil, fmt.Errorf("liveops: load: %w", err) }
	if err := tx.QueryRowContext(ctx, "SELECT version FROM liveops_meta WHERE id = 1").Scan(&p.Version); err != nil {
		return fail(err)
	}
	rows, err := tx.QueryContext(ctx, "SELECT platform, min_version, update_url, updated_at FROM liveops_platforms ORDER BY platform")
	if err != nil {
		return fail(err)
	}
	for rows.Next() {
		var pp PlatformPolicy
		var at int64
		if err := rows.Scan(&pp.Platform, &pp.MinVersion, &pp.UpdateURL, &at); err != nil {
			rows.Close()
			return fail(err)
		}
		pp.UpdatedAt = time.UnixMilli(at).UTC()
		p.Platforms = append(p.Platforms, pp)
	}
	if err := closeRows(rows); err != nil {
		return fail(err)
	}
	rows, err = tx.QueryContext(ctx, "SELECT platform, version, review, review_url, data_version, asset_version, updated_at FROM liveops_client_versions ORDER BY platform, version")
	if err != nil {
		return fail(err)
	}
	for rows.Next() {
		var c ClientVersion
		var review int
		var at int64
		if err := rows.Scan(&c.Platform, &c.Version, &review, &c.ReviewURL, &c.DataVersion, &c.AssetVersion, &at); err != nil {
			rows.Close()
			return fail(err)
		}
		c.Review, c.UpdatedAt = review != 0, time.UnixMilli(at).UTC()
		p.Versions = append(p.Versions, c)
	}
	if err := closeRows(rows); err != nil {
		return fail(err)
	}
	var active int
	var ends, at int64
	var allow string
	mt := &p.Maintenance
	if err := tx.QueryRowContext(ctx, "SELECT active, message, ends_at, allow_users, operator, updated_at FROM liveops_maintenance WHERE id = 1").
		Scan(&active, &mt.Message, &ends, &allow, &mt.Operator, &at); err != nil {
		return fail(err)
	}
	mt.Active = active != 0
	if ends > 0 {
		mt.EndsAt = time.UnixMilli(ends).UTC()
	}
	if at > 0 {
		mt.UpdatedAt = time.UnixMilli(at).UTC()
	}
	for _, s := range strings.Split(allow, ",") {
		if u, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil && u > 0 {
			mt.AllowUsers = append(mt.AllowUsers, u)
		}
	}
	rows, err = tx.QueryContext(ctx, "SELECT user_key, operator, comment, created_at FROM liveops_user_maintenance ORDER BY user_key LIMIT ?", m.cfg.MaxUserMaintenance+1)
	if err != nil {
		return fail(err)
	}
	for rows.Next() {
		var u UserMaintenance
		var at int64
		if err := rows.Scan(&u.UserKey, &u.Operator, &u.Comment, &at); err != nil {
			rows.Close()
			return fail(err)
		}
		u.CreatedAt = time.UnixMilli(at).UTC()
		p.Users = append(p.Users, u)
	}
	if err := closeRows(rows); err != nil {
		return fail(err)
	}
	if err := m.loadEvents(ctx, tx, p); err != nil {
		return fail(err)
	}
	if len(p.Users) > m.cfg.MaxUserMaintenance {
		p.Users = p.Users[:m.cfg.MaxUserMaintenance]
		m.log.Warn("liveops: more users in maintenance than MaxUserMaintenance; the rest are ignored", "max", m.cfg.MaxUserMaintenance)
	}
	return p, nil
}

func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}
