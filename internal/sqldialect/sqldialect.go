// Package sqldialect holds what differs between the SQL databases madang's
// stores run on — MySQL/MariaDB (also Vitess vtgate) and SQLite — so the
// stores themselves (shard, idempotency, anticheat) write one code path.
//
// Both dialects take '?' placeholders. What differs: upsert and insert-ignore
// syntax, row locks (SQLite locks the whole database for a write transaction,
// so there is no FOR UPDATE), advisory locks (MariaDB GET_LOCK; SQLite needs
// none because its writers are serialised), and how errors say "duplicate
// key" or "try again".
//
// The package does not import the SQLite driver: library packages stay on
// the card's dependencies. SQLite errors are recognised through the Code()
// method modernc.org/sqlite's errors have.
package sqldialect

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// Dialect is one SQL database family.
type Dialect interface {
	// Name is "mysql" or "sqlite".
	Name() string
	// InsertIgnore returns the statement prefix that inserts a row unless it
	// would violate a unique key: "INSERT IGNORE INTO" or "INSERT OR IGNORE
	// INTO".
	InsertIgnore() string
	// Upsert returns the clause after an INSERT's VALUES that updates the
	// listed columns from the inserted values when a row with the same key
	// already exists. keyCols names the conflicting unique key (SQLite needs
	// it; MySQL ignores it).
	Upsert(keyCols []string, updateCols ...string) string
	// ForUpdate is the row-lock suffix of a SELECT inside a transaction: " FOR
	// UPDATE" on MySQL, "" on SQLite (whose write transactions lock the whole
	// database when the DSN sets _txlock=immediate).
	ForUpdate() string
	// AutoIncrementPK is the column type of a 64-bit auto-increment primary key.
	AutoIncrementPK() string
	// Lock takes a named advisory lock on conn, waiting at most timeout, and
	// returns its release. Lock holders must use the same *sql.Conn until
	// they release it.
	Lock(ctx context.Context, conn *sql.Conn, name string, timeoutSeconds int) (release func() error, err error)
}

// Errors the dialects classify.
var (
	// ErrLockTimeout is returned by Lock when the lock was not granted in time.
	ErrLockTimeout = errors.New("sqldialect: advisory lock not granted in time")
)

// MySQL is the MySQL/MariaDB dialect (go-sql-driver/mysql).
var MySQL Dialect = mysqlDialect{}

// SQLite is the SQLite dialect (modernc.org/sqlite).
var SQLite Dialect = sqliteDialect{}

// Of returns the dialect db's driver announces by its type alone:
// go-sql-driver/mysql, a driver whose type name contains "sqlite"
// (modernc.org/sqlite), or one of those found by following Unwrap()
// driver.Driver methods of wrapping drivers. It does no I/O; Detect also
// asks the database.
func Of(db *sql.DB) (Dialect, error) {
	if d := ofDriver(db.Driver()); d != nil {
		return d, nil
	}
	return nil, fmt.Errorf("sqldialect: unsupported driver %T", db.Driver())
}

// maxUnwrap bounds the chain of wrapping drivers Of follows.
const maxUnwrap = 16

// ofDriver returns the dialect of drv or of a driver it wraps, or nil.
func ofDriver(drv driver.Driver) Dialect {
	for range maxUnwrap {
		switch {
		case drv == nil:
			return nil
		case isMySQLDriver(drv):
			return MySQL
		case strings.Contains(strings.ToLower(fmt.Sprintf("%T", drv)), "sqlite"):
			return SQLite
		}
		u, ok := drv.(interface{ Unwrap() driver.Driver })
		if !ok {
			return nil
		}
		drv = u.Unwrap()
	}
	return nil
}

// Detect returns db's dialect: Of's answer when the driver's type tells
// (also through Unwrap() driver.Driver), otherwise the database's own
// answer on one connection — SELECT sqlite_version() succeeds only on
// SQLite, SELECT VERSION() answers a version number on MySQL, MariaDB and
// Vitess. So a driver wrapped by instrumentation (otelsql and the like)
// is recognised too. An error getting a connection is returned as it is
// (the database may be down); a database that answers neither is an
// unsupported one.
func Detect(ctx context.Context, db *sql.DB) (Dialect, error) {
	if d := ofDriver(db.Driver()); d != nil {
		return d, nil
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqldialect: detect dialect of driver %T: %w", db.Driver(), err)
	}
	defer conn.Close()
	var v string
	lerr := conn.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&v)
	if lerr == nil {
		return SQLite, nil
	}
	merr := conn.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v)
	if merr == nil && v != "" && '0' <= v[0] && v[0] <= '9' {
		// MySQL "8.0.36", MariaDB "11.4.2-MariaDB", Vitess "8.0.30-Vitess";
		// PostgreSQL's version() starts with its name.
		return MySQL, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqldialect: detect dialect of driver %T: %w", db.Driver(), err)
	}
	if merr == nil {
		merr = fmt.Errorf("version %q", v)
	}
	return nil, fmt.Errorf("sqldialect: unsupported driver %T (neither SQLite: %v; nor MySQL: %v); name the dialect in the config", db.Driver(), lerr, merr)
}

