package server

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/shard/shardtest"
)

// identityColumns are the columns holding identities and keys that come
// from outside the server: compared byte for byte (VARBINARY), never with
// a collation (utf8mb4_bin still ignores trailing spaces: PAD SPACE).
var identityColumns = []string{
	"shard_accounts.platform", "shard_accounts.external_id",
	"anticheat_redemptions.store", "anticheat_redemptions.transaction_id",
	"purchases.store", "purchases.transaction_id",
	"mails.mail_key", "dungeon_runs.run_id",
	"idempotency_keys.command", "idempotency_keys.request_id",
	"iap_pending.receipt_sha256", "iap_pending.request_id",
}

// The game server on a MariaDB whose defaults are latin1 and
// case-insensitive (common and game databases): device ids that differ in
// case or trailing spaces are different players, an emoji device id plays,
// and no table or column the server created took the server's character
// set or collation.
func TestLatin1ServerIdentitiesAndCharsets(t *testing.T) {
	dsn := shardtest.MySQLWithDefaults(t, shardtest.Latin1)
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	common := mc.DBName
	mc.DBName = ""
	admin, err := sql.Open("mysql", mc.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	// The game databases exist already with the same defaults, as on a
	// server configured for latin1 (the server creates missing ones with
	// utf8mb4_bin).
	dropGameDBs(t, dsn, EmbeddedGameDBs)
	schemas := []string{common}
	for i := 1; i <= EmbeddedGameDBs; i++ {
		name := fmt.Sprintf("%s_gamedb%02d", common, i)
		if _, err := admin.Exec("CREATE DATABASE " + name + " " + shardtest.Latin1); err != nil {
			t.Fatal(err)
		}
		schemas = append(schemas, name)
	}
	// Tables the server creates in Go, as older versions created them
	// (no character set: latin1 here); the server converts them.
	for _, stmt := range []string{
		"CREATE TABLE %s.schema_migrations (source VARCHAR(64) NOT NULL, version BIGINT NOT NULL, dirty INT NOT NULL DEFAULT 0, applied_at BIGINT NOT NULL, PRIMARY KEY (source, version))",
		"CREATE TABLE %s.gamedata_published (seq BIGINT NOT NULL PRIMARY KEY, version VARCHAR(32) NOT NULL, published_at BIGINT NOT NULL, rolled_back_at BIGINT NOT NULL DEFAULT 0)",
		"CREATE TABLE %s.gamedata_client_versions (client_version VARCHAR(64) NOT NULL PRIMARY KEY, data_version VARCHAR(32) NOT NULL, updated_at BIGINT NOT NULL)",
	} {
		if _, err := admin.Exec(fmt.Sprintf(stmt, common)); err != nil {
			t.Fatal(err)
		}
	}
	base, _ := startServerOn(t, Config{Dev: true, XORKey: testXORKey, MySQLDSN: dsn, LiveOpsPoll: -1, DataDir: filepath.Join(t.TempDir(), "data")})

	devices := []string{"Victim-Device-7F3A", "victim-device-7f3a", "victim-device-7f3a   ", "📱🎮-device", "café", "cafe"}
	users := map[int64]string{}
	for _, d := range devices {
		c, _ := newClient(t, base)
		res := login(t, c, d)
		if !res.NewUser {
			t.Errorf("device %q logged into %q's account %d", d, users[res.UserKey], res.UserKey)
		}
		users[res.UserKey] = d
		if p := load(t, c); p.UserKey != res.UserKey {
			t.Errorf("device %q: loaded %+v", d, p)
		}
		// Store transaction ids differing in case only are two purchases.
		for _, order := range []string{"Order-" + fmt.Sprint(res.UserKey), "order-" + fmt.Sprint(res.UserKey)} {
			var got game.IAPResult
			if _, err := c.Call(context.Background(), game.CmdShopBuyIAP, game.BuyIAP{ProductID: "gems_100", Platform: "ios", Receipt: "dev-receipt:" + order + ":gems_100"}, &got); err != nil || !got.Granted {
				t.Errorf("device %q, order %s: %+v %v", d, order, got, err)
			}
		}
	}
	// A second login finds each device's own account.
	for k, d := range users {
		c, _ := newClient(t, base)
		if res := login(t, c, d); res.NewUser || res.UserKey != k {
			t.Errorf("device %q again: user %d new %v, want %d", d, res.UserKey, res.NewUser, k)
		}
	}
	auditCharsets(t, admin, schemas)
}

// auditCharsets checks every table and column in schemas: tables and
// character columns utf8mb4 with utf8mb4_bin, identity columns VARBINARY.
func auditCharsets(t *testing.T, db *sql.DB, schemas []string) {
	t.Helper()
	in := "'" + strings.Join(schemas, "','") + "'"
	rows, err := db.Query("SELECT TABLE_SCHEMA, TABLE_NAME, COALESCE(TABLE_COLLATION, '') FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (" + in + ")")
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]bool{}
	for rows.Next() {
		var schema, table, coll string
		if err := rows.Scan(&schema, &table, &coll); err != nil {
			t.Fatal(err)
		}
		tables[table] = true
		if coll != "utf8mb4_bin" {
			t.Errorf("table %s.%s: collation %q, want utf8mb4_bin", schema, table, coll)
		}
	}
	rows.Close()
	for _, want := range []string{"shard_accounts", "shard_databases", "schema_migrations", "players", "ledger", "mails", "purchases", "idempotency_keys", "anticheat_redemptions", "liveops_events", "gamedata_client_versions", "gamedata_versions"} {
		if !tables[want] {
			t.Errorf("table %s not found (tables: %v)", want, tables)
		}
	}
	rows, err = db.Query("SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COALESCE(CHARACTER_SET_NAME, ''), COALESCE(COLLATION_NAME, '') FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN (" + in + ")")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ident := map[string]bool{}
	for _, c := range identityColumns {
		ident[c] = true
	}
	seen := map[string]bool{}
	n := 0
	for rows.Next() {
		var schema, table, col, typ, cs, coll string
		if err := rows.Scan(&schema, &table, &col, &typ, &cs, &coll); err != nil {
			t.Fatal(err)
		}
		n++
		name := table + "." + col
		if ident[name] {
			seen[name] = true
			if typ != "varbinary" {
				t.Errorf("identity column %s.%s: %s %s %s, want varbinary", schema, name, typ, cs, coll)
			}
			continue
		}
		if cs != "" && (cs != "utf8mb4" || coll != "utf8mb4_bin") {
			t.Errorf("column %s.%s: %s %s %s, want utf8mb4 utf8mb4_bin", schema, name, typ, cs, coll)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, c := range identityColumns {
		if !seen[c] {
			t.Errorf("identity column %s not found", c)
		}
	}
	t.Logf("%d tables, %d columns audited in %d databases", len(tables), n, len(schemas))
}

// The embedded server (SQLite) tells the same device ids apart: its TEXT
// columns compare byte for byte (the BINARY collation, no padding).
func TestEmbeddedIdentitiesCompareByteForByte(t *testing.T) {
	base := startServer(t, Config{Dev: true, XORKey: testXORKey, LiveOpsPoll: -1})
	users := map[int64]string{}
	for _, d := range []string{"Victim-Device-7F3A", "victim-device-7f3a", "victim-device-7f3a   ", "📱🎮-device"} {
		c, _ := newClient(t, base)
		res := login(t, c, d)
		if !res.NewUser {
			t.Errorf("device %q logged into %q's account %d", d, users[res.UserKey], res.UserKey)
		}
		users[res.UserKey] = d
	}
}
