package anticheat_test

import (
	"path/filepath"
	"testing"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/anticheat/anticheattest"
	"github.com/madang-io/madang/internal/testdb"
	"github.com/madang-io/madang/shard"
)

// The SQL store works on databases behind a wrapping driver whose type
// tells nothing (as otelsql wraps go-sql-driver/mysql): the dialect is
// found by asking the database.
func TestSQLStoreWrappedDriver(t *testing.T) {
	for _, b := range testdb.WrappedBackends(false) {
		t.Run(b.Name, func(t *testing.T) {
			anticheattest.RunStoreTests(t, func(t *testing.T) anticheat.Store { return newSQLStore(t, b) })
		})
	}
}

// SQLConfig.Dialect is used as named, and an unknown name is an error.
func TestSQLStoreDialectOverride(t *testing.T) {
	ctx := t.Context()
	db := testdb.Wrapped(t, "sqlite", shard.SQLiteDSN(filepath.Join(t.TempDir(), "common.db")), false)
	if _, err := anticheat.NewSQLStore(ctx, db, anticheat.SQLConfig{Dialect: "oracle"}); err == nil {
		t.Fatal("unknown dialect accepted")
	}
	// MySQL's DDL on SQLite fails: the name was taken, not detected.
	s, err := anticheat.NewSQLStore(ctx, db, anticheat.SQLConfig{Dialect: shard.DialectMySQL})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTables(ctx); err == nil {
		t.Fatal("MySQL's tables created on SQLite")
	}
	s, err = anticheat.NewSQLStore(ctx, db, anticheat.SQLConfig{Dialect: shard.DialectSQLite})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTables(ctx); err != nil {
		t.Fatal(err)
	}
}
