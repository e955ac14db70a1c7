package shard

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/internal/clock"
	"github.com/madang-io/madang/internal/sqldialect"
)

// SQLDirectory is the directory table (shard_databases) in the common
// database, and the key allocator over it. Apply DirectoryMigrations to the
// common database first (Migrate). It is safe for concurrent use by many
// goroutines and many processes.
type SQLDirectory struct {
	db    *sql.DB
	d     sqldialect.Dialect
	clock clock.Clock

	// On SQLite: the writer queue and checkpoints of the common database
	// (SQLDirectoryConfig), writes counts its writes through s and its
	// Accounts, checkpointing whether a checkpoint goroutine runs.
	sqlite        bool
	lite          sqliteFile
	every         time.Duration
	writes        atomic.Uint64
	checkpointing atomic.Bool
}

var _ Directory = (*SQLDirectory)(nil)

// SQLDirectoryConfig configures a SQLDirectory. The zero value works.
type SQLDirectoryConfig struct {
	// Dialect names the common database's dialect: DialectMySQL or
	// DialectSQLite. Empty means detect it (DetectDialect, which may ask
	// the database); another name is an error.
	Dialect string
	// SQLiteWriters, SQLiteWriteWait and SQLiteCheckpointInterval are the
	// common database's writer queue and checkpoints when it is SQLite,
	// with the meaning and the defaults of Config's fields of the same
	// names (DefaultSQLiteWriters, DefaultSQLiteWriteWait,
	// DefaultSQLiteCheckpointInterval; negative: none). The writes queued
	// are those of the SQLDirectory and of its Accounts (registrations,
	// key allocations, Add, SetState), and those other stores run through
	// SQLDirectory.Write; other writers of the same file wait in the
	// driver's busy handler. The checkpoint runs every
	// SQLiteCheckpointInterval while the SQLDirectory writes, on a
	// goroutine that starts with a write and ends once a checkpoint found
	// nothing more to do (or failed other than busy), so a SQLDirectory
	// needs no Close.
	SQLiteWriters            int
	SQLiteWriteWait          time.Duration
	SQLiteCheckpointInterval time.Duration
}

// NewSQLDirectory returns the directory in common, a MySQL/MariaDB or SQLite
// database (cfg.Dialect, or detected: ctx bounds the detection). The caller
// owns common and closes it.
func NewSQLDirectory(ctx context.Context, common *sql.DB, cfg SQLDirectoryConfig) (*SQLDirectory, error) {
	if common == nil {
		return nil, invalidf("nil *sql.DB")
	}
	d, err := resolveDialect(ctx, common, cfg.Dialect)
	if err != nil {
		return nil, err
	}
	s := &SQLDirectory{db: common, d: d, clock: clock.Real}
	if d.Name() == DialectSQLite {
		s.sqlite = true
		cfg.SQLiteWriters, cfg.SQLiteWriteWait, cfg.SQLiteCheckpointInterval = sqliteDefaults(cfg.SQLiteWriters, cfg.SQLiteWriteWait, cfg.SQLiteCheckpointInterval)
		s.lite.setQueue(cfg.SQLiteWriters, cfg.SQLiteWriteWait)
		s.every = cfg.SQLiteCheckpointInterval
	}
	return s, nil
}

// DirectoryStats are an SQLDirectory's counters of its SQLite writer queue
// and checkpoints (SQLDirectoryConfig), as DBStats's of a game database;
// all zero on MySQL.
type DirectoryStats struct {
	SQLiteWriterWaits, SQLiteWriterTimeouts uint64
	Checkpoints, CheckpointErrors           uint64
	WALPages                                int64
}

// Stats returns the counters of the common database's writer queue and
// checkpoints.
func (s *SQLDirectory) Stats() DirectoryStats {
	return DirectoryStats{SQLiteWriterWaits: s.lite.writeWaits.Load(), SQLiteWriterTimeouts: s.lite.queueTimeouts.Load(),
		Checkpoints: s.lite.checkpoints.Load(), CheckpointErrors: s.lite.checkpointErrs.Load(), WALPages: s.lite.lastWALPages.Load()}
}

