package shard

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/clock"
	"github.com/madang-io/madang/internal/sqldialect"
)

// fakeClockDirectory migrates a directory into db and returns it on a fake
// clock, with one database g1 holding keys 1000-1999.
func fakeClockDirectory(t *testing.T, db *sql.DB) (*SQLDirectory, *clock.Fake) {
	t.Helper()
	ctx := context.Background()
	if _, err := Migrate(ctx, db, DirectoryMigrations()); err != nil {
		t.Fatal(err)
	}
	dir, err := NewSQLDirectory(ctx, db, SQLDirectoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	fake := clock.NewFake(time.Unix(1_800_000_000, 0))
	dir.clock = fake
	if err := dir.Add(ctx, Database{ID: 1, Name: "g1", Driver: "sqlite", DSN: "unused", FirstKey: 1000, LastKey: 1999}); err != nil {
		t.Fatal(err)
	}
	return dir, fake
}

// A block older than KeyBlockMaxAge is dropped: the next registration
// reserves a new block instead of using the old one's keys (which may
// belong to a database an operator closed since).
func TestKeyBlockMaxAge(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", sqldialect.SQLiteDSN(filepath.Join(t.TempDir(), "common.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dir, fake := fakeClockDirectory(t, db)
	a := NewAccounts(dir, AccountsConfig{KeyBlock: 4})
	reg := func(id string) int64 {
		t.Helper()
		k, created, err := a.Register(ctx, Identity{Platform: "guest", ID: id})
		if err != nil || !created {
			t.Fatalf("register %s: %d %v %v", id, k, created, err)
		}
		return k
	}
	if k1, k2 := reg("a"), reg("b"); k1 != 1000 || k2 != 1001 {
		t.Fatalf("first block gave %d, %d", k1, k2)
	}
	fake.Advance(KeyBlockMaxAge)
	if k := reg("c"); k != 1004 {
		t.Fatalf("after KeyBlockMaxAge: key %d, want 1004 (a new block)", k)
	}
	var users int64
	if err := db.QueryRow("SELECT user_count FROM shard_databases WHERE db_id = 1").Scan(&users); err != nil || users != 8 {
		t.Fatalf("user_count %d (%v), want 8: two blocks reserved", users, err)
	}
}

func TestAccountsConfigDefaults(t *testing.T) {
	for _, c := range []struct {
		in                   AccountsConfig
		wantRetries, wantKey int
	}{
		{AccountsConfig{}, 3, 1},
		{AccountsConfig{Retries: -1, KeyBlock: -5}, 3, 1},
		{AccountsConfig{Retries: 7, KeyBlock: 32}, 7, 32},
		{AccountsConfig{KeyBlock: MaxKeyBlock + 1}, 3, MaxKeyBlock},
	} {
		a := NewAccounts(nil, c.in)
		if a.cfg.Retries != c.wantRetries || a.blockSize() != c.wantKey {
			t.Errorf("%+v: retries %d, block %d; want %d, %d", c.in, a.cfg.Retries, a.blockSize(), c.wantRetries, c.wantKey)
		}
	}
}
