package server

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/session"

	"github.com/madang-io/madang/session/sessiontest"
	"github.com/madang-io/madang/shard/shardtest"
)

// testConfig returns a server configuration on the backends the
// environment names: MariaDB when MADANG_MYSQL_DSN is set (a database with
// a random name, its game databases dropped after the test), Redis when
// MADANG_REDIS_ADDR is set (a random key prefix, its keys deleted after),
// and SQLite and memory otherwise.
func testConfig(t *testing.T) Config {
	t.Helper()
	cfg := Config{XORKey: testXORKey, DataDir: filepath.Join(t.TempDir(), "data"), LiveOpsPoll: -1}
	if os.Getenv(shardtest.EnvMySQLDSN) != "" {
		cfg.MySQLDSN = shardtest.MySQL().NewDSN(t)
		dropGameDBs(t, cfg.MySQLDSN, EmbeddedGameDBs)
	}
	if os.Getenv(sessiontest.EnvRedisAddr) != "" {
		c := sessiontest.Redis(t)
		cfg.RedisAddr = os.Getenv(sessiontest.EnvRedisAddr)
		cfg.RedisPrefix = sessiontest.RedisPrefix(t, c)
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

// playOnce logs a new user in, loads and buys: the game works end to end.
func playOnce(t *testing.T, base, device string) game.LoginResult {
	t.Helper()
	c, _ := newClient(t, base)
	res := login(t, c, device)
	if _, err := c.Call(context.Background(), game.CmdShopBuy, game.Buy{ItemID: "gold_small"}, nil); err != nil {
		t.Fatalf("buy: %v", err)
	}
	if p := load(t, c); p.Gems != game.StartGems-10 {
		t.Fatalf("player %+v", p)
	}
	return res
}

func TestRedisClusterMode(t *testing.T) {
	c := sessiontest.RedisCluster(t)
	cfg := testConfig(t)
	cfg.RedisAddr = ""
	cfg.RedisCluster = os.Getenv(sessiontest.EnvRedisCluster)
	cfg.RedisPrefix = sessiontest.RedisPrefix(t, c)
	base, srv := startServerOn(t, cfg)
	if _, ok := srv.sessionBackend().(*session.RedisStore); !ok {
		t.Fatalf("session store %T", srv.sessionBackend())
	}
	for _, d := range []string{"cl-1", "cl-2", "cl-3"} {
		playOnce(t, base, d)
	}
	// Sessions live in the cluster under the prefix.
	var n atomic.Int64 // ForEachMaster runs the nodes concurrently
	err := c.ForEachMaster(context.Background(), func(ctx context.Context, node *redis.Client) error {
		keys, err := node.Keys(ctx, cfg.RedisPrefix+"*").Result()
		n.Add(int64(len(keys)))
		return err
	})
	if err != nil || n.Load() == 0 {
		t.Fatalf("%d keys under the prefix in the cluster (%v)", n.Load(), err)
	}
}

// Two Redis nodes (the shared one and a private redis-server), users routed
// by user key: each node holds the sessions of its users.
func TestRedisNodesRoutedByUserKey(t *testing.T) {
	shared := sessiontest.Redis(t)
	private := startPrivateRedis(t)
	cfg := testConfig(t)
	cfg.RedisAddr = os.Getenv(sessiontest.EnvRedisAddr) + "," + private.Options().Addr
	cfg.RedisPrefix = sessiontest.RedisPrefix(t, shared)
	base, _ := startServerOn(t, cfg)
	users := map[int64]bool{}
	for i := range 4 {
		users[playOnce(t, base, fmt.Sprintf("node-%d", i)).UserKey] = true
	}
	for u := range users {
		node := shared
		if u%2 == 1 {
			node = private
		}
		keys, err := node.Keys(context.Background(), fmt.Sprintf("%s{u:%d}*", cfg.RedisPrefix, u)).Result()
		if err != nil || len(keys) == 0 {
			t.Errorf("user %d: no keys on node %s (%v)", u, node.Options().Addr, err)
		}
	}
}

// startPrivateRedis runs a redis-server of the test's own
// (sessiontest.PrivateRedis) and returns a client of it.
func startPrivateRedis(t *testing.T) *redis.Client {
	t.Helper()
	addr, _ := sessiontest.PrivateRedis(t)
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// The common database's pool is bounded in MySQL mode, so a login storm
// queues instead of exhausting the MySQL server's connections (the load
// tool once used up all of a shared MariaDB's).
func TestCommonPoolIsBoundedOnMySQL(t *testing.T) {
	shardtest.MySQLDSN(t) // MySQL mode only: skips without MADANG_MYSQL_DSN (fails in CI)
	cfg := testConfig(t)
	_, srv := startServerOn(t, cfg)
	if got := srv.store.common.Stats().MaxOpenConnections; got != CommonMaxOpenConns {
		t.Fatalf("common pool limit %d, want %d", got, CommonMaxOpenConns)
	}
}