// Resolve returns the dialect called name (ByName), or db's (Detect) when
// name is "".
func Resolve(ctx context.Context, db *sql.DB, name string) (Dialect, error) {
	if name != "" {
		return ByName(name)
	}
	return Detect(ctx, db)
}

func isMySQLDriver(drv any) bool {
	_, ok := drv.(*mysql.MySQLDriver)
	if !ok {
		_, ok = drv.(mysql.MySQLDriver)
	}
	return ok
}

// ByName returns the dialect called name: "mysql" (also "mariadb",
// "vitess") or "sqlite" (also "sqlite3"), in any case. Any other name is an
// error.
func ByName(name string) (Dialect, error) {
	switch strings.ToLower(name) {
	case "mysql", "mariadb", "vitess":
		return MySQL, nil
	case "sqlite", "sqlite3":
		return SQLite, nil
	}
	return nil, fmt.Errorf("sqldialect: unknown dialect %q (want \"mysql\" or \"sqlite\")", name)
}

type mysqlDialect struct{}

func (mysqlDialect) Name() string         { return "mysql" }
func (mysqlDialect) InsertIgnore() string { return "INSERT IGNORE INTO" }
func (mysqlDialect) ForUpdate() string    { return " FOR UPDATE" }
func (mysqlDialect) AutoIncrementPK() string {
	return "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY"
}

func (mysqlDialect) Upsert(_ []string, updateCols ...string) string {
	var b strings.Builder
	b.WriteString(" ON DUPLICATE KEY UPDATE ")
	for i, c := range updateCols {
		if i > 0 {
			b.WriteString(", ")
		}
		// VALUES() is deprecated in MySQL 8.0.20 but is the one form both
		// MySQL and MariaDB accept.
		fmt.Fprintf(&b, "%s = VALUES(%s)", c, c)
	}
	return b.String()
}

func (mysqlDialect) Lock(ctx context.Context, conn *sql.Conn, name string, timeoutSeconds int) (func() error, error) {
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", name, timeoutSeconds).Scan(&got); err != nil {
		return nil, fmt.Errorf("sqldialect: GET_LOCK(%q): %w", name, err)
	}
	if !got.Valid || got.Int64 != 1 {
		return nil, fmt.Errorf("%w: %q after %d s", ErrLockTimeout, name, timeoutSeconds)
	}
	return func() error {
		// A fresh context: the release must run even when ctx is done.
		_, err := conn.ExecContext(context.Background(), "SELECT RELEASE_LOCK(?)", name)
		return err
	}, nil
}

type sqliteDialect struct{}

func (sqliteDialect) Name() string            { return "sqlite" }
func (sqliteDialect) InsertIgnore() string    { return "INSERT OR IGNORE INTO" }
func (sqliteDialect) ForUpdate() string       { return "" }
func (sqliteDialect) AutoIncrementPK() string { return "INTEGER PRIMARY KEY AUTOINCREMENT" }

func (sqliteDialect) Upsert(keyCols []string, updateCols ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, " ON CONFLICT(%s) DO UPDATE SET ", strings.Join(keyCols, ", "))
	for i, c := range updateCols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s = excluded.%s", c, c)
	}
	return b.String()
}

// Lock on SQLite takes nothing: one process owns the file's writers, and
// write transactions (with _txlock=immediate) already exclude each other.
func (sqliteDialect) Lock(context.Context, *sql.Conn, string, int) (func() error, error) {
	return func() error { return nil }, nil
}

// MySQL error numbers (server error reference).
const (
	mysqlDupEntry        = 1062
	mysqlLockWaitTimeout = 1205
	mysqlDeadlock        = 1213
)

// SQLite primary result codes.
const (
	sqliteBusy       = 5
	sqliteLocked     = 6
	sqliteConstraint = 19
	// Extended codes of SQLITE_CONSTRAINT for unique and primary keys.
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

// sqliteCoder is the Code method of modernc.org/sqlite's *Error.
type sqliteCoder interface{ Code() int }

// IsDuplicateKey reports whether err is a unique or primary key violation.
func IsDuplicateKey(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == mysqlDupEntry
	}
	var se sqliteCoder
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqliteConstraintUnique || c == sqliteConstraintPrimaryKey
	}
	return false
}

// IsRetryable reports whether a transaction failed only because of
// concurrency — a deadlock or lock wait timeout on MySQL, a busy or locked
// database on SQLite — so running it again from the start may succeed.
func IsRetryable(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == mysqlDeadlock || me.Number == mysqlLockWaitTimeout
	}
	var se sqliteCoder
	if errors.As(err, &se) {
		c := se.Code() & 0xff
		return c == sqliteBusy || c == sqliteLocked
	}
	return false
}

// IsLockWaitTimeout reports whether err is MySQL's lock wait timeout (or
// SQLite's busy timeout): another transaction held the row longer than this
// session was willing to wait.
func IsLockWaitTimeout(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == mysqlLockWaitTimeout
	}
	var se sqliteCoder
	if errors.As(err, &se) {
		return se.Code()&0xff == sqliteBusy
	}
	return false
}

// IsConstraint reports whether err is any constraint violation (unique, not
// null, foreign key, check).
func IsConstraint(err error) bool {
	if IsDuplicateKey(err) {
		return true
	}
	var se sqliteCoder
	if errors.As(err, &se) {
		return se.Code()&0xff == sqliteConstraint
	}
	return false
}
