package shard

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/internal/backend"
	"github.com/madang-io/madang/internal/sqldialect"
	"github.com/madang-io/madang/internal/stmtcache"
	"github.com/madang-io/madang/protocol"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
)

// Config configures a Router. Only Directory is required.
type Config struct {
	// Directory lists the game databases. Required.
	Directory Directory
	// Open opens a connection pool. Default sql.Open, except for the
	// drivers "sqlite" and "sqlite3": their pools keep prepared statements
	// per connection (SQLiteStatementCache); and "mysql": OpenMySQL, whose
	// pools pipeline transactions when the DSN sets interpolateParams=true
	// (NoMySQLPipelining). Mains that use SQLite import the driver
	// themselves; this package imports none but go-sql-driver/mysql.
	Open func(driver, dsn string) (*sql.DB, error)
	// NoMySQLPipelining makes the default Open use sql.Open for "mysql"
	// too: every statement, BEGIN and COMMIT its own round trip. Set it
	// when something between the pools and the servers does not take
	// multi-statement queries. Default false: OpenMySQL.
	NoMySQLPipelining bool
	// DSNTemplate forms the DSN of a database whose directory row has no
	// dsn: {host}, {port} and {db} are replaced by the row's host, port and
	// db_name, e.g. "game:secret@tcp({host}:{port})/{db}?parseTime=true".
	// Default "" (every row must then carry its dsn).
	DSNTemplate string
	// MaxOpenConns is each pool's connection limit (one pool per primary and
	// per replica). Default 16.
	MaxOpenConns int
	// MaxIdleConns is each pool's idle connection limit. Default
	// MaxOpenConns: a pool with fewer idle than open connections closes
	// the connections it cannot keep whenever the load dips for a moment
	// and opens new ones the moment after (on MariaDB a new connection
	// costs a handshake, an authentication and a server thread);
	// ConnMaxIdleTime still closes the ones a quiet server does not use.
	MaxIdleConns int
	// ConnMaxLifetime closes connections older than this. Default 30 min;
	// negative means no limit.
	ConnMaxLifetime time.Duration
	// ConnMaxIdleTime closes connections idle longer than this. Default
	// 5 min; negative means no limit.
	ConnMaxIdleTime time.Duration
	// ReopenBackoff: after a database failed to open or answer a ping, its
	// users' calls fail at once with the same ErrUnavailable for this long
	// before one of them tries again (the others wait for that try, within
	// their ctx). Default 1 s; negative means try on every call.
	ReopenBackoff time.Duration
	// RefreshInterval is how often the Router polls Directory.Version and
	// reloads the routing table when it changed. Default 5 s; negative
	// disables polling (Refresh still works). A key the table does not know
	// also triggers a reload, at most once per RefreshInterval (or once per
	// second when polling is disabled), so a key just allocated on a
	// database just added routes at once.
	RefreshInterval time.Duration
	// TxRetries is how many times Tx runs fn again after a deadlock, lock
	// wait timeout or busy database (IsRetryable): RetryPolicy.Retries of
	// the router's transactions. Default DefaultTxRetries (3, so 4 attempts
	// in all); negative means no retry.
	TxRetries int
	// TxBackoff is the wait before the first retry, doubled for each next
	// one, with up to 50% random jitter added: RetryPolicy.Backoff. Default
	// DefaultTxBackoff (10 ms).
	TxBackoff time.Duration
	// ForEachConcurrency bounds how many databases ForEach works on at
	// once. Default 4.
	ForEachConcurrency int
	// SlowThreshold: a Tx that takes longer (all attempts) counts as slow
	// in Stats. Default 200 ms.
	SlowThreshold time.Duration
	// Schema, when set, is the game databases' migration set: a database
	// whose schema_migrations is behind it (or dirty) is refused with
	// ErrSchemaBehind when its pool is opened. Default nil (no check).
	Schema *Migrations
	// SQLiteWriters is how many write transactions (Tx) run at once on one
	// SQLite database: the others queue in first-come order in the Router,
	// each up to SQLiteWriteWait, before they take a connection. SQLite
	// lets one writer in at a time, and SQLiteDSN's _txlock=immediate
	// makes every Tx a writer from its BEGIN; without the queue, the
	// writers wait in the driver's busy handler, which sleeps 1, 2, 5 …
	// 100 ms between tries: a 5 ms transaction then waits up to 100 ms
	// more for a lock freed long before, and holds a pooled connection
	// while it sleeps. The busy timeout stays the backstop for writers
	// outside Tx and other processes. Default 1; negative: no queue
	// (writers wait in the busy handler). MySQL databases are never
	// queued.
	SQLiteWriters int
	// SQLiteWriteWait bounds how long a Tx waits in a SQLite database's
	// writer queue (each attempt) before it fails with ErrUnavailable
	// (retryable by the client, not by Tx). Default 5 s, SQLiteDSN's busy
	// timeout.
	SQLiteWriteWait time.Duration
	// SQLiteCheckpointInterval is how often the Router checkpoints the
	// write-ahead log of each open SQLite database that was written since
	// its last checkpoint: PRAGMA wal_checkpoint(TRUNCATE), taken as a
	// writer in the queue above. SQLite's own automatic checkpoint (at
	// 1000 pages, on commit) copies the log into the database but can
	// only start the log over when no reader is using it, which under a
	// steady load of overlapping readers never happens: the log then grows
	// by every write (tens of MB a minute) and every read walks it. The
	// truncating checkpoint waits up to 100 ms for the readers that
	// started before it (on a connection of its own with that busy
	// timeout; past it, it tries again at the next interval), so the log
	// stays bounded by about one interval's writes. Default 1 s;
	// negative: never (only SQLite's automatic checkpoints).
	SQLiteCheckpointInterval time.Duration
	// SQLiteStatementCache is how many prepared statements each connection
	// of a SQLite pool keeps (least recently used first out), when Open is
	// the default: a query run again on the same connection is not parsed
	// again, as the driver otherwise does for every statement given as
	// text (see OpenSQLite). Default DefaultSQLiteStatementCache;
	// negative: none. MySQL pools never keep statements (MySQLDSN's
	// interpolated parameters are one round trip per statement).
	SQLiteStatementCache int
	// Logger receives refresh failures and pool events. Default nil: silent.
	Logger *slog.Logger
}

