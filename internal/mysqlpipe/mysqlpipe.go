// Package mysqlpipe pipelines the statements of a MySQL/MariaDB transaction:
// fewer round trips per transaction on go-sql-driver/mysql connections.
//
// In a transaction begun with default options (database/sql's BeginTx with
// nil or zero TxOptions) a connection of this package
//
//   - sends nothing at BeginTx: "START TRANSACTION" goes in front of the
//     transaction's first statement, in the same packet (a multi-statement
//     query; the driver skips the leading OK to the statement's own result,
//     and an Exec's result is the last statement's);
//   - keeps a statement run with a context marked by sqldefer.With (its
//     result unknown to the caller) and sends it in front of the next
//     statement, or in front of COMMIT at Commit;
//   - sends nothing at Rollback when nothing was sent.
//
// A transaction with other options (isolation level, read only) is the
// driver's, statement by statement; outside a transaction every statement
// is the driver's as well, and a deferred mark there is ignored.
//
// The server stops a multi-statement query at its first error. So when a
// round trip that carried deferred statements fails, the caller cannot
// know which statement failed: the transaction is then failed (poisoned):
// later statements return the error without being sent, Commit sends
// ROLLBACK and returns an error that wraps ErrNotCommitted, and Rollback
// rolls back. When the round trip that carried START TRANSACTION and no
// deferred statement fails with a server error (a duplicate key, a lock
// wait timeout of the first statement), the transaction is restarted
// ("START TRANSACTION" alone; the failed statement had changed nothing) so
// that the caller may go on as after a failed statement of a transaction
// begun by the driver.
//
// Pipelining needs the driver's interpolateParams (the arguments of all the
// statements of one packet are put into its text, in order) and
// multiStatements, which Open sets on its own connections only. A
// statement whose placeholders the package cannot count for certain (a
// backslash in a string literal, an unterminated quote or comment, a count
// other than its arguments') is never combined: the pending text goes
// first, alone, then the statement as the driver sends it. When the driver
// cannot interpolate (driver.ErrSkip: an argument type it does not put
// into text, a packet over max_allowed_packet) nothing was sent: the
// pending statements go alone (one by one, prepared if need be) and
// database/sql prepares the statement.
package mysqlpipe

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/madang-io/madang/internal/sqldefer"
)

// ErrNotCommitted is wrapped by Commit's error when the server refused a
// deferred statement (or the COMMIT itself): the transaction was rolled
// back, nothing of it was committed.
var ErrNotCommitted = errors.New("transaction not committed")

// ErrDeferredResult is what a deferred statement's Result answers: its
// rows affected and insert id are not known when ExecContext returns.
var ErrDeferredResult = errors.New("mysqlpipe: the result of a deferred statement is unknown")

// Open opens a pool on the go-sql-driver/mysql DSN dsn. When dsn sets
// interpolateParams=true its connections pipeline transactions (package
// doc), with multiStatements set on them; otherwise the pool is the
// driver's own (sql.Open("mysql", dsn)). The pool's Driver() is the
// driver's, so dialect detection still tells MySQL.
func Open(dsn string) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	c, err := NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// NewConnector returns a connector on cfg: pipelining (with a copy of cfg
// with multiStatements set) when cfg.InterpolateParams, the driver's own
// connector otherwise.
func NewConnector(cfg *mysql.Config) (driver.Connector, error) {
	cfg = cfg.Clone()
	if !cfg.InterpolateParams {
		return mysql.NewConnector(cfg)
	}
	cfg.MultiStatements = true
	base, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return &Connector{base: base}, nil
}

// Connector opens pipelining connections on a go-sql-driver/mysql
// connector.
type Connector struct {
	base driver.Connector
}

// Connect implements driver.Connector.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.base.Connect(ctx)
	if err != nil {
		return nil, err
	}
	ex, ok1 := dc.(driver.ExecerContext)
	qu, ok2 := dc.(driver.QueryerContext)
	pr, ok3 := dc.(driver.ConnPrepareContext)
	bg, ok4 := dc.(driver.ConnBeginTx)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		dc.Close()
		return nil, fmt.Errorf("mysqlpipe: driver connection %T lacks a context method", dc)
	}
	return &conn{Conn: dc, ex: ex, qu: qu, pr: pr, bg: bg}, nil
}

