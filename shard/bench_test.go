package shard_test

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/shard"
	"github.com/madang-io/madang/shard/shardtest"
)

// BenchmarkLookup compares the router's key → database lookup (binary
// search over 16 ranges) with a plain map lookup of the same keys.
func BenchmarkLookup(b *testing.B) {
	var dbs []shard.Database
	for i := 1; i <= 16; i++ {
		first, last := shardtest.Range(i)
		dbs = append(dbs, shard.Database{ID: i, Name: "g", Driver: "mysql", DSN: "unused", FirstKey: first, LastKey: last})
	}
	r, err := shard.NewRouter(context.Background(), shard.Config{Directory: shardtest.Static(b, dbs...), RefreshInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	keys := make([]int64, 1024)
	m := make(map[int64]int, len(keys))
	for i := range keys {
		id := i%16 + 1
		first, _ := shardtest.Range(id)
		keys[i] = first + int64(i)*7919
		m[keys[i]] = id
	}
	b.Run("router", func(b *testing.B) {
		b.ReportAllocs()
		sum := 0
		for i := 0; b.Loop(); i++ {
			id, _ := r.LookupID(keys[i&1023])
			sum += id
		}
		if sum == 0 {
			b.Fatal("no lookups")
		}
	})
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		sum := 0
		for i := 0; b.Loop(); i++ {
			sum += m[keys[i&1023]]
		}
		if sum == 0 {
			b.Fatal("no lookups")
		}
	})
}

// mariaDBDirectory returns a directory in a fresh MariaDB common database
// (a pool of 32 connections, as the example server's) with 4 open game
// databases.
func mariaDBDirectory(b *testing.B, be shardtest.Backend) *shard.SQLDirectory {
	b.Helper()
	dir, _ := mariaDBCommon(b, be)
	return dir
}

// mariaDBCommon is mariaDBDirectory with the common database's pool.
func mariaDBCommon(b *testing.B, be shardtest.Backend) (*shard.SQLDirectory, *sql.DB) {
	b.Helper()
	ctx := context.Background()
	common := be.Open(b, be.NewDSN(b))
	common.SetMaxOpenConns(32)
	common.SetMaxIdleConns(32)
	if _, err := shard.Migrate(ctx, common, shard.DirectoryMigrations()); err != nil {
		b.Fatal(err)
	}
	dir, err := shard.NewSQLDirectory(ctx, common, shard.SQLDirectoryConfig{})
	if err != nil {
		b.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		first, last := shardtest.Range(i)
		if err := dir.Add(ctx, shard.Database{ID: i, Name: "g", Driver: "mysql", DSN: "unused", FirstKey: first, LastKey: last}); err != nil {
			b.Fatal(err)
		}
	}
	return dir, common
}

// BenchmarkAllocateMariaDB measures Allocate with 16 concurrent allocators
// over 4 open databases in one MariaDB common database.
func BenchmarkAllocateMariaDB(b *testing.B) {
	ctx := context.Background()
	dir := mariaDBDirectory(b, shardtest.MySQL())
	b.SetParallelism((16 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := dir.Allocate(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	var total int64
	dbs, _ := dir.Databases(ctx)
	for _, d := range dbs {
		total += d.UserCount
	}
	if total < int64(b.N) {
		b.Fatalf("user_count %d after %d allocations", total, b.N)
	}
}

// BenchmarkRegisterMariaDB measures first registrations (Accounts.Register
// of new identities) on a MariaDB common database with 4 open game
// databases, at 1, 16 and 64 concurrent registrations over a pool of 32
// connections, as the example server's: "one" is the default, one key per
// registration in the registration's transaction (every registration
// holds the chosen database's directory row from its UPDATE to its
// COMMIT); "block32" is AccountsConfig.KeyBlock 32 (a registration is one
// INSERT, one UPDATE per 32 keys). Both run in the same process, one after
// the other; regs/s is the throughput.
func BenchmarkRegisterMariaDB(b *testing.B) {
	be := shardtest.MySQL()
	for _, conc := range []int{1, 16, 64} {
		for _, block := range []int{1, 32} {
			name := fmt.Sprintf("c%d/one", conc)
			if block > 1 {
				name = fmt.Sprintf("c%d/block%d", conc, block)
			}
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				acc := shard.NewAccounts(mariaDBDirectory(b, be), shard.AccountsConfig{KeyBlock: block})
				elapsed := runConcurrently(b, conc, func(i int64) error {
					_, _, err := acc.Register(ctx, shard.Identity{Platform: "guest", ID: fmt.Sprintf("bench-%d", i)})
					return err
				})
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "regs/s")
			})
		}
	}
}

