package shardtest

import (
	"database/sql"
	"testing"

	"github.com/madang-io/madang/internal/testdb"
)

// EnvMySQLDSN names the environment variable with the DSN of the
// MariaDB/MySQL server for integration tests, such as
// "root@tcp(127.0.0.1:3306)/test". Its user must be able to CREATE and DROP
// databases.
const EnvMySQLDSN = "MADANG_MYSQL_DSN"

// MySQLDSN returns MADANG_MYSQL_DSN. It skips the test with a message when
// the variable is unset, except in CI (MADANG_CI set), where it fails.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	return testdb.MySQLDSN(t)
}

// Latin1 is the database options of a server configured the old way:
// latin1 and a case-insensitive, trailing-space-ignoring collation. Tables
// that do not state their own character set and collation take these. Use
// it with MySQLWithDefaults to show that a schema states its own.
const Latin1 = "CHARACTER SET latin1 COLLATE latin1_swedish_ci"

// MySQLWithDefaults creates a database with a random name on the
// MADANG_MYSQL_DSN server, with options after CREATE DATABASE name (its
// default character set and collation, such as Latin1; "" is the server's
// defaults), and returns a DSN for it (parseTime=true). The database is
// dropped when the test ends. It skips like MySQLDSN.
func MySQLWithDefaults(t testing.TB, options string) (dsn string) {
	t.Helper()
	return testdb.MySQLWithDefaults(t, options)
}

// MySQLMaxOpenConns bounds the pools NewDB opens on MySQL. Test packages
// run in parallel against one server (151 connections by default); a test
// with a hundred goroutines on an unbounded pool would take most of them
// and make other packages' tests fail with "Too many connections".
const MySQLMaxOpenConns = 16

// NewDB creates a fresh, empty database of the backend (NewDSN), opens it,
// closed when the test ends, and checks that it answers. Pools on MySQL are
// bounded by MySQLMaxOpenConns. It skips the test when the backend is not
// configured (MySQL without MADANG_MYSQL_DSN; in CI it fails).
func (b Backend) NewDB(t testing.TB) *sql.DB {
	t.Helper()
	db := b.Open(t, b.NewDSN(t))
	if b.Driver == "mysql" {
		db.SetMaxOpenConns(MySQLMaxOpenConns)
	}
	if err := db.Ping(); err != nil {
		t.Fatalf("shardtest: %s: %v", b.Name, err)
	}
	return db
}
