// Package testdb opens real databases for tests: SQLite files in a test's
// temporary directory, and throwaway MariaDB/MySQL databases with random
// names on the server named by MADANG_MYSQL_DSN. It is a test helper, so it
// may import drivers; library packages must not import it.
//
// Package shardtest makes what tests outside the module need public
// (Backend.NewDB, MySQLDSN, MySQLWithDefaults, Latin1), for examples copied
// into a studio's own module; tests of the library packages, some of which
// cannot import shardtest (package shard's own tests), use this package.
package testdb

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/madang-io/madang/internal/sqldialect"
)

// EnvMySQLDSN names the environment variable with the MariaDB/MySQL DSN for
// integration tests, such as "root@tcp(127.0.0.1:3306)/test".
const EnvMySQLDSN = "MADANG_MYSQL_DSN"

// SQLiteDSN returns the DSN madang uses for a SQLite file; see
// sqldialect.SQLiteDSN.
func SQLiteDSN(path string) string { return sqldialect.SQLiteDSN(path) }

// SQLite opens a fresh SQLite database file called name in t.TempDir() and
// closes it when the test ends.
func SQLite(t testing.TB, name string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", SQLiteDSN(filepath.Join(t.TempDir(), name+".db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	return db
}

// MySQLDSN returns MADANG_MYSQL_DSN, or skips the test with a message when it
// is unset. In CI (MADANG_CI set) a missing DSN fails the test instead.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvMySQLDSN)
	if dsn == "" {
		if os.Getenv("MADANG_CI") != "" {
			t.Fatalf("%s is not set, and CI must not skip MariaDB tests", EnvMySQLDSN)
		}
		t.Skipf("set %s (e.g. root@tcp(127.0.0.1:3306)/test) to run against MariaDB", EnvMySQLDSN)
	}
	return dsn
}

// MySQL creates a database with a random name on the MADANG_MYSQL_DSN server,
// returns a DSN for it, and drops it when the test ends. It skips the test
// when MADANG_MYSQL_DSN is unset.
func MySQL(t testing.TB) (dsn string) {
	t.Helper()
	return MySQLWithDefaults(t, "")
}

// Latin1 is the database options of a server configured the old way:
// latin1 and a case-insensitive, trailing-space-ignoring collation. Tables
// that do not state their own character set and collation take these.
const Latin1 = "CHARACTER SET latin1 COLLATE latin1_swedish_ci"

// MySQLWithDefaults is MySQL for a database created with options, such as
// Latin1, after CREATE DATABASE name (its default character set and
// collation); "" is the server's defaults.
func MySQLWithDefaults(t testing.TB, options string) (dsn string) {
	t.Helper()
	cfg, err := mysql.ParseDSN(MySQLDSN(t))
	if err != nil {
		t.Fatalf("parse %s: %v", EnvMySQLDSN, err)
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "madang_t_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name + " " + options); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	cfg.DBName = name
	cfg.ParseTime = true
	return cfg.FormatDSN()
}

// MySQLMaxOpenConns bounds the pool OpenMySQL returns. Test packages run
// in parallel against one MariaDB (151 connections by default); a test
// with a hundred concurrent goroutines on an unbounded pool would take most
// of them and make other packages' tests fail with "Too many connections".
const MySQLMaxOpenConns = 16

// OpenMySQL is MySQL plus sql.Open with at most MySQLMaxOpenConns
// connections, closed when the test ends.
func OpenMySQL(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(MySQLMaxOpenConns)
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatalf("ping MariaDB: %v", err)
	}
	return db
}

// Backend is a database a conformance suite runs against.
type Backend struct {
	Name string
	// Open returns a fresh, empty database for one test.
	Open func(t testing.TB) *sql.DB
}

// Backends returns SQLite, and MariaDB when MADANG_MYSQL_DSN is set (in CI it
// must be). Suites loop over it with t.Run(b.Name, ...).
func Backends() []Backend {
	out := []Backend{{Name: "sqlite", Open: func(t testing.TB) *sql.DB { return SQLite(t, "db") }}}
	out = append(out, Backend{Name: "mariadb", Open: OpenMySQL})
	return out
}

// String implements fmt.Stringer for test names.
func (b Backend) String() string { return fmt.Sprintf("testdb.%s", b.Name) }
