// Package backend is madang's one classification of backend errors: which
// errors of a database, Redis or the network say "the backend is down, slow,
// restarting, read-only, out of connections, or picked this transaction as a
// deadlock victim" — a condition that passes, so the client may retry the
// same request (protocol.CodeUnavailable, 41) — as opposed to a bug
// (protocol.CodeInternal, 40), which a retry does not fix.
//
// Every package classifies at its boundary through this package: session
// and realtime for Redis, shard, idempotency and anticheat for SQL. Studios
// and the example servers reach the same classification through the public
// wrappers shard.ClassifyError and session.ClassifyError.
//
// The package does not import the SQLite driver: SQLite errors are
// recognised through the Code() method modernc.org/sqlite's errors have.
package backend

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/madang-io/madang/protocol"
)

// MySQL and MariaDB server error numbers that say the server, not the
// statement, is the problem. Client-side numbers (2006, 2013, ...) come
// from proxies such as vtgate or ProxySQL that pass them on.
var mysqlUnavailable = map[uint16]bool{
	1037: true, // ER_OUTOFMEMORY
	1038: true, // ER_OUT_OF_SORTMEMORY
	1040: true, // ER_CON_COUNT_ERROR: too many connections
	1041: true, // ER_OUT_OF_RESOURCES
	1053: true, // ER_SERVER_SHUTDOWN: shutdown in progress
	1077: true, // ER_NORMAL_SHUTDOWN
	1079: true, // ER_SHUTDOWN_COMPLETE
	1152: true, // ER_ABORTING_CONNECTION
	1158: true, // ER_NET_READ_ERROR
	1159: true, // ER_NET_READ_INTERRUPTED
	1160: true, // ER_NET_ERROR_ON_WRITE
	1161: true, // ER_NET_WRITE_INTERRUPTED
	1203: true, // ER_TOO_MANY_USER_CONNECTIONS
	1205: true, // ER_LOCK_WAIT_TIMEOUT
	1213: true, // ER_LOCK_DEADLOCK
	1290: true, // ER_OPTION_PREVENTS_STATEMENT (--read-only, --super-read-only)
	1317: true, // ER_QUERY_INTERRUPTED (KILL QUERY, shutdown)
	1836: true, // ER_READ_ONLY_MODE
	1927: true, // ER_CONNECTION_KILLED (MariaDB)
	1969: true, // ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
	3024: true, // ER_QUERY_TIMEOUT (MySQL max_execution_time)
	2002: true, // CR_CONNECTION_ERROR
	2003: true, // CR_CONN_HOST_ERROR
	2006: true, // CR_SERVER_GONE_ERROR
	2013: true, // CR_SERVER_LOST
	2055: true, // CR_SERVER_LOST_EXTENDED
}

// SQLite primary result codes that say the database is busy or its storage
// failed, not that the statement is wrong.
const (
	sqliteBusy   = 5  // SQLITE_BUSY: another connection holds the lock
	sqliteLocked = 6  // SQLITE_LOCKED: a table lock in this connection's cache
	sqliteIOErr  = 10 // SQLITE_IOERR
	sqliteFull   = 13 // SQLITE_FULL: the disk is full
)

// sqliteCoder is the Code method of modernc.org/sqlite's *Error.
type sqliteCoder interface{ Code() int }

