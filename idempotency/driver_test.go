package idempotency_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/madang-io/madang/internal/testdb"
)

// probe wraps a database driver to count the statements a connection runs
// and to lose the answer of a commit that succeeded (the connection "dies"
// right after the server committed).
type probe struct {
	statements     atomic.Int64
	loseNextCommit atomic.Bool
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
	p *probe
}

func (c *probeConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
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
	return &probeTx{Tx: tx, p: c.p}, nil
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
	r, err := e.ExecContext(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) {
		c.p.statements.Add(1)
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
	p *probe
}

func (t *probeTx) Commit() error {
	err := t.Tx.Commit()
	if err == nil && t.p.loseNextCommit.CompareAndSwap(true, false) {
		return driver.ErrBadConn // committed on the server, answer lost
	}
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
