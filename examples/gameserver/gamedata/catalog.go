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
	"github.com/redis/go-redis/v9"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/protocol"
)

// Errors of a Catalog.
var (
	// ErrUnknownVersion: no loaded data version has that name.
	ErrUnknownVersion = errors.New("gamedata: unknown data version")
	// ErrNoPrevious: Rollback found no earlier published version.
	ErrNoPrevious = errors.New("gamedata: no earlier published version to roll back to")
	// ErrVersionExists: an upload names a version that exists with
	// other content (another hash). Versions are immutable: upload under a
	// new name.
	ErrVersionExists = errors.New("gamedata: data version exists with other content")
	// ErrBadUpload: an upload without its uploader, or with a comment
	// longer than MaxCommentLen.
	ErrBadUpload = errors.New("gamedata: bad upload")
	// ErrBadClientVersion: a client version that is not "x", "x.y",
	// "x.y.z" or "x.y.z.w" (decimal numbers, as anticheat.ParseVersion
	// reads them), or longer than MaxClientVersionLen bytes.
	ErrBadClientVersion = errors.New("gamedata: bad client version")
)

// DeleteMapping is the data version that deletes a client version's
// mapping.
const DeleteMapping = "0"

// Limits of an upload.
const (
	// MaxUploaderLen bounds who uploaded a version (bytes).
	MaxUploaderLen = 128
	// MaxCommentLen bounds an upload's comment (bytes).
	MaxCommentLen = 1024
)

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
	// Redis, when set, carries change notifications: every change of this
	// Catalog (upload, publish, rollback, mapping) is published on
	// Channel, and Run refreshes on each message, so other servers see a
	// change at once (the poll of Run stays as the fallback). Nil: polling
	// only.
	Redis redis.UniversalClient
	// Channel is the pub/sub channel of Redis. Default "madang:gamedata".
	Channel string
	// Write, when set, runs each of the catalog's write transactions on
	// DB (an upload, publish, rollback or mapping), given as fn: the game
	// server passes the common database's SQLite writer queue
	// (shard.SQLDirectory.Write), so these writers wait their turn there
	// instead of in the driver's busy handler. Nil: fn runs directly.
	Write func(ctx context.Context, fn func(ctx context.Context) error) error
}

// DefaultChannel is Config.Channel's default.
const DefaultChannel = "madang:gamedata"

// VersionInfo describes a data version the Catalog knows.
type VersionInfo struct {
	Version string `json:"version"`
	// Hash is the data file's content hash (SHA-256 of its body, hex).
	Hash string `json:"hash"`
	// Size is the data file's size in bytes.
	Size int64 `json:"size"`
	// Source is "embedded" (the Catalog's source, e.g. the embedded
	// default) or "upload" (kept in the common database).
	Source string `json:"source"`
	// UploadedBy, UploadedAt (Unix milliseconds) and Comment are the
	// upload's; empty for an embedded version.
	UploadedBy string `json:"uploaded_by,omitempty"`
	UploadedAt int64  `json:"uploaded_at,omitempty"`
	Comment    string `json:"comment,omitempty"`
	// Error is why this server could not load an uploaded version (for
	// example a newer schema than its code); empty when it is served.
	Error string `json:"error,omitempty"`
}

// state is one immutable snapshot of what is live.
type state struct {
	sets      map[string]*Set    // every loaded version: the source's and the uploads
	versions  []VersionInfo      // the source's, then the uploads in upload order
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
	base map[string]*Set // the source's versions
	mu   sync.Mutex      // serialises changes and refreshes
	st   atomic.Pointer[state]
	// uploads caches the uploaded versions by version and hash: a Set, or
	// the error that kept it from loading (not retried). Under mu.
	uploads map[[2]string]uploaded
	notes   atomic.Int64 // notifications received
}

type uploaded struct {
	set *Set
	err error
}

// Open loads and validates every data file in src (see Load), creates the
// state tables in cfg.DB if missing, and reads the uploaded versions, the
// published version and the mappings. An uploaded version that does not
// load here (another schema, say) is listed with its error, not served.
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
	if cfg.Channel == "" {
		cfg.Channel = DefaultChannel
	}
	c := &Catalog{cfg: cfg, log: cfg.Logger, base: sets, uploads: map[[2]string]uploaded{}}
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
func (c *Catalog) Versions() []string { return sortedVersions(c.st.Load().sets) }

// VersionInfos returns every version the Catalog knows: the source's, then
// the uploaded ones in upload order (with Error set on those this server
// could not load).
func (c *Catalog) VersionInfos() []VersionInfo {
	return append([]VersionInfo(nil), c.st.Load().versions...)
}

