// Package anticheattest holds test helpers for package anticheat: a
// conformance suite any Store implementation can run, fakes of the
// interfaces anticheat consumes (receipt verifiers, the Google Play
// purchases API, the Play Integrity verdict fetcher), and Clock, a clock the
// test moves for the Now settings of anticheat's configs.
package anticheattest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
)

// Day0 is the fixed start time the suite dates its data from.
var Day0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// RunStoreTests runs the conformance suite against fresh stores from
// newStore (each call must return an empty store).
func RunStoreTests(t *testing.T, newStore func(t *testing.T) anticheat.Store) {
	t.Run("Signatures", func(t *testing.T) { testSignatures(t, newStore(t)) })
	t.Run("Log", func(t *testing.T) { testLog(t, newStore(t)) })
	t.Run("LogLimits", func(t *testing.T) { testLogLimits(t, newStore(t)) })
	t.Run("Blocks", func(t *testing.T) { testBlocks(t, newStore(t)) })
	t.Run("Redeem", func(t *testing.T) { testRedeem(t, newStore(t)) })
	t.Run("RedeemConcurrent", func(t *testing.T) { testRedeemConcurrent(t, newStore(t)) })
}

func testSignatures(t *testing.T, s anticheat.Store) {
	ctx := context.Background()
	if _, ok, err := s.GetSignature(ctx, "1.0.0.0"); ok || err != nil {
		t.Fatalf("empty store: ok=%v err=%v", ok, err)
	}
	e := anticheat.SignatureEntry{Version: "1.2.0.0", APKMD5: "0123456789abcdef0123456789abcdef",
		CertSHA256: []string{"aa" + fmt.Sprintf("%062d", 1), "bb" + fmt.Sprintf("%062d", 2)}, UpdatedAt: Day0}
	if err := s.PutSignature(ctx, e); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.GetSignature(ctx, "1.2.0.0")
	if err != nil || !ok || got.APKMD5 != e.APKMD5 || !slices.Equal(got.CertSHA256, e.CertSHA256) || !got.UpdatedAt.Equal(Day0) {
		t.Fatalf("get: %+v ok=%v err=%v", got, ok, err)
	}
	// Replace: certs only.
	e2 := anticheat.SignatureEntry{Version: "1.2.0.0", CertSHA256: []string{"cc" + fmt.Sprintf("%062d", 3)}, UpdatedAt: Day0.Add(time.Hour)}
	if err := s.PutSignature(ctx, e2); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSignature(ctx, anticheat.SignatureEntry{Version: anticheat.Latest, APKMD5: "ffffffffffffffffffffffffffffffff", UpdatedAt: Day0}); err != nil {
		t.Fatal(err)
	}
	got, _, _ = s.GetSignature(ctx, "1.2.0.0")
	if got.APKMD5 != "" || !slices.Equal(got.CertSHA256, e2.CertSHA256) {
		t.Fatalf("after replace: %+v", got)
	}
	list, err := s.ListSignatures(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := s.DeleteSignature(ctx, "1.2.0.0"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSignature(ctx, "9.9.9.9"); err != nil {
		t.Fatalf("delete missing: %v", err)
	}
	if _, ok, _ := s.GetSignature(ctx, "1.2.0.0"); ok {
		t.Fatal("deleted entry still there")
	}
}

func testLog(t *testing.T, s anticheat.Store) {
	ctx := context.Background()
	ev := func(user int64, kind anticheat.Kind, at time.Time) anticheat.Event {
		return anticheat.Event{UserKey: user, Kind: kind, Reason: "r", Detail: "d", ClientVersion: "1.0.0.0", At: at}
	}
	// user 1: 3 speed (days 0,0,1), 1 stat (day 1); user 2: 1 speed (day 2).
	steps := []struct {
		e          anticheat.Event
		kindN, tot int64
	}{
		{ev(1, anticheat.KindSpeed, Day0), 1, 1},
		{ev(1, anticheat.KindSpeed, Day0.Add(time.Hour)), 2, 2},
		{ev(1, anticheat.KindStat, Day0.Add(24*time.Hour)), 1, 3},
		{ev(1, anticheat.KindSpeed, Day0.Add(25*time.Hour)), 3, 4},
		{ev(2, anticheat.KindSpeed, Day0.Add(48*time.Hour)), 1, 1},
	}
	for i, st := range steps {
		k, tot, err := s.Record(ctx, st.e)
		if err != nil || k != st.kindN || tot != st.tot {
			t.Fatalf("record %d: kind %d total %d err %v; want %d %d", i, k, tot, err, st.kindN, st.tot)
		}
	}
	c, err := s.UserCounts(ctx, 1)
	if err != nil || c[anticheat.KindSpeed] != 3 || c[anticheat.KindStat] != 1 || len(c) != 2 {
		t.Fatalf("counts: %v %v", c, err)
	}
	evs, err := s.UserEvents(ctx, 1, 2)
	if err != nil || len(evs) != 2 || !evs[0].At.Equal(Day0.Add(25*time.Hour)) || evs[1].Kind != anticheat.KindStat ||
		evs[0].Detail != "d" || evs[0].ClientVersion != "1.0.0.0" || evs[0].Reason != "r" || evs[0].ID == 0 {
		t.Fatalf("events: %+v %v", evs, err)
	}
	day := func(n int) time.Time { return time.Date(2026, 11, 20+n, 0, 0, 0, 0, time.UTC) }
	dc, err := s.DailyCounts(ctx, day(0), day(2))
	want := []anticheat.DayCount{{Day: day(0), Kind: "speed", Count: 2}, {Day: day(1), Kind: "speed", Count: 1}, {Day: day(1), Kind: "stat", Count: 1}}
	if err != nil || len(dc) != len(want) {
		t.Fatalf("daily: %+v %v", dc, err)
	}
	for i := range want {
		if !dc[i].Day.Equal(want[i].Day) || dc[i].Kind != want[i].Kind || dc[i].Count != want[i].Count {
			t.Fatalf("daily[%d] = %+v, want %+v", i, dc[i], want[i])
		}
	}
	top, err := s.TopOffenders(ctx, Day0, 10)
	if err != nil || len(top) != 2 || top[0] != (anticheat.Offender{UserKey: 1, Count: 4}) || top[1] != (anticheat.Offender{UserKey: 2, Count: 1}) {
		t.Fatalf("top: %+v %v", top, err)
	}
	top, _ = s.TopOffenders(ctx, Day0.Add(26*time.Hour), 10)
	if len(top) != 1 || top[0].UserKey != 2 {
		t.Fatalf("top since: %+v", top)
	}
}

func testLogLimits(t *testing.T, s anticheat.Store) {
	ctx := context.Background()
	if _, _, err := s.Record(ctx, anticheat.Event{UserKey: 1, Kind: "", At: Day0}); !anticheat.IsReason(err, "bad_input") {
		t.Fatalf("empty kind: %v", err)
	}
	long := make([]byte, anticheat.MaxDetailLen*2)
	for i := range long {
		long[i] = 'x'
	}
	if _, _, err := s.Record(ctx, anticheat.Event{UserKey: 1, Kind: "speed", Detail: string(long), At: Day0}); err != nil {
		t.Fatalf("long detail must be truncated, not refused: %v", err)
	}
	evs, err := s.UserEvents(ctx, 1, 1)
	if err != nil || len(evs) != 1 || len(evs[0].Detail) != anticheat.MaxDetailLen {
		t.Fatalf("truncated detail: %d %v", len(evs[0].Detail), err)
	}
	if _, err := s.UserEvents(ctx, 1, 0); !anticheat.IsReason(err, "bad_input") {
		t.Fatalf("limit 0: %v", err)
	}
	if _, err := s.TopOffenders(ctx, Day0, 1001); !anticheat.IsReason(err, "bad_input") {
		t.Fatalf("limit 1001: %v", err)
	}
}

func testBlocks(t *testing.T, s anticheat.Store) {
	ctx := context.Background()
	if _, ok, err := s.GetBlock(ctx, 1, Day0); ok || err != nil {
		t.Fatalf("empty: %v %v", ok, err)
	}
	if err := s.PutBlock(ctx, anticheat.Block{UserKey: 1, Until: Day0.Add(time.Hour), Reason: "speed", At: Day0}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlock(ctx, anticheat.Block{UserKey: 2, Reason: "receipt", At: Day0}); err != nil {
		t.Fatal(err)
	}
	b, ok, err := s.GetBlock(ctx, 1, Day0.Add(time.Minute))
	if err != nil || !ok || !b.Until.Equal(Day0.Add(time.Hour)) || b.Reason != "speed" || b.Permanent() {
		t.Fatalf("temp block: %+v %v %v", b, ok, err)
	}
	if _, ok, _ := s.GetBlock(ctx, 1, Day0.Add(time.Hour)); ok {
		t.Fatal("temp block in force after Until")
	}
	b, ok, _ = s.GetBlock(ctx, 2, Day0.Add(1000*24*time.Hour))
	if !ok || !b.Permanent() || b.Reason != "receipt" {
		t.Fatalf("permanent: %+v %v", b, ok)
	}
	if err := s.DeleteBlock(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.GetBlock(ctx, 2, Day0); ok {
		t.Fatal("lifted block in force")
	}
	if err := s.DeleteBlock(ctx, 99); err != nil {
		t.Fatal(err)
	}
}

func testRedeem(t *testing.T, s anticheat.Store) {
	ctx := context.Background()
	r := anticheat.Redemption{Store: "apple", TransactionID: "2000000123", UserKey: 10, ProductID: "gems_100", At: Day0}
	got, created, err := s.Redeem(ctx, r)
	if err != nil || !created || got.UserKey != 10 {
		t.Fatalf("first: %+v %v %v", got, created, err)
	}
	// Same transaction, other account: the first owner comes back.
	r2 := r
	r2.UserKey, r2.At = 11, Day0.Add(time.Hour)
	got, created, err = s.Redeem(ctx, r2)
	if err != nil || created || got.UserKey != 10 || got.ProductID != "gems_100" || !got.At.Equal(Day0) {
		t.Fatalf("second: %+v %v %v", got, created, err)
	}
	// Same id at another store is another transaction; ids are case-sensitive.
	for _, o := range []anticheat.Redemption{{Store: "google", TransactionID: "2000000123", UserKey: 11}, {Store: "apple", TransactionID: "abc", UserKey: 11}, {Store: "apple", TransactionID: "ABC", UserKey: 11}} {
		if _, created, err := s.Redeem(ctx, o); err != nil || !created {
			t.Fatalf("%+v: created=%v err=%v", o, created, err)
		}
	}
	if _, _, err := s.Redeem(ctx, anticheat.Redemption{Store: "apple", UserKey: 1}); !anticheat.IsReason(err, "bad_input") {
		t.Fatalf("empty transaction id: %v", err)
	}
}

func testRedeemConcurrent(t *testing.T, s anticheat.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	owners := map[int64]bool{}
	for i := range 100 {
		wg.Go(func() {
			got, c, err := s.Redeem(ctx, anticheat.Redemption{Store: "google", TransactionID: "GPA.1234-5678", UserKey: int64(i%3 + 1), ProductID: "p", At: Day0})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
				return
			}
			if c {
				created++
			}
			owners[got.UserKey] = true
		})
	}
	wg.Wait()
	if created != 1 || len(owners) != 1 {
		t.Fatalf("created %d times, owners %v", created, owners)
	}
}
