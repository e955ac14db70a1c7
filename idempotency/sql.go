package idempotency

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/internal/backend"
	"github.com/madang-io/madang/internal/sqldefer"
	"github.com/madang-io/madang/internal/sqldialect"
	"github.com/madang-io/madang/protocol"
)

// SQLConfig configures a SQLStore. The zero value works.
type SQLConfig struct {
	// Config holds the common settings. Lease is not used: an in-flight SQL
	// key is an uncommitted row, which disappears with its transaction.
	// InFlight: duplicates always wait on the row's unique index; with
	// AnswerInFlight on MariaDB the wait is bounded to one second (the
	// smallest innodb_lock_wait_timeout), with WaitInFlight to WaitTimeout
	// rounded up to seconds; a timed-out wait answers CodeInFlight. On MySQL, set
	// innodb_lock_wait_timeout in the DSN instead. SQLite serialises writers
	// (busy_timeout bounds the wait, in the DSN).
	Config
	// Table is the table's name. Default "idempotency_keys". Letters,
	// digits and underscores only.
	Table string
	// Tx runs fn in a transaction on the game database of userKey and
	// commits it when fn returns nil (rolls back otherwise): Do's
	// transactions go through it. Inject the shard router's, so that one
	// retry policy and one set of statistics serve every transaction of the
	// game (the store never imports shard):
	//
	//	idempotency.SQLConfig{Tx: router.Tx}
	//
	// Its errors reach Do's caller with their own code, so a routing error
	// keeps it (shard: an unknown user key is protocol.CodeBadRequest, a
	// database that is down CodeUnavailable); an error without a code is
	// classified once (a backend that is down: CodeUnavailable). fn's own
	// errors must come back through it unchanged. Tx may run fn again when
	// the transaction fails retryably (a deadlock victim): Do's every run
	// is a fresh DoTx, and only the last one's answer and after-commit
	// hooks count.
	//
	// Default: transactions on the *sql.DB given to NewSQLStore, retried
	// like the router's (3 retries after a deadlock, lock wait timeout or
	// busy database, 10 ms backoff doubled with jitter); a failed begin
	// answers CodeUnavailable, a failed commit CodeTimeout.
	Tx func(ctx context.Context, userKey int64, fn func(ctx context.Context, tx *sql.Tx) error) error
	// Dialect names the databases' SQL dialect: "mysql" (MySQL, MariaDB,
	// Vitess vtgate) or "sqlite" (shard.DialectMySQL and
	// shard.DialectSQLite are the same strings). Empty means detect it from
	// the *sql.DB given to NewSQLStore, as shard.DetectDialect does: by the
	// driver (also through a wrapping driver's Unwrap() driver.Driver),
	// else by asking the database. Another name is an error. Required when
	// NewSQLStore gets no *sql.DB.
	Dialect string
	// MariaDB says the MySQL dialect talks to MariaDB, whose SET STATEMENT
	// bounds the key row's lock wait without changing the session. Default:
	// asked once (SELECT VERSION()) by NewSQLStore, or, without a *sql.DB,
	// in the first transaction.
	MariaDB *bool
}

