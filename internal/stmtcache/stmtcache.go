// Package stmtcache keeps prepared statements per driver connection, so that
// a query run again on the same connection is not parsed again.
//
// database/sql runs a query given as text (db.QueryContext, tx.ExecContext,
// ...) through the driver's QueryerContext or ExecerContext, and a driver
// such as modernc.org/sqlite then prepares (parses and plans) the statement,
// runs it and finalizes it: every call parses its SQL again. A Connector of
// this package wraps the driver's connections: each keeps up to size
// statements, least recently used first out, prepared on first use and
// reset for the next one, and finalizes them when the connection closes.
//
// It is meant for in-process databases (SQLite), where preparing costs no
// round trip; for a network database a prepared statement costs one more
// round trip and server state (MySQL's DSN option interpolateParams is the
// better tool there).
package stmtcache

import (
	"container/list"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"reflect"
	"sync"
	"sync/atomic"
)

// Stats counts a Connector's statement use across its connections.
type Stats struct {
	Hits, Misses, Evictions, Busy uint64
}

// Connector wraps another driver.Connector with a statement cache per
// connection.
type Connector struct {
	base                          driver.Connector
	size                          int
	hits, misses, evictions, busy atomic.Uint64
}

// NewConnector returns base's connections with up to size prepared
// statements kept by each (size >= 1).
func NewConnector(base driver.Connector, size int) *Connector {
	return &Connector{base: base, size: max(size, 1)}
}

// Open opens dsn with the driver registered as driverName behind a
// statement cache of size statements per connection (sql.Open's driver,
// sql.OpenDB's pool: db.Driver() is still that driver).
func Open(driverName, dsn string, size int) (*sql.DB, error) {
	probe, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, err
	}
	drv := probe.Driver()
	probe.Close()
	var base driver.Connector
	if dc, ok := drv.(driver.DriverContext); ok {
		if base, err = dc.OpenConnector(dsn); err != nil {
			return nil, err
		}
	} else {
		base = dsnConnector{drv, dsn}
	}
	return sql.OpenDB(NewConnector(base, size)), nil
}

type dsnConnector struct {
	drv driver.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.drv }

// Stats returns the counters of c's connections: statements found in a
// connection's cache (Hits), prepared and kept (Misses), finalized to
// make room (Evictions), and run once without the cache because the kept
// one was still in use by open rows of the same text (Busy).
func (c *Connector) Stats() Stats {
	return Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(), Busy: c.busy.Load()}
}

// Connect implements driver.Connector.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.base.Connect(ctx)
	if err != nil {
		return nil, err
	}
	prep, ok1 := dc.(driver.ConnPrepareContext)
	_, ok2 := dc.(driver.ConnBeginTx)
	_, ok3 := dc.(driver.ExecerContext)
	_, ok4 := dc.(driver.QueryerContext)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		// Not a driver this package knows how to wrap: as it is.
		return dc, nil
	}
	return &conn{Conn: dc, prep: prep, c: c, byText: map[string]*list.Element{}}, nil
}

// Driver implements driver.Connector: the wrapped connector's driver.
func (c *Connector) Driver() driver.Driver { return c.base.Driver() }

// conn is a driver connection with its statements. database/sql uses a
// connection from one goroutine at a time, but closes the rows of a
// cancelled query from another: mu guards the cache.
type conn struct {
	driver.Conn
	prep driver.ConnPrepareContext
	c    *Connector

	mu     sync.Mutex
	lru    list.List // of *entry, most recently used first
	byText map[string]*list.Element
}

type entry struct {
	query string
	st    driver.Stmt
	busy  bool // rows of it are open
}

var (
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
)

