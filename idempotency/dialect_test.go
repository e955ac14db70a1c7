package idempotency_test

import (
	"path/filepath"
	"testing"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/idempotency/idempotencytest"
	"github.com/madang-io/madang/internal/testdb"
	"github.com/madang-io/madang/shard"
)

// The SQL store works on databases behind a wrapping driver whose type
// tells nothing (as otelsql wraps go-sql-driver/mysql): the dialect is
// found by asking the database.
func TestSQLStoreWrappedDriver(t *testing.T) {
	for _, b := range testdb.WrappedBackends(false) {
		t.Run(b.Name, func(t *testing.T) {
			newDoer := func(t testing.TB, cfg idempotency.Config) idempotency.Doer {
				return sqlStore(t, b.Open(t), cfg)
			}
			idempotencytest.RunDoerTests(t, newDoer, idempotencytest.Options{BusyIsUnavailable: b.Name == "sqlite"})
		})
	}
}

// SQLConfig.Dialect is used as named, and an unknown name is an error.
func TestSQLStoreDialectOverride(t *testing.T) {
	ctx := t.Context()
	db := testdb.Wrapped(t, "sqlite", shard.SQLiteDSN(filepath.Join(t.TempDir(), "game.db")), false)
	if _, err := idempotency.NewSQLStore(ctx, db, idempotency.SQLConfig{Dialect: "oracle"}); err == nil {
		t.Fatal("unknown dialect accepted")
	}
	// MySQL's DDL on SQLite fails: the name was taken, not detected.
	no := false
	s, err := idempotency.NewSQLStore(ctx, db, idempotency.SQLConfig{Dialect: shard.DialectMySQL, MariaDB: &no})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx, db); err == nil {
		t.Fatal("MySQL's table created on SQLite")
	}
	s, err = idempotency.NewSQLStore(ctx, db, idempotency.SQLConfig{Dialect: shard.DialectSQLite})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
}
