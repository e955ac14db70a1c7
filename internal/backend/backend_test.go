package backend_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite"

	"github.com/madang-io/madang/internal/backend"
	"github.com/madang-io/madang/internal/testdb"
	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/protocol"
)

// wantUnavailable checks that err is a real error, classified unavailable,
// and that Classify keeps it as the cause with code want.
func wantUnavailable(t *testing.T, what string, err error, want protocol.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	t.Logf("%s: %v (%T)", what, err, err)
	if !backend.Unavailable(err) {
		t.Fatalf("%s: %v (%T) not classified unavailable", what, err, err)
	}
	c := backend.Classify(fmt.Errorf("wrapped: %w", err))
	if got := protocol.CodeOf(c); got != want {
		t.Fatalf("%s: code %v, want %v (%v)", what, got, want, c)
	}
	if !errors.Is(c, err) {
		t.Fatalf("%s: Classify lost the cause", what)
	}
	if !want.Retryable() {
		t.Fatalf("%s: %v is not retryable", what, want)
	}
}

func wantBug(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	if backend.Unavailable(err) {
		t.Fatalf("%s: %v (%T) classified unavailable, want a bug", what, err, err)
	}
	if c := backend.Classify(err); c != err || protocol.CodeOf(c) != protocol.CodeInternal {
		t.Fatalf("%s: Classify changed a bug: %v", what, c)
	}
}

// execer is a *sql.DB, *sql.Conn or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// mustExec runs query on e and fails the test on an error.
func mustExec(t *testing.T, e execer, query string) {
	t.Helper()
	if _, err := e.ExecContext(context.Background(), query); err != nil {
		t.Fatal(err)
	}
}

