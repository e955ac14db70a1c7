package testdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
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
//
// It also counts the statements sent, can lose the answer of a commit that
// succeeded (LoseNextCommit) and can stop a statement or a commit at a hook
// (OnExec, BeforeCommit), so that tests can hold a transaction at a chosen
// point.
type Recorder struct {
	statements     atomic.Int64
	loseNextCommit atomic.Bool

	mu           sync.Mutex
	events       []Event
	lastTxn      int
	onExec       func(txn int, query string)
	beforeCommit func(txn int)
}

// Event is one thing a recorded connection did.
type Event struct {
	Conn  int    // the connection, numbered from 1
	Txn   int    // the transaction, numbered from 1 as each begins; 0 outside one
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

// TxEvents returns what transaction txn did, in order.
func (r *Recorder) TxEvents(txn int) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if e.Txn == txn {
			out = append(out, e)
		}
	}
	return out
}

// LastTxn returns the number of the newest transaction. A transaction is
// numbered when BeginTx is called, before the driver begins it (which may
// wait, as SQLite's BEGIN IMMEDIATE does for another writer).
func (r *Recorder) LastTxn() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastTxn
}

// Statements counts the statements prepared, executed or queried so far
// (not reset by Reset).
func (r *Recorder) Statements() int64 { return r.statements.Load() }

// LoseNextCommit makes the next commit that succeeds answer
// driver.ErrBadConn, as if the connection died after the server committed.
func (r *Recorder) LoseNextCommit() { r.loseNextCommit.Store(true) }

// OnExec sets f (nil: none) to be called with the transaction's number (0
// outside one) and the query before an exec is sent.
func (r *Recorder) OnExec(f func(txn int, query string)) {
	r.mu.Lock()
	r.onExec = f
	r.mu.Unlock()
}

// BeforeCommit sets f (nil: none) to be called with the transaction's
// number when it starts to commit, before the driver commits it; f may
// block to hold the commit.
func (r *Recorder) BeforeCommit(f func(txn int)) {
	r.mu.Lock()
	r.beforeCommit = f
	r.mu.Unlock()
}

func (r *Recorder) hooks() (func(int, string), func(int)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.onExec, r.beforeCommit
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
	r   *Recorder
	id  int
	txn int // the open transaction's number, 0 outside one
}

func (c *recConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.r.mu.Lock()
	c.r.lastTxn++
	txn := c.r.lastTxn
	c.r.mu.Unlock()
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
	c.r.add(Event{Conn: c.id, Txn: txn, Kind: "begin"})
	return &recTx{Tx: tx, c: c, txn: txn}, nil
}

func (c *recConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	c.r.statements.Add(1)
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
	if f, _ := c.r.hooks(); f != nil {
		f(c.txn, query)
	}
	res, err := e.ExecContext(ctx, query, args)
	if errors.Is(err, driver.ErrSkip) {
		return res, err
	}
	c.r.statements.Add(1)
	ev := Event{Conn: c.id, Txn: c.txn, Kind: "exec", Query: query, Rows: -1, Err: err}
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
		c.r.statements.Add(1)
		c.r.add(Event{Conn: c.id, Txn: c.txn, Kind: "query", Query: query, Err: err})
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
	c   *recConn
	txn int
}

func (t *recTx) Commit() error {
	r := t.c.r
	if _, f := r.hooks(); f != nil {
		f(t.txn)
	}
	err := t.Tx.Commit()
	t.c.txn = 0
	r.add(Event{Conn: t.c.id, Txn: t.txn, Kind: "commit", Err: err})
	if err == nil && r.loseNextCommit.CompareAndSwap(true, false) {
		return driver.ErrBadConn // committed on the server, answer lost
	}
	return err
}

func (t *recTx) Rollback() error {
	err := t.Tx.Rollback()
	t.c.txn = 0
	t.c.r.add(Event{Conn: t.c.id, Txn: t.txn, Kind: "rollback", Err: err})
	return err
}
