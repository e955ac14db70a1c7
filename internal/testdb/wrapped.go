package testdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"path/filepath"
	"testing"
)

// wrappedDriver forwards to a real driver the way instrumentation wrappers
// (OpenTelemetry's otelsql) do: its type names neither MySQL nor SQLite,
// so only the database itself can tell the dialect.
type wrappedDriver struct{ drv driver.Driver }

func (w wrappedDriver) Open(name string) (driver.Conn, error) { return w.drv.Open(name) }

// unwrappingDriver is a wrappedDriver that gives its driver away.
type unwrappingDriver struct{ wrappedDriver }

func (u unwrappingDriver) Unwrap() driver.Driver { return u.drv }

// connector opens dsn with drv and reports drv as the *sql.DB's driver.
type connector struct {
	dsn string
	drv driver.Driver
	raw driver.Driver
}

func (c connector) Connect(context.Context) (driver.Conn, error) { return c.raw.Open(c.dsn) }
func (c connector) Driver() driver.Driver                        { return c.drv }

// OpenWrapped opens dsn with the driver registered as driverName
// ("sqlite", "mysql") behind a wrapping driver, as an instrumented
// application does (it fits shard.Config.Open). With unwrap the wrapper
// has an Unwrap() driver.Driver method; without, nothing but a query tells
// what is behind it.
func OpenWrapped(driverName, dsn string, unwrap bool) (*sql.DB, error) {
	probe, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, err
	}
	raw := probe.Driver()
	probe.Close()
	var drv driver.Driver = wrappedDriver{raw}
	if unwrap {
		drv = unwrappingDriver{wrappedDriver{raw}}
	}
	return sql.OpenDB(connector{dsn: dsn, drv: drv, raw: raw}), nil
}

// Wrapped is OpenWrapped plus a ping, closed when the test ends.
func Wrapped(t testing.TB, driverName, dsn string, unwrap bool) *sql.DB {
	t.Helper()
	db, err := OpenWrapped(driverName, dsn, unwrap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	return db
}

// WrappedBackends is Backends with each database opened through Wrapped.
func WrappedBackends(unwrap bool) []Backend {
	return []Backend{
		{Name: "sqlite", Open: func(t testing.TB) *sql.DB {
			return Wrapped(t, "sqlite", SQLiteDSN(filepath.Join(t.TempDir(), "db.db")), unwrap)
		}},
		{Name: "mariadb", Open: func(t testing.TB) *sql.DB {
			db := Wrapped(t, "mysql", MySQL(t), unwrap)
			db.SetMaxOpenConns(MySQLMaxOpenConns)
			return db
		}},
	}
}
