package shardtest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/madang-io/madang/shard"
	"github.com/madang-io/madang/shard/shardtest"
)

// A Counter counts statements and round trips, and lists the statements
// and transaction ends in order.
func ExampleCounter() {
	dir, err := os.MkdirTemp("", "counter")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	var c shardtest.Counter
	db, err := c.Open("sqlite", shard.SQLiteDSN(filepath.Join(dir, "db.sqlite")))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY)"); err != nil {
		panic(err)
	}
	tx, err := db.Begin()
	if err != nil {
		panic(err)
	}
	if _, err := tx.Exec("INSERT INTO t (id) VALUES (?)", 1); err != nil {
		panic(err)
	}
	if err := tx.Commit(); err != nil {
		panic(err)
	}
	fmt.Println(c.Statements(), "statements,", c.RoundTrips(), "round trips")
	fmt.Println(strings.Join(c.Take(), " | "))
	// Output:
	// 2 statements, 4 round trips
	// CREATE TABLE t (id INTEGER PRIMARY KEY) | BEGIN | INSERT INTO t (id) VALUES (?) | COMMIT
}

// A prepared statement costs a round trip to prepare and one per
// execution, each execution a statement; a rollback is a round trip.
func TestCounterPrepared(t *testing.T) {
	var c shardtest.Counter
	db, err := c.Open("sqlite", shardtest.SQLite().NewDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	c.Take()
	s0, t0 := c.Statements(), c.RoundTrips()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	st, err := tx.Prepare("INSERT INTO t (id) VALUES (?)")
	if err != nil {
		t.Fatal(err)
	}
	for id := range 2 {
		if _, err := st.Exec(id); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := tx.QueryRow("SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 2 {
		t.Fatalf("count %d, %v", n, err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	// BEGIN, prepare, 2 executions, SELECT, ROLLBACK
	if stmts, trips := c.Statements()-s0, c.RoundTrips()-t0; stmts != 3 || trips != 6 {
		t.Errorf("%d statements, %d round trips, want 3 and 6", stmts, trips)
	}
	want := []string{"BEGIN", "INSERT INTO t (id) VALUES (?)", "INSERT INTO t (id) VALUES (?)", "SELECT COUNT(*) FROM t", "ROLLBACK"}
	if got := c.Take(); !slices.Equal(got, want) {
		t.Errorf("listed %q, want %q", got, want)
	}
	if got := c.Take(); got != nil {
		t.Errorf("a second Take listed %q, want nothing", got)
	}
}