// Defaults of the SQLite writer queue and checkpoints (Config).
const (
	DefaultSQLiteWriters            = 1
	DefaultSQLiteWriteWait          = 5 * time.Second
	DefaultSQLiteCheckpointInterval = time.Second
)

func (c *Config) setDefaults() {
	if c.SQLiteStatementCache == 0 {
		c.SQLiteStatementCache = DefaultSQLiteStatementCache
	}
	if c.Open == nil {
		size := c.SQLiteStatementCache
		pipeline := !c.NoMySQLPipelining
		c.Open = func(driver, dsn string) (*sql.DB, error) {
			if size > 0 && (driver == "sqlite" || driver == "sqlite3") {
				return stmtcache.Open(driver, dsn, size)
			}
			if pipeline && driver == "mysql" {
				return OpenMySQL(dsn)
			}
			return sql.Open(driver, dsn)
		}
	}
	if c.MaxOpenConns <= 0 {
		c.MaxOpenConns = 16
	}
	if c.MaxIdleConns <= 0 {
		c.MaxIdleConns = c.MaxOpenConns
	}
	if c.ConnMaxLifetime == 0 {
		c.ConnMaxLifetime = 30 * time.Minute
	}
	if c.ConnMaxIdleTime == 0 {
		c.ConnMaxIdleTime = 5 * time.Minute
	}
	if c.ReopenBackoff == 0 {
		c.ReopenBackoff = time.Second
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = 5 * time.Second
	}
	if c.TxRetries == 0 {
		c.TxRetries = DefaultTxRetries
	} else if c.TxRetries < 0 {
		c.TxRetries = 0
	}
	if c.TxBackoff <= 0 {
		c.TxBackoff = DefaultTxBackoff
	}
	if c.ForEachConcurrency <= 0 {
		c.ForEachConcurrency = 4
	}
	if c.SlowThreshold <= 0 {
		c.SlowThreshold = 200 * time.Millisecond
	}
	c.SQLiteWriters, c.SQLiteWriteWait, c.SQLiteCheckpointInterval = sqliteDefaults(c.SQLiteWriters, c.SQLiteWriteWait, c.SQLiteCheckpointInterval)
}

