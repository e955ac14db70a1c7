// Package shardtest helps test code that uses package shard: static
// directories, game databases created for one test (SQLite files in
// t.TempDir(), or random databases on a MySQL or MariaDB server, dropped
// afterwards), and a conformance suite (RunBackendTests) that checks the
// directory, allocator, accounts, router and migrations against a real
// backend.
//
// Tests of any package open their SQL databases here: Backends (or SQLite
// and MySQL) and Backend.NewDB for a fresh database of each, MySQLDSN and
// MySQLWithDefaults for the MySQL or MariaDB server named by
// MADANG_MYSQL_DSN (tests skip without it, except in CI). Every name about
// that server says MySQL, like its driver, its dialect (shard.DialectMySQL)
// and the variable; CI runs it on MariaDB.
//
// PrivateMySQL (in tests) and StartMariaDBServer (in tools such as
// examples/faultrun) start a mariadbd of the caller's own, on a port and in
// a directory of its own, that it may kill -9 and restart (InnoDB crash
// recovery) or freeze (SIGSTOP): never the shared server.
//
// Counter counts the statements and round trips a pool sends its database,
// for tests that bound what an operation costs.
//
// It imports the SQLite and MySQL drivers, so only tests and mains may
// import it.
package shardtest

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/madang-io/madang/internal/testdb"
	"github.com/madang-io/madang/shard"
)

// KeySpan is the size of the key range Range gives each database: the
// talk's layout, gamedb01 from 10000000, gamedb02 from 20000000, ...
const KeySpan = 10_000_000

// Range returns the talk's key range of database id: id*KeySpan through
// id*KeySpan+KeySpan-1.
func Range(id int) (first, last int64) {
	first = int64(id) * KeySpan
	return first, first + KeySpan - 1
}

// Static returns a static directory over dbs, failing t when they are
// invalid.
func Static(t testing.TB, dbs ...shard.Database) *shard.StaticDirectory {
	t.Helper()
	d, err := shard.NewStaticDirectory(dbs)
	if err != nil {
		t.Fatalf("shardtest: static directory: %v", err)
	}
	return d
}

// Backend is a database family the suite runs against.
type Backend struct {
	// Name is "sqlite" (SQLite) or "mariadb" (MySQL), used as the name of
	// subtests and benchmarks.
	Name string
	// Driver is the database/sql driver name.
	Driver string
	// NewDSN creates a fresh, empty database for the test and returns its
	// DSN; it is removed when the test ends. It skips the test when the
	// backend is not configured.
	NewDSN func(t testing.TB) string
	// BrokenDSN returns a DSN that cannot be opened (a closed port, a path
	// in a removed directory), for "database down" tests.
	BrokenDSN func(t testing.TB) string
}

// SQLite is the embedded backend: database files in t.TempDir() with
// shard.SQLiteDSN (WAL, busy timeout, _txlock=immediate).
func SQLite() Backend {
	return Backend{
		Name:   "sqlite",
		Driver: "sqlite",
		NewDSN: func(t testing.TB) string {
			return shard.SQLiteDSN(filepath.Join(t.TempDir(), "db.sqlite"))
		},
		BrokenDSN: func(t testing.TB) string {
			return shard.SQLiteDSN(filepath.Join(t.TempDir(), "removed", "db.sqlite"))
		},
	}
}

// MySQL is the MySQL or MariaDB server named by MADANG_MYSQL_DSN: random
// databases created on it, dropped when the test ends (skipping the test
// when the variable is unset, failing in CI). Its Name is "mariadb", the
// server CI runs.
func MySQL() Backend {
	return Backend{
		Name:   "mariadb",
		Driver: "mysql",
		NewDSN: func(t testing.TB) string { return testdb.MySQL(t) },
		BrokenDSN: func(t testing.TB) string {
			// Port 1 (tcpmux) is closed on any sane test machine.
			return "root@tcp(127.0.0.1:1)/madang_down?timeout=2s"
		},
	}
}

// Backends returns SQLite and MySQL.
func Backends() []Backend { return []Backend{SQLite(), MySQL()} }

// Open opens dsn with the backend's driver, closed when the test ends.
func (b Backend) Open(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(b.Driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Database creates a fresh game database and returns its directory entry:
// id, the talk's key range for id (Range), db_name "gamedbNN", the
// backend's driver and an explicit DSN.
func (b Backend) Database(t testing.TB, id int) shard.Database {
	t.Helper()
	first, last := Range(id)
	return shard.Database{
		ID: id, ServerID: 1, WorldID: 1,
		Name:     fmt.Sprintf("gamedb%02d", id),
		Driver:   b.Driver,
		DSN:      b.NewDSN(t),
		FirstKey: first, LastKey: last,
		Description: "shardtest",
	}
}

// Databases creates n fresh game databases with ids 1..n (see Database).
func (b Backend) Databases(t testing.TB, n int) []shard.Database {
	t.Helper()
	out := make([]shard.Database, n)
	for i := range out {
		out[i] = b.Database(t, i+1)
	}
	return out
}

// SQLiteDatabases creates n SQLite game databases in t.TempDir(), ids 1..n.
func SQLiteDatabases(t testing.TB, n int) []shard.Database { return SQLite().Databases(t, n) }

// MySQLDatabases creates n random databases on the MADANG_MYSQL_DSN server,
// ids 1..n, dropped when the test ends; it skips like MySQL.
func MySQLDatabases(t testing.TB, n int) []shard.Database { return MySQL().Databases(t, n) }
