package idempotency_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/idempotency/idempotencytest"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
	"github.com/madang-io/madang/shard/shardtest"
)

// routedGameDBs is how many game databases a routed store spans.
const routedGameDBs = 2

// routed is a SQLStore over a shard.Router of fresh game databases, with no
// database of its own: every key is routed, the key table comes from the
// store's migrations applied with MigrateAll.
type routed struct {
	store  *idempotency.SQLStore
	router *shard.Router
	dbs    []shard.Database
}

func newRouted(t testing.TB, b shardtest.Backend, cfg idempotency.Config, rc shard.Config) *routed {
	t.Helper()
	ctx := context.Background()
	dbs := b.Databases(t, routedGameDBs)
	rc.Directory = shardtest.Static(t, dbs...)
	rc.RefreshInterval = -1
	r, err := shard.NewRouter(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	d := shard.DialectSQLite
	if b.Driver == "mysql" {
		d = shard.DialectMySQL
	}
	s, err := idempotency.NewSQLStore(ctx, nil, idempotency.SQLConfig{Config: cfg, Tx: r.Tx, Dialect: d})
	if err != nil {
		t.Fatal(err)
	}
	files, source := s.Migrations()
	if _, err := r.MigrateAll(ctx, shard.Migrations{FS: files, Source: source}); err != nil {
		t.Fatal(err)
	}
	return &routed{store: s, router: r, dbs: dbs}
}

// TestSQLStoreOverRouter runs the Doer suite against the routed store over
// two game databases, SQLite files and MariaDB databases, with a user key
// of the second database.
func TestSQLStoreOverRouter(t *testing.T) {
	for _, b := range shardtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			first, _ := shardtest.Range(routedGameDBs)
			newDoer := func(t testing.TB, cfg idempotency.Config) idempotency.Doer {
				return newRouted(t, b, cfg, shard.Config{}).store
			}
			idempotencytest.RunDoerTests(t, newDoer, idempotencytest.Options{UserKey: first + 42, BusyIsUnavailable: b.Name == "sqlite"})
		})
	}
	// The MySQL pools as the game server opens them: transactions
	// pipelined, the stored answer deferred to the COMMIT.
	t.Run("mariadb-pipelined", func(t *testing.T) {
		first, _ := shardtest.Range(routedGameDBs)
		newDoer := func(t testing.TB, cfg idempotency.Config) idempotency.Doer {
			return newRouted(t, shardtest.MySQL(), cfg, pipelined(shard.Config{})).store
		}
		idempotencytest.RunDoerTests(t, newDoer, idempotencytest.Options{UserKey: first + 42})
	})
}

// pipelined returns rc with MySQL pools that pipeline transactions, as the
// game server's do: DSNs with interpolated parameters (shard.MySQLDSN)
// opened by shard.OpenMySQL.
func pipelined(rc shard.Config) shard.Config {
	rc.Open = func(driver, dsn string) (*sql.DB, error) {
		if driver != "mysql" {
			return sql.Open(driver, dsn)
		}
		dsn, err := shard.MySQLDSN(dsn)
		if err != nil {
			return nil, err
		}
		return shard.OpenMySQL(dsn)
	}
	return rc
}

// TestSQLStoreOverRouterRouting: each user's key row is on the user's own
// database, the router counts the store's transactions, a user key no
// database owns is a definitive bad request (not unavailable) and nothing
// runs, and the migration is recorded so that a second MigrateAll applies
// nothing.
func TestSQLStoreOverRouterRouting(t *testing.T) {
	ctx := context.Background()
	for _, b := range shardtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			rs := newRouted(t, b, idempotency.Config{RequireKey: true}, shard.Config{})
			fp := idempotency.FingerprintOf([]byte(`{}`))
			var runs atomic.Int32
			fn := func(ctx context.Context) (idempotency.Result, error) {
				if idempotency.TxFrom(ctx) == nil {
					return idempotency.Result{}, errors.New("no transaction")
				}
				runs.Add(1)
				return idempotency.Result{Payload: []byte(`1`)}, nil
			}
			for id := 1; id <= routedGameDBs; id++ {
				first, _ := shardtest.Range(id)
				for uk := first; uk < first+3; uk++ {
					for range 2 {
						if _, err := rs.store.Do(ctx, idempotency.Scope{UserKey: uk, Command: "c"}, "k", fp, fn); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			if runs.Load() != 3*routedGameDBs {
				t.Fatalf("ran %d times, want %d", runs.Load(), 3*routedGameDBs)
			}
			for i, st := range rs.router.Stats() {
				first, last := shardtest.Range(st.ID)
				db, err := rs.router.DB(ctx, first)
				if err != nil {
					t.Fatal(err)
				}
				var mine, all int
				if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM idempotency_keys WHERE user_key BETWEEN ? AND ?", first, last).Scan(&mine); err != nil {
					t.Fatal(err)
				}
				if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM idempotency_keys").Scan(&all); err != nil {
					t.Fatal(err)
				}
				if mine != 3 || all != 3 {
					t.Fatalf("db %d holds %d rows, %d of its users; want 3", st.ID, all, mine)
				}
				if st.Txs != 6 { // 3 first runs and 3 replays
					t.Fatalf("db %d: router counted %d transactions, want 6 (%d)", st.ID, st.Txs, i)
				}
			}

			// An unknown user: the router's own answer, definitive.
			_, err := rs.store.Do(ctx, idempotency.Scope{UserKey: 5, Command: "c"}, "k", fp, fn)
			if !errors.Is(err, shard.ErrUnknownKey) || protocol.CodeOf(err) != protocol.CodeBadRequest || protocol.CodeOf(err).Retryable() {
				t.Fatalf("unknown user key: %v (code %v), want shard.ErrUnknownKey, bad_request", err, protocol.CodeOf(err))
			}
			// Through the middleware too: answered bad_request.
			h := protocol.Chain(protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
				runs.Add(1)
				return &protocol.Response{}, nil
			}), idempotency.Middleware(rs.store))
			req := &protocol.Request{Command: "c", RequestID: "k", Principal: &protocol.Principal{UserKey: 5}}
			if _, err := h.Serve(ctx, req); protocol.CodeOf(err) != protocol.CodeBadRequest {
				t.Fatalf("middleware, unknown user key: %v (code %v)", err, protocol.CodeOf(err))
			}
			if runs.Load() != 3*routedGameDBs {
				t.Fatalf("ran for an unknown user")
			}

			files, source := rs.store.Migrations()
			sts, err := rs.router.MigrateAll(ctx, shard.Migrations{FS: files, Source: source})
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range sts {
				if len(st.Applied) != 0 || !st.Status.UpToDate() || st.Status.Source != "idempotency_keys" {
					t.Fatalf("second MigrateAll: %+v", st)
				}
			}
		})
	}
}

