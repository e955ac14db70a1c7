package server

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
)

// In embedded mode the anti-cheat and live-ops writes to common.db take
// the directory's SQLite writer queue (shard.SQLDirectory.Write): while
// another writer holds it they wait there, counted as queued, and run
// once it is free.
func TestCommonWritesTakeTheWriterQueue(t *testing.T) {
	// Embedded whatever the environment says (testConfig picks MySQL when
	// it is set): on MySQL there is no file lock to queue for.
	_, srv := startServerOn(t, Config{XORKey: testXORKey, DataDir: filepath.Join(t.TempDir(), "data"), LiveOpsPoll: -1})
	ctx := t.Context()
	dir := srv.store.directory
	writes := []struct {
		name string
		run  func() error
	}{
		{"anti-cheat block", func() error {
			return srv.store.anticheat.PutBlock(ctx, anticheat.Block{UserKey: 10_000_001, Reason: "test", Until: time.Now().Add(time.Hour)})
		}},
		{"anti-cheat event", func() error {
			_, _, err := srv.store.anticheat.Record(ctx, anticheat.Event{UserKey: 10_000_001, Kind: "test"})
			return err
		}},
		{"live-ops change", func() error {
			return srv.liveops.AddUserMaintenance(ctx, []int64{10_000_002}, "test", "")
		}},
	}
	for _, w := range writes {
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
		waits := dir.Stats().SQLiteWriterWaits
		done := make(chan error, 1)
		go func() { done <- w.run() }()
		for deadline := time.Now().Add(10 * time.Second); dir.Stats().SQLiteWriterWaits == waits; time.Sleep(time.Millisecond) {
			select {
			case err := <-done:
				t.Fatalf("%s: written while the queue was held (err %v)", w.name, err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: did not queue", w.name)
			}
		}
		close(release)
		if err := <-held; err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
	}
}
