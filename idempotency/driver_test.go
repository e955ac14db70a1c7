package idempotency_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/madang-io/madang/internal/testdb"
)

// probe wraps a database driver to count the statements a connection runs,
// to lose the answer of a commit that succeeded (the connection "dies"
// right after the server committed), and to record what each transaction
// ran and whether it committed.
type probe struct {
	statements     atomic.Int64
	loseNextCommit atomic.Bool

	mu     sync.Mutex
	nextTx int
	events []event
	// onExec, if set, is called (outside mu) before a statement is sent.
	onExec func(txn int, query string)
	// beforeCommit, if set, is called (outside mu) when a transaction
	// starts to commit, before the driver commits it.
	beforeCommit func(txn int)
}

// event is one thing a connection did. txn numbers the transactions of
// the probe from 1; 0 is outside a transaction.
type event struct {
	txn   int
	kind  string // "begin", "exec", "query", "commit", "rollback"
	query string
	rows  int64 // rows affected by an exec; -1 when the statement failed
	err   error
}

func (p *probe) record(e event) {
	p.mu.Lock()
	p.events = append(p.events, e)
	p.mu.Unlock()
}

// txEvents returns what transaction txn did, in order.
func (p *probe) txEvents(txn int) []event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []event
	for _, e := range p.events {
		if e.txn == txn {
			out = append(out, e)
		}
	}
	return out
}

// lastTxn returns the number of the newest transaction.
func (p *probe) lastTxn() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nextTx
}

type probeConnector struct {
	dsn string
	drv driver.Driver
	p   *probe
}

func (c *probeConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &probeConn{Conn: conn, p: c.p}, nil
}

func (c *probeConnector) Driver() driver.Driver { return c.drv }

type probeConn struct {
	driver.Conn
	p   *probe
	txn int // the open transaction's number, 0 outside one
}

func (c *probeConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.p.mu.Lock()
	c.p.nextTx++
	txn := c.p.nextTx
	c.p.mu.Unlock()
	c.p.record(event{txn: txn, kind: "begin"})
	var tx driver.Tx
	var err error
	if b, ok := c.Conn.(driver.ConnBeginTx); ok {
		tx, err = b.BeginTx(ctx, opts)
	} else {
		//lint:ignore SA1019 the fallback for drivers without BeginTx
		tx, err = c.Conn.Begin()
	}
	if err != nil {
		return nil, err
	}
	c.txn = txn
	return &probeTx{Tx: tx, c: c, txn: txn}, nil
}

func (c *probeConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	c.p.statements.Add(1)
	if pc, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return pc.PrepareContext(ctx, query)
	}
	return c.Conn.Prepare(query)
}

func (c *probeConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	if f := c.p.onExec; f != nil {
		f(c.txn, query)
	}
	r, err := e.ExecContext(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) {
		c.p.statements.Add(1)
		ev := event{txn: c.txn, kind: "exec", query: query, rows: -1, err: err}
		if err == nil {
			if n, rerr := r.RowsAffected(); rerr == nil {
				ev.rows = n
			}
		}
		c.p.record(ev)
	}
	return r, err
}

func (c *probeConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	r, err := q.QueryContext(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) {
		c.p.statements.Add(1)
		c.p.record(event{txn: c.txn, kind: "query", query: query, err: err})
	}
	return r, err
}

func (c *probeConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func (c *probeConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

type probeTx struct {
	driver.Tx
	c   *probeConn
	txn int
}

func (t *probeTx) Commit() error {
	p := t.c.p
	if f := p.beforeCommit; f != nil {
		f(t.txn)
	}
	err := t.Tx.Commit()
	t.c.txn = 0
	p.record(event{txn: t.txn, kind: "commit", err: err})
	if err == nil && p.loseNextCommit.CompareAndSwap(true, false) {
		return driver.ErrBadConn // committed on the server, answer lost
	}
	return err
}

func (t *probeTx) Rollback() error {
	err := t.Tx.Rollback()
	t.c.txn = 0
	t.c.p.record(event{txn: t.txn, kind: "rollback", err: err})
	return err
}

// probedBackend is a database backend opened through a probe.
type probedBackend struct {
	name string
	open func(t testing.TB) (*sql.DB, *probe)
}

func probedBackends() []probedBackend {
	return []probedBackend{
		{"sqlite", func(t testing.TB) (*sql.DB, *probe) {
			plain := testdb.SQLite(t, "probe")
			dsn := testdb.SQLiteDSN(t.TempDir() + "/probed.db")
			return openProbed(t, plain.Driver(), dsn)
		}},
		{"mariadb", func(t testing.TB) (*sql.DB, *probe) {
			return openProbed(t, &mysql.MySQLDriver{}, testdb.MySQL(t)+"&interpolateParams=true")
		}},
	}
}

func openProbed(t testing.TB, drv driver.Driver, dsn string) (*sql.DB, *probe) {
	p := &probe{}
	db := sql.OpenDB(&probeConnector{dsn: dsn, drv: drv, p: p})
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	return db, p
}