// Unavailable reports whether err says a backend is unavailable for now,
// so that running the request again later may succeed:
//
//   - the network: connection refused or reset, a broken pipe, EOF on a
//     connection, an i/o timeout (any net.Error), os.ErrDeadlineExceeded;
//   - database/sql: driver.ErrBadConn, sql.ErrConnDone;
//   - go-sql-driver/mysql: ErrInvalidConn, ErrMalformPkt (a connection cut
//     mid-packet) and the server errors of a busy or stopping server —
//     deadlock (1213), lock wait timeout (1205), read-only (1290, 1836), too
//     many connections (1040, 1203), out of memory or resources (1037, 1038,
//     1041), shutdown in progress (1053, 1077, 1079), connection aborted,
//     killed or lost (1152, 1158–1161, 1317, 1927, 2002, 2003, 2006, 2013,
//     2055), statement timeouts (1969, 3024);
//   - SQLite: busy and locked (SQLITE_BUSY, SQLITE_LOCKED), an i/o error or
//     a full disk (SQLITE_IOERR, SQLITE_FULL), with any extended code;
//   - go-redis: LOADING, READONLY, CLUSTERDOWN, TRYAGAIN, MASTERDOWN,
//     max clients, OOM, NOREPLICAS, BUSY (a script running too long),
//     MOVED/ASK that reached the caller, the pool's timeout and exhaustion,
//     and a client closed while serving (redis.ErrClosed);
//   - a context that ended (context.Canceled, context.DeadlineExceeded).
//
// Everything else — a statement the database refuses (syntax, missing
// table, constraint), redis.Nil, a script error, a programming error — is
// not: it is a bug, and retrying does not fix it.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, mysql.ErrMalformPkt) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return mysqlUnavailable[me.Number]
	}
	var se sqliteCoder
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqliteBusy, sqliteLocked, sqliteIOErr, sqliteFull:
			return true
		}
		return false
	}
	if errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrPoolExhausted) {
		return true
	}
	var re redis.Error
	if errors.As(err, &re) {
		if _, ok := redis.IsMovedError(err); ok {
			return true
		}
		if _, ok := redis.IsAskError(err); ok {
			return true
		}
		return redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsClusterDownError(err) ||
			redis.IsTryAgainError(err) || redis.IsMasterDownError(err) || redis.IsMaxClientsError(err) ||
			redis.IsOOMError(err) || redis.IsNoReplicasError(err) || redis.HasErrorPrefix(err, "BUSY ")
	}
	// Any other network error (a dial that failed, a DNS lookup that timed
	// out): the backend could not be reached.
	var ne net.Error
	return errors.As(err, &ne)
}

// Code returns the result code err deserves: the code an *protocol.Error or
// a protocol.Coder in its chain carries, unless that code is
// protocol.CodeInternal and the cause is Unavailable; then CodeTimeout
// for an ended deadline (context.DeadlineExceeded: the request may or may
// not have committed) and CodeUnavailable for any other unavailable cause;
// CodeInternal for the rest. nil is CodeOK.
func Code(err error) protocol.Code {
	if err == nil {
		return protocol.CodeOK
	}
	if c := protocol.CodeOf(err); c != protocol.CodeInternal || !Unavailable(err) {
		return c
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return protocol.CodeTimeout
	}
	return protocol.CodeUnavailable
}

// Classify returns err unchanged when it already carries a result code
// other than protocol.CodeInternal, or when it is not Unavailable (nil
// stays nil). Otherwise it returns a *protocol.Error with Code(err)
// (CodeUnavailable, or CodeTimeout for an ended deadline), the code's name
// as the client's message, and err as its cause (errors.Is and errors.As
// still find the driver's error).
func Classify(err error) error {
	if err == nil {
		return nil
	}
	c := Code(err)
	if c == protocol.CodeOf(err) {
		return err
	}
	return &protocol.Error{Code: c, Message: c.String(), Err: err}
}

// CommitUnknown reports whether a failed COMMIT may still have committed:
// err is Unavailable and is not the database's own answer (a MySQL server
// error or a SQLite result code, which say the commit did not happen) —
// the connection was lost or the context ended while the commit was on
// its way. Such a failure is CodeTimeout for the client (retry with the
// same request id), not CodeUnavailable ("nothing was committed").
func CommitUnknown(err error) bool {
	if !Unavailable(err) {
		return false
	}
	var me *mysql.MySQLError
	var se sqliteCoder
	return !errors.As(err, &me) && !errors.As(err, &se)
}
