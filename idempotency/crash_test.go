package idempotency_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard/shardtest"
)

type crashAnswer struct {
	code    protocol.Code
	replay  bool
	payload string
}

// TestSQLStoreReplaysSurviveMariaDBKill: copies of one request race (three
// per key, on separate connections) against a private mariadbd that is
// killed -9 in the middle; after it recovers, every answer a client got as
// done (code 0, first run or replay) has its key row and its effect row, and
// no effect exists twice. Bounded: three kills, a few hundred keys each.
//
// A crash hitting the window between a commit becoming visible and its
// redo flush is rare; this run audits the guarantee end to end rather than
// proving the mechanism (TestSQLStoreReplayCommitsBeforeAnswering does).
func TestSQLStoreReplaysSurviveMariaDBKill(t *testing.T) {
	// A mariadbd of the test's own (durability defaults:
	// innodb_flush_log_at_trx_commit = 1), never the shared server.
	m := shardtest.PrivateMySQL(t, "--skip-log-bin", "--innodb-buffer-pool-size=32M", "--max-connections=200")
	dsn := func(db string) string { return m.DSN(db) + "?interpolateParams=true" }
	ctx := context.Background()
	admin, err := sql.Open("mysql", dsn(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("CREATE DATABASE crash"); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	setup, err := sql.Open("mysql", dsn("crash"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := setup.Exec("CREATE TABLE effects (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, rid VARBINARY(64) NOT NULL, KEY (rid)) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	st, err := idempotency.NewSQLStore(ctx, setup, idempotency.SQLConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx, setup); err != nil {
		t.Fatal(err)
	}
	setup.Close()

	scope := idempotency.Scope{UserKey: 1, Command: "shop.buy_iap"}
	fp := idempotency.FingerprintOf([]byte(`{"product":"gems_100"}`))
	answers := map[string][]crashAnswer{}
	var mu sync.Mutex
	const rounds, copies, answersBeforeKill = 3, 3, 300
	total, done := 0, 0
	for round := range rounds {
		db, err := sql.Open("mysql", dsn("crash"))
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(24)
		s, err := idempotency.NewSQLStore(ctx, db, idempotency.SQLConfig{Config: idempotency.Config{WaitTimeout: 10 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		var got atomic.Int32
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 8 { // 8 keys in flight, 3 copies each
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					rid := fmt.Sprintf("r%d-w%d-%d", round, w, i)
					var cw sync.WaitGroup
					for range copies {
						cw.Go(func() {
							out, err := s.Do(ctx, scope, rid, fp, func(ctx context.Context) (idempotency.Result, error) {
								if _, err := idempotency.TxFrom(ctx).ExecContext(ctx, "INSERT INTO effects (rid) VALUES (?)", rid); err != nil {
									return idempotency.Result{}, err
								}
								return idempotency.Result{Payload: []byte(`{"granted":"` + rid + `"}`)}, nil
							})
							a := crashAnswer{code: protocol.CodeOf(err), replay: out.Replay, payload: string(out.Payload)}
							if err == nil {
								a.code = out.Code
								got.Add(1)
							}
							mu.Lock()
							answers[rid] = append(answers[rid], a)
							mu.Unlock()
						})
					}
					cw.Wait()
				}
			})
		}
		// Kill once enough answers came back: duplicates are racing then.
		deadline := time.Now().Add(3 * time.Minute)
		for got.Load() < answersBeforeKill {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("round %d: only %d answers in three minutes", round, got.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
		m.Kill()
		close(stop)
		wg.Wait()
		db.Close()
		if err := m.Restart(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// Audit after the last recovery.
	db, err := sql.Open("mysql", dsn("crash"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lost, twice, replays := 0, 0, 0
	for rid, as := range answers {
		var effects, keyRows int
		if err := db.QueryRow("SELECT COUNT(*) FROM effects WHERE rid = ?", rid).Scan(&effects); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow("SELECT COUNT(*) FROM idempotency_keys WHERE user_key = ? AND command = ? AND request_id = ? AND done = 1", scope.UserKey, scope.Command, rid).Scan(&keyRows); err != nil {
			t.Fatal(err)
		}
		if effects > 1 {
			twice++
			t.Errorf("%s applied %d times", rid, effects)
		}
		for _, a := range as {
			total++
			if a.code != protocol.CodeOK {
				continue
			}
			done++
			if a.replay {
				replays++
			}
			if effects != 1 || keyRows != 1 {
				lost++
				t.Errorf("%s answered done (replay %v, %s) but after recovery: %d effect rows, %d key rows", rid, a.replay, a.payload, effects, keyRows)
			}
		}
	}
	t.Logf("%d kills, %d answers, %d done (%d replays), %d lost, %d applied twice", rounds, total, done, replays, lost, twice)
	if done == 0 || replays == 0 {
		t.Fatalf("the run proves nothing: %d done answers, %d replays", done, replays)
	}
}
