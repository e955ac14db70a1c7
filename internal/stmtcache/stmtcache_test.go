package stmtcache_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/madang-io/madang/internal/sqldialect"
	"github.com/madang-io/madang/internal/stmtcache"
	_ "modernc.org/sqlite"
)

// open returns a pool of one connection (so every statement meets the
// same cache) over a fresh SQLite file, and its connector.
func open(t *testing.T, size, conns int) (*sql.DB, *stmtcache.Connector) {
	t.Helper()
	dsn := sqldialect.SQLiteDSN(filepath.Join(t.TempDir(), "c.db"))
	probe, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	drv := probe.Driver()
	probe.Close()
	c := stmtcache.NewConnector(connector{drv, dsn}, size)
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(conns)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	return db, c
}

type connector struct {
	drv driver.Driver
	dsn string
}

func (c connector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c connector) Driver() driver.Driver                        { return c.drv }

func count(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A statement run again on a connection is the kept one: only its first
// run prepares it. Results are the driver's.
func TestReuse(t *testing.T) {
	db, c := open(t, 8, 1)
	before := c.Stats()
	for i := range 10 {
		if _, err := db.Exec("INSERT INTO t (v) VALUES (?)", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	var v string
	for i := range 10 {
		if err := db.QueryRow("SELECT v FROM t WHERE id = ?", i+1).Scan(&v); err != nil || v != fmt.Sprint(i) {
			t.Fatalf("row %d: %q, %v", i+1, v, err)
		}
	}
	s := c.Stats()
	if s.Misses-before.Misses != 2 || s.Hits-before.Hits != 18 {
		t.Fatalf("stats %+v (before %+v): want 2 more misses and 18 more hits", s, before)
	}
	if err := db.QueryRow("SELECT v FROM t WHERE id = ?", 99).Scan(&v); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("missing row: %v", err)
	}
	// A failing statement leaves the kept one usable.
	if _, err := db.Exec("INSERT INTO t (id, v) VALUES (?, ?)", 1, "dup"); err == nil {
		t.Fatal("duplicate key accepted")
	}
	if _, err := db.Exec("INSERT INTO t (id, v) VALUES (?, ?)", 100, "ok"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db); n != 11 {
		t.Fatalf("%d rows, want 11", n)
	}
}

// While rows of a statement are open, the same text on the same
// connection (a nested query in a transaction) runs without the cache
// instead of resetting the open one.
func TestBusyStatementNotShared(t *testing.T) {
	db, c := open(t, 8, 1)
	for i := range 5 {
		if _, err := db.Exec("INSERT INTO t (v) VALUES (?)", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const q = "SELECT id FROM t WHERE id >= ? ORDER BY id"
	outer, err := tx.Query(q, 1)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for outer.Next() {
		var id int
		if err := outer.Scan(&id); err != nil {
			t.Fatal(err)
		}
		n := 0
		inner, err := tx.Query(q, id)
		if err != nil {
			t.Fatal(err)
		}
		for inner.Next() {
			n++
		}
		if err := inner.Close(); err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	outer.Close()
	if fmt.Sprint(got) != "[5 4 3 2 1]" {
		t.Fatalf("nested counts %v, want [5 4 3 2 1]", got)
	}
	if c.Stats().Busy != 5 {
		t.Fatalf("stats %+v: want 5 busy", c.Stats())
	}
}

// The cache holds at most size statements: the least recently used are
// finalized to make room, and running them again prepares them again.
func TestEviction(t *testing.T) {
	db, c := open(t, 2, 1)
	for round := range 3 {
		for i := range 4 {
			var n int
			if err := db.QueryRow(fmt.Sprintf("SELECT COUNT(*) + %d FROM t", i)).Scan(&n); err != nil || n != i {
				t.Fatalf("round %d query %d: %d, %v", round, i, n, err)
			}
		}
	}
	s := c.Stats()
	if s.Evictions < 10 || s.Hits != 0 {
		t.Fatalf("stats %+v: 4 statements cycling through 2 places must all be evicted", s)
	}
}

// A cancelled query and a schema change made on another connection leave
// the kept statements usable; many goroutines share the pool.
func TestCancelSchemaConcurrency(t *testing.T) {
	db, _ := open(t, 4, 4)
	for i := range 50 {
		if _, err := db.Exec("INSERT INTO t (v) VALUES (?)", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	rows, err := db.QueryContext(ctx, "SELECT id FROM t")
	if err != nil {
		t.Fatal(err)
	}
	rows.Next()
	cancel()
	for rows.Next() {
	}
	rows.Close()
	for i := range 4 { // kept on the pool's connections before the change
		var id int
		var v string
		if err := db.QueryRow("SELECT * FROM t WHERE id = ?", i+1).Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec("ALTER TABLE t ADD COLUMN w INTEGER NOT NULL DEFAULT 7"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				var id, w int
				if err := db.QueryRow("SELECT * FROM t WHERE id = ?", i+1).Scan(&id, new(string), &w); err != nil || id != i+1 || w != 7 {
					errs <- fmt.Errorf("goroutine %d row %d: %d %d %v", g, i+1, id, w, err)
					return
				}
				if _, err := db.Exec("UPDATE t SET w = w WHERE id = ?", i+1); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
