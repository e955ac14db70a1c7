package game

import (
	"fmt"

	"github.com/madang-io/madang/shard"
)

// sqlDialect is the SQL that differs between the game databases' dialects
// (Config.Dialect): the rest of the game's SQL is the same on both.
type sqlDialect string

// newSQLDialect checks name: shard.DialectMySQL or shard.DialectSQLite.
func newSQLDialect(name string) (sqlDialect, error) {
	switch name {
	case shard.DialectMySQL, shard.DialectSQLite:
		return sqlDialect(name), nil
	}
	return "", fmt.Errorf("game: unknown dialect %q (want %q or %q)", name, shard.DialectMySQL, shard.DialectSQLite)
}

// ForUpdate is the row-lock suffix of a SELECT in a transaction. SQLite
// has none: its write transactions (_txlock=immediate, shard.SQLiteDSN)
// lock the whole database from their start.
func (d sqlDialect) ForUpdate() string {
	if d == shard.DialectMySQL {
		return " FOR UPDATE"
	}
	return ""
}

// InsertIgnore starts an INSERT that skips a row whose unique key exists.
func (d sqlDialect) InsertIgnore() string {
	if d == shard.DialectMySQL {
		return "INSERT IGNORE INTO"
	}
	return "INSERT OR IGNORE INTO"
}
