package shard

import (
	"context"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/testdb"
)

// TestRegisterConfirmsAYoungAccount: an account row created moments ago
// (maybe a racing registration's commit, visible before it is durable) is
// answered by Register only after a committed change of this call; an old
// row is read only (ordinary logins stay one SELECT). The row is unchanged.
func TestRegisterConfirmsAYoungAccount(t *testing.T) {
	for _, b := range testdb.RecordedBackends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db, rec := b.Open(t)
			dir, fake := fakeClockDirectory(t, db)
			for _, block := range []int{1, 8} {
				a := NewAccounts(dir, AccountsConfig{KeyBlock: block})
				id := Identity{Platform: "guest", ID: "dev-" + string(rune('a'+block))}
				key, created, err := a.Register(ctx, id)
				if err != nil || !created {
					t.Fatalf("block %d: first register: %v %v", block, created, err)
				}
				createdAt := func() int64 {
					var v int64
					if err := db.QueryRow("SELECT created_at FROM shard_accounts WHERE platform = ? AND external_id = ?", id.Platform, id.ID).Scan(&v); err != nil {
						t.Fatal(err)
					}
					return v
				}
				at := createdAt()
				rec.Reset()
				// Another process (another Accounts) logs the device in
				// while the row is young.
				other := NewAccounts(dir, AccountsConfig{})
				if k, created, err := other.Register(ctx, id); err != nil || created || k != key {
					t.Fatalf("block %d: young login: %d %v %v", block, k, created, err)
				}
				if n := rec.DurableWrites(); n < 1 {
					t.Fatalf("block %d: a young account answered without a committed write: %+v", block, rec.Events())
				}
				fake.Advance(confirmWindow + time.Second)
				rec.Reset()
				if k, created, err := other.Register(ctx, id); err != nil || created || k != key {
					t.Fatalf("block %d: old login: %d %v %v", block, k, created, err)
				}
				if n := rec.DurableWrites(); n != 0 {
					t.Fatalf("block %d: an old account's login wrote: %+v", block, rec.Events())
				}
				if got := createdAt(); got != at {
					t.Fatalf("block %d: created_at %d, was %d", block, got, at)
				}
			}
		})
	}
}

// roundTrips counts what a recorded database was sent: statements,
// BEGINs and COMMITs/ROLLBACKs, each one round trip.
func roundTrips(rec *testdb.Recorder) int { return len(rec.Events()) }

// TestRegisterFoundReadsOnce: a login that looked its identity up with
// Find and registers it with RegisterFound reads the account once: an old
// account costs the Find alone, a new one the Find and one INSERT (key
// blocks), a young one the Find and the confirming transaction. A Find
// that missed a racing registration still answers the winner's key,
// confirmed.
func TestRegisterFoundReadsOnce(t *testing.T) {
	for _, b := range testdb.RecordedBackends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db, rec := b.Open(t)
			dir, fake := fakeClockDirectory(t, db)
			a := NewAccounts(dir, AccountsConfig{KeyBlock: 8})
			if _, _, err := a.Register(ctx, Identity{Platform: "guest", ID: "warm"}); err != nil {
				t.Fatal(err) // reserves the first key block
			}
			login := func(id Identity) (int64, bool, int) {
				t.Helper()
				rec.Reset()
				f, err := a.Find(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if f.Identity() != id {
					t.Fatalf("Found.Identity %+v, want %+v", f.Identity(), id)
				}
				key, created, err := a.RegisterFound(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if k, ok := f.UserKey(); ok && k != key {
					t.Fatalf("found %d, registered %d", k, key)
				}
				return key, created, roundTrips(rec)
			}
			id := Identity{Platform: "guest", ID: "dev-1"}
			key, created, n := login(id)
			if !created || n != 2 {
				t.Fatalf("new: created %v, %d round trips (want 2): %+v", created, n, rec.Events())
			}
			// Young: confirmed by a committed write.
			if k, created, _ := login(id); k != key || created || rec.DurableWrites() < 1 {
				t.Fatalf("young: %d %v, events %+v", k, created, rec.Events())
			}
			fake.Advance(confirmWindow + time.Second)
			if k, created, n := login(id); k != key || created || n != 1 {
				t.Fatalf("old: %d %v, %d round trips (want 1): %+v", k, created, n, rec.Events())
			}
			// A Find that missed a registration racing it.
			race := Identity{Platform: "guest", ID: "dev-race"}
			f, err := a.Find(ctx, race)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := f.UserKey(); ok {
				t.Fatal("found before registering")
			}
			other := NewAccounts(dir, AccountsConfig{})
			winner, _, err := other.Register(ctx, race)
			if err != nil {
				t.Fatal(err)
			}
			rec.Reset()
			k, created, err := a.RegisterFound(ctx, f)
			if err != nil || created || k != winner {
				t.Fatalf("race: %d %v %v, winner %d", k, created, err, winner)
			}
			if rec.DurableWrites() < 1 {
				t.Fatalf("race: the winner's key answered without a committed write: %+v", rec.Events())
			}
			if _, _, err := a.RegisterFound(ctx, Found{}); err == nil {
				t.Fatal("RegisterFound of the zero Found: no error")
			}
		})
	}
}