// Router routes user keys to game databases: it caches the directory as a
// sorted table of key ranges (lookup is a binary search, no allocation) and
// keeps one lazily opened connection pool per database and replica.
//
// While the directory cannot be read, the Router keeps serving the table it
// last loaded. A game database that is down fails only its own users'
// calls. Close stops the refresh goroutine and closes every pool; the
// caller's directory database is not the Router's and stays open.
type Router struct {
	cfg      Config
	log      *slog.Logger
	table    atomic.Pointer[table]
	mu       sync.Mutex // serialises reloads
	sf       singleflight.Group
	lastMiss atomic.Int64 // unix ns of the last reload caused by a miss
	cancel   context.CancelFunc
	wg       sync.WaitGroup // the refresh and checkpoint goroutines
	closed   atomic.Bool
}

// table is one immutable routing snapshot.
type table struct {
	version string
	firsts  []int64 // sorted FirstKey of each entry
	lasts   []int64
	nodes   []*node // parallel to firsts
	byID    []*node // sorted by database id
}

// node is a database of one table snapshot; pool is shared between
// snapshots while the connection settings stay the same.
type node struct {
	info Database
	pool *pool
}

// copyInfo returns n's entry with its own Replicas slice, so callers
// cannot change the cached table.
func (n *node) copyInfo() Database {
	d := n.info
	d.Replicas = slices.Clone(d.Replicas)
	return d
}

// pool holds the lazily opened connection pools of one database and its
// counters.
type pool struct {
	driver   string
	primary  string
	replicas []string

	mu                                 sync.Mutex
	db                                 atomic.Pointer[sql.DB]
	reps                               atomic.Pointer[[]*sql.DB]
	rr                                 atomic.Uint64
	closed                             bool
	opening                            chan struct{} // closed when the open in progress ends
	failedAt                           time.Time     // last failed open, for Config.ReopenBackoff
	failErr                            error
	txs, retries, txErrors, slow, errs atomic.Uint64

	// sqlite reports a SQLite database; its writer queue (nil for MySQL
	// and before the pool is open) and checkpoint counters are in
	// sqliteFile. Set before db is stored, read after db is loaded.
	sqlite bool
	sqliteFile
}

func (p *pool) sameAs(driver, primary string, replicas []string) bool {
	return p.driver == driver && p.primary == primary && slices.Equal(p.replicas, replicas)
}

// NewRouter loads the directory (failing if it cannot) and starts polling
// it. Close the Router when done.
func NewRouter(ctx context.Context, cfg Config) (*Router, error) {
	if cfg.Directory == nil {
		return nil, invalidf("Config.Directory is nil")
	}
	cfg.setDefaults()
	r := &Router{cfg: cfg, log: cfg.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if err := r.reload(ctx, true); err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if cfg.RefreshInterval > 0 {
		r.wg.Add(1)
		go r.poll(pctx)
	}
	if cfg.SQLiteCheckpointInterval > 0 {
		r.wg.Add(1)
		go r.checkpointLoop(pctx)
	}
	return r, nil
}

func (r *Router) poll(ctx context.Context) {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.reload(ctx, false); err != nil && ctx.Err() == nil {
				r.log.Warn("shard: directory refresh failed; keeping the cached routing table", "err", err)
			}
		}
	}
}

// Refresh reloads the routing table now if the directory's version changed.
// On error the previous table stays in use.
func (r *Router) Refresh(ctx context.Context) error { return r.reload(ctx, false) }

