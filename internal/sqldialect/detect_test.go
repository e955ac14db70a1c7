package sqldialect_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/madang-io/madang/internal/sqldialect"
	"github.com/madang-io/madang/internal/testdb"
)

var wantName = map[string]string{"sqlite": "sqlite", "mariadb": "mysql"}

// A driver wrapped by instrumentation is recognised: through Unwrap
// without I/O, or by asking the database when the wrapper hides it.
func TestDetectWrapped(t *testing.T) {
	for _, unwrap := range []bool{false, true} {
		for _, b := range testdb.WrappedBackends(unwrap) {
			name := b.Name + "/opaque"
			if unwrap {
				name = b.Name + "/unwrap"
			}
			t.Run(name, func(t *testing.T) {
				db := b.Open(t)
				_, err := sqldialect.Of(db)
				if unwrap != (err == nil) {
					t.Fatalf("Of (no I/O) with unwrap=%v: %v", unwrap, err)
				}
				d, err := sqldialect.Detect(t.Context(), db)
				if err != nil {
					t.Fatal(err)
				}
				if d.Name() != wantName[b.Name] {
					t.Fatalf("detected %s", d.Name())
				}
				// An explicit name wins, whatever the database.
				for _, n := range []string{"mysql", "sqlite"} {
					if d, err := sqldialect.Resolve(t.Context(), db, n); err != nil || d.Name() != n {
						t.Fatalf("Resolve %q: %v %v", n, d, err)
					}
				}
				if _, err := sqldialect.Resolve(t.Context(), db, "oracle"); err == nil {
					t.Fatal("unknown name accepted")
				}
			})
		}
	}
}

// failingDriver answers every statement with an error, as a database of
// another kind would answer both probes.
type failingDriver struct{}

func (failingDriver) Open(string) (driver.Conn, error) { return failingConn{}, nil }

type failingConn struct{}

func (failingConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("no such function") }
func (failingConn) Close() error                        { return nil }
func (failingConn) Begin() (driver.Tx, error)           { return nil, errors.New("no") }

type failingConnector struct{}

func (failingConnector) Connect(context.Context) (driver.Conn, error) { return failingConn{}, nil }
func (failingConnector) Driver() driver.Driver                        { return failingDriver{} }

func TestDetectUnsupported(t *testing.T) {
	db := sql.OpenDB(failingConnector{})
	defer db.Close()
	_, err := sqldialect.Detect(t.Context(), db)
	if err == nil || !strings.Contains(err.Error(), "unsupported driver") {
		t.Fatalf("got %v", err)
	}
	if d, err := sqldialect.Resolve(t.Context(), db, "sqlite"); err != nil || d != sqldialect.SQLite {
		t.Fatalf("override: %v %v", d, err)
	}
}

// A wrapped driver whose database cannot be reached gives the connection
// error, not a wrong dialect.
func TestDetectUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	probe, err := sql.Open("mysql", "root@tcp("+addr+")/test?timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	db := sql.OpenDB(rawConnector{dsn: "root@tcp(" + addr + ")/test?timeout=5s", drv: probe.Driver()})
	defer db.Close()
	d, err := sqldialect.Detect(context.Background(), db)
	if err == nil || strings.Contains(err.Error(), "unsupported") {
		t.Fatalf("got %v, %v", d, err)
	}
}

// rawConnector hides drv behind its own type.
type rawConnector struct {
	dsn string
	drv driver.Driver
}

type opaque struct{ driver.Driver }

func (c rawConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c rawConnector) Driver() driver.Driver                        { return opaque{c.drv} }
