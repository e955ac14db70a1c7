package shard_test

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"path/filepath"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/madang-io/madang/internal/sqldialect"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
)

// accountsOn returns the accounts of a fresh SQLite common database.
func accountsOn(t *testing.T) (*shard.Accounts, *sql.DB) {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", sqldialect.SQLiteDSN(filepath.Join(t.TempDir(), "common.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := shard.Migrate(ctx, db, shard.DirectoryMigrations()); err != nil {
		t.Fatal(err)
	}
	dir, err := shard.NewSQLDirectory(ctx, db, shard.SQLDirectoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.Add(ctx, shard.Database{ID: 1, Name: "g1", Driver: "sqlite", DSN: sqldialect.SQLiteDSN(filepath.Join(t.TempDir(), "g1.db")), FirstKey: 1000, LastKey: 1999}); err != nil {
		t.Fatal(err)
	}
	return shard.NewAccounts(dir, shard.AccountsConfig{}), db
}

// The common database gone: Lookup and Register answer ErrUnavailable with
// protocol.CodeUnavailable (retryable), not an internal error.
func TestAccountsCommonDatabaseDownIsUnavailable(t *testing.T) {
	ctx := context.Background()
	accs, db := accountsOn(t)
	id := shard.Identity{Platform: "guest", ID: "dev-1"}
	if _, created, err := accs.Register(ctx, id); err != nil || !created {
		t.Fatalf("register: %v %v", created, err)
	}
	db.Close()
	if _, _, err := accs.Lookup(ctx, id); !errors.Is(err, shard.ErrUnavailable) || protocol.CodeOf(err) != protocol.CodeUnavailable {
		t.Fatalf("lookup with the common database down: %v (code %v)", err, protocol.CodeOf(err))
	}
	if _, _, err := accs.Register(ctx, shard.Identity{Platform: "guest", ID: "dev-2"}); !errors.Is(err, shard.ErrUnavailable) || protocol.CodeOf(err) != protocol.CodeUnavailable {
		t.Fatalf("register with the common database down: %v (code %v)", err, protocol.CodeOf(err))
	}
	// Bad input stays bad input.
	if _, _, err := accs.Register(ctx, shard.Identity{}); !errors.Is(err, shard.ErrInvalid) {
		t.Fatalf("empty identity: %v", err)
	}
}

// A statement refused by a live database is not unavailability: it stays
// an internal error.
func TestAccountsBrokenSchemaIsNotUnavailable(t *testing.T) {
	ctx := context.Background()
	accs, db := accountsOn(t)
	if _, err := db.Exec("DROP TABLE shard_accounts"); err != nil {
		t.Fatal(err)
	}
	_, _, err := accs.Lookup(ctx, shard.Identity{Platform: "guest", ID: "x"})
	if err == nil || errors.Is(err, shard.ErrUnavailable) || protocol.CodeOf(err) != protocol.CodeInternal {
		t.Fatalf("lookup without the table: %v (code %v)", err, protocol.CodeOf(err))
	}
}

// MariaDB unreachable (a port nobody listens on): unavailable.
func TestAccountsMySQLUnreachableIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.DBName = "tcp", addr, "root", "nothing"
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dir, err := shard.NewSQLDirectory(t.Context(), db, shard.SQLDirectoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	accs := shard.NewAccounts(dir, shard.AccountsConfig{})
	_, _, err = accs.Register(context.Background(), shard.Identity{Platform: "guest", ID: "x"})
	if !errors.Is(err, shard.ErrUnavailable) || protocol.CodeOf(err) != protocol.CodeUnavailable {
		t.Fatalf("register on an unreachable MariaDB: %v (code %v)", err, protocol.CodeOf(err))
	}
}