func (r *Router) reload(ctx context.Context, force bool) error {
	if r.closed.Load() {
		return &Error{Kind: ErrClosed}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() { // Close ran while this reload waited for the lock
		return &Error{Kind: ErrClosed}
	}
	old := r.table.Load()
	ver, err := r.cfg.Directory.Version(ctx)
	if err != nil {
		return fmt.Errorf("shard: refresh: %w", err)
	}
	if !force && old != nil && ver == old.version {
		return nil
	}
	dbs, err := r.cfg.Directory.Databases(ctx)
	if err != nil {
		return fmt.Errorf("shard: refresh: %w", err)
	}
	if err := ValidateDirectory(dbs); err != nil {
		return fmt.Errorf("shard: refresh: %w", err)
	}
	oldPools := map[int]*pool{}
	if old != nil {
		for _, n := range old.byID {
			oldPools[n.info.ID] = n.pool
		}
	}
	t := &table{version: ver}
	kept := map[*pool]bool{}
	for _, d := range dbs {
		primary, replicas, err := d.DSNs(r.cfg.DSNTemplate)
		if err != nil {
			return fmt.Errorf("shard: refresh: %w", err)
		}
		p := oldPools[d.ID]
		if p == nil || !p.sameAs(d.Driver, primary, replicas) {
			p = &pool{driver: d.Driver, primary: primary, replicas: replicas}
		}
		kept[p] = true
		t.byID = append(t.byID, &node{info: d, pool: p})
	}
	slices.SortFunc(t.byID, func(a, b *node) int { return a.info.ID - b.info.ID })
	t.nodes = slices.Clone(t.byID)
	slices.SortFunc(t.nodes, func(a, b *node) int { return cmpInt64(a.info.FirstKey, b.info.FirstKey) })
	for _, n := range t.nodes {
		t.firsts = append(t.firsts, n.info.FirstKey)
		t.lasts = append(t.lasts, n.info.LastKey)
	}
	r.table.Store(t)
	for _, p := range oldPools {
		if !kept[p] {
			p.close()
		}
	}
	if old != nil {
		r.log.Info("shard: routing table reloaded", "version", ver, "databases", len(dbs))
	}
	return nil
}

// find is the binary search over the table: no allocation.
func (t *table) find(key int64) *node {
	lo, hi := 0, len(t.firsts)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.firsts[m] <= key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 || key > t.lasts[lo-1] {
		return nil
	}
	return t.nodes[lo-1]
}

// LookupID returns the id of the database owning userKey in the cached
// table, without I/O or allocation; ok is false for an unknown key.
func (r *Router) LookupID(userKey int64) (dbID int, ok bool) {
	if n := r.table.Load().find(userKey); n != nil {
		return n.info.ID, true
	}
	return 0, false
}

// Lookup returns the directory entry of the database owning userKey. A key
// the cached table does not know triggers one directory reload (rate
// limited, see Config.RefreshInterval) before it fails with ErrUnknownKey.
func (r *Router) Lookup(ctx context.Context, userKey int64) (Database, error) {
	n, err := r.node(ctx, userKey)
	if err != nil {
		return Database{}, err
	}
	return n.copyInfo(), nil
}

func (r *Router) node(ctx context.Context, userKey int64) (*node, error) {
	if r.closed.Load() {
		return nil, &Error{Kind: ErrClosed}
	}
	if n := r.table.Load().find(userKey); n != nil {
		return n, nil
	}
	if userKey > 0 && r.missReloadAllowed() {
		_, _, _ = r.sf.Do("miss", func() (any, error) { return nil, r.reload(ctx, false) })
		if n := r.table.Load().find(userKey); n != nil {
			return n, nil
		}
	}
	return nil, &Error{Kind: ErrUnknownKey, UserKey: userKey}
}

func (r *Router) missReloadAllowed() bool {
	every := r.cfg.RefreshInterval
	if every < 0 {
		every = time.Second
	}
	now := time.Now().UnixNano()
	last := r.lastMiss.Load()
	return now-last >= int64(every) && r.lastMiss.CompareAndSwap(last, now)
}

// DB returns the connection pool of userKey's primary database, opening it
// on first use. Errors: ErrUnknownKey, ErrReadOnly, ErrUnavailable (the
// database could not be opened or pinged), ErrSchemaBehind (Config.Schema).
func (r *Router) DB(ctx context.Context, userKey int64) (*sql.DB, error) {
	n, err := r.node(ctx, userKey)
	if err != nil {
		return nil, err
	}
	if n.info.State == StateReadOnly {
		n.pool.errs.Add(1)
		return nil, &Error{Kind: ErrReadOnly, UserKey: userKey, DBID: n.info.ID}
	}
	db, err := r.primary(ctx, n)
	if err != nil {
		n.pool.errs.Add(1)
		return nil, withKey(err, userKey)
	}
	return db, nil
}

// ReadDB returns a pool of one of userKey's database replicas (round robin)
// when the directory lists replicas, otherwise the primary's pool. Reads
// from a replica may lag the primary.
func (r *Router) ReadDB(ctx context.Context, userKey int64) (*sql.DB, error) {
	n, err := r.node(ctx, userKey)
	if err != nil {
		return nil, err
	}
	if len(n.pool.replicas) == 0 {
		db, err := r.primary(ctx, n)
		if err != nil {
			n.pool.errs.Add(1)
			return nil, withKey(err, userKey)
		}
		return db, nil
	}
	reps, err := r.replicas(n)
	if err != nil {
		n.pool.errs.Add(1)
		return nil, withKey(err, userKey)
	}
	return reps[n.pool.rr.Add(1)%uint64(len(reps))], nil
}

func withKey(err error, key int64) error {
	var e *Error
	if errors.As(err, &e) {
		c := *e
		c.UserKey = key
		return &c
	}
	return err
}

func (r *Router) openPool(driver, dsn string) (*sql.DB, error) {
	db, err := r.cfg.Open(driver, dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(r.cfg.MaxOpenConns)
	db.SetMaxIdleConns(min(r.cfg.MaxIdleConns, r.cfg.MaxOpenConns))
	db.SetConnMaxLifetime(max(r.cfg.ConnMaxLifetime, 0))
	db.SetConnMaxIdleTime(max(r.cfg.ConnMaxIdleTime, 0))
	return db, nil
}

// primary returns n's primary pool, opening, pinging and (with
// Config.Schema) checking it on first use. One caller opens while the others
// wait for it (or their ctx); a failed open is remembered for
// Config.ReopenBackoff when the database was unreachable, and not at all
// when its schema was behind.
func (r *Router) primary(ctx context.Context, n *node) (*sql.DB, error) {
	p := n.pool
	for {
		if db := p.db.Load(); db != nil {
			return db, nil
		}
		p.mu.Lock()
		if db := p.db.Load(); db != nil {
			p.mu.Unlock()
			return db, nil
		}
		if p.closed {
			p.mu.Unlock()
			return nil, &Error{Kind: ErrUnavailable, DBID: n.info.ID, Err: errors.New("pool closed by a directory change")}
		}
		if p.failErr != nil && r.cfg.ReopenBackoff > 0 && time.Since(p.failedAt) < r.cfg.ReopenBackoff {
			err := p.failErr
			p.mu.Unlock()
			return nil, err
		}
		if ch := p.opening; ch != nil {
			p.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, &Error{Kind: ErrUnavailable, DBID: n.info.ID, Err: ctx.Err()}
			}
		}
		ch := make(chan struct{})
		p.opening = ch
		p.mu.Unlock()

		db, err := r.open(ctx, n)

		p.mu.Lock()
		p.opening = nil
		close(ch)
		switch {
		case err == nil && p.closed:
			db.Close()
			err = &Error{Kind: ErrUnavailable, DBID: n.info.ID, Err: errors.New("pool closed by a directory change")}
		case err == nil:
			if p.sqlite = isSQLite(ctx, db); p.sqlite {
				p.sqliteFile.setQueue(r.cfg.SQLiteWriters, r.cfg.SQLiteWriteWait)
			}
			p.db.Store(db)
			p.failErr = nil
		case errors.Is(err, ErrUnavailable) && ctx.Err() == nil:
			p.failedAt, p.failErr = time.Now(), err
		}
		p.mu.Unlock()
		return db, err
	}
}

// open opens, pings and checks n's primary.
func (r *Router) open(ctx context.Context, n *node) (*sql.DB, error) {
	p := n.pool
	db, err := r.openPool(p.driver, p.primary)
	if err != nil {
		return nil, &Error{Kind: ErrUnavailable, DBID: n.info.ID, Err: err}
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, &Error{Kind: ErrUnavailable, DBID: n.info.ID, Err: err}
	}
	if r.cfg.Schema != nil {
		st, err := Status(ctx, db, *r.cfg.Schema)
		if err != nil {
			db.Close()
			return nil, &Error{Kind: ErrUnavailable, DBID: n.info.ID, Err: err}
		}
		if !st.UpToDate() {
			db.Close()
			return nil, &Error{Kind: ErrSchemaBehind, DBID: n.info.ID,
				Err: fmt.Errorf("source %q pending %v dirty %v", st.Source, st.Pending, st.Dirty)}
		}
	}
	r.log.Debug("shard: opened pool", "db_id", n.info.ID)
	return db, nil
}

func (r *Router) replicas(n *node) ([]*sql.DB, error) {
	p := n.pool
	if reps := p.reps.Load(); reps != nil {
		return *reps, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if reps := p.reps.Load(); reps != nil {
		return *reps, nil
	}
	if p.closed {
		return nil, &Error{Kind: ErrUnavailable, DBID: n.info.ID, Err: errors.New("pool closed by a directory change")}
	}
	reps := make([]*sql.DB, 0, len(p.replicas))
	for _, dsn := range p.replicas {
		db, err := r.openPool(p.driver, dsn)
		if err != nil {
			for _, o := range reps {
				o.Close()
			}
			return nil, &Error{Kind: ErrUnavailable, DBID: n.info.ID, Err: err}
		}
		reps = append(reps, db)
	}
	p.reps.Store(&reps)
	return reps, nil
}

func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if db := p.db.Swap(nil); db != nil {
		db.Close()
	}
	if reps := p.reps.Swap(nil); reps != nil {
		for _, db := range *reps {
			db.Close()
		}
	}
}

// Tx runs fn in a transaction on userKey's primary database and commits it
// when fn returns nil (rolls back otherwise, returning fn's error as is).
//
// Retries: when beginning, fn or the commit fails with a deadlock, lock wait
// timeout or busy database (IsRetryable), the transaction is rolled back and
// fn runs again from the start, at most Config.TxRetries more times, waiting
// Config.TxBackoff (doubling, with jitter) in between: RetryPolicy's loop.
// So fn must not have effects outside the transaction. A COMMIT whose
// connection died on the way may have committed: that is a
// protocol.CodeTimeout error (retry with the same request id). A database that
// cannot be reached gives ErrUnavailable, and so does any error of fn or
// the commit that ClassifyError calls unavailable (wrapped: errors.Is and
// errors.As still find fn's error).
//
// On a SQLite database, each attempt first queues for a writer's place
// (Config.SQLiteWriters, in arrival order, without holding a connection):
// ErrUnavailable after Config.SQLiteWriteWait. So fn must not call Tx for
// another key of the same SQLite database: it would wait for itself.
func (r *Router) Tx(ctx context.Context, userKey int64, fn func(ctx context.Context, tx *sql.Tx) error) error {
	db, err := r.DB(ctx, userKey)
	if err != nil {
		return err
	}
	n := r.table.Load().find(userKey)
	var p *pool
	if n != nil {
		p = n.pool
	} else {
		p = &pool{} // the table changed under us; count nowhere
	}
	start := time.Now()
	p.txs.Add(1)
	retry := sqldialect.Retry{Retries: r.cfg.TxRetries, Backoff: r.cfg.TxBackoff, OnRetry: func(error) { p.retries.Add(1) }}
	err = retry.Do(ctx, func(ctx context.Context) error {
		if p.writers != nil {
			id := 0
			if n != nil {
				id = n.info.ID
			}
			release, err := p.queue(ctx, id)
			if err != nil {
				return err
			}
			defer release()
		}
		return sqldialect.RunTx(ctx, db, fn)
	})
	if time.Since(start) > r.cfg.SlowThreshold {
		p.slow.Add(1)
	}
	if err != nil {
		p.txErrors.Add(1)
		id := 0
		if n != nil {
			id = n.info.ID
		}
		var be *sqldialect.BeginError
		if errors.As(err, &be) && ctx.Err() == nil {
			return &Error{Kind: ErrUnavailable, UserKey: userKey, DBID: id, Err: be.Err}
		}
		var ce *sqldialect.CommitError
		if errors.As(err, &ce) && backend.CommitUnknown(ce.Err) {
			// The connection died with the COMMIT on its way: it may
			// have committed.
			return &protocol.Error{Code: protocol.CodeTimeout, Message: "commit outcome unknown; retry with the same request id", Err: err}
		}
		// A lost connection, a deadlock victim after the retries, a
		// read-only or stopping server, from fn's statements or the
		// commit: unavailable (retryable), not internal. Errors that
		// carry a code of their own, and an ended deadline (timeout),
		// pass unchanged.
		if backend.Code(err) == protocol.CodeUnavailable && protocol.CodeOf(err) == protocol.CodeInternal {
			return &Error{Kind: ErrUnavailable, UserKey: userKey, DBID: id, Err: err}
		}
	}
	return err
}

// Databases returns the cached directory entries, sorted by id.
func (r *Router) Databases() []Database {
	t := r.table.Load()
	out := make([]Database, len(t.byID))
	for i, n := range t.byID {
		out[i] = n.copyInfo()
	}
	return out
}

// ForEach calls fn for every database in the cached directory with its
// primary pool, at most Config.ForEachConcurrency at once (errgroup). The
// first error cancels the context of the others and is returned; a database
// that cannot be opened is such an error.
func (r *Router) ForEach(ctx context.Context, fn func(ctx context.Context, d Database, db *sql.DB) error) error {
	if r.closed.Load() {
		return &Error{Kind: ErrClosed}
	}
	t := r.table.Load()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.ForEachConcurrency)
	for _, n := range t.byID {
		g.Go(func() error {
			db, err := r.primary(gctx, n)
			if err != nil {
				return err
			}
			return fn(gctx, n.copyInfo(), db)
		})
	}
	return g.Wait()
}

