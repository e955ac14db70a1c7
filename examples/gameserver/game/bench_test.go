package game_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
	"github.com/madang-io/madang/shard/shardtest"
)

// BenchmarkShopBuyMariaDB buys potion_pack through the game's mux (the
// idempotency key row and answer, the router's transaction, the game's
// statements; no transport, no sessions), 16 players at once, on a private
// mariadbd: "returning" with MariaDB's one-statement upsert … RETURNING of
// the player row, "mysql-path" with MySQL's lock, update (Config.MariaDB
// false), both with the router's pipelined pools (shard.OpenMySQL), and
// "unpipelined": returning with shard.Config.NoMySQLPipelining (BEGIN,
// each statement and COMMIT a round trip), each on a database of its own
// on the same server. Besides the
// time per purchase it reports, per purchase, the private server's CPU
// (mariadbd-µs/op, from /proc), the benchmark process's (game-µs/op: the
// game, the idempotency store, the driver) and the server's statements
// (Questions, from SHOW GLOBAL STATUS: BEGIN and COMMIT included) and the
// round trips (command packets counted on the wire). The three take turns,
// three rounds, each round starting with the next, after 500 purchases
// each to warm the server.
func BenchmarkShopBuyMariaDB(b *testing.B) {
	srv := shardtest.PrivateMySQL(b, "--skip-log-bin", "--max-connections=200")
	admin, err := sql.Open("mysql", srv.DSN(""))
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	ctx := context.Background()
	type path struct {
		name    string
		mariaDB bool
		noPipe  bool
		r       *rig
		users   []int64
	}
	paths := []*path{{name: "returning", mariaDB: true}, {name: "unpipelined", mariaDB: true, noPipe: true}, {name: "mysql-path"}}
	for _, p := range paths {
		name := "bench_" + strings.ToLower(rand.Text()[:10])
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
			b.Fatal(err)
		}
		dsn := wireCountedDSN(b, srv.DSN(name))
		be := backend{p.name, shard.DialectMySQL, func(testing.TB) (string, string) { return "mysql", dsn }}
		p.r = newRigRouter(b, be, shard.Config{NoMySQLPipelining: p.noPipe}, func(common *sql.DB, cfg *game.Config) { cfg.MariaDB = &p.mariaDB })
		for i := range 16 {
			p.users = append(p.users, p.r.login(fmt.Sprintf("bench-%d", i)))
		}
		common, err := sql.Open("mysql", dsn)
		if err != nil {
			b.Fatal(err)
		}
		_, err = common.ExecContext(ctx, "UPDATE players SET gems = 1000000000000")
		common.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	buy := func(p *path, n int) (failed int64) {
		var done, fails atomic.Int64
		var wg sync.WaitGroup
		for i := range p.users {
			wg.Go(func() {
				u := p.users[i]
				for done.Add(1) <= int64(n) {
					if resp := p.r.do(u, game.CmdShopBuy, "", game.Buy{ItemID: "potion_pack"}, nil); resp.Code != protocol.CodeOK {
						fails.Add(1)
					}
				}
			})
		}
		wg.Wait()
		return fails.Load()
	}
	for _, p := range paths {
		if n := buy(p, 500); n > 0 {
			b.Fatalf("%s: %d of the warm-up's purchases failed", p.name, n)
		}
	}
	for round := range 3 {
		for i := range paths {
			p := paths[(i+round)%len(paths)]
			benchPath(b, p.name, srv, admin, func(n int) int64 { return buy(p, n) })
		}
	}
}

// benchPath runs buy(b.N) as sub-benchmark name and reports the private
// server's CPU, the process's own and the statements per purchase.
func benchPath(b *testing.B, name string, srv *shardtest.MariaDBServer, admin *sql.DB, buy func(n int) (failed int64)) {
	b.Run(name, func(b *testing.B) {
		q0, w0 := questions(b, admin), wire.Load()
		cpu0, self0 := procCPUTicks(b, srv.PID()), procCPUTicks(b, os.Getpid())
		b.ResetTimer()
		failed := buy(b.N)
		b.StopTimer()
		cpu, self := procCPUTicks(b, srv.PID())-cpu0, procCPUTicks(b, os.Getpid())-self0
		w := wire.Load() - w0
		q := questions(b, admin) - q0 - 1 // less the status query's own
		if failed > 0 {
			b.Fatalf("%d purchases failed", failed)
		}
		b.ReportMetric(float64(cpu)*1e4/float64(b.N), "mariadbd-µs/op") // ticks of 10 ms
		b.ReportMetric(float64(self)*1e4/float64(b.N), "game-µs/op")
		b.ReportMetric(float64(q)/float64(b.N), "statements/op")
		b.ReportMetric(float64(w)/float64(b.N), "round-trips/op")
	})
}

// procCPUTicks is the user + system CPU time of process pid, in clock
// ticks (1/100 s).
func procCPUTicks(b *testing.B, pid int) int64 {
	b.Helper()
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command's closing parenthesis: state is field 3,
	// utime 14, stime 15.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, raw)
	}
	return ut + st
}

// questions is the server's Questions status counter (statements run).
func questions(b *testing.B, db *sql.DB) int64 {
	b.Helper()
	var name string
	var n int64
	if err := db.QueryRowContext(context.Background(), "SHOW GLOBAL STATUS LIKE 'Questions'").Scan(&name, &n); err != nil {
		b.Fatal(err)
	}
	return n
}
