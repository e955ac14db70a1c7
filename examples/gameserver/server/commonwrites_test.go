package server

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/shard"
)

// In embedded mode the anti-cheat, live-ops and game data catalog writes
// to common.db take the directory's SQLite writer queue (shard.SQLDirectory.Write): while
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
		{"game data mapping", func() error {
			return srv.catalog.MapClient(ctx, "9.9.9", "1")
		}},
	}
	for _, w := range writes {
		release := holdWriterQueue(t, dir)
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
		release()
		if err := <-done; err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
	}
}

// holdWriterQueue holds dir's writer queue with a write that waits until
// release is called (at the latest when the test ends); release checks
// that write's own result.
func holdWriterQueue(t *testing.T, dir *shard.SQLDirectory) (release func()) {
	t.Helper()
	holding, free := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- dir.Write(context.Background(), func(context.Context) error {
			close(holding)
			<-free
			return nil
		})
	}()
	<-holding
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(free)
			if err := <-held; err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(release)
	return release
}

// In embedded mode a purchase's note in iap_pending takes the writer queue
// too: while another writer holds the queue, the purchase waits there and
// nothing is noted; once it is free the purchase is noted, granted, and
// its note removed.
func TestPurchaseNoteTakesTheWriterQueue(t *testing.T) {
	base, srv := startServerOn(t, Config{Dev: true, XORKey: testXORKey, DataDir: filepath.Join(t.TempDir(), "data"), LiveOpsPoll: -1})
	ctx := t.Context()
	dir := srv.store.directory
	c, _ := newClient(t, base)
	login(t, c, "queue-purchase-device")
	notes := func() int {
		var n int
		if err := srv.store.common.QueryRowContext(ctx, "SELECT COUNT(*) FROM iap_pending").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	release := holdWriterQueue(t, dir)
	waits := dir.Stats().SQLiteWriterWaits
	done := make(chan error, 1)
	var got game.IAPResult
	go func() {
		_, err := c.Call(ctx, game.CmdShopBuyIAP, game.BuyIAP{ProductID: "gems_100", Platform: "ios", Receipt: game.DevReceiptPrefix + "queue-1:gems_100"}, &got)
		done <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); dir.Stats().SQLiteWriterWaits == waits; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the purchase did not queue")
		}
	}
	if n := notes(); n != 0 {
		t.Fatalf("%d purchase notes written while the queue was held", n)
	}
	release()
	if err := <-done; err != nil || !got.Granted {
		t.Fatalf("purchase: %+v %v", got, err)
	}
	if n := notes(); n != 0 {
		t.Fatalf("%d purchase notes left after the grant", n)
	}
}
