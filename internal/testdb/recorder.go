package testdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
)

// Recorder wraps a real driver (SQLite or MariaDB) and records, per
// connection, the statements it runs, the rows each changed and how each
// transaction ended. Tests use it to show that an answer derived from
// another transaction's commit is only given after a commit of the
// answering side that changed a row (a change the database logs after the
// commit it read, so that commit is durable once this one is).
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

// Event is one thing a recorded connection did.
type Event struct {
	Conn  int    // the connection, numbered from 1
	Kind  string // "exec", "query", "begin", "commit", "rollback"
	Query string
	Rows  int64 // rows changed by an exec; -1 if it failed
	Err   error
}

// Events returns what was recorded since the last Reset.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// Reset forgets the events recorded so far.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.events = nil
	r.mu.Unlock()
}

func (r *Recorder) add(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// DurableWrites counts the writes that reached a durable point: an exec
// that changed at least one row outside a transaction (autocommit), or a
// committed transaction in which an exec changed at least one row.
func (r *Recorder) DurableWrites() int {
	n := 0
	open := map[int]bool{} // conn -> in a transaction that changed a row
	inTx := map[int]bool{}
	for _, e := range r.Events() {
		switch e.Kind {
		case "begin":
			inTx[e.Conn], open[e.Conn] = true, false
		case "exec":
			if e.Err == nil && e.Rows > 0 {
				if inTx[e.Conn] {
					open[e.Conn] = true
				} else {
					n++
				}
			}
		case "commit":
			if e.Err == nil && open[e.Conn] {
				n++
			}
			inTx[e.Conn], open[e.Conn] = false, false
		case "rollback":
			inTx[e.Conn], open[e.Conn] = false, false
		}
	}
	return n
}

// RecordedBackends returns SQLite and MariaDB (MariaDB skips without
// MADANG_MYSQL_DSN, as MySQL does) opened through a Recorder.
func RecordedBackends() []RecordedBackend {
	return []RecordedBackend{
		{"sqlite", func(t testing.TB) (*sql.DB, *Recorder) {
			return OpenRecorded(t, &sqlite.Driver{}, SQLiteDSN(filepath.Join(t.TempDir(), "recorded.db")))
		}},
		{"mariadb", func(t testing.TB) (*sql.DB, *Recorder) {
			return OpenRecorded(t, &mysql.MySQLDriver{}, MySQL(t)+"&interpolateParams=true")
		}},
	}
}

// RecordedBackend is a database backend opened through a Recorder.
type RecordedBackend struct {
	Name string
	Open func(t testing.TB) (*sql.DB, *Recorder)
}

// OpenRecorded opens dsn with drv through a new Recorder; the pool is
// closed when the test ends. Use interpolateParams=true with MySQL so
// statements go through ExecContext/QueryContext and are recorded.
func OpenRecorded(t testing.TB, drv driver.Driver, dsn string) (*sql.DB, *Recorder) {
	t.Helper()
	r := &Recorder{}
	db := sql.OpenDB(&recConnector{dsn: dsn, drv: drv, r: r})
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	return db, r
}

type recConnector struct {
	dsn  string
	drv  driver.Driver
	r    *Recorder
	mu   sync.Mutex
	next int
}

func (c *recConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.next++
	id := c.next
	c.mu.Unlock()
	return &recConn{Conn: conn, r: c.r, id: id}, nil
}

func (c *recConnector) Driver() driver.Driver { return c.drv }

type recConn struct {
	driver.Conn
	r  *Recorder
	id int
}

func (c *recConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
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
	c.r.add(Event{Conn: c.id, Kind: "begin"})
	return &recTx{Tx: tx, c: c}, nil
}

func (c *recConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if pc, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return pc.PrepareContext(ctx, query)
	}
	return c.Conn.Prepare(query)
}

func (c *recConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	res, err := e.ExecContext(ctx, query, args)
	if errors.Is(err, driver.ErrSkip) {
		return res, err
	}
	ev := Event{Conn: c.id, Kind: "exec", Query: query, Rows: -1, Err: err}
	if err == nil {
		if n, rerr := res.RowsAffected(); rerr == nil {
			ev.Rows = n
		}
	}
	c.r.add(ev)
	return res, err
}

func (c *recConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	rows, err := q.QueryContext(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) {
		c.r.add(Event{Conn: c.id, Kind: "query", Query: query, Err: err})
	}
	return rows, err
}

func (c *recConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func (c *recConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

type recTx struct {
	driver.Tx
	c *recConn
}

func (t *recTx) Commit() error {
	err := t.Tx.Commit()
	t.c.r.add(Event{Conn: t.c.id, Kind: "commit", Err: err})
	return err
}

func (t *recTx) Rollback() error {
	err := t.Tx.Rollback()
	t.c.r.add(Event{Conn: t.c.id, Kind: "rollback", Err: err})
	return err
}