// Driver implements driver.Connector: go-sql-driver/mysql's driver.
func (c *Connector) Driver() driver.Driver { return c.base.Driver() }

// conn is a driver connection; database/sql uses it from one goroutine at
// a time (a transaction's ctx-cancel rollback waits for the statement in
// flight).
type conn struct {
	driver.Conn
	ex driver.ExecerContext
	qu driver.QueryerContext
	pr driver.ConnPrepareContext
	bg driver.ConnBeginTx

	tx  *tx  // the pipelined transaction in progress
	bad bool // session state unknown: never reuse
}

var (
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
)

type pending struct {
	query string
	args  []driver.NamedValue
}

// tx is a pipelined transaction.
type tx struct {
	c       *conn
	started bool // START TRANSACTION was sent
	pending []pending
	failed  error // a round trip with deferred statements failed
	done    bool
}

// BeginTx implements driver.ConnBeginTx: with default options it sends
// nothing.
func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.bad || !c.IsValid() {
		return nil, driver.ErrBadConn
	}
	if c.tx != nil {
		return nil, errors.New("mysqlpipe: transaction already in progress")
	}
	if sql.IsolationLevel(opts.Isolation) != sql.LevelDefault || opts.ReadOnly {
		return c.bg.BeginTx(ctx, opts)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.tx = &tx{c: c}
	return c.tx, nil
}

const sep = "\n;"

// text returns the pending statements (with START TRANSACTION first when
// not yet sent) followed by last, if any, and their arguments.
func (t *tx) text(last string, lastArgs []driver.NamedValue) (string, []driver.NamedValue) {
	var b strings.Builder
	var args []driver.NamedValue
	add := func(q string, a []driver.NamedValue) {
		if b.Len() > 0 {
			b.WriteString(sep)
		}
		b.WriteString(q)
		for _, v := range a {
			v.Ordinal = len(args) + 1
			args = append(args, v)
		}
	}
	if !t.started {
		add("START TRANSACTION", nil)
	}
	for _, p := range t.pending {
		add(trimStatement(p.query), p.args)
	}
	if last != "" {
		add(trimStatement(last), lastArgs)
	}
	return b.String(), args
}

// sent records the answer to a round trip that carried the pending
// statements (deferred of them) and START TRANSACTION if not yet sent
// (start), and returns the error for the caller.
func (t *tx) sent(err error, deferred int, start bool) error {
	t.pending = t.pending[:0]
	t.started = true
	if err == nil {
		return nil
	}
	var me *mysql.MySQLError
	server := errors.As(err, &me)
	switch {
	case deferred > 0:
		t.failed = fmt.Errorf("mysqlpipe: a deferred statement or the statement after it failed, the transaction cannot commit: %w", err)
		if !server {
			t.c.bad = true
		}
		return t.failed
	case !server:
		// The connection is broken or its state unknown.
		t.c.bad = true
		return err
	case start:
		// START TRANSACTION may have failed, or the statement after it:
		// either way start again (the failed statement changed nothing).
		if _, rerr := t.c.ex.ExecContext(context.Background(), "START TRANSACTION", nil); rerr != nil {
			t.c.bad = true
			t.failed = fmt.Errorf("mysqlpipe: start transaction: %w", rerr)
		}
		return err
	}
	return err
}

// flush sends what is pending (and START TRANSACTION) alone.
func (t *tx) flush(ctx context.Context) error {
	if t.failed != nil {
		return t.failed
	}
	if t.started && len(t.pending) == 0 {
		return nil
	}
	q, args := t.text("", nil)
	n, start := len(t.pending), !t.started
	_, err := t.c.ex.ExecContext(ctx, q, args)
	if errors.Is(err, driver.ErrSkip) {
		return t.oneByOne(ctx)
	}
	return t.sent(err, n, start)
}