// MigrateAll applies m to every game database (ForEach's concurrency) and
// returns each database's outcome; err is the first failure, if any. Apply
// DirectoryMigrations to the common database yourself with Migrate.
func (r *Router) MigrateAll(ctx context.Context, m Migrations) ([]DatabaseStatus, error) {
	return r.schemaAll(ctx, m, true)
}

// SchemaStatus returns every game database's migration state for m.
func (r *Router) SchemaStatus(ctx context.Context, m Migrations) ([]DatabaseStatus, error) {
	return r.schemaAll(ctx, m, false)
}

// DatabaseStatus is one database's migration outcome.
type DatabaseStatus struct {
	DBID    int          // the database
	Applied []int64      // versions applied by this run (MigrateAll)
	Status  SchemaStatus // state after the run
	Err     error        // why the database could not be migrated or read
}

func (r *Router) schemaAll(ctx context.Context, m Migrations, apply bool) ([]DatabaseStatus, error) {
	t := r.table.Load()
	out := make([]DatabaseStatus, len(t.byID))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.ForEachConcurrency)
	for i, n := range t.byID {
		out[i].DBID = n.info.ID
		g.Go(func() error {
			// The schema check would refuse a database that is behind,
			// which is what this is for: open it without the check.
			db, err := r.cfg.Open(n.pool.driver, n.pool.primary)
			if err != nil {
				out[i].Err = err
				return nil
			}
			defer db.Close()
			if apply {
				out[i].Applied, out[i].Err = Migrate(gctx, db, m)
			}
			if out[i].Err == nil {
				out[i].Status, out[i].Err = Status(gctx, db, m)
			}
			return nil
		})
	}
	_ = g.Wait()
	for _, s := range out {
		if s.Err != nil {
			return out, fmt.Errorf("shard: db %d: %w", s.DBID, s.Err)
		}
	}
	return out, nil
}

