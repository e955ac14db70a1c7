package shard_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/madang-io/madang/shard"
)

// The recommended SQLite DSN: every pooled connection gets WAL, the busy
// timeout and immediate write transactions.
func ExampleSQLiteDSN() {
	dir, _ := os.MkdirTemp("", "sqlite-dsn")
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", shard.SQLiteDSN(filepath.Join(dir, "common.db")))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	var journal string
	var busy int
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&journal); err != nil {
		fmt.Println(err)
		return
	}
	if err := db.QueryRow("PRAGMA busy_timeout").Scan(&busy); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(journal, busy)
	// Output: wal 5000
}

// tracing stands for an instrumentation wrapper such as otelsql's: its
// type names no database, so DetectDialect asks the database.
type tracing struct{ driver.Driver }

// tracingConnector opens dsn with the wrapped driver.
type tracingConnector struct {
	drv driver.Driver
	dsn string
}

func (c tracingConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c tracingConnector) Driver() driver.Driver                        { return tracing{c.drv} }

// A database behind a wrapping driver: DetectDialect tells the dialect,
// for SQL of your own; shard's constructors detect it the same way, or
// take it in their config (Migrations.Dialect, SQLDirectoryConfig.Dialect,
// and the Dialect fields of the idempotency and anticheat SQL configs).
func ExampleDetectDialect() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "detect-dialect")
	defer os.RemoveAll(dir)
	plain, _ := sql.Open("sqlite", "") // only for its driver
	drv := plain.Driver()
	plain.Close()
	db := sql.OpenDB(tracingConnector{drv: drv, dsn: shard.SQLiteDSN(filepath.Join(dir, "game.db"))})
	defer db.Close()

	dialect, err := shard.DetectDialect(ctx, db)
	if err != nil {
		fmt.Println(err)
		return
	}
	forUpdate := "" // SQLite's write transactions lock the database
	if dialect == shard.DialectMySQL {
		forUpdate = " FOR UPDATE"
	}
	fmt.Printf("%s, %q\n", dialect, forUpdate)

	// Naming the dialect skips the detection.
	m := shard.Migrations{FS: os.DirFS("testdata/game"), Dialect: shard.DialectSQLite}
	applied, err := shard.Migrate(ctx, db, m)
	fmt.Println(applied, err)
	// Output:
	// sqlite, ""
	// [1] <nil>
}
