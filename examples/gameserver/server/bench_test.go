package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/session/sessiontest"
	"github.com/madang-io/madang/shard"
	"github.com/madang-io/madang/shard/shardtest"
)

// The full-stack benchmark (BENCHMARKS.md, "gameserver: full stack"): the
// same command mix from benchWorkers concurrent players, each request one
// b.N iteration, over three paths in one run:
//
//   - stack: real HTTP on 127.0.0.1 through protocol.Client (XOR frames) to
//     the embedded-mode server (SQLite game databases, memory sessions and
//     board): session middleware, anti-cheat guard, idempotency in the SQL
//     transaction, game logic, ledger;
//   - bare: the same number of HTTP POSTs of a frame-sized body on
//     127.0.0.1 to a net/http handler that reads the body and answers
//     nothing (the transport's ceiling);
//   - db: a Go loop doing the mix's transactions straight on the same kind
//     of SQLite databases (the idempotency key row and result, the game's
//     statements, the board submit), without HTTP, codec or middleware
//     (the database's ceiling).
//
// The mix per player, repeated: player.load, shop.buy, mail.list,
// dungeon.start, dungeon.finish, rank.top (3 of 6 requests write).
//
// With MADANG_REDIS_ADDR and MADANG_MYSQL_DSN set, the same three paths run
// again under "redis-mariadb/" in Redis + MariaDB mode: sessions and the
// board on Redis (a random key prefix), the common and game databases on
// MariaDB (random database names, dropped after); the db loop then runs
// the same transactions on MariaDB (SELECT ... FOR UPDATE and the MySQL
// upsert, as the game does there) and the board on Redis.
const benchWorkers = 8

// benchMix is the command cycle.
var benchMix = []string{game.CmdLoad, game.CmdShopBuy, game.CmdMailList, game.CmdDungeonStart, game.CmdDungeonFinish, game.CmdRankTop}

// benchServe starts srv on a loopback listener until the benchmark ends.
func benchServe(b *testing.B, h http.Handler) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); hs.Serve(ln) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		<-done
	})
	return "http://" + ln.Addr().String()
}

// benchHTTPClient is one keep-alive client for benchWorkers workers.
func benchHTTPClient(b *testing.B) *http.Client {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchWorkers * 2}}
	b.Cleanup(hc.CloseIdleConnections)
	return hc
}