// SQLStore keeps idempotency records in the game's own database, written in
// the same transaction as the game's changes: the result commits exactly
// when the changes do, so a request runs exactly once even if the process
// dies between commit and reply.
//
// With the game databases behind a shard.Router, give the store the
// router's transactions and create the table with the router's migrations:
//
//	store, err := idempotency.NewSQLStore(ctx, nil, idempotency.SQLConfig{Tx: router.Tx, Dialect: ...})
//	files, source := store.Migrations()
//	_, err = router.MigrateAll(ctx, shard.Migrations{FS: files, Source: source})
//
// DoTx works in a transaction the caller owns; Do runs one itself (through
// SQLConfig.Tx, on the user's database) and hands it to the function
// through TxFrom. Either way the store adds two statements to the
// transaction: an INSERT of the key row
// first (a concurrent duplicate blocks on the primary key until this
// transaction ends) and an UPDATE with the result at the end. Create the
// table on every database with Migrations (shard.MigrateAll) or Migrate;
// delete expired rows with Purge.
//
// A replay answers only a durable result. Seeing another transaction's
// commit does not prove it survives a crash: InnoDB makes a commit visible
// to other transactions before its redo log reaches the disk. So a replay
// writes to the key row (it moves the row's expiry 1 ms later: the smallest
// change that always changes the row) and commits before it answers; its
// commit follows the original's in the log, and the log is made durable in
// order, so when the replay's commit is durable the original's is too. On
// MySQL/MariaDB this is one upsert (INSERT ... ON DUPLICATE KEY UPDATE,
// which also queues concurrent replays on the row's exclusive lock instead
// of deadlocking them) plus a SELECT, and one durable commit per replay
// (BENCHMARKS.md has the cost). SQLite needs no write: it makes a commit
// visible only after writing (and syncing, as its synchronous setting
// demands) the commit's log, so a replay there is an INSERT that fails and
// a SELECT, committed like any replay.
type SQLStore struct {
	cfg     SQLConfig
	dialect sqldialect.Dialect
	c       counters
	upsert  bool // insert is an upsert that touches an existing key row
	// mariadb: 0 not known yet (asked in the first transaction), 1 no,
	// 2 yes. Only the MySQL dialect asks.
	mariadb atomic.Int32

	insert, insertMariaDB, selectRow, update, reset, deleteRow, purge string
}

var _ Doer = (*SQLStore)(nil)

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// NewSQLStore returns a SQLStore. db is its default database: Do's
// transactions run on it unless SQLConfig.Tx routes them, and its driver
// tells the dialect unless SQLConfig.Dialect does. With both set, db may be
// nil: a store whose every key is routed needs no database of its own.
func NewSQLStore(ctx context.Context, db *sql.DB, cfg SQLConfig) (*SQLStore, error) {
	if db == nil && cfg.Tx == nil {
		return nil, errors.New("idempotency: nil *sql.DB and no SQLConfig.Tx")
	}
	cfg.Config = cfg.Config.withDefaults()
	if cfg.Table == "" {
		cfg.Table = "idempotency_keys"
	}
	if !tableName.MatchString(cfg.Table) {
		return nil, fmt.Errorf("idempotency: invalid table name %q", cfg.Table)
	}
	if cfg.Dialect == "" && db == nil {
		return nil, errors.New("idempotency: SQLConfig.Dialect is required without a *sql.DB")
	}
	d, err := sqldialect.Resolve(ctx, db, cfg.Dialect)
	if err != nil {
		return nil, fmt.Errorf("idempotency: %w", err)
	}
	s := &SQLStore{cfg: cfg, dialect: d, upsert: d.Name() == "mysql"}
	if cfg.Tx == nil {
		s.cfg.Tx = func(ctx context.Context, _ int64, fn func(context.Context, *sql.Tx) error) error {
			return defaultTx(ctx, db, fn)
		}
	}
	switch {
	case d.Name() != "mysql":
		s.mariadb.Store(1)
	case cfg.MariaDB != nil && *cfg.MariaDB:
		s.mariadb.Store(2)
	case cfg.MariaDB != nil:
		s.mariadb.Store(1)
	case db != nil:
		var v string
		if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err != nil {
			return nil, fmt.Errorf("idempotency: server version: %w", err)
		}
		s.mariadb.Store(isMariaDB(v))
	}
	t := cfg.Table
	s.insert = "INSERT INTO " + t + " (user_key, command, request_id, fingerprint, done, expires_at) VALUES (?, ?, ?, ?, 0, ?)"
	if d.Name() == "mysql" {
		// A duplicate takes the key row's exclusive lock and writes to it
		// (its expiry moves 1 ms, so the row always changes and the
		// transaction logs a change of its own): the replay that follows
		// commits after the original's commit in the redo log. The
		// exclusive lock also queues concurrent replays instead of letting
		// their shared locks deadlock when each then writes.
		s.insert += " ON DUPLICATE KEY UPDATE expires_at = expires_at + 1"
		wait := 1
		if cfg.InFlight == WaitInFlight {
			wait = int((cfg.WaitTimeout + time.Second - 1) / time.Second)
		}
		s.insertMariaDB = fmt.Sprintf("SET STATEMENT innodb_lock_wait_timeout=%d FOR %s", wait, s.insert)
	}
	where := " WHERE user_key = ? AND command = ? AND request_id = ?"
	// A locking read: it sees the latest committed row whatever the
	// transaction read before. On MySQL the upsert already holds the row's
	// exclusive lock, which covers it.
	shared := ""
	if d.Name() == "mysql" {
		shared = " LOCK IN SHARE MODE"
	}
	s.selectRow = "SELECT fingerprint, done, code, message, payload, expires_at FROM " + t + where + shared
	s.update = "UPDATE " + t + " SET done = 1, code = ?, message = ?, payload = ?" + where
	s.reset = "UPDATE " + t + " SET fingerprint = ?, done = 0, code = 0, message = NULL, payload = NULL, expires_at = ?" + where
	s.deleteRow = "DELETE FROM " + t + where
	s.purge = "DELETE FROM " + t + " WHERE expires_at < ?"
	return s, nil
}

