package liveops

import (
	"fmt"
	"strings"

	"github.com/madang-io/madang/shard"
)

// sqlDialect is the SQL that differs between the common database's
// dialects (Config.Dialect): the rest of the package's SQL is the same on
// both.
type sqlDialect string

// InsertIgnore starts an INSERT that skips a row whose unique key exists.
func (d sqlDialect) InsertIgnore() string {
	if d == shard.DialectMySQL {
		return "INSERT IGNORE INTO"
	}
	return "INSERT OR IGNORE INTO"
}

// Upsert is the clause after an INSERT's VALUES that sets updateCols from
// the inserted row when a row with the same unique key (keyCols) exists.
func (d sqlDialect) Upsert(keyCols []string, updateCols ...string) string {
	set := make([]string, len(updateCols))
	if d == shard.DialectMySQL {
		for i, c := range updateCols {
			// VALUES() is deprecated in MySQL 8.0.20 but is the one
			// form both MySQL and MariaDB accept.
			set[i] = fmt.Sprintf("%s = VALUES(%s)", c, c)
		}
		return " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
	}
	for i, c := range updateCols {
		set[i] = fmt.Sprintf("%s = excluded.%s", c, c)
	}
	return fmt.Sprintf(" ON CONFLICT(%s) DO UPDATE SET %s", strings.Join(keyCols, ", "), strings.Join(set, ", "))
}
