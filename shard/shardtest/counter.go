package shardtest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync"
)

// Counter counts what pools opened through it (Open, Connector) send their
// database, for tests that bound the statements or round trips of an
// operation:
//
//   - a statement is a query or exec sent on its own, or one execution of a
//     prepared statement;
//   - a round trip is each statement, each BEGIN, COMMIT and ROLLBACK, and
//     each prepare (a prepared statement run once, as database/sql does for
//     a driver that does not interpolate arguments, such as the MySQL
//     driver with interpolateParams=false, costs two: its prepare and its
//     execution; its close has no answer and is not counted).
//
// It also lists, in order, the statements (their SQL text) and the
// transactions' "BEGIN", "COMMIT" and "ROLLBACK": see Take. Prepares are
// not listed. Pings and session resets are neither counted nor listed.
//
// The zero Counter is ready to use; it is safe for concurrent use.
type Counter struct {
	mu     sync.Mutex
	stmts  int64
	trips  int64
	events []string
}

// Open opens a pool on the database/sql driver registered as driverName
// with dsn, counting on c. It has the type of shard.Config.Open.
func (c *Counter) Open(driverName, dsn string) (*sql.DB, error) {
	probe, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, err
	}
	drv := probe.Driver()
	probe.Close()
	return sql.OpenDB(c.Connector(drv, dsn)), nil
}

// Connector returns a connector that opens connections with drv.Open(dsn)
// and counts on c; sql.OpenDB opens a pool on it.
func (c *Counter) Connector(drv driver.Driver, dsn string) driver.Connector {
	return countConnector{drv: drv, dsn: dsn, c: c}
}

// Statements returns the statements counted so far.
func (c *Counter) Statements() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stmts
}

// RoundTrips returns the round trips counted so far.
func (c *Counter) RoundTrips() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trips
}

// Take returns what was listed since the last Take (since the start for
// the first): the SQL text of each statement and "BEGIN", "COMMIT" or
// "ROLLBACK" for each transaction's, in the order they were sent. The
// list grows until taken.
func (c *Counter) Take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ev := c.events
	c.events = nil
	return ev
}

// add counts stmts statements and trips round trips and lists ev when it
// is not empty.
func (c *Counter) add(stmts, trips int64, ev string) {
	c.mu.Lock()
	c.stmts += stmts
	c.trips += trips
	if ev != "" {
		c.events = append(c.events, ev)
	}
	c.mu.Unlock()
}

type countConnector struct {
	drv driver.Driver
	dsn string
	c   *Counter
}

func (k countConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := k.drv.Open(k.dsn)
	if err != nil {
		return nil, err
	}
	return &countConn{Conn: conn, c: k.c}, nil
}

func (k countConnector) Driver() driver.Driver { return k.drv }

type countConn struct {
	driver.Conn
	c *Counter
}

func (cc *countConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	cc.c.add(0, 1, "")
	var st driver.Stmt
	var err error
	if p, ok := cc.Conn.(driver.ConnPrepareContext); ok {
		st, err = p.PrepareContext(ctx, query)
	} else {
		st, err = cc.Conn.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return &countStmt{Stmt: st, c: cc.c, query: query}, nil
}

func (cc *countConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := cc.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	res, err := e.ExecContext(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) {
		cc.c.add(1, 1, query)
	}
	return res, err
}

func (cc *countConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := cc.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	rows, err := q.QueryContext(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) {
		cc.c.add(1, 1, query)
	}
	return rows, err
}

func (cc *countConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	cc.c.add(0, 1, "BEGIN")
	var tx driver.Tx
	var err error
	if b, ok := cc.Conn.(driver.ConnBeginTx); ok {
		tx, err = b.BeginTx(ctx, opts)
	} else {
		//lint:ignore SA1019 the fallback for drivers without BeginTx
		tx, err = cc.Conn.Begin()
	}
	if err != nil {
		return nil, err
	}
	return countTx{Tx: tx, c: cc.c}, nil
}

func (cc *countConn) Ping(ctx context.Context) error {
	if p, ok := cc.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (cc *countConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := cc.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func (cc *countConn) ResetSession(ctx context.Context) error {
	if r, ok := cc.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (cc *countConn) IsValid() bool {
	if v, ok := cc.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

type countTx struct {
	driver.Tx
	c *Counter
}

func (t countTx) Commit() error   { t.c.add(0, 1, "COMMIT"); return t.Tx.Commit() }
func (t countTx) Rollback() error { t.c.add(0, 1, "ROLLBACK"); return t.Tx.Rollback() }

type countStmt struct {
	driver.Stmt
	c     *Counter
	query string
}

func (s *countStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.c.add(1, 1, s.query)
	if e, ok := s.Stmt.(driver.StmtExecContext); ok {
		return e.ExecContext(ctx, args)
	}
	vals, err := values(args)
	if err != nil {
		return nil, err
	}
	//lint:ignore SA1019 the fallback for statements without ExecContext
	return s.Stmt.Exec(vals)
}

func (s *countStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.c.add(1, 1, s.query)
	if q, ok := s.Stmt.(driver.StmtQueryContext); ok {
		return q.QueryContext(ctx, args)
	}
	vals, err := values(args)
	if err != nil {
		return nil, err
	}
	//lint:ignore SA1019 the fallback for statements without QueryContext
	return s.Stmt.Query(vals)
}

func (s *countStmt) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := s.Stmt.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// values converts args for a driver's legacy Exec and Query, which take
// no names.
func values(args []driver.NamedValue) ([]driver.Value, error) {
	out := make([]driver.Value, len(args))
	for i, a := range args {
		if a.Name != "" {
			return nil, errors.New("shardtest: the driver does not support named arguments")
		}
		out[i] = a.Value
	}
	return out, nil
}