// oneByOne sends START TRANSACTION and each pending statement in a round
// trip of its own, prepared when the driver cannot interpolate it.
func (t *tx) oneByOne(ctx context.Context) error {
	ps := t.pending
	t.pending = nil
	if !t.started {
		_, err := t.c.ex.ExecContext(ctx, "START TRANSACTION", nil)
		if err := t.sent(err, 0, false); err != nil {
			t.failed = err
			return err
		}
	}
	for _, p := range ps {
		_, err := t.c.ex.ExecContext(ctx, p.query, p.args)
		if errors.Is(err, driver.ErrSkip) {
			err = t.c.execPrepared(ctx, p.query, p.args)
		}
		if err := t.sent(err, 1, false); err != nil {
			return err
		}
	}
	return nil
}

// execPrepared runs query as a prepared statement.
func (c *conn) execPrepared(ctx context.Context, query string, args []driver.NamedValue) error {
	st, err := c.pr.PrepareContext(ctx, query)
	if err != nil {
		return err
	}
	defer st.Close()
	se, ok := st.(driver.StmtExecContext)
	if !ok {
		return fmt.Errorf("mysqlpipe: statement %T cannot execute with a context", st)
	}
	_, err = se.ExecContext(ctx, args)
	return err
}

// ExecContext implements driver.ExecerContext. A deferred statement that
// can be combined is kept for the next round trip.
func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if t := c.tx; t != nil && !c.bad && t.failed == nil && sqldefer.Is(ctx) && ctx.Err() == nil && combinable(query, len(args)) {
		t.pending = append(t.pending, pending{query, kept(args)})
		return deferredResult{}, nil
	}
	return pipelined(c, ctx, query, args, c.ex.ExecContext)
}

// kept returns args to hold past ExecContext: database/sql passes a
// caller's []byte argument as it is, and a caller may reuse its buffer
// once ExecContext returned, before the deferred statement is sent.
func kept(args []driver.NamedValue) []driver.NamedValue {
	for i, a := range args {
		if b, ok := a.Value.([]byte); ok && b != nil {
			args[i].Value = bytes.Clone(b)
		}
	}
	return args
}

// QueryContext implements driver.QueryerContext.
func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return pipelined(c, ctx, query, args, c.qu.QueryContext)
}

// pipelined runs query with send (the driver's Exec or Query): alone
// outside a pipelined transaction or when it cannot be combined (after
// the pending text), else in one round trip behind the pending text.
func pipelined[R any](c *conn, ctx context.Context, query string, args []driver.NamedValue, send func(context.Context, string, []driver.NamedValue) (R, error)) (R, error) {
	var none R
	if c.bad {
		return none, driver.ErrBadConn
	}
	t := c.tx
	if t == nil {
		return send(ctx, query, args)
	}
	if t.failed != nil {
		return none, t.failed
	}
	if err := ctx.Err(); err != nil {
		return none, err
	}
	if !combinable(query, len(args)) {
		if err := t.flush(ctx); err != nil {
			return none, err
		}
		return send(ctx, query, args)
	}
	q, all := t.text(query, args)
	n, start := len(t.pending), !t.started
	res, err := send(ctx, q, all)
	if errors.Is(err, driver.ErrSkip) {
		// Nothing was sent: the pending text alone, then database/sql
		// prepares the statement.
		if err := t.flush(ctx); err != nil {
			return none, err
		}
		return none, driver.ErrSkip
	}
	if err := t.sent(err, n, start); err != nil {
		return none, err
	}
	return res, nil
}

// PrepareContext implements driver.ConnPrepareContext: the pending text
// goes first, and the statement sends what is pending before it runs.
func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if c.bad {
		return nil, driver.ErrBadConn
	}
	if c.tx != nil {
		if err := c.tx.flush(ctx); err != nil {
			return nil, err
		}
	}
	st, err := c.pr.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &stmt{Stmt: st, c: c}, nil
}