// benchServer builds an embedded-mode server, or with remote a Redis +
// MariaDB one (benchRemoteReady must be true).
func benchServer(b *testing.B, remote bool) *Server {
	b.Helper()
	// No per-user command limit: 8 players at the default 20 commands/s
	// each would cap the stack at 160 req/s (the limiter's answers are
	// retried by the client), whatever the server could do.
	cfg := Config{XORKey: testXORKey, DataDir: filepath.Join(b.TempDir(), "data"), CommandRate: -1}
	if remote {
		cfg.MySQLDSN = shardtest.MySQL().NewDSN(b)
		benchDropGameDBs(b, cfg.MySQLDSN, EmbeddedGameDBs)
		cfg.RedisAddr = os.Getenv(sessiontest.EnvRedisAddr)
		cfg.RedisPrefix = sessiontest.RedisPrefix(b, sessiontest.Redis(b))
	}
	srv, err := New(context.Background(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	return srv
}

// benchClient is a game client of the server at base (benchServe) over hc,
// in XOR mode with the tests' key.
func benchClient(b *testing.B, base string, hc *http.Client) *protocol.Client {
	b.Helper()
	c, err := newBenchClient(base, hc)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// newBenchClient is benchClient for the load generator's own process
// (BenchmarkFullStackApart).
func newBenchClient(base string, hc *http.Client) (*protocol.Client, error) {
	return protocol.NewClient(protocol.ClientConfig{
		Transport: &protocol.HTTPTransport{URL: base + protocol.DefaultHTTPPath, Client: hc},
		Codec:     protocol.Config{XORKey: []byte(testXORKey)}, Mode: protocol.ModeXOR,
	})
}

// benchPlayer logs c in as the guest of deviceID, keeps its session, and
// funds the player (fundPlayer); it returns c.
func benchPlayer(b *testing.B, srv *Server, c *protocol.Client, deviceID string) *protocol.Client {
	b.Helper()
	var res game.LoginResult
	if _, err := c.Call(context.Background(), game.CmdGuestLogin, game.GuestLogin{DeviceID: deviceID, Platform: "android", ClientVersion: "1.0.0.0"}, &res); err != nil {
		b.Fatal(err)
	}
	c.SetSession(res.Token, nil)
	fundPlayer(b, srv, res.UserKey)
	return c
}

func fundPlayer(b *testing.B, srv *Server, userKey int64) {
	b.Helper()
	db, err := srv.store.router.DB(context.Background(), userKey)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec("UPDATE players SET gems = ?, stamina = ? WHERE user_key = ?", int64(1e12), int64(1e12), userKey); err != nil {
		b.Fatal(err)
	}
}

// runWorkers runs b.N requests over benchWorkers goroutines, each calling
// step(worker, i) for its share, and reports requests per second and the
// process CPU time per request (server and load generator share the
// process).
func runWorkers(b *testing.B, step func(w, i int) error) {
	b.Helper()
	runWorkersOn(b, nil, step)
}

// runWorkersOn is runWorkers that also reports, when srv is not nil, the
// idempotency keys released after retryable failures (deadlocks) per
// request: each one cost a retry after a backoff.
func runWorkersOn(b *testing.B, srv *Server, step func(w, i int) error) {
	b.Helper()
	var released0, checks0 uint64
	if srv != nil {
		released0 = srv.store.idem.Stats().Released
		checks0 = srv.sessionBackend().Stats().Validated
	}
	var next atomic.Int64
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for w := range benchWorkers {
		wg.Go(func() {
			for i := 0; ; i++ {
				if next.Add(1) > int64(b.N) || failed.Load() != nil {
					return
				}
				if err := step(w, i); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if e := failed.Load(); e != nil {
		b.Fatal(*e)
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/req")
	if srv != nil {
		b.ReportMetric(float64(srv.store.idem.Stats().Released-released0)/float64(b.N), "retries/req")
		// Sessions the store itself validated (in Redis mode one script
		// round trip each): the rest were answered by the VerifiedCache.
		b.ReportMetric(float64(srv.sessionBackend().Stats().Validated-checks0)/float64(b.N), "store-checks/req")
	}
}

func BenchmarkFullStack(b *testing.B) {
	b.Run("stack", func(b *testing.B) { benchStack(b, benchServer(b, false)) })
	b.Run("bare", benchBare)
	b.Run("db", func(b *testing.B) { benchDB(b, benchServer(b, false)) })
	if os.Getenv(sessiontest.EnvRedisAddr) == "" || os.Getenv(shardtest.EnvMySQLDSN) == "" {
		b.Logf("Redis + MariaDB mode not run: set %s and %s", sessiontest.EnvRedisAddr, shardtest.EnvMySQLDSN)
		return
	}
	b.Run("redis-mariadb", func(b *testing.B) {
		b.Run("stack", func(b *testing.B) { benchStack(b, benchServer(b, true)) })
		b.Run("bare", benchBare)
		b.Run("db", func(b *testing.B) { benchDB(b, benchServer(b, true)) })
	})
}

// benchDropGameDBs drops the game databases a MariaDB-mode server creates
// next to dsn's database when the benchmark ends (after the server
// closed: cleanups run last registered first).
func benchDropGameDBs(b *testing.B, dsn string, n int) {
	b.Helper()
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		b.Fatal(err)
	}
	common := mc.DBName
	mc.DBName = ""
	b.Cleanup(func() {
		db, err := sql.Open("mysql", mc.FormatDSN())
		if err != nil {
			b.Error(err)
			return
		}
		defer db.Close()
		for i := 1; i <= n; i++ {
			if _, err := db.Exec(fmt.Sprintf("DROP DATABASE IF EXISTS %s_gamedb%02d", common, i)); err != nil {
				b.Errorf("drop game database: %v", err)
			}
		}
	})
}

// benchStack: the mix through the whole server over loopback HTTP.
func benchStack(b *testing.B, srv *Server) {
	base := benchServe(b, srv.Handler())
	hc := benchHTTPClient(b)
	players := make([]*stackPlayer, benchWorkers)
	for w := range players {
		players[w] = &stackPlayer{c: benchPlayer(b, srv, benchClient(b, base, hc), fmt.Sprintf("bench-%d", w))}
	}
	runWorkersOn(b, srv, func(w, i int) error {
		return players[w].step(context.Background(), i)
	})
}

// stackPlayer is one player of the stack benchmarks' load generator.
type stackPlayer struct {
	c   *protocol.Client
	run string
}

// step sends the player's i-th request of benchMix.
func (p *stackPlayer) step(ctx context.Context, i int) error {
	var err error
	switch cmd := benchMix[i%len(benchMix)]; cmd {
	case game.CmdShopBuy:
		_, err = p.c.Call(ctx, cmd, game.Buy{ItemID: "potion_pack"}, nil)
	case game.CmdDungeonStart:
		var run game.RunStarted
		_, err = p.c.Call(ctx, cmd, game.StartDungeon{DungeonID: "forest"}, &run)
		p.run = run.RunID
	case game.CmdDungeonFinish:
		_, err = p.c.Call(ctx, cmd, game.FinishDungeon{RunID: p.run, Result: game.ResultWin, Damage: 500 + int64(i%400), PlayTimeMs: 1000}, nil)
	case game.CmdRankTop:
		_, err = p.c.Call(ctx, cmd, game.RankTop{N: 10}, nil)
	default:
		_, err = p.c.Call(ctx, cmd, nil, nil)
	}
	return err
}

// benchBare: HTTP POSTs of a frame-sized body to a handler that does
// nothing, with the same client settings and workers.
func benchBare(b *testing.B) {
	base := benchServe(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	hc := benchHTTPClient(b)
	body := bytes.Repeat([]byte{'x'}, 160) // about a request frame of the mix
	url := base + protocol.DefaultHTTPPath
	runWorkers(b, func(int, int) error {
		resp, err := hc.Post(url, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
}

// benchDB: the mix's transactions straight on the databases of a server
// (the same SQLite files or MariaDB databases, pools, idempotency store
// and board), without HTTP, codec, sessions or the game's handlers.
func benchDB(b *testing.B, srv *Server) {
	ctx := context.Background()
	router, idem := srv.store.router, srv.store.idem
	forUpdate, upsert := "", " ON CONFLICT(user_key, item_id) DO UPDATE SET count = count + excluded.count"
	if srv.store.dialect == shard.DialectMySQL {
		forUpdate, upsert = " FOR UPDATE", " ON DUPLICATE KEY UPDATE count = count + VALUES(count)"
	}
	board := srv.game.Board()
	type player struct {
		key int64
		run string
	}
	players := make([]*player, benchWorkers)
	for w := range players {
		res, _, err := srv.game.Login(ctx, game.GuestLogin{DeviceID: fmt.Sprintf("bench-db-%d", w), Platform: "android", ClientVersion: "1.0.0.0"})
		if err != nil {
			b.Fatal(err)
		}
		fundPlayer(b, srv, res.UserKey)
		players[w] = &player{key: res.UserKey}
	}
	ledger := func(ctx context.Context, tx *sql.Tx, user int64, cur string, delta, after int64, reason, rid string) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO ledger (user_key, currency, delta, balance_after, reason, request_id, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
			user, cur, delta, after, reason, rid, time.Now().UnixMilli())
		return err
	}
	// once runs fn in an idempotent transaction, as the server does for a
	// mutating command, storing out as the result. A retryable failure (a
	// MariaDB deadlock: the key is released) is retried with the same
	// request id as protocol.Client does with its defaults (3 attempts,
	// 100 ms backoff doubled), so both paths pay the same for one.
	once := func(user int64, cmd string, fn func(ctx context.Context, tx *sql.Tx, rid string) (any, error)) error {
		rid := rand.Text()
		backoff := 100 * time.Millisecond
		for attempt := 1; ; attempt++ {
			_, err := idem.Do(ctx, idempotency.Scope{UserKey: user, Command: cmd}, rid, idempotency.FingerprintOf([]byte(rid)), func(ctx context.Context) (idempotency.Result, error) {
				out, err := fn(ctx, idempotency.TxFrom(ctx), rid)
				if err != nil {
					return idempotency.Result{}, err
				}
				payload, err := json.Marshal(out)
				return idempotency.Result{Payload: payload}, err
			})
			if err == nil || !protocol.CodeOf(err).Retryable() || attempt >= 3 {
				return err
			}
			time.Sleep(backoff)
			backoff *= 2
		}
	}
	runWorkersOn(b, srv, func(w, i int) error {
		p := players[w]
		switch benchMix[i%len(benchMix)] {
		case game.CmdLoad:
			db, err := router.DB(ctx, p.key)
			if err != nil {
				return err
			}
			var name string
			var gold, gems, exp, st, stAt, created int64
			if err := db.QueryRowContext(ctx, "SELECT name, gold, gems, exp, stamina, stamina_at, created_at FROM players WHERE user_key = ?", p.key).
				Scan(&name, &gold, &gems, &exp, &st, &stAt, &created); err != nil {
				return err
			}
			return drain(db.QueryContext(ctx, "SELECT item_id, count FROM inventory WHERE user_key = ? AND count > 0", p.key))
		case game.CmdShopBuy:
			return once(p.key, game.CmdShopBuy, func(ctx context.Context, tx *sql.Tx, rid string) (any, error) {
				var gold, gems, exp, have int64
				if err := tx.QueryRowContext(ctx, "SELECT gold, gems, exp FROM players WHERE user_key = ?"+forUpdate, p.key).Scan(&gold, &gems, &exp); err != nil {
					return nil, err
				}
				gems -= 5
				if _, err := tx.ExecContext(ctx, "UPDATE players SET gold = ?, gems = ?, exp = ? WHERE user_key = ?", gold, gems, exp, p.key); err != nil {
					return nil, err
				}
				if _, err := tx.ExecContext(ctx, "INSERT INTO inventory (user_key, item_id, count) VALUES (?, ?, ?)"+upsert, p.key, "potion", 3); err != nil {
					return nil, err
				}
				if err := tx.QueryRowContext(ctx, "SELECT count FROM inventory WHERE user_key = ? AND item_id IN (?)", p.key, "potion").Scan(&have); err != nil {
					return nil, err
				}
				now := time.Now().UnixMilli()
				_, err := tx.ExecContext(ctx, "INSERT INTO ledger (user_key, currency, delta, balance_after, reason, request_id, at) VALUES (?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?)",
					p.key, "gems", -5, gems, "shop:potion_pack", rid, now, p.key, "item:potion", 3, have, "shop:potion_pack", rid, now)
				return game.BuyResult{ItemID: "potion_pack", Gold: gold, Gems: gems, Items: []game.ItemCount{{ItemID: "potion", Count: 3}}}, err
			})
		case game.CmdMailList:
			db, err := router.DB(ctx, p.key)
			if err != nil {
				return err
			}
			return drain(db.QueryContext(ctx, "SELECT id, title, body, gold, gems, items, sent_at, expires_at FROM mails WHERE user_key = ? AND claimed_at = 0 AND expires_at > ? ORDER BY id DESC LIMIT "+strconv.Itoa(game.MaxMailList), p.key, time.Now().UnixMilli()))
		case game.CmdDungeonStart:
			return once(p.key, game.CmdDungeonStart, func(ctx context.Context, tx *sql.Tx, _ string) (any, error) {
				var st, stAt int64
				if err := tx.QueryRowContext(ctx, "SELECT stamina, stamina_at FROM players WHERE user_key = ?"+forUpdate, p.key).Scan(&st, &stAt); err != nil {
					return nil, err
				}
				now := time.Now().UnixMilli()
				if _, err := tx.ExecContext(ctx, "UPDATE players SET stamina = ?, stamina_at = ? WHERE user_key = ?", st-5, now, p.key); err != nil {
					return nil, err
				}
				p.run = rand.Text()
				_, err := tx.ExecContext(ctx, "INSERT INTO dungeon_runs (run_id, user_key, dungeon_id, started_at, client_started_at) VALUES (?, ?, ?, ?, ?)", p.run, p.key, "forest", now, now)
				return game.RunStarted{RunID: p.run, DungeonID: "forest", StartedAt: now}, err
			})
		case game.CmdDungeonFinish:
			score := 500 + int64(i%400)
			err := once(p.key, game.CmdDungeonFinish, func(ctx context.Context, tx *sql.Tx, rid string) (any, error) {
				var gold, gems, exp int64
				if err := tx.QueryRowContext(ctx, "SELECT gold, gems, exp FROM players WHERE user_key = ?"+forUpdate, p.key).Scan(&gold, &gems, &exp); err != nil {
					return nil, err
				}
				var dungeon string
				var startedAt, clientStartedAt, finishedAt int64
				if err := tx.QueryRowContext(ctx, "SELECT dungeon_id, started_at, client_started_at, finished_at FROM dungeon_runs WHERE run_id = ? AND user_key = ?"+forUpdate, p.run, p.key).
					Scan(&dungeon, &startedAt, &clientStartedAt, &finishedAt); err != nil {
					return nil, err
				}
				gold, exp = gold+100, exp+40
				if _, err := tx.ExecContext(ctx, "UPDATE players SET gold = ?, gems = ?, exp = ? WHERE user_key = ?", gold, gems, exp, p.key); err != nil {
					return nil, err
				}
				if err := ledger(ctx, tx, p.key, "gold", 100, gold, "dungeon:forest", rid); err != nil {
					return nil, err
				}
				_, err := tx.ExecContext(ctx, "UPDATE dungeon_runs SET finished_at = ?, result = ?, damage = ?, play_time_ms = ?, score = ?, gold = ?, exp = ? WHERE run_id = ?",
					time.Now().UnixMilli(), "win", score, 1000, score, 100, 40, p.run)
				return game.RunFinished{RunID: p.run, Result: "win", Score: score, Gold: 100, ExpGot: 40, TotalGold: gold, TotalExp: exp, Level: game.LevelOf(exp)}, err
			})
			if err != nil {
				return err
			}
			return board.Submit(ctx, p.key, score, session.ScoreBest)
		case game.CmdRankTop:
			es, _, err := board.Top(ctx, 10, "")
			if err != nil || len(es) == 0 {
				return err
			}
			db, err := router.DB(ctx, es[0].User)
			if err != nil {
				return err
			}
			args := make([]any, len(es))
			marks := make([]byte, 0, 2*len(es))
			for i, e := range es {
				args[i] = e.User
				if i > 0 {
					marks = append(marks, ',')
				}
				marks = append(marks, '?')
			}
			return drain(db.QueryContext(ctx, "SELECT user_key, name FROM players WHERE user_key IN ("+string(marks)+")", args...))
		}
		return nil
	})
}

// drain reads and closes rows.
func drain(rows *sql.Rows, err error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]any, len(cols))
	for i := range vals {
		vals[i] = new(any)
	}
	for rows.Next() {
		if err := rows.Scan(vals...); err != nil {
			return err
		}
	}
	return rows.Err()
}
