package mysqlpipe

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/madang-io/madang/internal/sqldefer"
	"github.com/madang-io/madang/internal/sqldialect"
)

// commands counts the command packets (sequence id 0: one per round trip)
// written on connections dialled with the "pipecount" network.
var commands atomic.Int64

func init() {
	mysql.RegisterDialContext("pipecount", func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return countConn{c}, nil
	})
}

type countConn struct{ net.Conn }

func (c countConn) Write(b []byte) (int, error) {
	if len(b) >= 5 && b[3] == 0 {
		commands.Add(1)
	}
	return c.Conn.Write(b)
}

// dsn returns MADANG_MYSQL_DSN dialled through "pipecount", with params.
func dsn(t testing.TB, params string) string {
	t.Helper()
	d := os.Getenv("MADANG_MYSQL_DSN")
	if d == "" {
		t.Skip("MADANG_MYSQL_DSN not set: the pipelining tests need MySQL or MariaDB")
	}
	cfg, err := mysql.ParseDSN(d)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Net != "tcp" {
		t.Skipf("MADANG_MYSQL_DSN uses %q: the round trip counter needs tcp", cfg.Net)
	}
	cfg.Net = "pipecount"
	out := cfg.FormatDSN()
	if params != "" {
		if strings.Contains(out, "?") {
			out += "&" + params
		} else {
			out += "?" + params
		}
	}
	return out
}

// rig is a table and a pipelining pool of one connection (so the
// connection a test checks is the one its transaction used), and a plain
// pool to look from another session.
type rig struct {
	t     *testing.T
	db    *sql.DB
	plain *sql.DB
	table string
}

func newRig(t *testing.T, params string) *rig {
	d := dsn(t, "interpolateParams=true"+params)
	db, err := Open(d)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	plain, err := sql.Open("mysql", d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close() })
	r := &rig{t: t, db: db, plain: plain, table: fmt.Sprintf("pipe_%s_%d", strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name())), time.Now().UnixNano()%1e6)}
	if len(r.table) > 60 {
		r.table = r.table[len(r.table)-60:]
	}
	r.exec(plain, "DROP TABLE IF EXISTS "+r.table)
	r.exec(plain, "CREATE TABLE "+r.table+" (id BIGINT PRIMARY KEY, v VARBINARY(8000) NOT NULL) ENGINE=InnoDB")
	t.Cleanup(func() { plain.Exec("DROP TABLE IF EXISTS " + r.table) })
	return r
}

func (r *rig) exec(db *sql.DB, q string, args ...any) {
	r.t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		r.t.Fatalf("%s: %v", q, err)
	}
}

func (r *rig) ins() string { return "INSERT INTO " + r.table + " (id, v) VALUES (?, ?)" }

// ids returns the committed ids, as another session sees them.
func (r *rig) ids() string {
	r.t.Helper()
	rows, err := r.plain.Query("SELECT id FROM " + r.table + " ORDER BY id")
	if err != nil {
		r.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			r.t.Fatal(err)
		}
		out = append(out, fmt.Sprint(id))
	}
	if err := rows.Err(); err != nil {
		r.t.Fatal(err)
	}
	return strings.Join(out, ",")
}

// clean checks that the pool's connection has no transaction left: a row
// it inserts outside a transaction is seen by another session at once
// (and, on MariaDB, @@in_transaction is 0). The row is deleted again.
func (r *rig) clean(id int64) {
	r.t.Helper()
	if err := r.db.Ping(); err != nil {
		r.t.Fatal(err)
	}
	var in int
	if err := r.db.QueryRow("SELECT @@in_transaction").Scan(&in); err == nil && in != 0 {
		r.t.Errorf("the connection is in a transaction")
	}
	r.exec(r.db, r.ins(), id, "clean")
	var n int
	if err := r.plain.QueryRow("SELECT COUNT(*) FROM "+r.table+" WHERE id = ?", id).Scan(&n); err != nil {
		r.t.Fatal(err)
	}
	if n != 1 {
		r.t.Errorf("a row inserted outside a transaction is not seen by another session: the connection was left in a transaction")
	}
	r.exec(r.db, "DELETE FROM "+r.table+" WHERE id = ?", id)
}

func trips(f func()) int64 {
	n := commands.Load()
	f()
	return commands.Load() - n
}

