package game

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/shard/shardtest"
)

// TestDeadlockVictimRunsAgain makes a real InnoDB deadlock on MariaDB
// (MADANG_MYSQL_DSN): two idempotent calls lock two rows in opposite order.
// Without retries MariaDB kills one (error 1213) and its caller gets the
// error; with deadlockRetry the victim runs again with the same key and both
// succeed, each once.
func TestDeadlockVictimRunsAgain(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("mysql", shardtest.MariaDB().NewDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := idempotency.NewSQLStore(ctx, db, idempotency.SQLConfig{Config: idempotency.Config{RequireKey: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"CREATE TABLE pair (id INT NOT NULL PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB",
		"INSERT INTO pair (id, v) VALUES (0, 0), (1, 0)",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// race runs two calls through d that deadlock on their first run and
	// returns their errors and how many times each function ran.
	race := func(d idempotency.Doer, round int) (errs [2]error, runs [2]int32) {
		var ready [2]chan struct{}
		ready[0], ready[1] = make(chan struct{}), make(chan struct{})
		var n [2]atomic.Int32
		var wg sync.WaitGroup
		for me := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				scope := idempotency.Scope{UserKey: int64(1 + me), Command: "pair"}
				_, errs[me] = d.Do(ctx, scope, fmt.Sprintf("r%d", round), idempotency.Fingerprint{}, func(ctx context.Context) (idempotency.Result, error) {
					tx := idempotency.TxFrom(ctx)
					first := n[me].Add(1) == 1
					if _, err := tx.ExecContext(ctx, "UPDATE pair SET v = v + 1 WHERE id = ?", me); err != nil {
						return idempotency.Result{}, err
					}
					if first {
						close(ready[me])
						select { // both hold their first row: the next UPDATEs deadlock
						case <-ready[1-me]:
						case <-time.After(10 * time.Second):
						}
					}
					if _, err := tx.ExecContext(ctx, "UPDATE pair SET v = v + 1 WHERE id = ?", 1-me); err != nil {
						return idempotency.Result{}, err
					}
					return idempotency.Result{}, nil
				})
			}()
		}
		wg.Wait()
		return errs, [2]int32{n[0].Load(), n[1].Load()}
	}

	errs, _ := race(&deadlockRetry{Doer: store, retries: 0, backoff: time.Millisecond}, 0)
	if (errs[0] == nil) == (errs[1] == nil) || !isDeadlock(errs[0]) && !isDeadlock(errs[1]) {
		t.Fatalf("without retries: %v / %v, want one deadlock victim", errs[0], errs[1])
	}

	d := &deadlockRetry{Doer: store, retries: DefaultDeadlockRetries, backoff: time.Millisecond}
	errs, runs := race(d, 1)
	if errs[0] != nil || errs[1] != nil || d.retried.Load() != 1 || runs[0]+runs[1] != 3 {
		t.Fatalf("with retries: %v / %v, %d retries, runs %v", errs[0], errs[1], d.retried.Load(), runs)
	}
	if s := store.Stats(); s.Executed != 3 { // the winner of round 0 and both of round 1
		t.Fatalf("stored results: %+v", s)
	}
}