// Set returns the loaded version v.
func (c *Catalog) Set(v string) (*Set, bool) {
	s, ok := c.st.Load().sets[v]
	return s, ok
}

// Current returns the published version's tables. In a request, use
// CurrentIn, which answers from the snapshot Pin took.
func (c *Catalog) Current() *Set { return c.st.Load().current }

// pinKey keys a Catalog's pinned snapshot in a context.
type pinKey struct{ c *Catalog }

// snapshot returns the state pinned in ctx (by Pin), else the live one.
func (c *Catalog) snapshot(ctx context.Context) *state {
	if ctx != nil {
		if st, ok := ctx.Value(pinKey{c}).(*state); ok {
			return st
		}
	}
	return c.st.Load()
}

// PinContext returns ctx with the Catalog's current state pinned: ForClientIn
// and CurrentIn with that context answer from it, so one request sees one
// version of the tables from start to end, whatever is published
// meanwhile. An already pinned ctx is returned as is.
func (c *Catalog) PinContext(ctx context.Context) context.Context {
	if _, ok := ctx.Value(pinKey{c}).(*state); ok {
		return ctx
	}
	return context.WithValue(ctx, pinKey{c}, c.st.Load())
}

// Pin is the middleware that pins the Catalog's state for each request
// (PinContext); put it before the handlers that read game data.
func (c *Catalog) Pin() protocol.Middleware {
	return func(next protocol.Handler) protocol.Handler {
		return protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
			return next.Serve(c.PinContext(ctx), req)
		})
	}
}

// CurrentIn is Current as of the state pinned in ctx (the live one if none).
func (c *Catalog) CurrentIn(ctx context.Context) *Set { return c.snapshot(ctx).current }

// ForClientIn is ForClient as of the state pinned in ctx (the live one if
// none).
func (c *Catalog) ForClientIn(ctx context.Context, clientVersion string) *Set {
	return c.snapshot(ctx).forClient(clientVersion)
}

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
func (c *Catalog) ForClient(clientVersion string) *Set { return c.st.Load().forClient(clientVersion) }

