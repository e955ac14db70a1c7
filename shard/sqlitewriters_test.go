package shard_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/shard"
	"github.com/madang-io/madang/shard/shardtest"
)

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Writers to one SQLite database queue in the Router, without a pooled
// connection, instead of each holding one while it sleeps in the driver's
// busy handler; one that waits past SQLiteWriteWait is unavailable.
func TestSQLiteWritersQueueInTheRouter(t *testing.T) {
	ctx := context.Background()
	games := shardtest.SQLiteDatabases(t, 1)
	r, err := shard.NewRouter(ctx, shard.Config{Directory: shardtest.Static(t, games...), MaxOpenConns: 16, SQLiteWriteWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	key := games[0].FirstKey
	if err := r.Tx(ctx, key, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "CREATE TABLE n (v INTEGER)")
		if err == nil {
			_, err = tx.ExecContext(ctx, "INSERT INTO n VALUES (0)")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// The next writer into incr after armed is set tells entered and
	// holds its transaction until hold is closed.
	var armed atomic.Bool
	hold, entered := make(chan struct{}), make(chan struct{})
	incr := func(ctx context.Context, tx *sql.Tx) error {
		if armed.CompareAndSwap(true, false) {
			entered <- struct{}{}
			<-hold
		}
		_, err := tx.ExecContext(ctx, "UPDATE n SET v = v + 1")
		return err
	}
	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	armed.Store(true)
	wg.Add(1)
	go func() { defer wg.Done(); errs <- r.Tx(ctx, key, incr) }()
	<-entered // the first writer is inside its transaction and holds
	for range writers {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- r.Tx(ctx, key, incr) }()
	}
	poll(t, "the writers to queue", func() bool { return r.Stats()[0].SQLiteWriterWaits == writers })
	// They wait without a connection: only the holder has one.
	if s := r.Stats()[0]; s.Pool.InUse != 1 {
		t.Fatalf("%d connections in use while %d writers queue, want 1", s.Pool.InUse, writers)
	}
	close(hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var v int
	db, _ := r.DB(ctx, key)
	if err := db.QueryRowContext(ctx, "SELECT v FROM n").Scan(&v); err != nil || v != writers+1 {
		t.Fatalf("v = %d, %v; want %d", v, err, writers+1)
	}

	// A writer that waits past SQLiteWriteWait gives up: unavailable.
	short, err := shard.NewRouter(ctx, shard.Config{Directory: shardtest.Static(t, games...), SQLiteWriteWait: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer short.Close()
	hold = make(chan struct{})
	armed.Store(true)
	done := make(chan error)
	go func() { done <- short.Tx(ctx, key, incr) }()
	<-entered
	err = short.Tx(ctx, key, incr)
	close(hold)
	if !errors.Is(err, shard.ErrUnavailable) || !strings.Contains(err.Error(), "writer queue") {
		t.Fatalf("queued past the wait: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := short.Stats()[0]; s.SQLiteWriterTimeouts != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// walGrowth writes rows of 4 KB through r while readers keep overlapping
// read snapshots open, and returns the largest the write-ahead log got.
func walGrowth(t *testing.T, r *shard.Router, key int64, path string, rows int) int64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := r.Tx(ctx, key, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "CREATE TABLE b (id INTEGER PRIMARY KEY, v BLOB)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db, _ := r.DB(ctx, key)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 5 * time.Millisecond) // staggered: a reader is always open
			for ctx.Err() == nil {
				rows, err := db.QueryContext(ctx, "SELECT id FROM b")
				if err != nil {
					continue
				}
				rows.Next() // the statement holds its snapshot until closed
				time.Sleep(10 * time.Millisecond)
				rows.Close()
			}
		}()
	}
	blob := strings.Repeat("x", 4096)
	var peak int64
	for i := range rows {
		if err := r.Tx(ctx, key, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO b (v) VALUES (?)", blob)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			if fi, err := os.Stat(path + "-wal"); err == nil {
				peak = max(peak, fi.Size())
			}
		}
	}
	cancel()
	wg.Wait()
	return peak
}

// The Router's checkpoints start a SQLite write-ahead log over, which
// SQLite's automatic checkpoint cannot while readers overlap: without them
// the log file keeps its largest size, with them it is truncated once the
// readers let go. (How large the log gets in between depends on when the
// readers leave a gap, which a busy machine decides: it is logged, not
// asserted.)
func TestSQLiteWALStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 2 x 3 MB")
	}
	const rows = 800 // 4 KB each: about 10 MB of log without checkpoints
	peaks, after := map[time.Duration]int64{}, map[time.Duration]int64{}
	var checkpoints uint64
	for _, every := range []time.Duration{-1, 20 * time.Millisecond} {
		games := shardtest.SQLiteDatabases(t, 1)
		path := strings.TrimPrefix(strings.SplitN(games[0].DSN, "?", 2)[0], "file:")
		r, err := shard.NewRouter(context.Background(), shard.Config{Directory: shardtest.Static(t, games...), SQLiteCheckpointInterval: every})
		if err != nil {
			t.Fatal(err)
		}
		peaks[every] = walGrowth(t, r, games[0].FirstKey, path, rows)
		// The readers have stopped: with checkpoints the next one truncates
		// the log (polled for up to 10 s); without, it stays as large.
		size := func() int64 {
			fi, err := os.Stat(path + "-wal")
			if err != nil {
				return 0
			}
			return fi.Size()
		}
		after[every] = size()
		for deadline := time.Now().Add(10 * time.Second); every > 0 && after[every] > 64<<10 && time.Now().Before(deadline); after[every] = size() {
			time.Sleep(20 * time.Millisecond)
		}
		if every > 0 {
			checkpoints = r.Stats()[0].Checkpoints
		}
		r.Close()
	}
	t.Logf("largest WAL: %d KB without the Router's checkpoints, %d KB with them every 20 ms (%d checkpoints); after the readers: %d KB and %d KB",
		peaks[-1]>>10, peaks[20*time.Millisecond]>>10, checkpoints, after[-1]>>10, after[20*time.Millisecond]>>10)
	if checkpoints == 0 {
		t.Fatal("no checkpoint ran")
	}
	if after[20*time.Millisecond] > 64<<10 {
		t.Fatalf("with checkpoints the WAL is still %d KB after the readers stopped", after[20*time.Millisecond]>>10)
	}
	if after[-1] < 1<<20 {
		t.Fatalf("without the Router's checkpoints the WAL is %d KB after 800 writes: the test no longer shows what they do", after[-1]>>10)
	}
}

// The common database's checkpoints (SQLDirectoryConfig) start its
// write-ahead log over as the Router's do for a game database: 800
// registrations (a transaction each: allocation and account row) while
// readers keep overlapping snapshots open leave the log file as large as
// it got without them, and truncated with them once the readers let go.
// The writes queue in the SQLDirectory (SQLiteWriters). Sizes in between
// depend on the machine: logged, not asserted.
func TestCommonSQLiteWALStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 2 x 800 registrations")
	}
	const regs = 800
	ctx := context.Background()
	peaks, after := map[time.Duration]int64{}, map[time.Duration]int64{}
	var stats shard.DirectoryStats
	for _, every := range []time.Duration{-1, 20 * time.Millisecond} {
		path := t.TempDir() + "/common.db"
		common, err := shard.OpenSQLite(shard.SQLiteDSN(path))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := shard.Migrate(ctx, common, shard.DirectoryMigrations()); err != nil {
			t.Fatal(err)
		}
		dir, err := shard.NewSQLDirectory(ctx, common, shard.SQLDirectoryConfig{SQLiteCheckpointInterval: every})
		if err != nil {
			t.Fatal(err)
		}
		game := shardtest.SQLiteDatabases(t, 1)[0]
		if err := dir.Add(ctx, game); err != nil {
			t.Fatal(err)
		}
		acc := shard.NewAccounts(dir, shard.AccountsConfig{})
		size := func() int64 {
			fi, err := os.Stat(path + "-wal")
			if err != nil {
				return 0
			}
			return fi.Size()
		}
		rctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * 5 * time.Millisecond) // staggered: a reader is always open
				for rctx.Err() == nil {
					rows, err := common.QueryContext(rctx, "SELECT user_key FROM shard_accounts")
					if err != nil {
						continue
					}
					rows.Next() // the statement holds its snapshot until closed
					time.Sleep(10 * time.Millisecond)
					rows.Close()
				}
			})
		}
		for i := range regs {
			if _, created, err := acc.Register(ctx, shard.Identity{Platform: "guest", ID: fmt.Sprint("dev-", i)}); err != nil || !created {
				t.Fatalf("register %d: %v %v", i, created, err)
			}
			if i%10 == 0 {
				peaks[every] = max(peaks[every], size())
			}
		}
		cancel()
		wg.Wait()
		after[every] = size()
		for deadline := time.Now().Add(10 * time.Second); every > 0 && after[every] > 64<<10 && time.Now().Before(deadline); after[every] = size() {
			time.Sleep(20 * time.Millisecond)
		}
		if every > 0 {
			stats = dir.Stats()
		}
		common.Close()
	}
	t.Logf("largest common WAL: %d KB without checkpoints, %d KB with them every 20 ms (%+v); after the readers: %d KB and %d KB",
		peaks[-1]>>10, peaks[20*time.Millisecond]>>10, stats, after[-1]>>10, after[20*time.Millisecond]>>10)
	if stats.Checkpoints == 0 {
		t.Fatal("no checkpoint ran")
	}
	if after[20*time.Millisecond] > 64<<10 {
		t.Fatalf("with checkpoints the common WAL is still %d KB after the readers stopped", after[20*time.Millisecond]>>10)
	}
	if after[-1] < 1<<20 {
		t.Fatalf("without checkpoints the common WAL is %d KB after %d registrations: the test no longer shows what they do", after[-1]>>10, regs)
	}
}
