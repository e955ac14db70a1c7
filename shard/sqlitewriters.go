package shard

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/madang-io/madang/internal/sqldialect"
)

// isSQLite reports whether db is a SQLite database (its driver's type name,
// or failing that a query on one connection: sqldialect.Detect).
func isSQLite(ctx context.Context, db *sql.DB) bool {
	d, err := sqldialect.Detect(ctx, db)
	return err == nil && d.Name() == DialectSQLite
}

// queueWriter takes a writer's place on p's SQLite database, waiting in
// first-come order up to Config.SQLiteWriteWait (or ctx). The caller runs
// its transaction and then calls release.
func (r *Router) queueWriter(ctx context.Context, p *pool, n *node) (release func(), err error) {
	if p.writers.TryAcquire(1) {
		return func() { p.writers.Release(1) }, nil
	}
	p.writeWaits.Add(1)
	wctx, cancel := context.WithTimeout(ctx, r.cfg.SQLiteWriteWait)
	defer cancel()
	if err := p.writers.Acquire(wctx, 1); err != nil {
		if ctx.Err() != nil {
			// The caller's deadline: as a busy handler past it would.
			return nil, ctx.Err()
		}
		p.queueTimeouts.Add(1)
		id := 0
		if n != nil {
			id = n.info.ID
		}
		return nil, &Error{Kind: ErrUnavailable, DBID: id,
			Err: fmt.Errorf("waited %v for the SQLite writer queue", r.cfg.SQLiteWriteWait)}
	}
	return func() { p.writers.Release(1) }, nil
}

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

// checkpoint runs PRAGMA wal_checkpoint(TRUNCATE) on p's database if it is
// an open SQLite database written since its last checkpoint, holding a
// writer's place so that no writer waits for it in the busy handler.
func (r *Router) checkpoint(ctx context.Context, p *pool) error {
	db := p.db.Load()
	if db == nil || !p.sqlite {
		return nil
	}
	txs := p.txs.Load()
	if txs == p.checkpointedAt.Load() {
		return nil
	}
	if p.writers != nil {
		release, err := r.queueWriter(ctx, p, nil)
		if err != nil {
			return err
		}
		defer release()
	}
	// On a connection of its own whose busy timeout is short: the
	// checkpoint waits in the busy handler for the readers older than it,
	// and writers queue behind it meanwhile. A reader that outlasts the
	// short timeout makes it give up (busy) until the next interval.
	conn, err := db.Conn(ctx)
	if err != nil {
		p.checkpointErrs.Add(1)
		return err
	}
	defer conn.Close()
	var timeout int64
	if err := conn.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&timeout); err != nil {
		p.checkpointErrs.Add(1)
		return err
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", checkpointBusyTimeout.Milliseconds())); err != nil {
		p.checkpointErrs.Add(1)
		return err
	}
	var busy, log, done int64
	err = conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &log, &done)
	if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA busy_timeout = %d", timeout)); rerr != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // not back into the pool with the short timeout
		err = errors.Join(err, rerr)
	}
	if err != nil {
		p.checkpointErrs.Add(1)
		return err
	}
	p.lastWALPages.Store(log)
	if busy != 0 {
		// A reader older than the checkpoint outlasted the short busy
		// timeout: the log is copied as far as it could be; try again
		// next time.
		p.checkpointErrs.Add(1)
		return errors.New("wal_checkpoint: busy (a reader held the log)")
	}
	p.checkpoints.Add(1)
	p.checkpointedAt.Store(txs)
	return nil
}