// Write runs fn, another store's write to the common database (one
// statement or a transaction of the anti-cheat tables, live-ops policy,
// ... on the same file), in the SQLite writer queue that the
// SQLDirectory's own writes take (SQLDirectoryConfig.SQLiteWriters): fn
// waits its turn there, in arrival order and without holding a
// connection, instead of retrying in the driver's busy handler (which
// sleeps 1, 2, 5 ... 100 ms between tries) while holding one; and the
// write-ahead log is checkpointed after it like after the directory's
// own. A turn that does not come within SQLiteWriteWait is an *Error of
// Kind ErrUnavailable (code unavailable: nothing was written); ctx ending
// first returns ctx's error. fn gets ctx. On MySQL, or with the queue
// turned off (negative SQLiteWriters), Write only runs fn. Pass it to the
// stores that write to the same file (anticheat.SQLConfig.Write).
func (s *SQLDirectory) Write(ctx context.Context, fn func(ctx context.Context) error) error {
	return s.write(ctx, func() error { return fn(ctx) })
}

// write runs fn, a write of the common database (one statement or a
// transaction), in the SQLite writer queue, and has the write-ahead log
// checkpointed after it.
func (s *SQLDirectory) write(ctx context.Context, fn func() error) error {
	if !s.sqlite {
		return fn()
	}
	release, err := s.lite.queue(ctx, 0)
	if err != nil {
		return err
	}
	err = fn()
	release()
	s.writes.Add(1)
	if s.every > 0 && s.checkpointing.CompareAndSwap(false, true) {
		go s.checkpointLoop()
	}
	return err
}

// directoryCheckpointWait bounds one checkpoint of the common database,
// its wait in the writer queue included.
const directoryCheckpointWait = 10 * time.Second

// checkpointLoop checkpoints the common database every
// SQLiteCheckpointInterval until a checkpoint finds no write after it, or
// fails for another reason than a reader or writer in its way (a closed
// pool): the next write starts it again.
func (s *SQLDirectory) checkpointLoop() {
	for {
		time.Sleep(s.every)
		ctx, cancel := context.WithTimeout(context.Background(), directoryCheckpointWait)
		w := s.writes.Load()
		err := s.lite.checkpoint(ctx, s.db, w)
		cancel()
		if err != nil && (errors.Is(err, errCheckpointBusy) || errors.Is(err, ErrUnavailable)) {
			continue
		}
		if err == nil && s.writes.Load() != w {
			continue // written meanwhile
		}
		s.checkpointing.Store(false)
		// A write between the last look and the Store did not start a
		// loop: take it on.
		if err != nil || s.writes.Load() == s.lite.checkpointedAt.Load() || !s.checkpointing.CompareAndSwap(false, true) {
			return
		}
	}
}

const dbColumns = "db_id, server_id, world_id, db_name, host, port, driver, dsn, replicas, first_key, last_key, next_key, user_count, weight, state, description, updated_at"

// Databases implements Directory.
func (s *SQLDirectory) Databases(ctx context.Context) ([]Database, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+dbColumns+" FROM shard_databases ORDER BY db_id")
	if err != nil {
		return nil, fmt.Errorf("shard: read directory: %w", err)
	}
	defer rows.Close()
	var out []Database
	for rows.Next() {
		var d Database
		var replicas, state string
		if err := rows.Scan(&d.ID, &d.ServerID, &d.WorldID, &d.Name, &d.Host, &d.Port, &d.Driver, &d.DSN, &replicas,
			&d.FirstKey, &d.LastKey, &d.NextKey, &d.UserCount, &d.Weight, &state, &d.Description, &d.UpdatedAt); err != nil {
			return nil, fmt.Errorf("shard: read directory: %w", err)
		}
		d.State = State(state)
		if replicas != "" {
			d.Replicas = strings.Split(replicas, "\n")
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("shard: read directory: %w", err)
	}
	return out, nil
}

// Version implements Directory. It is the row count with the largest and the
// sum of updated_at, so adding or removing a row, or any change that sets
// updated_at (Add, SetState, Allocate closing a full range), changes it.
// Allocation itself (next_key, user_count) does not. Whoever edits the
// table by hand must set updated_at to the current unix time in ms.
func (s *SQLDirectory) Version(ctx context.Context) (string, error) {
	var n, maxU, sumU int64
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(MAX(updated_at), 0), COALESCE(SUM(updated_at), 0) FROM shard_databases").Scan(&n, &maxU, &sumU)
	if err != nil {
		return "", fmt.Errorf("shard: directory version: %w", err)
	}
	return strconv.FormatInt(n, 10) + "." + strconv.FormatInt(maxU, 10) + "." + strconv.FormatInt(sumU, 10), nil
}