// ownConn takes a connection of its own from db, closed when the test ends.
func ownConn(t *testing.T, db *sql.DB) *sql.Conn {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// connectionID returns the MariaDB id of the connection e runs on.
func connectionID(t *testing.T, e execer) int64 {
	t.Helper()
	var id int64
	if err := e.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// refusedAddr returns a loopback address that refuses connections for the
// rest of the test: a TCP socket bound to it but not listening (the kernel
// answers a connect with a reset), so no other test's server can take the
// port meanwhile (a MySQL client that reached one would wait for a greeting
// forever).
func refusedAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(sa.(*syscall.SockaddrInet4).Port)
}

func TestRefusedConnections(t *testing.T) {
	ctx := context.Background()
	addr := refusedAddr(t)
	db, err := sql.Open("mysql", "root@tcp("+addr+")/test?timeout=5s&readTimeout=5s&writeTimeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wantUnavailable(t, "mysql refused", db.PingContext(ctx), protocol.CodeUnavailable)

	rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rc.Close()
	wantUnavailable(t, "redis refused", rc.Ping(ctx).Err(), protocol.CodeUnavailable)

	rc.Close()
	wantUnavailable(t, "redis closed client", rc.Ping(ctx).Err(), protocol.CodeUnavailable)
}

func TestContextEnded(t *testing.T) {
	db := testdb.SQLite(t, "ctx")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := db.ExecContext(ctx, "SELECT 1")
	wantUnavailable(t, "canceled", err, protocol.CodeUnavailable)
	dctx, dcancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer dcancel()
	_, err = db.ExecContext(dctx, "SELECT 1")
	wantUnavailable(t, "deadline", err, protocol.CodeTimeout)
}

func TestSQLiteBusyAndBugs(t *testing.T) {
	ctx := context.Background()
	db := testdb.SQLite(t, "busy")
	mustExec(t, db, "CREATE TABLE c (n INT PRIMARY KEY)")
	holder, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	mustExec(t, holder, "INSERT INTO c VALUES (1)")
	conn := ownConn(t, db)
	mustExec(t, conn, "PRAGMA busy_timeout = 50")
	_, err = conn.ExecContext(ctx, "INSERT INTO c VALUES (2)")
	wantUnavailable(t, "sqlite busy", err, protocol.CodeUnavailable)
	holder.Rollback()

	_, err = conn.ExecContext(ctx, "SELEKT 1")
	wantBug(t, "sqlite syntax", err)
	_, err = conn.ExecContext(ctx, "SELECT * FROM missing")
	wantBug(t, "sqlite missing table", err)
	mustExec(t, conn, "INSERT INTO c VALUES (3)")
	_, err = conn.ExecContext(ctx, "INSERT INTO c VALUES (3)")
	wantBug(t, "sqlite duplicate", err)
	wantBug(t, "no rows", conn.QueryRowContext(ctx, "SELECT n FROM c WHERE n = 99").Scan(new(int)))
}

// A MariaDB connection killed under a client (KILL of our own connection,
// as a server restart or a network cut does) and the server's deadlock
// and lock wait errors are unavailable; statement errors are bugs.
func TestMariaDB(t *testing.T) {
	ctx := context.Background()
	db := testdb.OpenMySQL(t)
	mustExec(t, db, "CREATE TABLE c (id INT PRIMARY KEY, n INT) ENGINE=InnoDB")
	mustExec(t, db, "INSERT INTO c VALUES (1, 0), (2, 0)")

	t.Run("killed connection", func(t *testing.T) {
		conn := ownConn(t, db)
		mustExec(t, db, fmt.Sprintf("KILL %d", connectionID(t, conn)))
		_, err := conn.ExecContext(ctx, "UPDATE c SET n = n + 1 WHERE id = 1")
		wantUnavailable(t, "killed connection", err, protocol.CodeUnavailable)
	})

	t.Run("killed in a transaction", func(t *testing.T) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		mustExec(t, db, fmt.Sprintf("KILL %d", connectionID(t, tx)))
		_, err = tx.ExecContext(ctx, "UPDATE c SET n = n + 1 WHERE id = 1")
		wantUnavailable(t, "killed in a transaction", err, protocol.CodeUnavailable)
		wantUnavailable(t, "commit after the kill", tx.Commit(), protocol.CodeUnavailable)
	})

	t.Run("killed query", func(t *testing.T) {
		conn := ownConn(t, db)
		id := connectionID(t, conn)
		done := make(chan error, 1)
		go func() {
			_, err := conn.ExecContext(ctx, "SELECT SLEEP(60)")
			done <- err
		}()
		// KILL QUERY until the sleep ends (it may not have started yet).
		for {
			mustExec(t, db, fmt.Sprintf("KILL QUERY %d", id))
			select {
			case err := <-done:
				var me *mysql.MySQLError
				if errors.As(err, &me) && me.Number != 1317 {
					t.Fatalf("killed query: %v", err)
				}
				if err != nil {
					wantUnavailable(t, "killed query", err, protocol.CodeUnavailable)
				}
				// SLEEP interrupted by KILL QUERY may also just return 1.
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})

	t.Run("deadlock and lock wait", func(t *testing.T) {
		a, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Rollback()
		b, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Rollback()
		mustExec(t, b, "SET SESSION innodb_lock_wait_timeout = 1")
		mustExec(t, a, "UPDATE c SET n = 1 WHERE id = 1")
		_, err = b.ExecContext(ctx, "UPDATE c SET n = 2 WHERE id = 1")
		wantUnavailable(t, "lock wait timeout", err, protocol.CodeUnavailable)
		// Deadlock: b holds 2, a holds 1; a waits for 2, b asks for 1.
		mustExec(t, b, "SET SESSION innodb_lock_wait_timeout = 50")
		mustExec(t, b, "UPDATE c SET n = 2 WHERE id = 2")
		aDone := make(chan error, 1)
		go func() {
			_, err := a.ExecContext(ctx, "UPDATE c SET n = 1 WHERE id = 2")
			aDone <- err
		}()
		// Wait until a waits for b's lock.
		for {
			var waiting int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'").Scan(&waiting); err != nil {
				t.Fatal(err)
			}
			if waiting > 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		_, errB := b.ExecContext(ctx, "UPDATE c SET n = 2 WHERE id = 1")
		errA := <-aDone
		var victim error
		for _, e := range []error{errA, errB} {
			var me *mysql.MySQLError
			if errors.As(e, &me) && me.Number == 1213 {
				victim = e
			}
		}
		if victim == nil {
			t.Fatalf("no deadlock victim: a %v, b %v", errA, errB)
		}
		wantUnavailable(t, "deadlock", victim, protocol.CodeUnavailable)
	})

	t.Run("bugs", func(t *testing.T) {
		_, err := db.ExecContext(ctx, "SELEKT 1")
		wantBug(t, "syntax", err)
		_, err = db.ExecContext(ctx, "SELECT * FROM missing")
		wantBug(t, "missing table", err)
		_, err = db.ExecContext(ctx, "INSERT INTO c VALUES (1, 0)")
		wantBug(t, "duplicate", err)
		wantBug(t, "no rows", db.QueryRowContext(ctx, "SELECT n FROM c WHERE id = 99").Scan(new(int)))
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		tx.Rollback()
		wantBug(t, "tx done", tx.Commit())
	})
}

// Server errors MariaDB cannot be made to give on a shared server (it
// would take the server read-only or out of connections for every other
// test): the numbers, as the driver reports them.
func TestMySQLNumbers(t *testing.T) {
	for _, n := range []uint16{1040, 1053, 1205, 1213, 1290, 1836, 1927, 2006, 2013} {
		wantUnavailable(t, fmt.Sprint(n), &mysql.MySQLError{Number: n, Message: "x"}, protocol.CodeUnavailable)
	}
	for _, n := range []uint16{1045, 1062, 1064, 1146, 1406, 1792} {
		wantBug(t, fmt.Sprint(n), &mysql.MySQLError{Number: n, Message: "x"})
	}
}

// go-redis errors from a redis-server of the test's own: killed under a
// client, read-only and master-down replicas, out of memory, out of
// clients, and a pool timeout.
func TestRedis(t *testing.T) {
	ctx := context.Background()
	addr, kill := testredis.Private(t)
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	wantBug(t, "wrong type", c.LPush(ctx, "k", "x").Err())
	wantBug(t, "script error", c.Eval(ctx, "return redis.call('NOPE')", nil).Err())
	if err := c.Get(ctx, "missing").Err(); !errors.Is(err, redis.Nil) || backend.Unavailable(err) {
		t.Fatalf("redis.Nil: %v", err)
	}

	t.Run("pool timeout", func(t *testing.T) {
		one := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1, PoolTimeout: 50 * time.Millisecond, MaxRetries: -1})
		defer one.Close()
		held := one.Conn()
		defer held.Close()
		if err := held.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		wantUnavailable(t, "pool timeout", one.Ping(ctx).Err(), protocol.CodeUnavailable)
	})

	t.Run("oom", func(t *testing.T) {
		if err := c.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
			t.Fatal(err)
		}
		defer c.ConfigSet(ctx, "maxmemory", "0")
		wantUnavailable(t, "oom", c.Set(ctx, "big", "value", 0).Err(), protocol.CodeUnavailable)
	})

	t.Run("max clients", func(t *testing.T) {
		if err := c.ConfigSet(ctx, "maxclients", "1").Err(); err != nil {
			t.Fatal(err)
		}
		other := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer other.Close()
		err := other.Ping(ctx).Err()
		if cerr := c.ConfigSet(ctx, "maxclients", "10000").Err(); cerr != nil {
			t.Fatal(cerr)
		}
		wantUnavailable(t, "max clients", err, protocol.CodeUnavailable)
	})

	t.Run("replica", func(t *testing.T) {
		raddr, _ := testredis.Private(t, "--replica-serve-stale-data", "no")
		r := redis.NewClient(&redis.Options{Addr: raddr, MaxRetries: -1})
		defer r.Close()
		host, port, _ := net.SplitHostPort(refusedAddr(t))
		if err := r.Do(ctx, "REPLICAOF", host, port).Err(); err != nil {
			t.Fatal(err)
		}
		wantUnavailable(t, "readonly replica", r.Set(ctx, "k", "v", 0).Err(), protocol.CodeUnavailable)
		wantUnavailable(t, "master down", r.Get(ctx, "k").Err(), protocol.CodeUnavailable)
	})

	t.Run("killed server", func(t *testing.T) {
		kill()
		wantUnavailable(t, "killed redis-server", c.Get(ctx, "k").Err(), protocol.CodeUnavailable)
		wantUnavailable(t, "after the kill", c.Get(ctx, "k").Err(), protocol.CodeUnavailable)
	})
}

// Classify keeps codes other packages gave, and reclassifies only a
// CodeInternal whose cause is an outage.
func TestClassifyKeepsCodes(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("refused")}
	bad := &protocol.Error{Code: protocol.CodeBadRequest, Message: "bad", Err: refused}
	if backend.Classify(bad) != bad {
		t.Fatal("a bad_request was reclassified")
	}
	internal := &protocol.Error{Code: protocol.CodeInternal, Err: refused}
	if got := protocol.CodeOf(backend.Classify(internal)); got != protocol.CodeUnavailable {
		t.Fatalf("internal with an outage cause: %v", got)
	}
	if backend.Classify(nil) != nil || backend.Code(nil) != protocol.CodeOK {
		t.Fatal("nil")
	}
}
