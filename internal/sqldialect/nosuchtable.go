package sqldialect

import (
	"errors"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// mysqlNoSuchTable is MySQL's ER_NO_SUCH_TABLE.
const mysqlNoSuchTable = 1146

// IsNoSuchTable reports whether err says a table does not exist: MySQL
// error 1146, or SQLite's "no such table" (SQLite reports it with the
// generic SQLITE_ERROR code, so the message is what tells).
func IsNoSuchTable(err error) bool {
	if err == nil {
		return false
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == mysqlNoSuchTable
	}
	var se sqliteCoder
	if errors.As(err, &se) {
		return se.Code()&0xff == 1 && strings.Contains(err.Error(), "no such table")
	}
	return false
}
