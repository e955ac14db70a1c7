package idempotency_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/internal/testdb"
	"github.com/madang-io/madang/protocol"
)

// A replay answers only a durable result: seeing the original's commit is not
// enough (InnoDB makes a commit visible before its redo log is flushed), so
// the replaying transaction must itself commit a change, which the database
// logs after the original's commit, before the replay is answered. These
// tests watch the statements and commits through testdb.Recorder (a real
// driver underneath: SQLite and MariaDB). SQLite shows a commit only after
// its log was written and synced, so there a replay needs no write of its
// own (needsWrite); it is still answered only after its commit.

// needsWrite reports whether a replay on backend must write to be durable.
func needsWrite(backend string) bool { return backend != "sqlite" }

// wrote reports whether the events include a statement that changed at
// least one row (a change the database logs), and lists them.
func wrote(evs []testdb.Event) (bool, string) {
	var b strings.Builder
	changed := false
	for _, e := range evs {
		fmt.Fprintf(&b, "\n  %s %s", e.Kind, e.Query)
		if e.Kind == "exec" {
			fmt.Fprintf(&b, " -> rows %d err %v", e.Rows, e.Err)
			if e.Err == nil && e.Rows > 0 {
				changed = true
			}
		}
		if e.Kind == "commit" || e.Kind == "rollback" {
			fmt.Fprintf(&b, " err %v", e.Err)
		}
	}
	return changed, b.String()
}

// committed reports whether the events end with a successful commit.
func committed(evs []testdb.Event) bool {
	return len(evs) > 0 && evs[len(evs)-1].Kind == "commit" && evs[len(evs)-1].Err == nil
}

// answer is what Do returned.
type answer struct {
	out idempotency.Outcome
	err error
}

// doAsync runs s.Do(ctx, buyScope, key, fp, fn) in a goroutine: its answer
// comes on done, and finished closes when the goroutine has ended.
func doAsync(ctx context.Context, s *idempotency.SQLStore, key string, fp idempotency.Fingerprint, fn idempotency.Func) (done <-chan answer, finished <-chan struct{}) {
	d, f := make(chan answer, 1), make(chan struct{})
	go func() {
		defer close(f)
		out, err := s.Do(ctx, buyScope, key, fp, fn)
		d <- answer{out, err}
	}()
	return d, f
}

// expiresAt reads the key row's expiry.
func expiresAt(t *testing.T, db *sql.DB, key string) int64 {
	t.Helper()
	var v int64
	if err := db.QueryRow(`SELECT expires_at FROM idempotency_keys WHERE user_key = ? AND command = ? AND request_id = ?`, buyScope.UserKey, buyScope.Command, key).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSQLStoreReplayCommitsBeforeAnswering: Do answers a replay only after
// the replaying transaction committed, and that transaction changed a row.
// The recorder holds the replay's commit: Do must still be waiting for it.
func TestSQLStoreReplayCommitsBeforeAnswering(t *testing.T) {
	for _, b := range testdb.RecordedBackends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db, p, s := walletStore(t, b, idempotency.Config{})
			fp := idempotency.FingerprintOf([]byte(`{"item":1}`))
			out, err := s.Do(ctx, buyScope, "rid-1", fp, buy(30))
			if err != nil || out.Replay {
				t.Fatalf("first run: %+v, %v", out, err)
			}
			before := expiresAt(t, db, "rid-1")
			first := p.LastTxn()

			entered, release := make(chan int, 1), make(chan struct{})
			var unblock sync.Once
			p.BeforeCommit(func(txn int) {
				entered <- txn
				<-release
			})
			done, finished := doAsync(ctx, s, "rid-1", fp, buy(30))
			// On a failure, let the replay end (an open transaction would
			// hold the table and block dropping the test database).
			defer func() {
				unblock.Do(func() { close(release) })
				<-finished
			}()
			var txn int
			select {
			case a := <-done:
				evs := p.TxEvents(p.LastTxn())
				_, list := wrote(evs)
				t.Fatalf("replay answered (%+v, %v) without committing first; its transaction:%s", a.out, a.err, list)
			case txn = <-entered:
			}
			if txn <= first {
				t.Fatalf("commit of transaction %d, want the replay's (after %d)", txn, first)
			}
			select {
			case a := <-done:
				t.Fatalf("replay answered (%+v, %v) while its commit was still running", a.out, a.err)
			default:
			}
			evs := p.TxEvents(txn)
			changed, list := wrote(evs)
			if !changed && needsWrite(b.Name) {
				t.Fatalf("the replay's transaction commits without a logged change; it ran:%s", list)
			}
			unblock.Do(func() { close(release) })
			a := <-done
			p.BeforeCommit(nil)
			if a.err != nil || !a.out.Replay || string(a.out.Payload) != `{"gems":70}` {
				t.Fatalf("replay: %+v (%s), %v", a.out, a.out.Payload, a.err)
			}
			if !committed(p.TxEvents(txn)) {
				_, list := wrote(p.TxEvents(txn))
				t.Fatalf("replay's transaction did not commit:%s", list)
			}
			// The change is the key row's expiry, 1 ms later; nothing else.
			want := before
			if needsWrite(b.Name) {
				want++
			}
			if after := expiresAt(t, db, "rid-1"); after != want {
				t.Fatalf("expiry %d after the replay, want %d", after, want)
			}
			if g := gems(t, db); g != 70 {
				t.Fatalf("gems %d, want 70", g)
			}
			t.Logf("%s: replay transaction:%s", b.Name, list)
		})
	}
}