// TestSQLStoreMigrationsAdoptMigrate: a table made by Migrate is adopted by
// the migration set (CREATE ... IF NOT EXISTS), and a custom table gets
// files and a source of its own name.
func TestSQLStoreMigrationsAdoptMigrate(t *testing.T) {
	ctx := context.Background()
	for _, b := range shardtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			db := b.Open(t, b.NewDSN(t))
			s, err := idempotency.NewSQLStore(ctx, db, idempotency.SQLConfig{Table: "idem_custom"})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			files, source := s.Migrations()
			if source != "idem_custom" {
				t.Fatalf("source %q", source)
			}
			applied, err := shard.Migrate(ctx, db, shard.Migrations{FS: files, Source: source})
			if err != nil || len(applied) != 1 {
				t.Fatalf("applied %v, %v", applied, err)
			}
			if _, err := s.Do(ctx, idempotency.Scope{UserKey: 1, Command: "c"}, "k", idempotency.Fingerprint{}, func(context.Context) (idempotency.Result, error) {
				return idempotency.Result{}, nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSQLStoreOverRouterDeadlockVictimRunsAgain makes a real InnoDB
// deadlock on MariaDB: two idempotent calls of two users of one game
// database lock two rows in opposite order. Without the router's retries
// MariaDB kills one (error 1213) and its caller gets unavailable; with them
// the victim's transaction runs again with the same key and both succeed,
// each once, counted in the router's TxRetries.
func TestSQLStoreOverRouterDeadlockVictimRunsAgain(t *testing.T) {
	ctx := context.Background()
	race := func(rs *routed, round int) (errs [2]error, runs [2]int32) {
		var ready [2]chan struct{}
		ready[0], ready[1] = make(chan struct{}), make(chan struct{})
		var n [2]atomic.Int32
		var wg sync.WaitGroup
		first, _ := shardtest.Range(1)
		for me := range 2 {
			wg.Go(func() {
				scope := idempotency.Scope{UserKey: first + int64(me), Command: "pair"}
				_, errs[me] = rs.store.Do(ctx, scope, fmt.Sprintf("r%d", round), idempotency.Fingerprint{}, func(ctx context.Context) (idempotency.Result, error) {
					tx := idempotency.TxFrom(ctx)
					firstRun := n[me].Add(1) == 1
					if _, err := tx.ExecContext(ctx, "UPDATE pair SET v = v + 1 WHERE id = ?", me); err != nil {
						return idempotency.Result{}, err
					}
					if firstRun {
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
			})
		}
		wg.Wait()
		return errs, [2]int32{n[0].Load(), n[1].Load()}
	}
	setup := func(rc shard.Config) *routed {
		rs := newRouted(t, shardtest.MySQL(), idempotency.Config{RequireKey: true}, rc)
		first, _ := shardtest.Range(1)
		db, err := rs.router.DB(ctx, first)
		if err != nil {
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
		return rs
	}
	retries := func(rs *routed) (n uint64) {
		for _, s := range rs.router.Stats() {
			n += s.TxRetries
		}
		return n
	}

	rs := setup(shard.Config{TxRetries: -1})
	errs, _ := race(rs, 0)
	if (errs[0] == nil) == (errs[1] == nil) || !shard.IsRetryable(errs[0]) && !shard.IsRetryable(errs[1]) {
		t.Fatalf("without retries: %v / %v, want one deadlock victim", errs[0], errs[1])
	}
	for _, err := range errs {
		if err != nil && protocol.CodeOf(err) != protocol.CodeUnavailable {
			t.Fatalf("the victim answered %v (code %v), want unavailable", err, protocol.CodeOf(err))
		}
	}

	for _, rc := range []shard.Config{{TxBackoff: time.Millisecond}, pipelined(shard.Config{TxBackoff: time.Millisecond})} {
		rs = setup(rc)
		errs, runs := race(rs, 1)
		if errs[0] != nil || errs[1] != nil || retries(rs) != 1 || runs[0]+runs[1] != 3 {
			t.Fatalf("with retries: %v / %v, %d retries, runs %v", errs[0], errs[1], retries(rs), runs)
		}
		if s := rs.store.Stats(); s.Executed != 2 { // the victim's first run rolled back with its result
			t.Fatalf("stored results: %+v", s)
		}
		var v0, v1 int
		db, _ := rs.router.DB(ctx, 10_000_000)
		if err := db.QueryRowContext(ctx, "SELECT (SELECT v FROM pair WHERE id = 0), (SELECT v FROM pair WHERE id = 1)").Scan(&v0, &v1); err != nil || v0 != 2 || v1 != 2 {
			t.Fatalf("pair %d, %d (%v), want each call applied once", v0, v1, err)
		}
	}
}
