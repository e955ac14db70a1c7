package shardtest_test

import (
	"context"
	"database/sql"
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/madang-io/madang/shard/shardtest"
)

// A private MariaDB answers with the extra arguments applied; a committed
// row survives kill -9 and Restart (InnoDB recovery, same port); a frozen
// server answers nothing until Thaw; after Kill it answers nothing.
func TestPrivateMySQL(t *testing.T) {
	ctx := context.Background()
	m := shardtest.PrivateMySQL(t, "--max-connections=77", "--skip-log-bin")
	db, err := sql.Open("mysql", m.DSN("")+"?timeout=2s&readTimeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var maxConns int
	if err := db.QueryRow("SELECT @@max_connections").Scan(&maxConns); err != nil || maxConns != 77 {
		t.Fatalf("the extra arguments were not applied: max_connections %d, %v", maxConns, err)
	}
	for _, q := range []string{"CREATE DATABASE k", "CREATE TABLE k.t (id INT PRIMARY KEY) ENGINE=InnoDB", "INSERT INTO k.t VALUES (1)"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	addr, pid := m.Addr(), m.PID()
	m.Kill()
	if err := m.Ping(ctx); err == nil {
		t.Fatal("the server answers after Kill")
	}
	if err := m.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if m.Addr() != addr || m.PID() == pid {
		t.Fatalf("after Restart: %s pid %d, before %s pid %d", m.Addr(), m.PID(), addr, pid)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM k.t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("the committed row after kill -9 and Restart: %d, %v", n, err)
	}

	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	err = m.Ping(pctx)
	cancel()
	if err == nil {
		t.Fatal("a frozen server answered")
	}
	if err := m.Thaw(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT COUNT(*) FROM k.t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("after Thaw: %d, %v", n, err)
	}
	m.Kill()
	m.Kill()
	if err := m.Ping(ctx); err == nil {
		t.Fatal("the server answers after Kill")
	}
}

// Bad configurations and missing binaries are errors, not panics or
// skips.
func TestStartMariaDBServerErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := shardtest.StartMariaDBServer(ctx, shardtest.MariaDBServerConfig{}); err == nil {
		t.Fatal("no Dir: no error")
	}
	if _, err := shardtest.StartMariaDBServer(ctx, shardtest.MariaDBServerConfig{Dir: t.TempDir(), Port: 70000}); err == nil {
		t.Fatal("port 70000: no error")
	}
	_, err := shardtest.StartMariaDBServer(ctx, shardtest.MariaDBServerConfig{Dir: t.TempDir(), Bin: filepath.Join(t.TempDir(), "no-mariadbd")})
	if !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("missing binary: %v, want exec.ErrNotFound", err)
	}
}
