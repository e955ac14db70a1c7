package gamedata

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/madang-io/madang/anticheat"
)

// Errors of a Catalog.
var (
	// ErrUnknownVersion: no loaded data version has that name.
	ErrUnknownVersion = errors.New("gamedata: unknown data version")
	// ErrNoPrevious: Rollback found no earlier published version.
	ErrNoPrevious = errors.New("gamedata: no earlier published version to roll back to")
	// ErrBadClientVersion: a client version that is not "x", "x.y",
	// "x.y.z" or "x.y.z.w" (decimal numbers, as anticheat.ParseVersion
	// reads them), or longer than MaxClientVersionLen bytes.
	ErrBadClientVersion = errors.New("gamedata: bad client version")
)

// DeleteMapping is the data version that deletes a client version's
// mapping.
const DeleteMapping = "0"

// Event tells Config.OnPublish what changed.
type Event struct {
	Kind          string // "publish", "rollback", "map" or "refresh"
	Version       string // the published version after the change, or the mapped one ("0": deleted)
	ClientVersion string // for "map"
}

// Config configures a Catalog. DB is required.
type Config struct {
	// DB is the common database that keeps the published version and the
	// client version mappings (tables gamedata_published and
	// gamedata_client_versions, created by Open). SQLite or MySQL/MariaDB.
	DB *sql.DB
	// Initial is the version in use until the first Publish. Default: the
	// last loaded version in string order.
	Initial string
	// OnPublish runs after every committed Publish, Rollback and MapClient
	// of this Catalog (Event.Kind "publish", "rollback", "map"): the server
	// resets the per-user cache there (session.UserCache.ResetAll, which
	// is global: the server making the change resets it for all). It also
	// runs with Kind "refresh" when Refresh finds another server's change:
	// reset only process-local caches then. Nil: nothing.
	OnPublish func(ctx context.Context, e Event)
	// Now returns the current time; nil means time.Now. It dates the rows.
	Now func() time.Time
	// Logger receives changes and mappings to versions this process has
	// not loaded. Nil: silent.
	Logger *slog.Logger
}

// state is one immutable snapshot of what is live.
type state struct {
	published string             // current default version
	history   []string           // published versions, oldest first (not rolled back)
	mappings  map[string]string  // canonical client version → data version
	byClient  map[[4]uint32]*Set // by parsed client version
	current   *Set
	stamp     string // identifies the DB state, for Refresh
}

// Catalog serves the loaded data versions per client version. Safe for
// concurrent use; lookups read one atomic snapshot without locks.
type Catalog struct {
	cfg  Config
	log  *slog.Logger
	sets map[string]*Set
	mu   sync.Mutex // serialises changes and refreshes
	st   atomic.Pointer[state]
}