func TestRoundTrips(t *testing.T) {
	r := newRig(t, "")
	ctx := context.Background()
	def := sqldefer.With(ctx)
	for _, c := range []struct {
		name string
		db   *sql.DB
		want int64
	}{
		// START+insert, select (with the two deferred inserts), COMMIT
		// (with one more deferred)
		{"pipelined", r.db, 3},
		// BEGIN, 4 inserts, select, COMMIT
		{"driver", r.plain, 7},
	} {
		base := int64(0)
		if c.db == r.plain {
			base = 10
		}
		var got int64
		var n int64
		var res sql.Result
		n = trips(func() {
			tx, err := c.db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res, err = tx.ExecContext(ctx, r.ins(), base+1, "a"); err != nil {
				t.Fatal(err)
			}
			if _, err = tx.ExecContext(def, r.ins(), base+2, "b"); err != nil {
				t.Fatal(err)
			}
			if _, err = tx.ExecContext(def, r.ins(), base+3, "c"); err != nil {
				t.Fatal(err)
			}
			if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+r.table+" WHERE id > ?", base).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if _, err = tx.ExecContext(def, r.ins(), base+4, "d"); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		})
		if n != c.want {
			t.Errorf("%s: %d round trips, want %d", c.name, n, c.want)
		}
		if got != 3 {
			t.Errorf("%s: the select saw %d rows, want the 3 inserted before it", c.name, got)
		}
		// The first statement's result is its own, not START TRANSACTION's.
		if a, err := res.RowsAffected(); err != nil || a != 1 {
			t.Errorf("%s: rows affected %d, %v; want 1", c.name, a, err)
		}
	}
	if got, want := r.ids(), "1,2,3,4,11,12,13,14"; got != want {
		t.Errorf("committed %s, want %s", got, want)
	}
	// A deferred statement's result is unknown.
	tx, _ := r.db.Begin()
	res, err := tx.ExecContext(def, r.ins(), 5, "e")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.RowsAffected(); !errors.Is(err, ErrDeferredResult) {
		t.Errorf("deferred RowsAffected: %v", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	// Outside a transaction the mark is ignored.
	res, err = r.db.ExecContext(def, r.ins(), 6, "f")
	if err != nil {
		t.Fatal(err)
	}
	if a, err := res.RowsAffected(); err != nil || a != 1 {
		t.Errorf("outside a transaction: rows affected %d, %v", a, err)
	}
	r.clean(99)
}

func TestNothingSent(t *testing.T) {
	r := newRig(t, "")
	ctx := context.Background()
	r.clean(99) // the connection open
	if n := trips(func() {
		tx, err := r.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("empty commit: %d round trips", n)
	}
	if n := trips(func() {
		tx, err := r.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(sqldefer.With(ctx), r.ins(), 1, "a"); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("rollback of deferred statements only: %d round trips", n)
	}
	// Rolled back after a statement was sent: ROLLBACK is sent.
	tx, _ := r.db.BeginTx(ctx, nil)
	if _, err := tx.ExecContext(ctx, r.ins(), 2, "b"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got := r.ids(); got != "" {
		t.Errorf("rolled back, yet committed: %s", got)
	}
	r.clean(98)
}

// TestDeferredKeepsBytes: a deferred statement's []byte argument is sent
// as it was when ExecContext returned, though the caller reused its buffer
// before the statement went out (with the COMMIT).
func TestDeferredKeepsBytes(t *testing.T) {
	r := newRig(t, "")
	ctx := context.Background()
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := []byte("first")
	if _, err := tx.ExecContext(sqldefer.With(ctx), r.ins(), 1, buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "reuse")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := r.plain.QueryRow("SELECT v FROM " + r.table + " WHERE id = 1").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != "first" {
		t.Errorf("committed %q, want %q (the argument as it was passed)", v, "first")
	}
	r.clean(98)
}

func TestDeferredErrorFailsCommit(t *testing.T) {
	r := newRig(t, "")
	ctx := context.Background()
	r.exec(r.plain, r.ins(), 1, "taken")
	// At commit: the duplicate is deferred and goes with COMMIT.
	tx, _ := r.db.BeginTx(ctx, nil)
	if _, err := tx.ExecContext(ctx, r.ins(), 2, "sent"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(sqldefer.With(ctx), r.ins(), 1, "dup"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(sqldefer.With(ctx), r.ins(), 3, "after"); err != nil {
		t.Fatal(err)
	}
	err := tx.Commit()
	var me *mysql.MySQLError
	if !errors.Is(err, ErrNotCommitted) || !errors.As(err, &me) || me.Number != 1062 {
		t.Fatalf("commit: %v; want ErrNotCommitted wrapping the duplicate key", err)
	}
	if got := r.ids(); got != "1" {
		t.Errorf("committed %s, want only the row that was there (1)", got)
	}
	r.clean(99)

	// At the next statement: it fails, later ones too, commit fails.
	tx, _ = r.db.BeginTx(ctx, nil)
	if _, err := tx.ExecContext(sqldefer.With(ctx), r.ins(), 1, "dup"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, r.ins(), 4, "next"); !errors.As(err, &me) {
		t.Errorf("the statement after the failed deferred one: %v", err)
	}
	if _, err := tx.ExecContext(ctx, r.ins(), 5, "later"); err == nil {
		t.Errorf("a statement after the failure ran")
	}
	if err := tx.Commit(); !errors.Is(err, ErrNotCommitted) {
		t.Errorf("commit after a failed deferred statement: %v", err)
	}
	if got := r.ids(); got != "1" {
		t.Errorf("committed %s, want 1", got)
	}
	r.clean(98)
}

// TestFirstStatementFails: as with the driver's BEGIN, a failed statement
// (here the first, which carried START TRANSACTION) changes nothing and the
// transaction goes on.
func TestFirstStatementFails(t *testing.T) {
	r := newRig(t, "")
	ctx := context.Background()
	r.exec(r.plain, r.ins(), 1, "taken")
	tx, _ := r.db.BeginTx(ctx, nil)
	_, err := tx.ExecContext(ctx, r.ins(), 1, "dup")
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1062 {
		t.Fatalf("first statement: %v, want a duplicate key", err)
	}
	if _, err := tx.ExecContext(ctx, r.ins(), 2, "b"); err != nil {
		t.Fatal(err)
	}
	// Still one transaction: another session sees nothing yet.
	if got := r.ids(); got != "1" {
		t.Errorf("before commit another session sees %s", got)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := r.ids(); got != "1,2" {
		t.Errorf("committed %s, want 1,2", got)
	}
	r.clean(99)
}

// TestErrSkip: a statement the driver cannot interpolate (over the
// client's max_allowed_packet) is prepared; the deferred ones go first.
func TestErrSkip(t *testing.T) {
	r := newRig(t, "&maxAllowedPacket=4096")
	ctx := context.Background()
	big := strings.Repeat("x", 5000)
	tx, _ := r.db.BeginTx(ctx, nil)
	if _, err := tx.ExecContext(sqldefer.With(ctx), r.ins(), 1, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(sqldefer.With(ctx), r.ins(), 2, big); err != nil {
		t.Fatal(err)
	}
	res, err := tx.ExecContext(ctx, r.ins(), 3, big)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := res.RowsAffected(); a != 1 {
		t.Errorf("rows affected %d", a)
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+r.table+" WHERE LENGTH(v) = ?", len(big)).Scan(&n); err != nil || n != 2 {
		t.Errorf("in the transaction: %d big rows, %v", n, err)
	}
	if _, err := tx.ExecContext(sqldefer.With(ctx), r.ins(), 4, big); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := r.ids(); got != "1,2,3,4" {
		t.Errorf("committed %s", got)
	}
	r.clean(99)
}

// TestCancel: a statement cancelled mid-transaction, and a transaction
// whose context ends with deferred statements only: nothing committed,
// the pool's connection clean after.
func TestCancel(t *testing.T) {
	r := newRig(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, r.ins(), 1, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(sqldefer.With(ctx), r.ins(), 2, "b"); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = tx.ExecContext(sctx, "DO SLEEP(2)")
	scancel()
	if err == nil {
		t.Fatal("a cancelled statement succeeded")
	}
	if err := tx.Commit(); err == nil {
		t.Error("commit after a cancelled statement succeeded")
	}
	cancel()
	if got := r.ids(); got != "" {
		t.Errorf("committed %s", got)
	}
	r.clean(99)

	// The transaction's context ends: database/sql rolls back.
	ctx, cancel = context.WithCancel(context.Background())
	tx, err = r.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, r.ins(), 3, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(sqldefer.With(ctx), r.ins(), 4, "d"); err != nil {
		t.Fatal(err)
	}
	cancel()
	for range 100 {
		if _, err := tx.ExecContext(context.Background(), "DO 1"); errors.Is(err, sql.ErrTxDone) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := tx.Commit(); !errors.Is(err, sql.ErrTxDone) {
		t.Errorf("commit after the context ended: %v", err)
	}
	if got := r.ids(); got != "" {
		t.Errorf("committed %s", got)
	}
	r.clean(98)
}

// TestOptions: a transaction with options is the driver's.
func TestOptions(t *testing.T) {
	r := newRig(t, "")
	ctx := context.Background()
	r.exec(r.plain, r.ins(), 1, "a")
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, r.ins(), 2, "b"); err == nil {
		t.Error("a write in a read-only transaction succeeded")
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	n := trips(func() {
		tx, err := r.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(sqldefer.With(ctx), r.ins(), 3, "c"); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	})
	if n != 4 { // SET TRANSACTION, START TRANSACTION, INSERT, COMMIT
		t.Errorf("%d round trips, want the driver's 4", n)
	}
	if got := r.ids(); got != "1,3" {
		t.Errorf("committed %s", got)
	}
	r.clean(99)
}

// TestPreparedInTx: a statement prepared in the transaction runs after
// the deferred statements before it.
func TestPreparedInTx(t *testing.T) {
	r := newRig(t, "")
	ctx := context.Background()
	tx, _ := r.db.BeginTx(ctx, nil)
	st, err := tx.PrepareContext(ctx, "SELECT COUNT(*) FROM "+r.table)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(sqldefer.With(ctx), r.ins(), 1, "a"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := st.QueryRowContext(ctx).Scan(&n); err != nil || n != 1 {
		t.Errorf("the prepared statement saw %d rows (%v), want the deferred insert's 1", n, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	r.clean(99)
}

func TestDialect(t *testing.T) {
	r := newRig(t, "")
	d, err := sqldialect.Detect(context.Background(), r.db)
	if err != nil || d != sqldialect.MySQL {
		t.Errorf("dialect %v, %v", d, err)
	}
	// Without interpolateParams the pool is the driver's own.
	db, err := Open(dsn(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := trips(func() {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}); n < 2 {
		t.Errorf("without interpolateParams: %d round trips for BEGIN and COMMIT", n)
	}
}
