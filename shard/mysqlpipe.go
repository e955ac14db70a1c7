package shard

import (
	"context"
	"database/sql"

	"github.com/madang-io/madang/internal/mysqlpipe"
	"github.com/madang-io/madang/internal/sqldefer"
)

// OpenMySQL opens the MySQL/MariaDB (go-sql-driver/mysql) DSN dsn like
// sql.Open("mysql", dsn), except that when dsn sets interpolateParams=true
// (MySQLDSN adds it when that is safe) its connections pipeline
// transactions, saving round trips:
//
//   - BeginTx with default options sends nothing: START TRANSACTION goes in
//     front of the transaction's first statement, in the same packet;
//   - a statement run with a context marked by Deferred is kept and sent in
//     front of the transaction's next statement, or of COMMIT;
//   - Commit with nothing sent and nothing kept sends nothing; Rollback
//     with nothing sent sends nothing (kept statements are dropped).
//
// So a transaction of n statements, d of them deferred, costs n-d+1 round
// trips instead of n+2. Transactions with options (an isolation level,
// read only) and statements outside transactions are the driver's, one
// round trip each.
//
// For this the pool's connections (and only they) have the driver's
// multiStatements set: one packet may carry several statements. That
// widens what an SQL injection could do, which is why madang builds no SQL
// from input: every value is a placeholder argument, and so should yours
// be. A statement whose placeholders cannot be counted for certain (a
// backslash inside a string literal, a count other than its arguments')
// is never combined with another; the pending ones go alone before it. A
// proxy between the pool and the server must take multi-statement
// queries (MariaDB and MySQL do, and so does vtgate's MySQL protocol
// server; some proxies, such as older ProxySQL releases, do not — check
// yours); if it does not, use sql.Open (Config.NoMySQLPipelining for the
// Router).
//
// Without interpolateParams=true the pool is the driver's own. The pool's
// Driver() is go-sql-driver/mysql's, so DetectDialect tells MySQL. The
// Router opens its "mysql" pools this way unless Config.NoMySQLPipelining.
func OpenMySQL(dsn string) (*sql.DB, error) { return mysqlpipe.Open(dsn) }

// Deferred returns ctx marked so that a statement run with it inside a
// transaction of an OpenMySQL pool (the Router's MySQL pools) may be kept
// and sent later, with the transaction's next statement or its COMMIT: one
// round trip fewer. Use it for writes whose result the caller does not
// read, and mark the one call, not a context passed on:
//
//	_, err := tx.ExecContext(shard.Deferred(ctx), "INSERT INTO ledger ...", args...)
//
// The statement's Result is unknown (RowsAffected and LastInsertId return
// an error); its arguments are kept as they were ([]byte copied), so the
// caller may reuse its buffers as after any ExecContext; and its error, if the server refuses it, surfaces at the
// transaction's next statement or at Commit: a round trip that carried a
// deferred statement and failed leaves the transaction failed — later
// statements return that error unsent and Commit rolls back and returns
// an error wrapping ErrNotCommitted. Nothing of such a transaction is
// committed.
//
// Elsewhere (outside a transaction, a transaction with options, SQLite,
// a pool sql.Open opened) the mark is ignored and the statement runs at
// once, so code that marks its statements runs on every backend.
func Deferred(ctx context.Context) context.Context { return sqldefer.With(ctx) }

// ErrNotCommitted is wrapped by the Commit error of an OpenMySQL
// transaction whose deferred statements (or COMMIT) the server refused:
// the transaction was rolled back, nothing of it committed. The error also
// wraps the server's error (a *mysql.MySQLError), so ClassifyError tells
// a deadlock or lock wait timeout (unavailable, retryable) from a bug.
// When the connection broke during that last round trip, the error is the
// driver's and, as with any commit, whether it committed is unknown.
var ErrNotCommitted = mysqlpipe.ErrNotCommitted
