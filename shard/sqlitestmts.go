package shard

import (
	"database/sql"

	"github.com/madang-io/madang/internal/stmtcache"
)

// DefaultSQLiteStatementCache is how many prepared statements a connection
// of a SQLite pool keeps by default (Config.SQLiteStatementCache,
// OpenSQLite): more than the distinct statements of the example game
// server's hot paths, at a few KB each.
const DefaultSQLiteStatementCache = 64

// OpenSQLite opens the SQLite database dsn (SQLiteDSN) with the driver
// registered as "sqlite" (modernc.org/sqlite: the main imports it), like
// sql.Open, except that each connection of the pool keeps up to
// DefaultSQLiteStatementCache prepared statements, least recently used
// first out, finalized when the connection closes. The driver otherwise
// prepares (parses and plans) every statement given as text on each call
// and finalizes it after; with the cache a query run again on the same
// connection is only bound and run. The pool's Driver() is the registered
// driver, so DetectDialect still tells SQLite. Statements the caller
// prepares itself (db.Prepare) are not cached. Closing a connection drops
// its statements: give the pool enough idle connections for its load
// (SetMaxIdleConns; database/sql keeps 2 by default). The Router opens its SQLite
// pools this way (Config.SQLiteStatementCache).
func OpenSQLite(dsn string) (*sql.DB, error) {
	return stmtcache.Open("sqlite", dsn, DefaultSQLiteStatementCache)
}
