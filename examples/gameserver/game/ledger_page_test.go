package game_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/madang-io/madang/examples/gameserver/game"
)

// fillLedger appends n ledger rows for user (and one row for another
// user every 10, so the index holds other users between them) in bulk.
func fillLedger(t testing.TB, db *sql.DB, user int64, n int) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const batch = 500
	for done := 0; done < n; {
		k := min(batch, n-done)
		var q strings.Builder
		q.WriteString("INSERT INTO ledger (user_key, currency, delta, balance_after, reason, request_id, at) VALUES ")
		args := make([]any, 0, k*7)
		for i := range k {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?)")
			u := user
			if (done+i)%10 == 9 {
				u = user + 1
			}
			args = append(args, u, "gold", 1, done+i, "test", "r"+strconv.Itoa(done+i), 1_700_000_000_000+int64(done+i))
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			t.Fatal(err)
		}
		done += k
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestLedgerBeforePages pages through a ledger with LedgerBefore: every row
// of the user once, newest first, no other user's, whatever the page size.
func TestLedgerBeforePages(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			r := newRig(t, b)
			ctx := context.Background()
			db, err := r.router.DB(ctx, 1500)
			if err != nil {
				t.Fatal(err)
			}
			fillLedger(t, db, 1500, 237)
			all, err := r.g.Ledger(ctx, 1500)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 237-23 {
				t.Fatalf("ledger rows: %d", len(all))
			}
			for _, size := range []int{1, 50, 213, 214, 1000} {
				var got []game.LedgerEntry
				var before int64
				for pages := 0; ; pages++ {
					page, err := r.g.LedgerBefore(ctx, 1500, before, size)
					if err != nil {
						t.Fatal(err)
					}
					if len(page) > size || pages > len(all) {
						t.Fatalf("size %d: page of %d rows, %d pages", size, len(page), pages)
					}
					got = append(got, page...)
					if len(page) < size {
						break
					}
					before = page[len(page)-1].ID
				}
				if len(got) != len(all) {
					t.Fatalf("size %d: %d rows, want %d", size, len(got), len(all))
				}
				for i, e := range got {
					if want := all[len(all)-1-i]; e != want {
						t.Fatalf("size %d: row %d is %+v, want %+v", size, i, e, want)
					}
				}
			}
			if page, err := r.g.LedgerBefore(ctx, 1500, 1, 50); err != nil || len(page) != 0 {
				t.Fatalf("before the first row: %v %v", page, err)
			}
		})
	}
}

// BenchmarkLedgerPage reads a 50-row page of a ledger of one user with
// 1,000,000 rows (SQLite; MADANG_LEDGER_BENCH_ROWS changes the count):
// the console's keyset page (LedgerBefore) at the newest rows and half-way
// down, against the OFFSET paging it replaces, half-way down, as the
// side-by-side baseline.
func BenchmarkLedgerPage(b *testing.B) {
	rows := 1_000_000
	if v := os.Getenv("MADANG_LEDGER_BENCH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("MADANG_LEDGER_BENCH_ROWS=%q: a number of at least 1000", v)
		}
		rows = n
	}
	r := newRig(b, backends()[0])
	ctx := context.Background()
	db, err := r.router.DB(ctx, 1500)
	if err != nil {
		b.Fatal(err)
	}
	fillLedger(b, db, 1500, rows)
	newest, err := r.g.LedgerBefore(ctx, 1500, 0, 1)
	if err != nil || len(newest) != 1 {
		b.Fatal(newest, err)
	}
	mid := newest[0].ID / 2
	const page = 50
	b.Run("keyset/newest", func(b *testing.B) {
		for b.Loop() {
			if es, err := r.g.LedgerBefore(ctx, 1500, 0, page); err != nil || len(es) != page {
				b.Fatal(len(es), err)
			}
		}
	})
	b.Run("keyset/middle", func(b *testing.B) {
		for b.Loop() {
			if es, err := r.g.LedgerBefore(ctx, 1500, mid, page); err != nil || len(es) != page {
				b.Fatal(len(es), err)
			}
		}
	})
	// The baseline: the same page by OFFSET (the user's rows above mid).
	var offset int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM ledger WHERE user_key = ? AND id >= ?", 1500, mid).Scan(&offset); err != nil {
		b.Fatal(err)
	}
	b.Run("offset/middle", func(b *testing.B) {
		for b.Loop() {
			rs, err := db.QueryContext(ctx, "SELECT id, user_key, currency, delta, balance_after, reason, request_id, at FROM ledger WHERE user_key = ? ORDER BY id DESC LIMIT ? OFFSET ?", 1500, page, offset)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for rs.Next() {
				var e game.LedgerEntry
				if err := rs.Scan(&e.ID, &e.UserKey, &e.Currency, &e.Delta, &e.BalanceAfter, &e.Reason, &e.RequestID, &e.At); err != nil {
					b.Fatal(err)
				}
				n++
			}
			rs.Close()
			if n != page {
				b.Fatal(fmt.Sprint(n))
			}
		}
	})
}
