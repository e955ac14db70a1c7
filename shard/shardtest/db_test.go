package shardtest_test

import (
	"testing"

	"github.com/madang-io/madang/shard/shardtest"
)

// NewDB gives every call a database of its own that works, with the pool
// bounded on MariaDB.
func TestBackendNewDB(t *testing.T) {
	for _, b := range shardtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			a, other := b.NewDB(t), b.NewDB(t)
			if _, err := a.Exec("CREATE TABLE t (id INT PRIMARY KEY)"); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Exec("INSERT INTO t (id) VALUES (1)"); err != nil {
				t.Fatal(err)
			}
			if _, err := other.Exec("CREATE TABLE t (id INT PRIMARY KEY)"); err != nil {
				t.Fatalf("the second database is not a fresh one: %v", err)
			}
			want := 0 // SQLite: unbounded
			if b.Driver == "mysql" {
				want = shardtest.MySQLMaxOpenConns
			}
			if got := a.Stats().MaxOpenConnections; got != want {
				t.Errorf("MaxOpenConnections %d, want %d", got, want)
			}
		})
	}
}

// MySQLWithDefaults creates the database with the options given.
func TestMySQLWithDefaults(t *testing.T) {
	b := shardtest.MySQL()
	db := b.Open(t, shardtest.MySQLWithDefaults(t, shardtest.Latin1))
	var charset string
	if err := db.QueryRow("SELECT @@character_set_database").Scan(&charset); err != nil {
		t.Fatal(err)
	}
	if charset != "latin1" {
		t.Fatalf("character set %q, want latin1", charset)
	}
}