// DBStats is one database's counters for metrics.
type DBStats struct {
	ID    int    // db_id
	Name  string // db_name
	State State  // state in the cached directory
	// Open reports whether the primary pool has been opened.
	Open bool
	// Pool is the primary pool's sql.DBStats (connections in use and idle,
	// WaitCount and WaitDuration for a free connection, closes).
	Pool sql.DBStats
	// Replicas holds each replica pool's stats once opened.
	Replicas []sql.DBStats
	// Txs counts Tx calls that got a pool and ran, TxRetries their
	// retries, TxErrors those of them that returned an error, SlowTxs
	// those longer than Config.SlowThreshold (all attempts); Errors counts
	// DB, ReadDB and Tx calls refused before running (unavailable,
	// read-only, schema behind). Slow queries run directly on a pool from
	// DB are not seen by the Router; wrap them in Tx to have them counted.
	Txs, TxRetries, TxErrors, SlowTxs, Errors uint64
	// SQLiteWriterWaits counts Tx attempts on a SQLite database that
	// queued behind another writer (Config.SQLiteWriters), and
	// SQLiteWriterTimeouts those that gave up after SQLiteWriteWait.
	SQLiteWriterWaits, SQLiteWriterTimeouts uint64
	// Checkpoints counts the Router's checkpoints of a SQLite database's
	// write-ahead log (Config.SQLiteCheckpointInterval), CheckpointErrors
	// those that failed; WALPages is the log's length in pages that the
	// last one found (before truncating it).
	Checkpoints, CheckpointErrors uint64
	WALPages                      int64
}

