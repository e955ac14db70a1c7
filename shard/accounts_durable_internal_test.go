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