// Open loads and validates every version in src, creates the state tables
// in cfg.DB if missing and reads the published version and mappings.
func Open(ctx context.Context, src fs.FS, cfg Config) (*Catalog, error) {
	if cfg.DB == nil {
		return nil, errors.New("gamedata: Config.DB is required")
	}
	sets, err := Load(src)
	if err != nil {
		return nil, err
	}
	if cfg.Initial == "" {
		vs := sortedVersions(sets)
		cfg.Initial = vs[len(vs)-1]
	}
	if _, ok := sets[cfg.Initial]; !ok {
		return nil, fmt.Errorf("%w: Initial %q", ErrUnknownVersion, cfg.Initial)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Catalog{cfg: cfg, log: cfg.Logger, sets: sets}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if err := createTables(ctx, cfg.DB); err != nil {
		return nil, fmt.Errorf("gamedata: create tables: %w", err)
	}
	if _, err := c.refresh(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Versions returns the loaded versions in string order.
func (c *Catalog) Versions() []string { return sortedVersions(c.sets) }

// Set returns the loaded version v.
func (c *Catalog) Set(v string) (*Set, bool) {
	s, ok := c.sets[v]
	return s, ok
}

// Current returns the published version's tables.
func (c *Catalog) Current() *Set { return c.st.Load().current }

// Published returns the published version and the versions published
// before it that Rollback can return to (oldest first, the current last).
func (c *Catalog) Published() (string, []string) {
	st := c.st.Load()
	return st.published, append([]string(nil), st.history...)
}

// Mappings returns a copy of the client version → data version mappings,
// client versions canonical ("x.y.z.w", see MapClient).
func (c *Catalog) Mappings() map[string]string {
	st := c.st.Load()
	out := make(map[string]string, len(st.mappings))
	for k, v := range st.mappings {
		out[k] = v
	}
	return out
}

// ForClient returns the tables of clientVersion: its mapping's version, or
// the published one. Versions compare numerically, as liveops compares
// them: a mapping of "1.2" serves "1.2.0", "1.2.0.0" and "1.02" alike. A
// client version that does not parse gets the published version.
func (c *Catalog) ForClient(clientVersion string) *Set {
	st := c.st.Load()
	if len(st.byClient) > 0 {
		if v, err := anticheat.ParseVersion(clientVersion); err == nil {
			if s, ok := st.byClient[v]; ok {
				return s
			}
		}
	}
	return st.current
}

// parseClientVersion parses a mapped client version and returns it
// canonical ("1.2" → "1.2.0.0").
func parseClientVersion(v string) ([4]uint32, string, error) {
	if len(v) > MaxClientVersionLen {
		return [4]uint32{}, "", fmt.Errorf("%w: longer than %d bytes", ErrBadClientVersion, MaxClientVersionLen)
	}
	p, err := anticheat.ParseVersion(v)
	if err != nil {
		return p, "", fmt.Errorf("%w: %q", ErrBadClientVersion, v)
	}
	canon, err := anticheat.CanonicalVersion(v)
	if err != nil {
		return p, "", fmt.Errorf("%w: %q", ErrBadClientVersion, v)
	}
	return p, canon, nil
}

// Publish makes version the published one (the version of every client
// version without a mapping) and runs OnPublish.
func (c *Catalog) Publish(ctx context.Context, version string) error {
	if _, ok := c.sets[version]; !ok {
		return fmt.Errorf("%w: %q", ErrUnknownVersion, version)
	}
	err := c.change(ctx, Event{Kind: "publish", Version: version}, func(tx *sql.Tx, now int64) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO gamedata_published (seq, version, published_at, rolled_back_at) SELECT COALESCE(MAX(seq), 0) + 1, ?, ?, 0 FROM gamedata_published", version, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("gamedata: publish %s: %w", version, err)
	}
	return nil
}

// Rollback returns to the version published before the current one and
// returns it. ErrNoPrevious when there is none.
func (c *Catalog) Rollback(ctx context.Context) (string, error) {
	var back string
	err := c.change(ctx, Event{Kind: "rollback"}, func(tx *sql.Tx, now int64) error {
		rows, err := tx.QueryContext(ctx, "SELECT seq, version FROM gamedata_published WHERE rolled_back_at = 0 ORDER BY seq DESC LIMIT 2")
		if err != nil {
			return err
		}
		var seqs []int64
		var versions []string
		for rows.Next() {
			var s int64
			var v string
			if err := rows.Scan(&s, &v); err != nil {
				rows.Close()
				return err
			}
			seqs, versions = append(seqs, s), append(versions, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(seqs) < 2 {
			return ErrNoPrevious
		}
		if _, ok := c.sets[versions[1]]; !ok {
			return fmt.Errorf("%w: %q (published by another server)", ErrUnknownVersion, versions[1])
		}
		back = versions[1]
		_, err = tx.ExecContext(ctx, "UPDATE gamedata_published SET rolled_back_at = ? WHERE seq = ?", now, seqs[0])
		return err
	})
	if err != nil {
		return "", fmt.Errorf("gamedata: rollback: %w", err)
	}
	return back, nil
}

// MapClient maps clientVersion to dataVersion; dataVersion "0"
// (DeleteMapping) deletes the mapping, so the client version gets the
// published version again. The client version is stored canonical
// ("1.2" → "1.2.0.0", as liveops stores client versions), and a mapping
// replaces or deletes any row of the same version however it was spelled.
// A client version that does not parse is ErrBadClientVersion.
func (c *Catalog) MapClient(ctx context.Context, clientVersion, dataVersion string) error {
	parsed, canon, err := parseClientVersion(clientVersion)
	if err != nil {
		return err
	}
	if dataVersion != DeleteMapping {
		if _, ok := c.sets[dataVersion]; !ok {
			return fmt.Errorf("%w: %q", ErrUnknownVersion, dataVersion)
		}
	}
	err = c.change(ctx, Event{Kind: "map", Version: dataVersion, ClientVersion: canon}, func(tx *sql.Tx, now int64) error {
		// Rows written before versions were canonical may spell this one
		// otherwise ("1.2"): find them all (the table is small).
		rows, err := tx.QueryContext(ctx, "SELECT client_version FROM gamedata_client_versions")
		if err != nil {
			return err
		}
		var same []string
		for rows.Next() {
			var cv string
			if err := rows.Scan(&cv); err != nil {
				rows.Close()
				return err
			}
			if p, err := anticheat.ParseVersion(cv); err == nil && p == parsed {
				same = append(same, cv)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, cv := range same {
			if _, err := tx.ExecContext(ctx, "DELETE FROM gamedata_client_versions WHERE client_version = ?", cv); err != nil {
				return err
			}
		}
		if dataVersion == DeleteMapping {
			return nil
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO gamedata_client_versions (client_version, data_version, updated_at) VALUES (?, ?, ?)", canon, dataVersion, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("gamedata: map client %s: %w", clientVersion, err)
	}
	return nil
}

// change runs fn in a transaction, reloads the state and runs OnPublish.
func (c *Catalog) change(ctx context.Context, e Event, fn func(tx *sql.Tx, now int64) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	tx, err := c.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx, c.cfg.Now().UnixMilli()); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	st, err := c.load(ctx)
	if err != nil {
		return fmt.Errorf("committed, but reloading failed: %w", err)
	}
	c.st.Store(st)
	if e.Kind != "map" {
		e.Version = st.published
	}
	c.log.Info("gamedata: changed", "kind", e.Kind, "version", e.Version, "client_version", e.ClientVersion)
	if c.cfg.OnPublish != nil {
		c.cfg.OnPublish(ctx, e)
	}
	return nil
}

// Refresh reads the state from the database and reports whether it changed
// (another server published, rolled back or mapped); on a change it runs
// OnPublish with Kind "refresh".
func (c *Catalog) Refresh(ctx context.Context) (bool, error) {
	c.mu.Lock()
	changed, err := c.refresh(ctx)
	c.mu.Unlock()
	if changed && c.cfg.OnPublish != nil {
		c.cfg.OnPublish(ctx, Event{Kind: "refresh", Version: c.st.Load().published})
	}
	return changed, err
}

func (c *Catalog) refresh(ctx context.Context) (bool, error) {
	st, err := c.load(ctx)
	if err != nil {
		return false, err
	}
	old := c.st.Load()
	c.st.Store(st)
	return old != nil && old.stamp != st.stamp, nil
}

// Run calls Refresh every interval (default 5 s when ≤ 0) until ctx is
// done. The caller owns the goroutine that runs it.
func (c *Catalog) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("gamedata: refresh", "err", err)
			}
		}
	}
}

// load reads the state tables into a snapshot.
func (c *Catalog) load(ctx context.Context) (*state, error) {
	st := &state{mappings: map[string]string{}, byClient: map[[4]uint32]*Set{}}
	rows, err := c.cfg.DB.QueryContext(ctx, "SELECT seq, version FROM gamedata_published WHERE rolled_back_at = 0 ORDER BY seq")
	if err != nil {
		return nil, fmt.Errorf("gamedata: read state: %w", err)
	}
	var lastSeq int64
	for rows.Next() {
		var v string
		if err := rows.Scan(&lastSeq, &v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("gamedata: read state: %w", err)
		}
		st.history = append(st.history, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gamedata: read state: %w", err)
	}
	st.published = c.cfg.Initial
	if n := len(st.history); n > 0 {
		st.published = st.history[n-1]
	}
	var ok bool
	if st.current, ok = c.sets[st.published]; !ok {
		c.log.Warn("gamedata: published version not loaded here; keeping the initial one", "version", st.published)
		st.current = c.sets[c.cfg.Initial]
	}
	// Oldest first, so of two rows spelling one version differently
	// (written before versions were canonical) the newer wins.
	rows, err = c.cfg.DB.QueryContext(ctx, "SELECT client_version, data_version FROM gamedata_client_versions ORDER BY updated_at, client_version")
	if err != nil {
		return nil, fmt.Errorf("gamedata: read mappings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var cv, dv string
		if err := rows.Scan(&cv, &dv); err != nil {
			return nil, fmt.Errorf("gamedata: read mappings: %w", err)
		}
		parsed, canon, err := parseClientVersion(cv)
		if err != nil {
			c.log.Warn("gamedata: mapping of a client version that does not parse ignored", "client_version", cv, "version", dv)
			continue
		}
		st.mappings[canon] = dv
		if s, ok := c.sets[dv]; ok {
			st.byClient[parsed] = s
		} else {
			delete(st.byClient, parsed)
			c.log.Warn("gamedata: mapping to a version not loaded here; the client gets the published one", "client_version", cv, "version", dv)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gamedata: read mappings: %w", err)
	}
	keys := make([]string, 0, len(st.mappings))
	for k := range st.mappings {
		keys = append(keys, k+"="+st.mappings[k])
	}
	sort.Strings(keys)
	st.stamp = fmt.Sprintf("%d:%d:%s:%v", lastSeq, len(st.history), st.published, keys)
	return st, nil
}

// catalogTables are the Catalog's tables.
var catalogTables = []string{"gamedata_published", "gamedata_client_versions"}

// createTables creates the Catalog's tables if they do not exist. On
// MySQL/MariaDB they state their character set and collation (utf8mb4,
// utf8mb4_bin: versions compare byte for byte, never case-insensitively),
// and tables created before they did, with the server's defaults, are
// converted once.
func createTables(ctx context.Context, db *sql.DB) error {
	_, my := db.Driver().(*mysql.MySQLDriver)
	opts := ""
	if my {
		opts = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
	}
	for _, stmt := range []string{
		"CREATE TABLE IF NOT EXISTS gamedata_published (seq BIGINT NOT NULL PRIMARY KEY, version VARCHAR(32) NOT NULL, published_at BIGINT NOT NULL, rolled_back_at BIGINT NOT NULL DEFAULT 0)" + opts,
		"CREATE TABLE IF NOT EXISTS gamedata_client_versions (client_version VARCHAR(64) NOT NULL PRIMARY KEY, data_version VARCHAR(32) NOT NULL, updated_at BIGINT NOT NULL)" + opts,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	if !my {
		return nil // SQLite compares TEXT byte for byte
	}
	for _, t := range catalogTables {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "+
			"AND TABLE_NAME = ? AND COLLATION_NAME IS NOT NULL AND COLLATION_NAME <> 'utf8mb4_bin'", t).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		if _, err := db.ExecContext(ctx, "ALTER TABLE "+t+" CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
			return err
		}
	}
	return nil
}