// Stats returns per-database counters, sorted by id. Counters of a database
// whose connection settings changed restart from zero.
func (r *Router) Stats() []DBStats {
	t := r.table.Load()
	out := make([]DBStats, 0, len(t.byID))
	for _, n := range t.byID {
		p := n.pool
		s := DBStats{ID: n.info.ID, Name: n.info.Name, State: n.info.State,
			Txs: p.txs.Load(), TxRetries: p.retries.Load(), TxErrors: p.txErrors.Load(), SlowTxs: p.slow.Load(), Errors: p.errs.Load(),
			SQLiteWriterWaits: p.writeWaits.Load(), SQLiteWriterTimeouts: p.queueTimeouts.Load(),
			Checkpoints: p.checkpoints.Load(), CheckpointErrors: p.checkpointErrs.Load(), WALPages: p.lastWALPages.Load()}
		if db := p.db.Load(); db != nil {
			s.Open, s.Pool = true, db.Stats()
		}
		if reps := p.reps.Load(); reps != nil {
			for _, db := range *reps {
				s.Replicas = append(s.Replicas, db.Stats())
			}
		}
		out = append(out, s)
	}
	return out
}

// Close stops the refresh goroutine, waits for it, and closes every pool.
// Calls after Close return ErrClosed.
func (r *Router) Close() error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	r.cancel()
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.table.Load().byID {
		n.pool.close()
	}
	return nil
}

// String describes the router for logs.
func (r *Router) String() string {
	t := r.table.Load()
	ids := make([]string, len(t.byID))
	for i, n := range t.byID {
		ids[i] = fmt.Sprint(n.info.ID)
	}
	return "shard.Router{" + strings.Join(ids, ",") + "}"
}
