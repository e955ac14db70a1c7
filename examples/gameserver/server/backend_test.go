package server

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/session"

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
	c := testredis.Cluster(t)
	cfg := testConfig(t)
	cfg.RedisAddr = ""
	cfg.RedisCluster = os.Getenv(testredis.EnvCluster)
	cfg.RedisPrefix = testredis.Prefix(t, c)
	base, srv := startServerOn(t, cfg)
	if _, ok := srv.sessions.(*session.RedisStore); !ok {
		t.Fatalf("session store %T", srv.sessions)
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
	shared := testredis.Client(t)
	private := startPrivateRedis(t)
	cfg := testConfig(t)
	cfg.RedisAddr = os.Getenv(testredis.EnvAddr) + "," + private.Options().Addr
	cfg.RedisPrefix = testredis.Prefix(t, shared)
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

// startPrivateRedis runs a redis-server of the test's own on a free port.
func startPrivateRedis(t *testing.T) *redis.Client {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("MADANG_CI") != "" {
			t.Fatalf("redis-server not installed, and CI must not skip: %v", err)
		}
		t.Skip("redis-server not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	t.Cleanup(func() { c.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("private redis-server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

// The common database's pool is bounded in MySQL mode, so a login storm
// queues instead of exhausting the MySQL server's connections (the load
// tool once used up all of a shared MariaDB's).
func TestCommonPoolIsBoundedOnMySQL(t *testing.T) {
	testdb.MySQLDSN(t) // MySQL mode only: skips without MADANG_MYSQL_DSN (fails in CI)
	cfg := testConfig(t)
	_, srv := startServerOn(t, cfg)
	if got := srv.store.common.Stats().MaxOpenConnections; got != CommonMaxOpenConns {
		t.Fatalf("common pool limit %d, want %d", got, CommonMaxOpenConns)
	}
}