// Prepare implements driver.Conn.
func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// Begin implements driver.Conn (database/sql uses BeginTx).
func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// Commit implements driver.Tx: the pending statements and COMMIT in one
// round trip.
func (t *tx) Commit() error {
	c := t.c
	if t.done {
		return driver.ErrBadConn
	}
	t.done = true
	defer func() { c.tx = nil }()
	if t.failed != nil {
		c.rollbackAfterFailure()
		return fmt.Errorf("%w: %w", ErrNotCommitted, t.failed)
	}
	if !t.started && len(t.pending) == 0 {
		return nil
	}
	ctx := context.Background()
	q, args := t.text("COMMIT", nil)
	_, err := c.ex.ExecContext(ctx, q, args)
	if errors.Is(err, driver.ErrSkip) {
		if err := t.oneByOne(ctx); err != nil {
			c.rollbackAfterFailure()
			return fmt.Errorf("%w: %w", ErrNotCommitted, err)
		}
		_, err = c.ex.ExecContext(ctx, "COMMIT", nil)
	}
	if err == nil {
		return nil
	}
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		// The connection broke: whether the COMMIT ran is unknown.
		c.bad = true
		return err
	}
	c.rollbackAfterFailure()
	return fmt.Errorf("%w (the server refused a deferred statement or the commit; rolled back): %w", ErrNotCommitted, err)
}

// rollbackAfterFailure sends ROLLBACK unless the connection is broken; a
// connection whose ROLLBACK fails is not reused.
func (c *conn) rollbackAfterFailure() {
	if c.bad {
		return
	}
	if _, err := c.ex.ExecContext(context.Background(), "ROLLBACK", nil); err != nil {
		c.bad = true
	}
}

// Rollback implements driver.Tx: nothing is sent when nothing was.
func (t *tx) Rollback() error {
	c := t.c
	if t.done {
		return driver.ErrBadConn
	}
	t.done = true
	defer func() { c.tx = nil }()
	t.pending = nil
	if !t.started {
		return nil
	}
	if c.bad {
		return driver.ErrBadConn
	}
	if _, err := c.ex.ExecContext(context.Background(), "ROLLBACK", nil); err != nil {
		c.bad = true
		return err
	}
	return nil
}

// Ping implements driver.Pinger.
func (c *conn) Ping(ctx context.Context) error {
	if c.bad {
		return driver.ErrBadConn
	}
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// ResetSession implements driver.SessionResetter: a connection with a
// transaction left or a state unknown is not reused.
func (c *conn) ResetSession(ctx context.Context) error {
	if c.bad || c.tx != nil {
		return driver.ErrBadConn
	}
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

// IsValid implements driver.Validator.
func (c *conn) IsValid() bool {
	if c.bad {
		return false
	}
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// CheckNamedValue passes the driver's argument conversion on.
func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// Raw gives the driver's connection.
func (c *conn) Raw() driver.Conn { return c.Conn }

// stmt is a prepared statement of the driver: it sends the transaction's
// pending statements before it runs.
type stmt struct {
	driver.Stmt
	c *conn
}

func (s *stmt) flush(ctx context.Context) error {
	if s.c.bad {
		return driver.ErrBadConn
	}
	if s.c.tx != nil {
		return s.c.tx.flush(ctx)
	}
	return nil
}

// ExecContext implements driver.StmtExecContext.
func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	if se, ok := s.Stmt.(driver.StmtExecContext); ok {
		return se.ExecContext(ctx, args)
	}
	return nil, fmt.Errorf("mysqlpipe: statement %T cannot execute with a context", s.Stmt)
}

// QueryContext implements driver.StmtQueryContext.
func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	if sq, ok := s.Stmt.(driver.StmtQueryContext); ok {
		return sq.QueryContext(ctx, args)
	}
	return nil, fmt.Errorf("mysqlpipe: statement %T cannot query with a context", s.Stmt)
}

// CheckNamedValue passes the driver statement's argument conversion on.
func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := s.Stmt.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

type deferredResult struct{}

func (deferredResult) LastInsertId() (int64, error) { return 0, ErrDeferredResult }
func (deferredResult) RowsAffected() (int64, error) { return 0, ErrDeferredResult }