func (st *state) forClient(clientVersion string) *Set {
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
	if err := c.known(ctx, version); err != nil {
		return err
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
		if _, ok := c.st.Load().sets[versions[1]]; !ok {
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
		if err := c.known(ctx, dataVersion); err != nil {
			return err
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

// known returns nil when version is loaded here, refreshing once when it is
// not (another server may have uploaded it), else ErrUnknownVersion.
func (c *Catalog) known(ctx context.Context, version string) error {
	if _, ok := c.st.Load().sets[version]; ok {
		return nil
	}
	if _, err := c.Refresh(ctx); err != nil {
		return err
	}
	if _, ok := c.st.Load().sets[version]; ok {
		return nil
	}
	for _, v := range c.st.Load().versions {
		if v.Version == version && v.Error != "" {
			return fmt.Errorf("%w: %q cannot be loaded here: %s", ErrUnknownVersion, version, v.Error)
		}
	}
	return fmt.Errorf("%w: %q", ErrUnknownVersion, version)
}

// Upload validates a data file fully (LoadSet: content hash, format,
// schema, the game's rules) and keeps it in the common database as a new
// version, named by its manifest, with who uploaded it and a comment. It
// publishes nothing. A file that fails validation changes nothing (its
// typed error: ErrChecksum, ErrNewerFormat, ErrSchema, *ValidationError,
// ...). Uploading a version again with the same content is a no-op that
// returns the stored version (created false); with other content it is
// ErrVersionExists.
func (c *Catalog) Upload(ctx context.Context, data []byte, uploadedBy, comment string) (info VersionInfo, created bool, err error) {
	if uploadedBy == "" || len(uploadedBy) > MaxUploaderLen || len(comment) > MaxCommentLen {
		return VersionInfo{}, false, fmt.Errorf("%w: uploaded_by must be 1..%d bytes and the comment at most %d", ErrBadUpload, MaxUploaderLen, MaxCommentLen)
	}
	set, err := LoadSet(data)
	if err != nil {
		return VersionInfo{}, false, err
	}
	same := func(v VersionInfo) (VersionInfo, bool, error) {
		if v.Hash != set.Hash {
			return VersionInfo{}, false, fmt.Errorf("%w: %q has hash %s, the upload %s", ErrVersionExists, set.Version, v.Hash, set.Hash)
		}
		return v, false, nil
	}
	if b, ok := c.base[set.Version]; ok {
		return same(VersionInfo{Version: b.Version, Hash: b.Hash, Size: int64(len(b.data)), Source: "embedded"})
	}
	info = VersionInfo{Version: set.Version, Hash: set.Hash, Size: int64(len(data)), Source: "upload",
		UploadedBy: uploadedBy, UploadedAt: c.cfg.Now().UnixMilli(), Comment: comment}
	var existing *VersionInfo
	err = c.change(ctx, Event{Kind: "upload", Version: set.Version}, func(tx *sql.Tx, now int64) error {
		var v VersionInfo
		err := tx.QueryRowContext(ctx, "SELECT hash, size, uploaded_by, uploaded_at, comment FROM gamedata_versions WHERE version = ?", set.Version).
			Scan(&v.Hash, &v.Size, &v.UploadedBy, &v.UploadedAt, &v.Comment)
		switch {
		case err == nil:
			v.Version, v.Source = set.Version, "upload"
			existing = &v
			return errNoChange
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err = tx.ExecContext(ctx, "INSERT INTO gamedata_versions (version, hash, size, uploaded_by, uploaded_at, comment, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
			info.Version, info.Hash, info.Size, info.UploadedBy, info.UploadedAt, info.Comment, data); err != nil {
			return err
		}
		c.uploads[[2]string{set.Version, set.Hash}] = uploaded{set: set} // validated: load needs not read it back
		return nil
	})
	if existing != nil {
		return same(*existing)
	}
	if err != nil {
		// Another server may have stored the version between the SELECT
		// and the INSERT (a duplicate key): answer as if it came first.
		var v VersionInfo
		if c.cfg.DB.QueryRowContext(ctx, "SELECT hash, size, uploaded_by, uploaded_at, comment FROM gamedata_versions WHERE version = ?", set.Version).
			Scan(&v.Hash, &v.Size, &v.UploadedBy, &v.UploadedAt, &v.Comment) == nil {
			v.Version, v.Source = set.Version, "upload"
			return same(v)
		}
		return VersionInfo{}, false, fmt.Errorf("gamedata: upload %s: %w", set.Version, err)
	}
	c.log.Info("gamedata: uploaded", "version", info.Version, "hash", info.Hash, "size", info.Size, "by", info.UploadedBy, "comment", info.Comment)
	return info, true, nil
}

// errNoChange ends a change's transaction without committing or failing.
var errNoChange = errors.New("gamedata: no change")

// change runs fn in a transaction, reloads the state, notifies the other
// servers and runs OnPublish (not for an upload: it changes no served
// version).
func (c *Catalog) change(ctx context.Context, e Event, fn func(tx *sql.Tx, now int64) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	write := func(ctx context.Context) error {
		tx, err := c.cfg.DB.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx, c.cfg.Now().UnixMilli()); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	}
	var err error
	if c.cfg.Write != nil {
		err = c.cfg.Write(ctx, write)
	} else {
		err = write(ctx)
	}
	if err != nil {
		return err
	}
	st, err := c.load(ctx)
	if err != nil {
		return fmt.Errorf("committed, but reloading failed: %w", err)
	}
	c.st.Store(st)
	if e.Kind != "map" && e.Kind != "upload" {
		e.Version = st.published
	}
	c.log.Info("gamedata: changed", "kind", e.Kind, "version", e.Version, "client_version", e.ClientVersion)
	c.notify(ctx, st)
	if c.cfg.OnPublish != nil && e.Kind != "upload" {
		c.cfg.OnPublish(ctx, e)
	}
	return nil
}

// notify tells the other servers (Config.Redis) that the state changed.
// Best effort: they poll too.
func (c *Catalog) notify(ctx context.Context, st *state) {
	if c.cfg.Redis == nil {
		return
	}
	if err := c.cfg.Redis.Publish(ctx, c.cfg.Channel, st.stamp).Err(); err != nil {
		c.log.Warn("gamedata: change notification failed; other servers see it at their next poll", "err", err)
	}
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

// Run calls Refresh every interval (0: 5 s; negative: no polling) and,
// with Config.Redis, on every change notification of Config.Channel, until
// ctx is done. The caller owns the goroutine that runs it.
func (c *Catalog) Run(ctx context.Context, interval time.Duration) {
	if interval == 0 {
		interval = 5 * time.Second
	}
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	var notes <-chan *redis.Message
	if c.cfg.Redis != nil {
		sub := c.cfg.Redis.Subscribe(ctx, c.cfg.Channel)
		defer sub.Close()
		notes = sub.Channel()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case _, ok := <-notes:
			if !ok {
				notes = nil
				continue
			}
			c.notes.Add(1)
		}
		if _, err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("gamedata: refresh", "err", err)
		}
	}
}

// Notifications returns how many change notifications Run received.
func (c *Catalog) Notifications() int64 { return c.notes.Load() }

// load reads the state tables into a snapshot.
func (c *Catalog) load(ctx context.Context) (*state, error) {
	st := &state{mappings: map[string]string{}, byClient: map[[4]uint32]*Set{}}
	if err := c.loadVersions(ctx, st); err != nil {
		return nil, err
	}
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
	if st.current, ok = st.sets[st.published]; !ok {
		c.log.Warn("gamedata: published version not loaded here; keeping the initial one", "version", st.published)
		st.current = st.sets[c.cfg.Initial]
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
		if s, ok := st.sets[dv]; ok {
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

// loadVersions fills st.sets and st.versions: the source's versions, then
// the uploaded ones (each data file read and validated once per process,
// cached by version and hash).
func (c *Catalog) loadVersions(ctx context.Context, st *state) error {
	st.sets = make(map[string]*Set, len(c.base))
	for _, v := range sortedVersions(c.base) {
		s := c.base[v]
		st.sets[v] = s
		st.versions = append(st.versions, VersionInfo{Version: v, Hash: s.Hash, Size: int64(len(s.data)), Source: "embedded"})
	}
	rows, err := c.cfg.DB.QueryContext(ctx, "SELECT version, hash, size, uploaded_by, uploaded_at, comment FROM gamedata_versions ORDER BY uploaded_at, version")
	if err != nil {
		return fmt.Errorf("gamedata: read versions: %w", err)
	}
	var ups []VersionInfo
	for rows.Next() {
		v := VersionInfo{Source: "upload"}
		if err := rows.Scan(&v.Version, &v.Hash, &v.Size, &v.UploadedBy, &v.UploadedAt, &v.Comment); err != nil {
			rows.Close()
			return fmt.Errorf("gamedata: read versions: %w", err)
		}
		ups = append(ups, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("gamedata: read versions: %w", err)
	}
	for _, v := range ups {
		if _, dup := c.base[v.Version]; dup {
			continue // the source's version wins (an upload of it is refused)
		}
		k := [2]string{v.Version, v.Hash}
		u, ok := c.uploads[k]
		if !ok {
			var data []byte
			if err := c.cfg.DB.QueryRowContext(ctx, "SELECT data FROM gamedata_versions WHERE version = ?", v.Version).Scan(&data); err != nil {
				return fmt.Errorf("gamedata: read version %s: %w", v.Version, err)
			}
			u.set, u.err = LoadSet(data)
			if u.err == nil && (u.set.Version != v.Version || u.set.Hash != v.Hash) {
				u.set, u.err = nil, fmt.Errorf("%w: the stored file is version %s hash %s", ErrCorrupt, u.set.Version, u.set.Hash)
			}
			if u.err != nil {
				c.log.Warn("gamedata: an uploaded version cannot be loaded here", "version", v.Version, "err", u.err)
			}
			c.uploads[k] = u
		}
		if u.err != nil {
			v.Error = u.err.Error()
		} else {
			st.sets[v.Version] = u.set
		}
		st.versions = append(st.versions, v)
	}
	return nil
}

// catalogTables are the Catalog's tables.
var catalogTables = []string{"gamedata_published", "gamedata_client_versions", "gamedata_versions"}

// createTables creates the Catalog's tables if they do not exist. On
// MySQL/MariaDB they state their character set and collation (utf8mb4,
// utf8mb4_bin: versions compare byte for byte, never case-insensitively),
// and tables created before they did, with the server's defaults, are
// converted once.
func createTables(ctx context.Context, db *sql.DB) error {
	_, my := db.Driver().(*mysql.MySQLDriver)
	opts, blob := "", "BLOB"
	if my {
		opts, blob = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin", "LONGBLOB"
	}
	for _, stmt := range []string{
		"CREATE TABLE IF NOT EXISTS gamedata_published (seq BIGINT NOT NULL PRIMARY KEY, version VARCHAR(32) NOT NULL, published_at BIGINT NOT NULL, rolled_back_at BIGINT NOT NULL DEFAULT 0)" + opts,
		"CREATE TABLE IF NOT EXISTS gamedata_client_versions (client_version VARCHAR(64) NOT NULL PRIMARY KEY, data_version VARCHAR(32) NOT NULL, updated_at BIGINT NOT NULL)" + opts,
		// Every uploaded version, kept: the data file and who, when, why.
		"CREATE TABLE IF NOT EXISTS gamedata_versions (version VARCHAR(32) NOT NULL PRIMARY KEY, hash CHAR(64) NOT NULL, size BIGINT NOT NULL, " +
			"uploaded_by VARCHAR(128) NOT NULL, uploaded_at BIGINT NOT NULL, comment VARCHAR(1024) NOT NULL, data " + blob + " NOT NULL)" + opts,
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
