package anticheat_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
)

// sqliteWithDirectory opens a SQLite common database and the directory
// whose writer queue the store's writes take (SQLConfig.Write), counting
// the writes passed to it.
func sqliteWithDirectory(t *testing.T) (*anticheat.SQLStore, *shard.SQLDirectory, *atomic.Int64) {
	t.Helper()
	db, err := shard.OpenSQLite(shard.SQLiteDSN(filepath.Join(t.TempDir(), "common.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dir, err := shard.NewSQLDirectory(t.Context(), db, shard.SQLDirectoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var writes atomic.Int64
	s, err := anticheat.NewSQLStore(t.Context(), db, anticheat.SQLConfig{
		Write: func(ctx context.Context, fn func(context.Context) error) error {
			writes.Add(1)
			return dir.Write(ctx, fn)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTables(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s, dir, &writes
}

// Every write of the SQL store goes through SQLConfig.Write, once per
// statement or transaction; reads do not.
func TestSQLStoreWritesThroughWrite(t *testing.T) {
	ctx := t.Context()
	s, _, writes := sqliteWithDirectory(t)
	if n := writes.Load(); n != 0 {
		t.Fatalf("CreateTables went through Write %d times", n)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		name string
		want int64
		run  func() error
	}{
		{"Record", 1, func() error {
			_, _, err := s.Record(ctx, anticheat.Event{UserKey: 1, Kind: "speed", At: at})
			return err
		}},
		{"PutBlock", 1, func() error { return s.PutBlock(ctx, anticheat.Block{UserKey: 1, Reason: "speed", At: at}) }},
		{"GetBlock", 0, func() error { _, _, err := s.GetBlock(ctx, 1, at); return err }},
		{"UserCounts", 0, func() error { _, err := s.UserCounts(ctx, 1); return err }},
		{"DeleteBlock", 1, func() error { return s.DeleteBlock(ctx, 1) }},
		{"PutSignature", 1, func() error {
			return s.PutSignature(ctx, anticheat.SignatureEntry{Version: "1.0.0.0", APKMD5: "0123456789abcdef0123456789abcdef", UpdatedAt: at})
		}},
		{"DeleteSignature", 1, func() error { return s.DeleteSignature(ctx, "1.0.0.0") }},
		{"Redeem", 1, func() error {
			_, _, err := s.Redeem(ctx, anticheat.Redemption{Store: "apple", TransactionID: "t1", UserKey: 1, ProductID: "p", At: at})
			return err
		}},
		// Presented again: the INSERT, then the read back that commits.
		{"Redeem again", 2, func() error {
			_, fresh, err := s.Redeem(ctx, anticheat.Redemption{Store: "apple", TransactionID: "t1", UserKey: 2, ProductID: "p", At: at})
			if err == nil && fresh {
				err = errors.New("redeemed twice")
			}
			return err
		}},
	}
	for _, st := range steps {
		before := writes.Load()
		if err := st.run(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := writes.Load() - before; got != st.want {
			t.Errorf("%s: %d writes through SQLConfig.Write, want %d", st.name, got, st.want)
		}
	}
}

// A write waits its turn in the directory's SQLite writer queue behind
// the directory's own writer, and runs once it is free.
func TestSQLStoreWriteQueuesBehindTheDirectory(t *testing.T) {
	ctx := t.Context()
	s, dir, _ := sqliteWithDirectory(t)
	holding, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- dir.Write(ctx, func(context.Context) error {
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	done := make(chan error, 1)
	go func() { done <- s.PutBlock(ctx, anticheat.Block{UserKey: 7, Reason: "speed"}) }()
	for deadline := time.Now().Add(10 * time.Second); dir.Stats().SQLiteWriterWaits != 1; time.Sleep(time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("PutBlock ran while the queue was held (err %v)", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("PutBlock did not queue")
		}
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.GetBlock(ctx, 7, time.Now()); err != nil || !ok {
		t.Fatalf("block after the queue: %v %v", ok, err)
	}
}

// Write's own failure (no turn in the queue) is the store's error,
// classified: unavailable, nothing written.
func TestSQLStoreWriteFailure(t *testing.T) {
	ctx := t.Context()
	db, err := shard.OpenSQLite(shard.SQLiteDSN(filepath.Join(t.TempDir(), "common.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	noTurn := &shard.Error{Kind: shard.ErrUnavailable, Err: errors.New("waited for the SQLite writer queue")}
	s, err := anticheat.NewSQLStore(ctx, db, anticheat.SQLConfig{
		Write: func(context.Context, func(context.Context) error) error { return noTurn },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTables(ctx); err != nil {
		t.Fatal(err)
	}
	err = s.PutBlock(ctx, anticheat.Block{UserKey: 7, Reason: "speed"})
	if !errors.Is(err, shard.ErrUnavailable) || protocol.CodeOf(err) != protocol.CodeUnavailable {
		t.Fatalf("PutBlock = %v (code %v), want the queue's unavailable", err, protocol.CodeOf(err))
	}
	if _, ok, err := s.GetBlock(ctx, 7, time.Now()); err != nil || ok {
		t.Fatalf("written anyway: %v %v", ok, err)
	}
}