// The key table's migration for each dialect, with {table} for the
// table's name.
const (
	mysqlKeyTable = `CREATE TABLE IF NOT EXISTS {table} (
  user_key BIGINT NOT NULL,
  command VARBINARY(64) NOT NULL,
  request_id VARBINARY(128) NOT NULL,
  fingerprint BINARY(32) NOT NULL,
  done TINYINT NOT NULL DEFAULT 0,
  code INT NOT NULL DEFAULT 0,
  message BLOB NULL,
  payload MEDIUMBLOB NULL,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (user_key, command, request_id),
  KEY {table}_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
`
	sqliteKeyTable = `CREATE TABLE IF NOT EXISTS {table} (
  user_key INTEGER NOT NULL,
  command BLOB NOT NULL,
  request_id BLOB NOT NULL,
  fingerprint BLOB NOT NULL,
  done INTEGER NOT NULL DEFAULT 0,
  code INTEGER NOT NULL DEFAULT 0,
  message BLOB NULL,
  payload BLOB NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (user_key, command, request_id)
);
CREATE INDEX IF NOT EXISTS {table}_expires ON {table} (expires_at);
`
)

// migration returns the key table's statements for dialect.
func (s *SQLStore) migration(dialect string) string {
	ddl := sqliteKeyTable
	if dialect == "mysql" {
		ddl = mysqlKeyTable
	}
	return strings.ReplaceAll(ddl, "{table}", s.cfg.Table)
}

// Migrations returns the key table's migration set in the form
// shard.Migrations takes, for shard.MigrateAll (every game database) or
// shard.Migrate (one):
//
//	files, source := store.Migrations()
//	_, err := router.MigrateAll(ctx, shard.Migrations{FS: files, Source: source})
//
// files holds version 1 for each dialect (1_{table}.mysql.sql,
// 1_{table}.sqlite.sql), creating SQLConfig.Table and its expiry index if
// they do not exist, so it also adopts a table Migrate created; source,
// the name schema_migrations records the set under, is the table's name.
// The package imports no shard: the two values are all shard needs.
func (s *SQLStore) Migrations() (files fs.FS, source string) {
	m := migrationFS{}
	for _, d := range []string{"mysql", "sqlite"} {
		m["1_"+s.cfg.Table+"."+d+".sql"] = s.migration(d)
	}
	return m, s.cfg.Table
}

// Migrate creates the table on db if it does not exist, without recording
// it anywhere. Run it on every game database, or use Migrations with
// shard.MigrateAll instead.
func (s *SQLStore) Migrate(ctx context.Context, db *sql.DB) error {
	for _, stmt := range strings.SplitAfter(s.migration(s.dialect.Name()), ";\n") {
		if stmt = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(stmt), ";")); stmt == "" {
			continue
		}
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("idempotency: migrate: %w", err)
		}
	}
	return nil
}

// Purge deletes the rows of db whose retention ended and returns how many.
// Until purged, an expired row is treated as absent (its key runs again).
func (s *SQLStore) Purge(ctx context.Context, db *sql.DB) (int64, error) {
	r, err := db.ExecContext(ctx, s.purge, s.cfg.Now().UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("idempotency: purge: %w", err)
	}
	return r.RowsAffected()
}