func (s *SQLDirectory) now() int64 { return s.clock.Now().UnixMilli() }

// Add inserts a database into the directory. Its key range must not overlap
// another's; NextKey 0 means FirstKey, Weight 0 means 1, State "" means open.
// Routers pick it up at their next refresh; Allocate uses it at once.
func (s *SQLDirectory) Add(ctx context.Context, d Database) error {
	d.normalize()
	if err := d.validate(); err != nil {
		return err
	}
	if strings.Contains(strings.Join(d.Replicas, ""), "\n") {
		return invalidf("db %d: replica contains a newline", d.ID)
	}
	return s.write(ctx, func() error { return s.add(ctx, d) })
}

func (s *SQLDirectory) add(ctx context.Context, d Database) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("shard: add database: %w", err)
	}
	defer tx.Rollback()
	var other int
	err = tx.QueryRowContext(ctx, "SELECT db_id FROM shard_databases WHERE first_key <= ? AND last_key >= ? LIMIT 1"+s.d.ForUpdate(), d.LastKey, d.FirstKey).Scan(&other)
	switch {
	case err == nil:
		return invalidf("db %d: key range %d..%d overlaps db %d", d.ID, d.FirstKey, d.LastKey, other)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("shard: add database: %w", err)
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO shard_databases ("+dbColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		d.ID, d.ServerID, d.WorldID, d.Name, d.Host, d.Port, d.Driver, d.DSN, strings.Join(d.Replicas, "\n"),
		d.FirstKey, d.LastKey, d.NextKey, d.UserCount, d.Weight, string(d.State), d.Description, s.now())
	if err != nil {
		if sqldialect.IsDuplicateKey(err) {
			return invalidf("db %d: duplicate db_id or first_key: %w", d.ID, err)
		}
		return fmt.Errorf("shard: add database: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("shard: add database: %w", err)
	}
	return nil
}

// bumpUpdatedAt is the new updated_at of a changed row, taking the current
// time twice as arguments: the time, or one more than the old value when the
// clock has not moved past it, so Version always changes.
const bumpUpdatedAt = "CASE WHEN ? > updated_at THEN ? ELSE updated_at + 1 END"

// SetState changes a database's state (and updated_at, so routers reload).
func (s *SQLDirectory) SetState(ctx context.Context, dbID int, st State) error {
	if !st.Valid() {
		return invalidf("state %q", st)
	}
	var res sql.Result
	err := s.write(ctx, func() (err error) {
		res, err = s.db.ExecContext(ctx, "UPDATE shard_databases SET state = ?, updated_at = "+bumpUpdatedAt+" WHERE db_id = ?", string(st), s.now(), s.now(), dbID)
		return err
	})
	if err != nil {
		return fmt.Errorf("shard: set state: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return &Error{Kind: ErrInvalid, DBID: dbID, Err: errors.New("no such database")}
	}
	return nil
}

// execQuerier is what *sql.DB and *sql.Tx share.
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Allocate returns a new user key and the id of the database that owns it.
//
// Policy: among databases in state open with free keys, the one with the
// fewest users relative to its weight (smallest user_count/weight; ties go
// to the smaller db_id) — so a database just added, being empty, receives the
// new users until it has caught up with the others. The key is the chosen
// database's next_key; next_key and user_count are advanced in the same
// single-row UPDATE, which is atomic across processes (MariaDB: a row lock,
// with the new value read back through LAST_INSERT_ID(expr); SQLite: the
// database write lock, with UPDATE ... RETURNING). The allocation that takes
// a range's last key also sets the database closed, and allocation moves on
// to the others. When no database is open with free keys, Allocate returns
// ErrNoOpenDatabase.
func (s *SQLDirectory) Allocate(ctx context.Context) (userKey int64, dbID int, err error) {
	err = s.write(ctx, func() (err error) {
		userKey, dbID, err = s.allocate(ctx, s.db)
		return err
	})
	return userKey, dbID, err
}

// allocCandidateLimit bounds the attempts of one Allocate: each failed
// attempt means another allocator took the chosen database's last key.
const allocCandidateLimit = 64

func (s *SQLDirectory) allocate(ctx context.Context, q execQuerier) (int64, int, error) {
	key, _, id, err := s.allocateBlock(ctx, q, 1)
	return key, id, err
}

// allocateBlock reserves up to n (>= 1) consecutive keys of one database,
// chosen by Allocate's policy: the keys first..first+count-1. A database
// with fewer than n free keys gives one key at a time, so a reservation
// never crosses the end of a range.
func (s *SQLDirectory) allocateBlock(ctx context.Context, q execQuerier, n int64) (first, count int64, dbID int, err error) {
	for attempt := 0; attempt < allocCandidateLimit; attempt++ {
		id, ok, err := s.choose(ctx, q)
		if err != nil {
			return 0, 0, 0, err
		}
		if !ok {
			return 0, 0, 0, &Error{Kind: ErrNoOpenDatabase}
		}
		first, ok, err := s.takeBlock(ctx, q, id, n)
		if err != nil {
			return 0, 0, 0, err
		}
		if ok {
			return first, n, id, nil
		}
		if n == 1 {
			continue // another allocator filled or closed it first
		}
		key, ok, err := s.takeBlock(ctx, q, id, 1)
		if err != nil {
			return 0, 0, 0, err
		}
		if ok {
			return key, 1, id, nil
		}
	}
	return 0, 0, 0, &Error{Kind: ErrNoOpenDatabase, Err: errors.New("gave up after repeated races for full ranges")}
}

// takeBlock advances the chosen database's next_key by n (user_count with
// it): ok is false when it has fewer than n free keys left, or another
// allocator filled or closed it first. The block that takes a range's last
// key closes the database. The state and updated_at assignments come
// first: MySQL evaluates SET left to right with updated values, SQLite with
// the old ones, and placed first both see the old next_key.
func (s *SQLDirectory) takeBlock(ctx context.Context, q execQuerier, id int, n int64) (int64, bool, error) {
	const set = "UPDATE shard_databases SET " +
		"state = CASE WHEN next_key + ? > last_key THEN 'closed' ELSE state END, " +
		"updated_at = CASE WHEN next_key + ? > last_key THEN " + bumpUpdatedAt + " ELSE updated_at END, " +
		"user_count = user_count + ?, "
	const where = " WHERE db_id = ? AND state = 'open' AND next_key + ? <= last_key + 1"
	now := s.now()
	var next int64
	if s.d.Name() == "sqlite" {
		err := q.QueryRowContext(ctx, set+"next_key = next_key + ?"+where+" RETURNING next_key", n, n, now, now, n, n, id, n).Scan(&next)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, fmt.Errorf("shard: allocate: %w", err)
		}
		return next - n, true, nil
	}
	res, err := q.ExecContext(ctx, set+"next_key = LAST_INSERT_ID(next_key + ?)"+where, n, n, now, now, n, n, id, n)
	if err != nil {
		return 0, false, fmt.Errorf("shard: allocate: %w", err)
	}
	affected, err := res.RowsAffected()
	if err != nil {
		return 0, false, fmt.Errorf("shard: allocate: %w", err)
	}
	if affected == 0 {
		return 0, false, nil
	}
	if next, err = res.LastInsertId(); err != nil || next <= n {
		return 0, false, fmt.Errorf("shard: allocate: LAST_INSERT_ID not returned (%d): %v", next, err)
	}
	return next - n, true, nil
}

// choose applies the allocation policy to the open databases.
func (s *SQLDirectory) choose(ctx context.Context, q execQuerier) (int, bool, error) {
	rows, err := q.QueryContext(ctx, "SELECT db_id, user_count, weight FROM shard_databases WHERE state = 'open' AND next_key <= last_key")
	if err != nil {
		return 0, false, fmt.Errorf("shard: allocate: %w", err)
	}
	defer rows.Close()
	var bestID int
	var bestUsers, bestWeight int64
	found := false
	for rows.Next() {
		var id int
		var users, weight int64
		if err := rows.Scan(&id, &users, &weight); err != nil {
			return 0, false, fmt.Errorf("shard: allocate: %w", err)
		}
		if weight <= 0 {
			weight = 1
		}
		// users/weight < bestUsers/bestWeight without division.
		if !found || users*bestWeight < bestUsers*weight || (users*bestWeight == bestUsers*weight && id < bestID) {
			bestID, bestUsers, bestWeight, found = id, users, weight, true
		}
	}
	if err := rows.Err(); err != nil {
		return 0, false, fmt.Errorf("shard: allocate: %w", err)
	}
	return bestID, found, nil
}
