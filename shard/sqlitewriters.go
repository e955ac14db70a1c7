package shard

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/internal/sqldialect"
	"golang.org/x/sync/semaphore"
)

// isSQLite reports whether db is a SQLite database (its driver's type name,
// or failing that a query on one connection: sqldialect.Detect).
func isSQLite(ctx context.Context, db *sql.DB) bool {
	d, err := sqldialect.Detect(ctx, db)
	return err == nil && d.Name() == DialectSQLite
}

// sqliteFile is the writer queue and checkpoint state of one SQLite
// database: the Router keeps one per game database (in its pool), an
// SQLDirectory one for the common database. The zero value has no queue.
type sqliteFile struct {
	writers                     *semaphore.Weighted // nil: no queue
	wait                        time.Duration       // SQLiteWriteWait
	writeWaits                  atomic.Uint64       // writers that queued
	checkpoints, checkpointErrs atomic.Uint64
	checkpointedAt              atomic.Uint64 // writes counted at the last checkpoint
	lastWALPages                atomic.Int64  // log pages the last checkpoint found
	queueTimeouts               atomic.Uint64
}

// sqliteDefaults fills the zero SQLite writer settings with their defaults,
// the same for the router's Config and SQLDirectoryConfig.
func sqliteDefaults(writers int, wait, every time.Duration) (int, time.Duration, time.Duration) {
	if writers == 0 {
		writers = DefaultSQLiteWriters
	}
	if wait <= 0 {
		wait = DefaultSQLiteWriteWait
	}
	if every == 0 {
		every = DefaultSQLiteCheckpointInterval
	}
	return writers, wait, every
}

func noRelease() {}

// setQueue gives f a queue of n writers at once, each waiting up to wait;
// n <= 0: none.
func (f *sqliteFile) setQueue(n int, wait time.Duration) {
	if n > 0 {
		f.writers, f.wait = semaphore.NewWeighted(int64(n)), wait
	}
}

// queue takes a writer's place on f's database, waiting in first-come
// order up to its SQLiteWriteWait (or ctx); dbID names the database in the
// error. The caller writes and then calls release. Without a queue it
// returns at once.
func (f *sqliteFile) queue(ctx context.Context, dbID int) (release func(), err error) {
	if f.writers == nil {
		return noRelease, nil
	}
	if f.writers.TryAcquire(1) {
		return func() { f.writers.Release(1) }, nil
	}
	f.writeWaits.Add(1)
	wctx, cancel := context.WithTimeout(ctx, f.wait)
	defer cancel()
	if err := f.writers.Acquire(wctx, 1); err != nil {
		if ctx.Err() != nil {
			// The caller's deadline: as a busy handler past it would.
			return nil, ctx.Err()
		}
		f.queueTimeouts.Add(1)
		return nil, &Error{Kind: ErrUnavailable, DBID: dbID,
			Err: fmt.Errorf("waited %v for the SQLite writer queue", f.wait)}
	}
	return func() { f.writers.Release(1) }, nil
}

// errCheckpointBusy: a checkpoint gave up waiting for a reader.
var errCheckpointBusy = errors.New("wal_checkpoint: busy (a reader held the log)")

// checkpointBusyTimeout is how long a checkpoint waits for older readers.
const checkpointBusyTimeout = 100 * time.Millisecond

// checkpointLoop checkpoints the write-ahead logs of the open SQLite
// databases every Config.SQLiteCheckpointInterval until ctx ends.
func (r *Router) checkpointLoop(ctx context.Context) {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.SQLiteCheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, n := range r.table.Load().byID {
			if ctx.Err() != nil {
				return
			}
			if err := r.checkpoint(ctx, n.pool); err != nil && ctx.Err() == nil {
				r.log.Warn("shard: SQLite checkpoint failed", "db_id", n.info.ID, "err", err)
			}
		}
	}
}

// checkpoint runs the Router's checkpoint of p's database (sqliteFile.checkpoint).
func (r *Router) checkpoint(ctx context.Context, p *pool) error {
	db := p.db.Load()
	if db == nil || !p.sqlite {
		return nil
	}
	return p.sqliteFile.checkpoint(ctx, db, p.txs.Load())
}

// checkpoint runs PRAGMA wal_checkpoint(TRUNCATE) on db, f's database, if
// it was written since its last checkpoint (writes counts its writes),
// holding a writer's place so that no writer waits for it in the busy
// handler.
func (f *sqliteFile) checkpoint(ctx context.Context, db *sql.DB, writes uint64) error {
	if writes == f.checkpointedAt.Load() {
		return nil
	}
	release, err := f.queue(ctx, 0)
	if err != nil {
		return err
	}
	defer release()
	// On a connection of its own whose busy timeout is short: the
	// checkpoint waits in the busy handler for the readers older than it,
	// and writers queue behind it meanwhile. A reader that outlasts the
	// short timeout makes it give up (busy) until the next interval.
	conn, err := db.Conn(ctx)
	if err != nil {
		f.checkpointErrs.Add(1)
		return err
	}
	defer conn.Close()
	var timeout int64
	if err := conn.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&timeout); err != nil {
		f.checkpointErrs.Add(1)
		return err
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", checkpointBusyTimeout.Milliseconds())); err != nil {
		f.checkpointErrs.Add(1)
		return err
	}
	var busy, log, done int64
	err = conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &log, &done)
	if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA busy_timeout = %d", timeout)); rerr != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // not back into the pool with the short timeout
		err = errors.Join(err, rerr)
	}
	if err != nil {
		f.checkpointErrs.Add(1)
		return err
	}
	f.lastWALPages.Store(log)
	if busy != 0 {
		// A reader older than the checkpoint outlasted the short busy
		// timeout: the log is copied as far as it could be; try again
		// next time.
		f.checkpointErrs.Add(1)
		return errCheckpointBusy
	}
	f.checkpoints.Add(1)
	f.checkpointedAt.Store(writes)
	return nil
}