// Stats returns the store's counters.
func (s *SQLStore) Stats() Stats { return s.c.snapshot() }

// TxOutcome is the answer of DoTx.
type TxOutcome struct {
	Outcome
	stored bool // the result was written to the key row
	hooks  *hooks
	log    func(context.Context, *hooks)
}

// Committed runs the after-commit hooks registered by the function (see
// AfterCommit). Call it once, after the transaction committed; on a replay
// or a rollback it does nothing useful (there are no hooks, or they must not
// run: don't call it).
func (o TxOutcome) Committed(ctx context.Context) {
	if o.hooks != nil && o.log != nil {
		o.log(ctx, o.hooks)
	}
}

type txKey struct{}

// TxFrom returns the transaction of the SQLStore.Do call whose function got
// ctx, or nil.
func TxFrom(ctx context.Context) *sql.Tx {
	tx, _ := ctx.Value(txKey{}).(*sql.Tx)
	return tx
}

// DoTx runs fn at most once for (scope, key) inside tx, which the caller
// owns. The first statement inserts the key row, so a concurrent duplicate
// blocks until tx ends; fn then runs (do the game's writes in tx; TxFrom(ctx)
// returns tx as well), and its result is written to the key row in tx.
//
// After DoTx returns without error, commit tx and then call
// TxOutcome.Committed to run the after-commit hooks. If Replay is set, DoTx
// wrote to the key row only (on MySQL; see SQLStore): commit tx too, and send the
// replayed result only after the commit succeeded — that commit is what
// makes the answer durable. If it fails, answer a retryable error
// (CodeTimeout, as Do does), never the replay. On an error, roll back: a
// retryable error from fn is returned as is (DoTx also deletes the key row,
// so even a commit would leave the key free); a definitive error from fn is
// stored and returned as the Outcome, and the writes fn made before failing
// commit with it — a function that fails definitively must not leave
// partial writes (return Retryable(err) instead if it did).
func (s *SQLStore) DoTx(ctx context.Context, tx *sql.Tx, scope Scope, key string, fp Fingerprint, fn Func) (TxOutcome, error) {
	if tx == nil {
		return TxOutcome{}, errors.New("idempotency: nil *sql.Tx")
	}
	ctx = context.WithValue(ctx, txKey{}, tx)
	if key == "" {
		if s.cfg.RequireKey {
			return TxOutcome{}, ErrMissingKey
		}
		s.c.noKey.Add(1)
		fctx, h := withHooks(ctx)
		res, err := fn(fctx)
		if err != nil {
			if IsRetryable(err) {
				return TxOutcome{}, retryErr(err)
			}
			res = ResultOf(err)
		}
		out := s.outcome(Outcome{Result: res}, h)
		out.stored = !retryableCode(res.Code)
		return out, nil
	}
	if err := checkKey(scope, key); err != nil {
		return TxOutcome{}, err
	}
	now := s.cfg.Now()
	expires := now.Add(s.cfg.Retention).UnixMilli()
	args := []any{scope.UserKey, scope.Command, key}
	insert, err := s.insertFor(ctx, tx)
	if err != nil {
		return TxOutcome{}, err
	}
	r, err := tx.ExecContext(ctx, insert, scope.UserKey, scope.Command, key, fp[:], expires)
	dup := false
	switch {
	case err == nil:
		if s.upsert {
			// 1: inserted; 2: the key row existed and was touched.
			n, err := r.RowsAffected()
			if err != nil {
				return TxOutcome{}, storeError("insert key", err)
			}
			dup = n != 1
		}
	case sqldialect.IsDuplicateKey(err):
		// SQLite: no write needed. A commit becomes visible to other
		// connections only after its log frames were written and synced
		// as the synchronous setting demands (the WAL index is updated
		// last), so what a replay reads is as durable as its own commit
		// would be.
		dup = true
	case sqldialect.IsLockWaitTimeout(err):
		s.c.inFlight.Add(1)
		return TxOutcome{}, errInFlight(s.cfg.RetryAfter)
	default:
		return TxOutcome{}, storeError("insert key", err)
	}
	if dup {
		out, replay, err := s.existing(ctx, tx, scope, key, fp, now, expires, args)
		if err != nil || replay {
			return TxOutcome{Outcome: out}, err
		}
	}

	fctx, h := withHooks(ctx)
	res, panicked, err := runFunc(fctx, fn)
	release := func() {
		s.c.released.Add(1)
		// Best effort: the caller rolls back anyway; this only matters if it
		// commits, and fails harmlessly if the transaction is already dead.
		_, _ = tx.ExecContext(context.WithoutCancel(ctx), s.deleteRow, args...)
	}
	if panicked != nil {
		release()
		panic(panicked)
	}
	if err != nil {
		if IsRetryable(err) {
			release()
			return TxOutcome{}, retryErr(err)
		}
		res = ResultOf(err)
	} else if retryableCode(res.Code) {
		release()
		return TxOutcome{Outcome: Outcome{Result: res}}, nil
	}
	if err := checkResult(&res); err != nil {
		release()
		return TxOutcome{}, err
	}
	payload := res.Payload
	if payload == nil {
		payload = []byte{}
	}
	// Deferred (internal/sqldefer; shard.Deferred): on a pipelining MySQL
	// pool the answer goes with the caller's next statement or its COMMIT,
	// and an error there fails the commit (nothing committed). Elsewhere
	// it runs now.
	if _, err := tx.ExecContext(sqldefer.With(ctx), s.update, int64(res.Code), res.Message, payload, scope.UserKey, scope.Command, key); err != nil {
		return TxOutcome{}, storeError("store result", err)
	}
	s.c.executed.Add(1)
	out := s.outcome(Outcome{Result: res}, h)
	out.stored = true
	return out, nil
}

