package idempotency_test

import (
	"context"
	"database/sql"
	"github.com/madang-io/madang/idempotency/idempotencytest"
	"strconv"
	"testing"
	"time"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/internal/testdb"
	"github.com/madang-io/madang/protocol"
)

// wallet creates the game's table and gives user 1 gems.
func wallet(t testing.TB, db *sql.DB, gems int) {
	t.Helper()
	if _, err := db.Exec(`CREATE TABLE wallet (user_key BIGINT NOT NULL PRIMARY KEY, gems BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO wallet (user_key, gems) VALUES (1, ?)`, gems); err != nil {
		t.Fatal(err)
	}
}

func gems(t testing.TB, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT gems FROM wallet WHERE user_key = 1`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// walletStore opens b, gives user 1 100 gems (wallet) and returns an
// SQLStore with cfg on it.
func walletStore(t testing.TB, b testdb.RecordedBackend, cfg idempotency.Config) (*sql.DB, *testdb.Recorder, *idempotency.SQLStore) {
	t.Helper()
	db, rec := b.Open(t)
	wallet(t, db, 100)
	return db, rec, sqlStore(t, db, cfg)
}

var errNotEnoughGems = &protocol.Error{Code: protocol.CodeGameBase + 1, Message: "not enough gems"}

// buy debits price gems in the transaction of ctx and answers the balance.
func buy(price int) idempotency.Func {
	return func(ctx context.Context) (idempotency.Result, error) {
		tx := idempotency.TxFrom(ctx)
		r, err := tx.ExecContext(ctx, `UPDATE wallet SET gems = gems - ? WHERE user_key = 1 AND gems >= ?`, price, price)
		if err != nil {
			return idempotency.Result{}, err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return idempotency.Result{}, errNotEnoughGems
		}
		var left int
		if err := tx.QueryRowContext(ctx, `SELECT gems FROM wallet WHERE user_key = 1`).Scan(&left); err != nil {
			return idempotency.Result{}, err
		}
		return idempotency.Result{Payload: []byte(`{"gems":` + strconv.Itoa(left) + `}`)}, nil
	}
}

var buyScope = idempotency.Scope{UserKey: 1, Command: "shop.buy"}

func TestSQLStoreAddsTwoStatements(t *testing.T) {
	for _, b := range testdb.RecordedBackends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db, p, s := walletStore(t, b, idempotency.Config{})
			fp := idempotency.FingerprintOf([]byte(`{"item":1}`))
			game := func(ctx context.Context) (idempotency.Result, error) {
				_, err := idempotency.TxFrom(ctx).ExecContext(ctx, `UPDATE wallet SET gems = gems - 10 WHERE user_key = 1`)
				return idempotency.Result{Payload: []byte(`"ok"`)}, err
			}
			run := func() (idempotency.TxOutcome, int64) {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				before := p.Statements()
				out, err := s.DoTx(ctx, tx, buyScope, "rid-1", fp, game)
				if err != nil {
					t.Fatal(err)
				}
				n := p.Statements() - before
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
				return out, n
			}
			out, n := run()
			// The game ran one UPDATE; the store added the rest.
			if out.Replay || n-1 != 2 {
				t.Fatalf("first run: %d statements besides the game's, want 2 (replay %v)", n-1, out.Replay)
			}
			out, n = run()
			// A replay: the upsert that touches the key row and a SELECT
			// on MariaDB (see TestSQLStoreReplayCommitsBeforeAnswering);
			// on SQLite the INSERT fails and a SELECT.
			if !out.Replay || n != 2 {
				t.Fatalf("replay: %d statements, want 2 (replay %v)", n, out.Replay)
			}
			t.Logf("%s: the store adds 2 statements to a first run and runs 2 for a replay", b.Name)
			if g := gems(t, db); g != 90 {
				t.Fatalf("gems %d, want 90", g)
			}
		})
	}
}

// TestSQLStoreCommitAnswerLost: the connection dies after the server
// committed and before the reply; the retry gets the stored response and the
// wallet was charged once.
func TestSQLStoreCommitAnswerLost(t *testing.T) {
	for _, b := range testdb.RecordedBackends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db, p, s := walletStore(t, b, idempotency.Config{})
			fp := idempotency.FingerprintOf([]byte(`{"item":1}`))
			var hooks int
			fn := func(ctx context.Context) (idempotency.Result, error) {
				idempotency.AfterCommit(ctx, func(context.Context) { hooks++ })
				return buy(30)(ctx)
			}

			p.LoseNextCommit()
			_, err := s.Do(ctx, buyScope, "rid-lost", fp, fn)
			if protocol.CodeOf(err) != protocol.CodeTimeout || !protocol.CodeOf(err).Retryable() {
				t.Fatalf("lost commit answer: %v (code %v), want a retryable CodeTimeout", err, protocol.CodeOf(err))
			}
			if hooks != 0 {
				t.Fatal("hook ran although Do could not know the commit happened")
			}
			out, err := s.Do(ctx, buyScope, "rid-lost", fp, fn)
			if err != nil || !out.Replay || string(out.Payload) != `{"gems":70}` {
				t.Fatalf("retry: %+v (%s), %v", out, out.Payload, err)
			}
			if g := gems(t, db); g != 70 {
				t.Fatalf("gems %d, want 70: charged more than once", g)
			}

			// The process dies between commit and reply: the caller's own
			// transaction commits and the outcome is never sent.
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.DoTx(ctx, tx, buyScope, "rid-crash", fp, buy(30)); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			out, err = s.Do(ctx, buyScope, "rid-crash", fp, fn)
			if err != nil || !out.Replay || string(out.Payload) != `{"gems":40}` {
				t.Fatalf("retry after crash: %+v, %v", out, err)
			}
			// A cancelled context after the commit: same story.
			cctx, cancel := context.WithCancel(ctx)
			out, err = s.Do(cctx, buyScope, "rid-cancel", fp, func(ctx context.Context) (idempotency.Result, error) {
				res, err := buy(30)(ctx)
				idempotency.AfterCommit(ctx, func(context.Context) { cancel() })
				return res, err
			})
			if err != nil || out.Replay || string(out.Payload) != `{"gems":10}` {
				t.Fatalf("cancel after commit: %+v, %v", out, err)
			}
			if cctx.Err() == nil {
				t.Fatal("hook did not run")
			}
			out, err = s.Do(ctx, buyScope, "rid-cancel", fp, fn)
			if err != nil || !out.Replay || string(out.Payload) != `{"gems":10}` {
				t.Fatalf("retry after cancel: %+v, %v", out, err)
			}
			// Not enough gems is a definitive, stored business error.
			out, err = s.Do(ctx, buyScope, "rid-poor", fp, buy(30))
			if err != nil || out.Code != errNotEnoughGems.Code {
				t.Fatalf("poor: %+v, %v", out, err)
			}
			if _, err := db.Exec(`UPDATE wallet SET gems = 1000 WHERE user_key = 1`); err != nil {
				t.Fatal(err)
			}
			out, err = s.Do(ctx, buyScope, "rid-poor", fp, buy(30))
			if err != nil || !out.Replay || out.Code != errNotEnoughGems.Code || out.Message != "not enough gems" {
				t.Fatalf("poor retry: %+v, %v", out, err)
			}
			if g := gems(t, db); g != 1000 {
				t.Fatalf("gems %d", g)
			}
		})
	}
}

func TestSQLStoreRetryableFailureRollsBack(t *testing.T) {
	for _, b := range testdb.RecordedBackends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db, _, s := walletStore(t, b, idempotency.Config{})
			fp := idempotency.FingerprintOf(nil)
			_, err := s.Do(ctx, buyScope, "r", fp, func(ctx context.Context) (idempotency.Result, error) {
				if _, err := buy(10)(ctx); err != nil {
					return idempotency.Result{}, err
				}
				return idempotency.Result{}, &protocol.Error{Code: protocol.CodeUnavailable, Message: "receipt server down"}
			})
			if protocol.CodeOf(err) != protocol.CodeUnavailable {
				t.Fatalf("err %v", err)
			}
			if g := gems(t, db); g != 100 {
				t.Fatalf("gems %d: a retryable failure committed", g)
			}
			out, err := s.Do(ctx, buyScope, "r", fp, buy(10))
			if err != nil || out.Replay || string(out.Payload) != `{"gems":90}` {
				t.Fatalf("%+v, %v", out, err)
			}
		})
	}
}

func TestSQLStoreExpiryAndPurge(t *testing.T) {
	for _, b := range testdb.RecordedBackends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db, _ := b.Open(t)
			clk := idempotencytest.NewClock(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
			s := sqlStore(t, db, idempotency.Config{Now: clk.Now, Retention: time.Hour})
			fp := idempotency.FingerprintOf(nil)
			runs := 0
			fn := func(context.Context) (idempotency.Result, error) {
				runs++
				return idempotency.Result{Payload: []byte(strconv.Itoa(runs))}, nil
			}
			for _, k := range []string{"a", "b"} {
				if _, err := s.Do(ctx, buyScope, k, fp, fn); err != nil {
					t.Fatal(err)
				}
			}
			clk.Advance(59 * time.Minute)
			if out, _ := s.Do(ctx, buyScope, "a", fp, fn); !out.Replay {
				t.Fatal("expired early")
			}
			clk.Advance(2 * time.Minute)
			out, err := s.Do(ctx, buyScope, "a", idempotency.FingerprintOf([]byte("other")), fn)
			if err != nil || out.Replay || string(out.Payload) != "3" {
				t.Fatalf("expired key not reusable: %+v, %v", out, err)
			}
			if out, _ := s.Do(ctx, buyScope, "a", idempotency.FingerprintOf([]byte("other")), fn); !out.Replay || string(out.Payload) != "3" {
				t.Fatalf("re-used key did not store: %+v", out)
			}
			n, err := s.Purge(ctx, db)
			if err != nil || n != 1 {
				t.Fatalf("purged %d, %v; want 1 (key b)", n, err)
			}
		})
	}
}

func TestSQLStoreDoTxCommittedRunsHooks(t *testing.T) {
	for _, b := range testdb.RecordedBackends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db, _ := b.Open(t)
			s := sqlStore(t, db, idempotency.Config{})
			hooks := 0
			fn := func(ctx context.Context) (idempotency.Result, error) {
				idempotency.AfterCommit(ctx, func(context.Context) { hooks++ })
				return idempotency.Result{}, nil
			}
			for i := range 2 {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				out, err := s.DoTx(ctx, tx, buyScope, "k", idempotency.FingerprintOf(nil), fn)
				if err != nil || out.Replay != (i == 1) {
					t.Fatalf("%d: %+v, %v", i, out, err)
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
				out.Committed(ctx)
			}
			if hooks != 1 {
				t.Fatalf("hooks %d", hooks)
			}
			if _, err := s.DoTx(ctx, nil, buyScope, "k", idempotency.FingerprintOf(nil), fn); err == nil {
				t.Fatal("nil tx accepted")
			}
		})
	}
}

func TestNewSQLStoreRefusesBadTable(t *testing.T) {
	db, _ := testdb.RecordedBackends()[0].Open(t)
	_, err := idempotency.NewSQLStore(context.Background(), db, idempotency.SQLConfig{Table: "x; DROP TABLE y"})
	if err == nil {
		t.Fatal("bad table name accepted")
	}
}