// take returns query's kept statement, preparing and keeping it on first
// use; nil when the kept one is busy (the caller runs the query without
// the cache).
func (c *conn) take(ctx context.Context, query string) (*entry, error) {
	c.mu.Lock()
	if el, ok := c.byText[query]; ok {
		e := el.Value.(*entry)
		if e.busy {
			c.mu.Unlock()
			c.c.busy.Add(1)
			return nil, nil
		}
		c.lru.MoveToFront(el)
		e.busy = true
		c.mu.Unlock()
		c.c.hits.Add(1)
		return e, nil
	}
	c.mu.Unlock()
	st, err := c.prep.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.c.misses.Add(1)
	e := &entry{query: query, st: st, busy: true}
	var evicted []driver.Stmt
	c.mu.Lock()
	c.byText[query] = c.lru.PushFront(e)
	// Make room: finalize the least recently used statements not in use.
	for el := c.lru.Back(); el != nil && c.lru.Len() > c.c.size; {
		prev := el.Prev()
		if o := el.Value.(*entry); !o.busy {
			c.lru.Remove(el)
			delete(c.byText, o.query)
			evicted = append(evicted, o.st)
		}
		el = prev
	}
	c.mu.Unlock()
	for _, st := range evicted {
		c.c.evictions.Add(1)
		_ = st.Close()
	}
	return e, nil
}

// put marks e free again.
func (c *conn) put(e *entry) {
	c.mu.Lock()
	e.busy = false
	c.mu.Unlock()
}

// ExecContext implements driver.ExecerContext with the kept statement.
func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
	}
	defer c.put(e)
	if sc, ok := e.st.(driver.StmtExecContext); ok {
		return sc.ExecContext(ctx, args)
	}
	return nil, driver.ErrSkip
}

// QueryContext implements driver.QueryerContext with the kept statement;
// it stays in use until the rows are closed.
func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	e, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
	}
	sc, ok := e.st.(driver.StmtQueryContext)
	if !ok {
		c.put(e)
		return nil, driver.ErrSkip
	}
	r, err := sc.QueryContext(ctx, args)
	if err != nil {
		c.put(e)
		return nil, err
	}
	return &rows{Rows: r, c: c, e: e}, nil
}

// PrepareContext implements driver.ConnPrepareContext: database/sql's own
// prepared statements (db.Prepare) are the driver's, outside the cache.
func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.prep.PrepareContext(ctx, query)
}

// BeginTx implements driver.ConnBeginTx.
func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

// Ping implements driver.Pinger.
func (c *conn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// ResetSession implements driver.SessionResetter.
func (c *conn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

// IsValid implements driver.Validator.
func (c *conn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// CheckNamedValue passes the wrapped connection's argument conversion on
// (driver.NamedValueChecker); ErrSkip without one, the default conversion.
func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// Close finalizes the kept statements and closes the connection.
func (c *conn) Close() error {
	c.mu.Lock()
	var errs []error
	for el := c.lru.Front(); el != nil; el = el.Next() {
		errs = append(errs, el.Value.(*entry).st.Close())
	}
	c.lru.Init()
	clear(c.byText)
	c.mu.Unlock()
	errs = append(errs, c.Conn.Close())
	return errors.Join(errs...)
}

// Raw gives the wrapped driver connection (database/sql's Conn.Raw hands
// out this conn; a caller that needs the driver's own type unwraps it).
func (c *conn) Raw() driver.Conn { return c.Conn }

// rows are a kept statement's rows: closing them frees the statement.
type rows struct {
	driver.Rows
	c      *conn
	e      *entry
	closed bool
}

func (r *rows) Close() error {
	err := r.Rows.Close()
	if !r.closed {
		r.closed = true
		r.c.put(r.e)
	}
	return err
}

// The column type methods database/sql's ColumnTypes looks for.

func (r *rows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *rows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *rows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *rows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *rows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

// HasNextResultSet and NextResultSet: driver.RowsNextResultSet.
func (r *rows) HasNextResultSet() bool {
	if n, ok := r.Rows.(driver.RowsNextResultSet); ok {
		return n.HasNextResultSet()
	}
	return false
}

func (r *rows) NextResultSet() error {
	if n, ok := r.Rows.(driver.RowsNextResultSet); ok {
		return n.NextResultSet()
	}
	return io.EOF
}
