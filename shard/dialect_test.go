package shard_test

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/madang-io/madang/internal/testdb"
	"github.com/madang-io/madang/shard"
)

var wantDialect = map[string]string{"sqlite": shard.DialectSQLite, "mariadb": shard.DialectMySQL}

// Everything that detects a dialect works on databases behind a wrapping
// driver (as otelsql wraps go-sql-driver/mysql): with an Unwrap method and
// without one (then the database is asked).
func TestWrappedDrivers(t *testing.T) {
	for _, unwrap := range []bool{false, true} {
		for _, b := range testdb.WrappedBackends(unwrap) {
			name := b.Name + "/opaque"
			if unwrap {
				name = b.Name + "/unwrap"
			}
			t.Run(name, func(t *testing.T) { testWrapped(t, b, unwrap) })
		}
	}
}

func testWrapped(t *testing.T, b testdb.Backend, unwrap bool) {
	ctx := t.Context()
	common := b.Open(t)
	if d, err := shard.DetectDialect(ctx, common); err != nil || d != wantDialect[b.Name] {
		t.Fatalf("DetectDialect: %q %v", d, err)
	}
	if _, err := shard.Migrate(ctx, common, shard.DirectoryMigrations()); err != nil {
		t.Fatal(err)
	}
	if st, err := shard.Status(ctx, common, shard.DirectoryMigrations()); err != nil || !st.UpToDate() {
		t.Fatalf("Status: %+v %v", st, err)
	}
	dir, err := shard.NewSQLDirectory(ctx, common, shard.SQLDirectoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	game := shard.Database{ID: 1, Name: "gamedb01", FirstKey: 10_000_000, LastKey: 19_999_999}
	if b.Name == "sqlite" {
		game.Driver, game.DSN = "sqlite", shard.SQLiteDSN(filepath.Join(t.TempDir(), "gamedb01.db"))
	} else {
		game.Driver, game.DSN = "mysql", testdb.MySQL(t)
	}
	if err := dir.Add(ctx, game); err != nil {
		t.Fatal(err)
	}
	router, err := shard.NewRouter(ctx, shard.Config{Directory: dir, Open: func(driver, dsn string) (*sql.DB, error) {
		return testdb.OpenWrapped(driver, dsn, unwrap)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer router.Close()
	gameSchema := shard.Migrations{FS: os.DirFS("testdata/game")}
	sts, err := router.MigrateAll(ctx, gameSchema)
	if err != nil || len(sts) != 1 || !sts[0].Status.UpToDate() || len(sts[0].Applied) != 1 {
		t.Fatalf("MigrateAll: %+v %v", sts, err)
	}
	key, created, err := shard.NewAccounts(dir, shard.AccountsConfig{}).Register(ctx, shard.Identity{Platform: "google", ID: "alice"})
	if err != nil || !created || key != 10_000_000 {
		t.Fatalf("Register: %d %v %v", key, created, err)
	}
	err = router.Tx(ctx, key, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO gold (user_key, amount) VALUES (?, 7)", key)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A named dialect is used as named: no detection, and a wrong name shows.
func TestDialectOverride(t *testing.T) {
	ctx := t.Context()
	lite := testdb.Wrapped(t, "sqlite", shard.SQLiteDSN(filepath.Join(t.TempDir(), "common.db")), false)

	m := shard.DirectoryMigrations()
	m.Dialect = "oracle"
	if _, err := shard.Migrate(ctx, lite, m); !errors.Is(err, shard.ErrInvalid) {
		t.Fatalf("unknown dialect: %v", err)
	}
	if _, err := shard.Status(ctx, lite, m); !errors.Is(err, shard.ErrInvalid) {
		t.Fatalf("unknown dialect: %v", err)
	}
	if _, err := shard.NewSQLDirectory(ctx, lite, shard.SQLDirectoryConfig{Dialect: "oracle"}); !errors.Is(err, shard.ErrInvalid) {
		t.Fatalf("unknown dialect: %v", err)
	}
	// MySQL's DDL on SQLite fails: the name was taken, not detected.
	m.Dialect = shard.DialectMySQL
	if _, err := shard.Migrate(ctx, lite, m); err == nil {
		t.Fatal("MySQL migrations ran on SQLite")
	}
	m.Dialect = shard.DialectSQLite
	if _, err := shard.Migrate(ctx, lite, m); err != nil {
		t.Fatal(err)
	}
	dir, err := shard.NewSQLDirectory(ctx, lite, shard.SQLDirectoryConfig{Dialect: shard.DialectMySQL})
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.Add(ctx, shard.Database{ID: 1, Name: "g", Driver: "sqlite", DSN: "x", FirstKey: 1, LastKey: 9}); err == nil {
		t.Fatal("directory with MySQL's SQL worked on SQLite")
	} else {
		t.Log(err)
	}

	// A database that cannot be reached: detection fails with the
	// connection's error; a named dialect needs no I/O.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	down, err := testdb.OpenWrapped("mysql", "root@tcp("+addr+")/test?timeout=5s", false)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if d, err := shard.DetectDialect(ctx, down); err == nil {
		t.Fatalf("detected %q on a database that is down", d)
	}
	if _, err := shard.NewSQLDirectory(ctx, down, shard.SQLDirectoryConfig{}); err == nil {
		t.Fatal("directory detected a dialect on a database that is down")
	}
	if _, err := shard.NewSQLDirectory(ctx, down, shard.SQLDirectoryConfig{Dialect: shard.DialectMySQL}); err != nil {
		t.Fatal(err)
	}
	if _, err := shard.DetectDialect(ctx, nil); !errors.Is(err, shard.ErrInvalid) {
		t.Fatalf("nil db: %v", err)
	}
}