func (s *SQLStore) outcome(o Outcome, h *hooks) TxOutcome {
	return TxOutcome{Outcome: o, hooks: h, log: func(ctx context.Context, h *hooks) { h.run(ctx, s.cfg.Logger) }}
}

// existing handles a key whose row is committed (on MySQL, touched by tx):
// replay it, refuse a mismatch, or take over an expired row. replay reports
// whether out is final.
func (s *SQLStore) existing(ctx context.Context, tx *sql.Tx, scope Scope, key string, fp Fingerprint, now time.Time, expires int64, args []any) (out Outcome, replay bool, err error) {
	var (
		gotFP     []byte
		done      int
		code      int64
		msg, pl   []byte
		expiresAt int64
	)
	if err := tx.QueryRowContext(ctx, s.selectRow, args...).Scan(&gotFP, &done, &code, &msg, &pl, &expiresAt); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			// Deleted between our INSERT and SELECT (Purge): try again.
			return Outcome{}, true, errInFlight(s.cfg.RetryAfter)
		}
		return Outcome{}, true, storeError("read key", err)
	}
	if expiresAt <= now.UnixMilli() {
		if _, err := tx.ExecContext(ctx, s.reset, fp[:], expires, scope.UserKey, scope.Command, key); err != nil {
			return Outcome{}, true, storeError("reuse expired key", err)
		}
		return Outcome{}, false, nil
	}
	if string(gotFP) != string(fp[:]) {
		s.c.reused.Add(1)
		if s.cfg.Logger != nil {
			s.cfg.Logger.WarnContext(ctx, "idempotency: request id reused with another payload", "user", scope.UserKey, "cmd", scope.Command, "rid", key)
		}
		return Outcome{}, true, ErrKeyReused
	}
	if done != 1 {
		// Only a caller that committed after a failure leaves this; the row
		// has no result, so nothing can be replayed.
		return Outcome{}, true, &protocol.Error{Code: protocol.CodeInternal, Message: protocol.CodeInternal.String(), Err: errors.New("idempotency: key row without a result (transaction committed after a failure?)")}
	}
	s.c.replayed.Add(1)
	logReplay(ctx, s.cfg.Config, scope, key, protocol.Code(code))
	res := Result{Code: protocol.Code(code), Message: string(msg)}
	if len(pl) > 0 {
		res.Payload = pl
	}
	return Outcome{Result: res, Replay: true}, true, nil
}

