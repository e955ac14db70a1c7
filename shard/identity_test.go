package shard_test

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/madang-io/madang/internal/sqldialect"
	"github.com/madang-io/madang/internal/testdb"
	"github.com/madang-io/madang/shard"
)

// identityBackends are the common databases identities are tested on:
// SQLite, MariaDB with the server's defaults, and MariaDB in a database
// whose defaults are latin1 and case-insensitive (tables that took the
// server's collation compared "A" = "a" = "a  " there).
func identityBackends() []testdb.Backend {
	return []testdb.Backend{
		{Name: "sqlite", Open: func(t testing.TB) *sql.DB { return testdb.SQLite(t, "common") }},
		{Name: "mariadb", Open: testdb.OpenMySQL},
		{Name: "mariadb-latin1", Open: func(t testing.TB) *sql.DB { return openMySQL(t, testdb.MySQLWithDefaults(t, testdb.Latin1)) }},
	}
}

func openMySQL(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(testdb.MySQLMaxOpenConns)
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	return db
}

// accountsIn migrates db (the directory migrations in m) and returns its
// accounts, with one game database registered.
func accountsIn(t *testing.T, db *sql.DB, m shard.Migrations) *shard.Accounts {
	t.Helper()
	ctx := context.Background()
	if _, err := shard.Migrate(ctx, db, m); err != nil {
		t.Fatal(err)
	}
	dir, err := shard.NewSQLDirectory(ctx, db, shard.SQLDirectoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if dbs, err := dir.Databases(ctx); err != nil {
		t.Fatal(err)
	} else if len(dbs) == 0 {
		if err := dir.Add(ctx, shard.Database{ID: 1, Name: "g1", Driver: "sqlite", DSN: sqldialect.SQLiteDSN(filepath.Join(t.TempDir(), "g1.db")), FirstKey: 1000, LastKey: 1999}); err != nil {
			t.Fatal(err)
		}
	}
	return shard.NewAccounts(dir, shard.AccountsConfig{})
}

// The identities of the fault run's finding: three spellings of one device
// id are three accounts, and an identity outside latin1 registers, on
// every backend.
func TestAccountsIdentitiesCompareByteForByte(t *testing.T) {
	ids := []shard.Identity{
		{Platform: "guest", ID: "Victim-Device-7F3A"},
		{Platform: "guest", ID: "victim-device-7f3a"},
		{Platform: "guest", ID: "victim-device-7f3a   "},
		{Platform: "guest", ID: " victim-device-7f3a"},
		{Platform: "Guest", ID: "victim-device-7f3a"},
		{Platform: "guest ", ID: "victim-device-7f3a"},
		{Platform: "guest", ID: "📱-device-😀"},
		{Platform: "guest", ID: "café"},
		{Platform: "guest", ID: "cafe"},
		{Platform: "guest", ID: "CAFÉ"},
		{Platform: "guest", ID: "straße"},
		{Platform: "guest", ID: "strasse"},
	}
	for _, b := range identityBackends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			accs := accountsIn(t, b.Open(t), shard.DirectoryMigrations())
			keys := map[int64]shard.Identity{}
			for _, id := range ids {
				k, created, err := accs.Register(ctx, id)
				if err != nil {
					t.Fatalf("register %q/%q: %v", id.Platform, id.ID, err)
				}
				if !created {
					t.Errorf("%q/%q logged into an existing account (%d, %q/%q)", id.Platform, id.ID, k, keys[k].Platform, keys[k].ID)
				}
				keys[k] = id
			}
			for k, id := range keys {
				if got, ok, err := accs.Lookup(ctx, id); err != nil || !ok || got != k {
					t.Errorf("lookup %q/%q: %d %v %v, want %d", id.Platform, id.ID, got, ok, err, k)
				}
				if _, created, err := accs.Register(ctx, id); err != nil || created {
					t.Errorf("register %q/%q again: created %v, %v", id.Platform, id.ID, created, err)
				}
			}
		})
	}
}

// A directory made before 0002 on a latin1, case-insensitive database:
// the migration keeps every account (a latin1 "café" is found as UTF-8
// "café" after it) and from then on identities compare byte for byte.
func TestDirectoryMigrationConvertsLatin1Identities(t *testing.T) {
	ctx := context.Background()
	db := openMySQL(t, testdb.MySQLWithDefaults(t, testdb.Latin1))
	// 0001 alone: the schema of a directory created before 0002.
	full := shard.DirectoryMigrations()
	v1 := fstest.MapFS{}
	body, err := fs.ReadFile(full.FS, "0001_directory.sql")
	if err != nil {
		t.Fatal(err)
	}
	v1["0001_directory.sql"] = &fstest.MapFile{Data: body}
	old := accountsIn(t, db, shard.Migrations{FS: v1, Source: full.Source})
	cafe, _, err := old.Register(ctx, shard.Identity{Platform: "guest", ID: "café"})
	if err != nil {
		t.Fatal(err)
	}
	dev, _, err := old.Register(ctx, shard.Identity{Platform: "guest", ID: "Device-A"})
	if err != nil {
		t.Fatal(err)
	}
	// The finding, before the migration: another spelling is the same
	// account.
	if k, ok, err := old.Lookup(ctx, shard.Identity{Platform: "guest", ID: "device-a  "}); err != nil || !ok || k != dev {
		t.Fatalf("before 0002: lookup of another spelling: %d %v %v (the latin1_swedish_ci setup did not take)", k, ok, err)
	}

	applied, err := shard.Migrate(ctx, db, full)
	if err != nil || len(applied) != 1 || applied[0] != 2 {
		t.Fatalf("migrate to 0002: %v %v", applied, err)
	}
	accs := accountsIn(t, db, full)
	for id, want := range map[string]int64{"café": cafe, "Device-A": dev} {
		if k, ok, err := accs.Lookup(ctx, shard.Identity{Platform: "guest", ID: id}); err != nil || !ok || k != want {
			t.Errorf("after 0002: lookup %q: %d %v %v, want %d", id, k, ok, err, want)
		}
	}
	for _, id := range []string{"device-a", "Device-A  ", "cafe", "📱"} {
		if k, created, err := accs.Register(ctx, shard.Identity{Platform: "guest", ID: id}); err != nil || !created || k == dev || k == cafe {
			t.Errorf("after 0002: register %q: %d created %v, %v", id, k, created, err)
		}
	}
	var typ, coll string
	if err := db.QueryRow("SELECT DATA_TYPE, COALESCE(COLLATION_NAME, '') FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'shard_accounts' AND COLUMN_NAME = 'external_id'").Scan(&typ, &coll); err != nil || typ != "varbinary" {
		t.Errorf("shard_accounts.external_id: %q %q %v, want varbinary", typ, coll, err)
	}
	if err := db.QueryRow("SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'schema_migrations' AND COLUMN_NAME = 'source'").Scan(&coll); err != nil || coll != "utf8mb4_bin" {
		t.Errorf("schema_migrations.source: %q %v, want utf8mb4_bin", coll, err)
	}
}
