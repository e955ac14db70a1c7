package anticheat_test

import (
	"context"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/internal/testdb"
)

// TestRedeemAgainCommitsAWrite: a redemption found already stored (a
// racing request's commit, maybe visible before it is durable) is returned
// only after a transaction of this call that changed a row committed, so
// the grant or refusal the caller derives from it survives a crash. The
// row itself is unchanged.
func TestRedeemAgainCommitsAWrite(t *testing.T) {
	for _, b := range testdb.RecordedBackends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db, rec := b.Open(t)
			s, err := anticheat.NewSQLStore(t.Context(), db, anticheat.SQLConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.CreateTables(ctx); err != nil {
				t.Fatal(err)
			}
			at := time.UnixMilli(1_700_000_000_000).UTC()
			first := anticheat.Redemption{Store: "apple", TransactionID: "tx-1", UserKey: 7, ProductID: "gems_100", At: at}
			if _, created, err := s.Redeem(ctx, first); err != nil || !created {
				t.Fatalf("first redemption: created %v, %v", created, err)
			}
			for _, user := range []int64{7, 8} { // the same account again, then another
				rec.Reset()
				again := first
				again.UserKey, again.At = user, at.Add(time.Hour)
				got, created, err := s.Redeem(ctx, again)
				if err != nil || created || got != first {
					t.Fatalf("user %d: %+v, created %v, %v; want %+v", user, got, created, err, first)
				}
				if n := rec.DurableWrites(); n < 1 {
					t.Fatalf("user %d: the earlier redemption was returned without a committed write of this call: %+v", user, rec.Events())
				}
			}
		})
	}
}
