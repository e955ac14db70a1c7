package sqldialect_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/madang-io/madang/internal/sqldialect"
	"github.com/madang-io/madang/internal/testdb"
)

func TestDialects(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			db := b.Open(t)
			d, err := sqldialect.Of(db)
			if err != nil {
				t.Fatal(err)
			}
			if d.Name() != map[string]string{"sqlite": "sqlite", "mariadb": "mysql"}[b.Name] {
				t.Fatalf("dialect %s for %s", d.Name(), b.Name)
			}
			ctx := context.Background()
			mustExec(t, db, "CREATE TABLE kv (id "+d.AutoIncrementPK()+", k VARCHAR(64) NOT NULL UNIQUE, v INT NOT NULL)")
			mustExec(t, db, "INSERT INTO kv (k, v) VALUES ('a', 1)")

			_, err = db.ExecContext(ctx, "INSERT INTO kv (k, v) VALUES ('a', 2)")
			if !sqldialect.IsDuplicateKey(err) || !sqldialect.IsConstraint(err) || sqldialect.IsRetryable(err) {
				t.Fatalf("duplicate insert: %v (dup %v)", err, sqldialect.IsDuplicateKey(err))
			}
			if sqldialect.IsDuplicateKey(errors.New("other")) || sqldialect.IsRetryable(nil) {
				t.Fatal("unrelated errors classified")
			}

			res, err := db.ExecContext(ctx, d.InsertIgnore()+" kv (k, v) VALUES ('a', 3)")
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n != 0 {
				t.Fatalf("insert ignore affected %d rows", n)
			}
			mustExec(t, db, "INSERT INTO kv (k, v) VALUES ('a', 4), ('b', 5)"+d.Upsert([]string{"k"}, "v"))
			var a, bv int
			if err := db.QueryRow("SELECT (SELECT v FROM kv WHERE k = 'a'), (SELECT v FROM kv WHERE k = 'b')").Scan(&a, &bv); err != nil {
				t.Fatal(err)
			}
			if a != 4 || bv != 5 {
				t.Fatalf("after upsert a=%d b=%d", a, bv)
			}

			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			var v int
			if err := tx.QueryRow("SELECT v FROM kv WHERE k = ?"+d.ForUpdate(), "a").Scan(&v); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// A writer blocked by another transaction longer than it will wait gets an
// error the dialect calls retryable.
func TestLockWaitIsRetryable(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		db := testdb.SQLite(t, "busy")
		mustExec(t, db, "CREATE TABLE c (n INT)")
		holder, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Rollback()
		if _, err := holder.Exec("INSERT INTO c VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(context.Background(), "PRAGMA busy_timeout = 50"); err != nil {
			t.Fatal(err)
		}
		_, err = conn.ExecContext(context.Background(), "INSERT INTO c VALUES (2)")
		if !sqldialect.IsRetryable(err) || !sqldialect.IsLockWaitTimeout(err) {
			t.Fatalf("busy write: %v", err)
		}
	})
	t.Run("mariadb", func(t *testing.T) {
		db := testdb.OpenMySQL(t)
		mustExec(t, db, "CREATE TABLE c (id INT PRIMARY KEY, n INT) ENGINE=InnoDB")
		mustExec(t, db, "INSERT INTO c VALUES (1, 0)")
		holder, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Rollback()
		if _, err := holder.Exec("UPDATE c SET n = 1 WHERE id = 1"); err != nil {
			t.Fatal(err)
		}
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(context.Background(), "SET SESSION innodb_lock_wait_timeout = 1"); err != nil {
			t.Fatal(err)
		}
		_, err = conn.ExecContext(context.Background(), "UPDATE c SET n = 2 WHERE id = 1")
		if !sqldialect.IsRetryable(err) || !sqldialect.IsLockWaitTimeout(err) {
			t.Fatalf("lock wait: %v", err)
		}
	})
}

func TestAdvisoryLock(t *testing.T) {
	db := testdb.OpenMySQL(t)
	ctx := context.Background()
	c1, _ := db.Conn(ctx)
	defer c1.Close()
	c2, _ := db.Conn(ctx)
	defer c2.Close()
	name := "madang-test-lock-" + time.Now().Format("150405.000000000")
	release, err := sqldialect.MySQL.Lock(ctx, c1, name, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqldialect.MySQL.Lock(ctx, c2, name, 0); !errors.Is(err, sqldialect.ErrLockTimeout) {
		t.Fatalf("second holder: %v", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	release2, err := sqldialect.MySQL.Lock(ctx, c2, name, 1)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	_ = release2()
}

func TestByName(t *testing.T) {
	for name, want := range map[string]string{"mariadb": "mysql", "MySQL": "mysql", "sqlite": "sqlite"} {
		d, err := sqldialect.ByName(name)
		if err != nil || d.Name() != want {
			t.Fatalf("%s: %v %v", name, d, err)
		}
	}
	if _, err := sqldialect.ByName("oracle"); err == nil {
		t.Fatal("unknown dialect accepted")
	}
}
