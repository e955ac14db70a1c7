package server

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/madang-io/madang/internal/testdb"
	"github.com/madang-io/madang/internal/testredis"
)

// testConfig returns a server configuration on the backends the
// environment names: MariaDB when MADANG_MYSQL_DSN is set (a database with
// a random name, its game databases dropped after the test), Redis when
// MADANG_REDIS_ADDR is set (a random key prefix, its keys deleted after),
// and SQLite and memory otherwise.
func testConfig(t *testing.T) Config {
	t.Helper()
	cfg := Config{XORKey: testXORKey, DataDir: filepath.Join(t.TempDir(), "data"), LiveOpsPoll: -1}
	if os.Getenv(testdb.EnvMySQLDSN) != "" {
		cfg.MySQLDSN = testdb.MySQL(t)
		dropGameDBs(t, cfg.MySQLDSN, EmbeddedGameDBs)
	}
	if os.Getenv(testredis.EnvAddr) != "" {
		c := testredis.Client(t)
		cfg.RedisAddr = os.Getenv(testredis.EnvAddr)
		cfg.RedisPrefix = testredis.Prefix(t, c)
	}
	return cfg
}

// dropGameDBs drops the game databases a server creates next to dsn's
// database when the test ends (after the server closed: cleanups run last
// registered first).
func dropGameDBs(t *testing.T, dsn string, n int) {
	t.Helper()
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	common := mc.DBName
	mc.DBName = ""
	t.Cleanup(func() {
		db, err := sql.Open("mysql", mc.FormatDSN())
		if err != nil {
			t.Error(err)
			return
		}
		defer db.Close()
		for i := 1; i <= n; i++ {
			if _, err := db.Exec(fmt.Sprintf("DROP DATABASE IF EXISTS %s_gamedb%02d", common, i)); err != nil {
				t.Errorf("drop game database: %v", err)
			}
		}
	})
}