// TestSQLStoreDoTxReplayWrites: in the caller's transaction (the game
// server's path), a replay leaves a change in tx, so the caller's commit,
// which must come before the answer, is logged after the original's.
func TestSQLStoreDoTxReplayWrites(t *testing.T) {
	for _, b := range testdb.RecordedBackends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db, p, s := walletStore(t, b, idempotency.Config{})
			fp := idempotency.FingerprintOf([]byte(`{"item":1}`))
			for i := range 3 {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback()
				txn := p.LastTxn()
				out, err := s.DoTx(ctx, tx, buyScope, "rid-tx", fp, buy(10))
				if err != nil || out.Replay != (i > 0) || string(out.Payload) != `{"gems":90}` {
					t.Fatalf("%d: %+v (%s), %v", i, out, out.Payload, err)
				}
				changed, list := wrote(p.TxEvents(txn))
				if !changed && needsWrite(b.Name) {
					t.Fatalf("%d: DoTx left no change in the transaction; it ran:%s", i, list)
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			if g := gems(t, db); g != 90 {
				t.Fatalf("gems %d, want 90", g)
			}
		})
	}
}

// TestSQLStoreReplayOfUncommittedKey: while the original's transaction has
// not committed, a duplicate never answers its result: under WaitInFlight it waits
// for the commit and then replays (committing a change of its own); under
// AnswerInFlight it answers CodeInFlight (MariaDB: after the one-second
// lock wait; SQLite refuses a second writer with busy, as the conformance
// suite shows).
func TestSQLStoreReplayOfUncommittedKey(t *testing.T) {
	for _, b := range testdb.RecordedBackends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db, p, s := walletStore(t, b, idempotency.Config{WaitTimeout: time.Minute})
			fp := idempotency.FingerprintOf([]byte(`{"item":1}`))
			inFlight := sqlStore(t, db, idempotency.Config{InFlight: idempotency.AnswerInFlight})
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if out, err := s.DoTx(ctx, tx, buyScope, "rid-open", fp, buy(10)); err != nil || out.Replay {
				t.Fatalf("original: %+v, %v", out, err)
			}
			original := p.LastTxn()

			if b.Name == "mariadb" {
				out, err := inFlight.Do(ctx, buyScope, "rid-open", fp, buy(10))
				if protocol.CodeOf(err) != protocol.CodeInFlight {
					t.Fatalf("duplicate of an uncommitted key: %+v (%s), %v; want CodeInFlight", out, out.Payload, err)
				}
			}

			// Under WaitInFlight: the duplicate is sent (its first statement or
			// its BEGIN, which SQLite's immediate transactions block on),
			// then the original commits.
			sent := make(chan struct{})
			var once sync.Once
			p.OnExec(func(txn int, _ string) {
				if txn > original {
					once.Do(func() { close(sent) })
				}
			})
			done, finished := doAsync(ctx, s, "rid-open", fp, buy(10))
			defer func() {
				tx.Rollback() // on a failure: let the duplicate end
				<-finished
			}()
			if b.Name == "sqlite" {
				// BEGIN IMMEDIATE waits for the original's write lock
				// inside BeginTx: wait for the transaction to be counted
				// instead (it is numbered before the driver begins it).
				for p.LastTxn() == original {
					select {
					case a := <-done:
						t.Fatalf("duplicate answered before the original committed: %+v, %v", a.out, a.err)
					case <-time.After(time.Millisecond):
					}
				}
			} else {
				select {
				case a := <-done:
					t.Fatalf("duplicate answered before the original committed: %+v, %v", a.out, a.err)
				case <-sent:
				}
			}
			select {
			case a := <-done:
				t.Fatalf("duplicate answered before the original committed: %+v, %v", a.out, a.err)
			default:
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			a := <-done
			p.OnExec(nil)
			if a.err != nil || !a.out.Replay || string(a.out.Payload) != `{"gems":90}` {
				t.Fatalf("waiting duplicate: %+v (%s), %v; want the replay", a.out, a.out.Payload, a.err)
			}
			evs := p.TxEvents(p.LastTxn())
			if changed, list := wrote(evs); (!changed && needsWrite(b.Name)) || !committed(evs) {
				t.Fatalf("the waiting duplicate answered without committing (a change); it ran:%s", list)
			}
			if g := gems(t, db); g != 90 {
				t.Fatalf("gems %d, want 90", g)
			}
		})
	}
}
