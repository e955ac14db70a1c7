package sqldialect_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/madang-io/madang/internal/sqldialect"
	"github.com/madang-io/madang/internal/testdb"
)

var deadlock = &mysql.MySQLError{Number: 1213, Message: "Deadlock found"}

func TestRetryStopsAtTheLimitAndOnOtherErrors(t *testing.T) {
	ctx := context.Background()
	runs, retried := 0, 0
	r := sqldialect.Retry{Retries: 2, Backoff: time.Millisecond, OnRetry: func(error) { retried++ }}
	err := r.Do(ctx, func(context.Context) error { runs++; return deadlock })
	if !errors.Is(err, deadlock) || runs != 3 || retried != 2 {
		t.Fatalf("always deadlocking: %v after %d runs, %d retries; want 3 runs", err, runs, retried)
	}
	runs = 0
	other := errors.New("syntax")
	if err := r.Do(ctx, func(context.Context) error { runs++; return other }); err != other || runs != 1 {
		t.Fatalf("other error: %v after %d runs", err, runs)
	}
	runs = 0
	if err := (sqldialect.Retry{}).Do(ctx, func(context.Context) error { runs++; return deadlock }); !errors.Is(err, deadlock) || runs != 1 {
		t.Fatalf("no retries: %v after %d runs", err, runs)
	}
	runs = 0
	dup := sqldialect.Retry{Retries: 1, Retryable: sqldialect.IsDuplicateKey}
	if err := dup.Do(ctx, func(context.Context) error { runs++; return deadlock }); !errors.Is(err, deadlock) || runs != 1 {
		t.Fatalf("own Retryable: %v after %d runs", err, runs)
	}
}

// The waits double, with at most 50% jitter: 3 retries from 20 ms wait
// 20+40+80 = 140 ms at least and 210 ms plus scheduling at most.
func TestRetryBackoffDoublesWithJitter(t *testing.T) {
	var waits []time.Duration
	last := time.Now()
	r := sqldialect.Retry{Retries: 3, Backoff: 20 * time.Millisecond}
	_ = r.Do(context.Background(), func(context.Context) error {
		now := time.Now()
		waits = append(waits, now.Sub(last))
		last = now
		return deadlock
	})
	if len(waits) != 4 {
		t.Fatalf("%d runs", len(waits))
	}
	for i, w := range waits[1:] {
		if want := 20 * time.Millisecond << i; w < want {
			t.Fatalf("wait %d was %v, want at least %v", i, w, want)
		}
	}
}

func TestRetryStopsWhenCtxEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	runs := 0
	r := sqldialect.Retry{Retries: 5, Backoff: time.Hour}
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if err := r.Do(ctx, func(context.Context) error { runs++; return deadlock }); !errors.Is(err, deadlock) || runs != 1 {
		t.Fatalf("%v after %d runs", err, runs)
	}
}

func TestRunTx(t *testing.T) {
	ctx := context.Background()
	db := testdb.SQLite(t, "runtx")
	if _, err := db.Exec("CREATE TABLE t (v INTEGER)"); err != nil {
		t.Fatal(err)
	}
	insert := func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO t VALUES (1)")
		return err
	}
	if err := sqldialect.RunTx(ctx, db, insert); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := sqldialect.RunTx(ctx, db, func(ctx context.Context, tx *sql.Tx) error { _ = insert(ctx, tx); return boom }); err != boom {
		t.Fatalf("fn's error: %v", err)
	}
	func() {
		defer func() { _ = recover() }()
		_ = sqldialect.RunTx(ctx, db, func(ctx context.Context, tx *sql.Tx) error { _ = insert(ctx, tx); panic("boom") })
	}()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d rows (%v), want only the committed one", n, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	var be *sqldialect.BeginError
	if err := sqldialect.RunTx(cctx, db, insert); !errors.As(err, &be) {
		t.Fatalf("begin on an ended ctx: %v, want a BeginError", err)
	}
}