// BenchmarkLoginRegisterMariaDB measures a login's account work as a
// server does it, on a MariaDB common database (4 open databases, pool of
// 32, KeyBlock 32, 16 logins at once): the identity looked up before the
// login runs (block list, maintenance allow-list), then registered.
// "lookup+register" is Lookup then Register (two SELECTs of the row);
// "find+registerfound" is Find then RegisterFound (one). "returning"
// logs in identities registered more than 10 s before (no confirm),
// "new" identities never seen. Side by side in one process; logins/s is
// the throughput.
func BenchmarkLoginRegisterMariaDB(b *testing.B) {
	be := shardtest.MySQL()
	const conc = 16
	for _, who := range []string{"returning", "new"} {
		for _, how := range []string{"lookup+register", "find+registerfound"} {
			b.Run(who+"/"+how, func(b *testing.B) {
				ctx := context.Background()
				dir, common := mariaDBCommon(b, be)
				acc := shard.NewAccounts(dir, shard.AccountsConfig{KeyBlock: 32})
				id := func(i int64) shard.Identity { return shard.Identity{Platform: "guest", ID: fmt.Sprintf("bench-%d", i)} }
				if who == "returning" {
					for i := int64(1); i <= int64(b.N); i++ {
						if _, _, err := acc.Register(ctx, id(i)); err != nil {
							b.Fatal(err)
						}
					}
					if _, err := common.Exec("UPDATE shard_accounts SET created_at = created_at - 60000"); err != nil {
						b.Fatal(err)
					}
				}
				login := func(i int64) error {
					if how == "lookup+register" {
						if _, _, err := acc.Lookup(ctx, id(i)); err != nil {
							return err
						}
						_, _, err := acc.Register(ctx, id(i))
						return err
					}
					f, err := acc.Find(ctx, id(i))
					if err != nil {
						return err
					}
					_, _, err = acc.RegisterFound(ctx, f)
					return err
				}
				elapsed := runConcurrently(b, conc, login)
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "logins/s")
			})
		}
	}
}

// BenchmarkTx compares Router.Tx with db.BeginTx/ExecContext/Commit on the
// same pool, one UPDATE per transaction; the "ratio" metric is router time
// over raw time.
func BenchmarkTx(b *testing.B) {
	for _, be := range shardtest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			ctx := context.Background()
			g := be.Database(b, 1)
			pool := be.Open(b, g.DSN)
			for _, q := range []string{"CREATE TABLE gold (user_key BIGINT NOT NULL PRIMARY KEY, amount BIGINT NOT NULL)", "INSERT INTO gold VALUES (10000000, 0)"} {
				if _, err := pool.Exec(q); err != nil {
					b.Fatal(err)
				}
			}
			r, err := shard.NewRouter(ctx, shard.Config{Directory: shardtest.Static(b, g), RefreshInterval: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			key := g.FirstKey
			db, err := r.DB(ctx, key)
			if err != nil {
				b.Fatal(err)
			}
			const upd = "UPDATE gold SET amount = amount + 1 WHERE user_key = ?"
			viaRouter := func() error {
				return r.Tx(ctx, key, func(ctx context.Context, tx *sql.Tx) error {
					_, err := tx.ExecContext(ctx, upd, key)
					return err
				})
			}
			raw := func() error {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, upd, key); err != nil {
					tx.Rollback()
					return err
				}
				return tx.Commit()
			}
			// Both run in the same loop, alternating which goes first, so
			// drift on a shared machine hits them alike.
			var tRouter, tRaw time.Duration
			n := 0
			for i := 0; b.Loop(); i++ {
				pair := [2]func() error{viaRouter, raw}
				if i%2 == 1 {
					pair = [2]func() error{raw, viaRouter}
				}
				for k, f := range pair {
					start := time.Now()
					if err := f(); err != nil {
						b.Fatal(err)
					}
					if (k == 0) == (i%2 == 0) {
						tRouter += time.Since(start)
					} else {
						tRaw += time.Since(start)
					}
				}
				n++
			}
			b.ReportMetric(float64(tRouter.Nanoseconds())/float64(n), "router-ns/tx")
			b.ReportMetric(float64(tRaw.Nanoseconds())/float64(n), "raw-ns/tx")
			b.ReportMetric(float64(tRouter)/float64(tRaw), "ratio")
		})
	}
}

// runConcurrently runs op(1) … op(b.N) on conc goroutines, timed, and
// returns the time they took; the first error stops them and fails b.
func runConcurrently(b *testing.B, conc int, op func(i int64) error) time.Duration {
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) || failed.Load() != nil {
					return
				}
				if err := op(i); err != nil {
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
	return elapsed
}