// Do runs fn at most once for (scope, key) in a transaction of its own,
// run by SQLConfig.Tx on the user's database: it checks the key (before any
// database is chosen, so a bad request is refused as such), runs DoTx in
// the transaction (fn gets it from TxFrom(ctx)), commits, and runs the
// after-commit hooks. A replay commits as well before it is returned (see
// SQLStore). Errors of SQLConfig.Tx itself, such as a user key no database
// owns, are returned as they are.
//
// If the commit fails or its answer is lost, Do cannot know whether it
// committed: it returns a CodeTimeout error (the shard router and the
// default transactions do), and a retry with the same key gets the stored
// result if it did. The same holds for a replay's commit.
func (s *SQLStore) Do(ctx context.Context, scope Scope, key string, fp Fingerprint, fn Func) (Outcome, error) {
	if key == "" {
		if s.cfg.RequireKey {
			return Outcome{}, ErrMissingKey
		}
	} else if err := checkKey(scope, key); err != nil {
		return Outcome{}, err
	}
	var out TxOutcome
	committing := false
	err := s.cfg.Tx(ctx, scope.UserKey, func(ctx context.Context, tx *sql.Tx) error {
		// Each run is fresh: a run that Tx retries leaves nothing.
		var err error
		committing = false
		if out, err = s.DoTx(ctx, tx, scope, key, fp, fn); err != nil {
			return err
		}
		if !(out.stored || out.Replay) {
			return errNoCommit // a retryable result: roll back, answer it
		}
		// A replay commits too: on MySQL its touch of the key row is
		// logged after the original's commit, so once this commit is
		// durable, so is the result it answers.
		committing = true
		return nil
	})
	switch {
	case errors.Is(err, errNoCommit):
		return out.Outcome, nil
	case err != nil:
		if committing && s.cfg.Logger != nil {
			s.cfg.Logger.ErrorContext(ctx, "idempotency: commit failed or its answer was lost", "user", scope.UserKey, "cmd", scope.Command, "rid", key, "replay", out.Replay, "err", err)
		}
		// Tx's own errors keep their code (a routing error); a raw
		// driver error of a backend that is down becomes unavailable.
		return Outcome{}, backend.Classify(err)
	}
	out.Committed(ctx)
	return out.Outcome, nil
}

// errNoCommit rolls back Do's transaction for an outcome that must not be
// stored (a retryable result code).
var errNoCommit = errors.New("idempotency: nothing to commit")

// defaultTx is SQLConfig.Tx's default: a transaction on db, retried by
// madang's one retry loop with the router's default policy, a failed begin
// answered CodeUnavailable and a failed commit CodeTimeout.
func defaultTx(ctx context.Context, db *sql.DB, fn func(context.Context, *sql.Tx) error) error {
	retry := sqldialect.Retry{Retries: 3, Backoff: 10 * time.Millisecond}
	err := retry.Do(ctx, func(ctx context.Context) error { return sqldialect.RunTx(ctx, db, fn) })
	var be *sqldialect.BeginError
	var ce *sqldialect.CommitError
	switch {
	case errors.As(err, &be):
		return storeError("begin transaction", be.Err)
	case errors.As(err, &ce):
		return &protocol.Error{Code: protocol.CodeTimeout, Message: "commit outcome unknown; retry with the same request id", Err: fmt.Errorf("idempotency: commit: %w", ce.Err)}
	}
	return err
}

// insertFor returns the key row's INSERT: on MariaDB the one that bounds
// its lock wait. Without a *sql.DB at construction, the first transaction
// asks the server which it is.
func (s *SQLStore) insertFor(ctx context.Context, tx *sql.Tx) (string, error) {
	m := s.mariadb.Load()
	if m == 0 {
		var v string
		if err := tx.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err != nil {
			return "", storeError("server version", err)
		}
		m = isMariaDB(v)
		s.mariadb.Store(m)
	}
	if m == 2 {
		return s.insertMariaDB, nil
	}
	return s.insert, nil
}

// isMariaDB is 2 for a MariaDB version string, 1 for another.
func isMariaDB(version string) int32 {
	if strings.Contains(strings.ToLower(version), "mariadb") {
		return 2
	}
	return 1
}
