package shard

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/madang-io/madang/internal/sqldialect"
)

// SQL dialects, by the names every madang SQL config takes (a Dialect
// string field, or Migrations.Dialect; "" there means detect it from the
// database with DetectDialect). Other packages take the same strings, so
// they need not import shard.
const (
	// DialectMySQL is MySQL, MariaDB and Vitess (vtgate), through
	// go-sql-driver/mysql or a driver wrapping it.
	DialectMySQL = "mysql"
	// DialectSQLite is SQLite, through modernc.org/sqlite or a driver
	// wrapping it. Open it with SQLiteDSN.
	DialectSQLite = "sqlite"
)

// DetectDialect returns db's dialect, DialectMySQL or DialectSQLite.
//
// It looks at the driver first: go-sql-driver/mysql's driver, a driver
// whose type name contains "sqlite" (modernc.org/sqlite), or one of those
// found by following a wrapping driver's Unwrap() driver.Driver method.
// Otherwise it asks the database on one connection: SELECT
// sqlite_version() succeeds only on SQLite, SELECT VERSION() answers a
// version number on MySQL, MariaDB and Vitess. So a driver wrapped by
// instrumentation (such as OpenTelemetry's otelsql) is recognised too. A
// database that cannot be reached gives its connection error; one that
// answers neither query is an error that says to name the dialect.
//
// Every constructor that needs a dialect detects it this way unless its
// config names one; call it yourself to pick per-dialect SQL of your own.
func DetectDialect(ctx context.Context, db *sql.DB) (string, error) {
	if db == nil {
		return "", invalidf("nil *sql.DB")
	}
	d, err := sqldialect.Detect(ctx, db)
	if err != nil {
		return "", fmt.Errorf("shard: %w", err)
	}
	return d.Name(), nil
}

// SQLiteDSN returns the modernc.org/sqlite DSN madang recommends for the
// database file at path: WAL journal, a 5 s busy timeout, foreign keys on,
// synchronous=NORMAL, and immediate write transactions
// (_txlock=immediate), so a transaction that reads and then writes never
// fails upgrading its lock. PRAGMAs are per connection, so they are in the
// DSN, where every pooled connection gets them; a DSN without them works
// alone and fails under concurrency (SQLITE_BUSY). Use a file, never
// ":memory:" (which is one database per connection).
//
//	db, err := sql.Open("sqlite", shard.SQLiteDSN("game.db"))
func SQLiteDSN(path string) string { return sqldialect.SQLiteDSN(path) }

// resolveDialect returns the dialect called name (an unknown one is
// ErrInvalid), or db's when name is "".
func resolveDialect(ctx context.Context, db *sql.DB, name string) (sqldialect.Dialect, error) {
	if name != "" {
		d, err := sqldialect.ByName(name)
		if err != nil {
			return nil, invalidf("%v", err)
		}
		return d, nil
	}
	d, err := sqldialect.Detect(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("shard: %w", err)
	}
	return d, nil
}
