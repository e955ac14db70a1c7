package shard_test

import (
	"context"
	"database/sql"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/shard"
	"github.com/madang-io/madang/shard/shardtest"
)

// BenchmarkSQLiteWriters: small write transactions from 64 goroutines on
// one SQLite database, queued in the Router (SQLiteWriters 1, the default)
// against waiting in the driver's busy handler (SQLiteWriters -1). Reports
// the p50 and p99 of one Tx besides ns/op.
//
//	go test ./shard -run '^$' -bench SQLiteWriters -benchtime 3000x
func BenchmarkSQLiteWriters(b *testing.B) {
	for _, c := range []struct {
		name    string
		writers int
	}{{"queued", 1}, {"busy-handler", -1}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			games := shardtest.SQLiteDatabases(b, 1)
			r, err := shard.NewRouter(ctx, shard.Config{Directory: shardtest.Static(b, games...), SQLiteWriters: c.writers})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			key := games[0].FirstKey
			if err := r.Tx(ctx, key, func(ctx context.Context, tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, "CREATE TABLE w (k INTEGER PRIMARY KEY, v INTEGER)")
				return err
			}); err != nil {
				b.Fatal(err)
			}
			var mu sync.Mutex
			var lat []time.Duration
			b.SetParallelism(32) // 64 writers on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				i := 0
				for pb.Next() {
					i++
					start := time.Now()
					if err := r.Tx(ctx, key, func(ctx context.Context, tx *sql.Tx) error {
						var v int
						_ = tx.QueryRowContext(ctx, "SELECT v FROM w WHERE k = ?", i%100).Scan(&v)
						_, err := tx.ExecContext(ctx, "INSERT INTO w (k, v) VALUES (?, 1) ON CONFLICT (k) DO UPDATE SET v = v + 1", i%100)
						return err
					}); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}
