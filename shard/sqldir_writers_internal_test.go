package shard

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// The common database's writes (registrations, allocations) take a place
// in the SQLDirectory's writer queue: while another writer holds it they
// wait, and past SQLiteWriteWait they fail unavailable (retryable), the
// account not written. Reads do not queue.
func TestDirectoryWritersQueue(t *testing.T) {
	ctx := context.Background()
	common, err := OpenSQLite(SQLiteDSN(filepath.Join(t.TempDir(), "common.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer common.Close()
	if _, err := Migrate(ctx, common, DirectoryMigrations()); err != nil {
		t.Fatal(err)
	}
	dir, err := NewSQLDirectory(ctx, common, SQLDirectoryConfig{SQLiteWriteWait: 30 * time.Millisecond, SQLiteCheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.Add(ctx, Database{ID: 1, Name: "g1", Driver: "sqlite", DSN: "unused", FirstKey: 1e7, LastKey: 2e7 - 1}); err != nil {
		t.Fatal(err)
	}
	acc := NewAccounts(dir, AccountsConfig{})
	id := Identity{Platform: "guest", ID: "dev"}
	release, err := dir.lite.queue(ctx, 0) // another writer holds the place
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = acc.Register(ctx, id)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "writer queue") {
		t.Fatalf("register while the queue is held: %v", err)
	}
	if _, ok, err := acc.Lookup(ctx, id); err != nil || ok {
		t.Fatalf("lookup while the queue is held: %v %v (reads must not queue; the account must not exist)", ok, err)
	}
	if s := dir.Stats(); s.SQLiteWriterWaits == 0 || s.SQLiteWriterTimeouts == 0 {
		t.Fatalf("stats %+v", s)
	}
	release()
	if _, created, err := acc.Register(ctx, id); err != nil || !created {
		t.Fatalf("register after the queue is free: %v %v", created, err)
	}
}
