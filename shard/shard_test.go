package shard_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/madang-io/madang/internal/testdb"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
	"github.com/madang-io/madang/shard/shardtest"
)

func db(id int, first, last int64) shard.Database {
	return shard.Database{ID: id, Name: "g", Driver: "sqlite", DSN: "unused", FirstKey: first, LastKey: last}
}

func TestStaticDirectoryValidation(t *testing.T) {
	bad := map[string][]shard.Database{
		"zero id":     {db(0, 1, 2)},
		"empty range": {db(1, 5, 4)},
		"zero key":    {db(1, 0, 4)},
		"overlap":     {db(1, 1, 10), db(2, 10, 20)},
		"dup id":      {db(1, 1, 10), db(1, 11, 20)},
		"bad state":   {func() shard.Database { d := db(1, 1, 2); d.State = "gone"; return d }()},
		"no driver":   {func() shard.Database { d := db(1, 1, 2); d.Driver = ""; return d }()},
		"no name":     {func() shard.Database { d := db(1, 1, 2); d.Name, d.DSN = "", ""; return d }()},
		"next beyond": {func() shard.Database { d := db(1, 1, 2); d.NextKey = 4; return d }()},
	}
	for name, dbs := range bad {
		_, err := shard.NewStaticDirectory(dbs)
		if !errors.Is(err, shard.ErrInvalid) || protocol.CodeOf(err) != protocol.CodeBadRequest {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, js := range map[string]string{
		"not json":      "[{",
		"unknown field": `[{"db_id": 1, "driver": "mysql", "db_name": "a", "first_key": 1, "last_key": 2, "colour": "red"}]`,
		"wrong type":    `[{"db_id": "one"}]`,
		"invalid entry": `[{"db_id": 1, "driver": "mysql", "db_name": "a", "first_key": 3, "last_key": 2}]`,
	} {
		if _, err := shard.ReadStaticDirectory(strings.NewReader(js)); !errors.Is(err, shard.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	d, err := shard.NewStaticDirectory([]shard.Database{db(1, 1, 10)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := d.Databases(context.Background())
	if got[0].State != shard.StateOpen || got[0].Weight != 1 || got[0].NextKey != 1 {
		t.Fatalf("defaults not applied: %+v", got[0])
	}
}

func TestLookupBoundaries(t *testing.T) {
	r, err := shard.NewRouter(context.Background(), shard.Config{
		Directory:       shardtest.Static(t, db(3, 40, 40), db(1, 10, 19), db(2, 30, 39)),
		RefreshInterval: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := map[int64]int{math.MinInt64: 0, -1: 0, 0: 0, 9: 0, 10: 1, 15: 1, 19: 1, 20: 0, 29: 0, 30: 2, 39: 2, 40: 3, 41: 0, math.MaxInt64: 0}
	for key, w := range want {
		id, ok := r.LookupID(key)
		if id != w || ok != (w != 0) {
			t.Errorf("LookupID(%d) = %d %v, want %d", key, id, ok, w)
		}
	}
	if n := testing.AllocsPerRun(1000, func() { r.LookupID(35) }); n != 0 {
		t.Fatalf("LookupID allocates %v times", n)
	}
}

func TestDSNs(t *testing.T) {
	d := shard.Database{ID: 1, Name: "gamedb01", Host: "10.0.0.1", Port: 3307, Replicas: []string{"10.0.0.2:3306", "r3:3306"}}
	p, reps, err := d.DSNs("u:p@tcp({host}:{port})/{db}")
	if err != nil || p != "u:p@tcp(10.0.0.1:3307)/gamedb01" || !slices.Equal(reps, []string{"u:p@tcp(10.0.0.2:3306)/gamedb01", "u:p@tcp(r3:3306)/gamedb01"}) {
		t.Fatalf("%q %q %v", p, reps, err)
	}
	if _, _, err := d.DSNs(""); !errors.Is(err, shard.ErrInvalid) {
		t.Fatalf("no template: %v", err)
	}
	d.Replicas = []string{"no-port"}
	if _, _, err := d.DSNs("x"); !errors.Is(err, shard.ErrInvalid) {
		t.Fatalf("bad replica: %v", err)
	}
	d.DSN = "explicit"
	if p, reps, _ := d.DSNs(""); p != "explicit" || reps[0] != "no-port" {
		t.Fatalf("explicit DSN: %q %q", p, reps)
	}
	// A router over a row it cannot form a DSN for refuses to start.
	_, err = shard.NewRouter(context.Background(), shard.Config{
		Directory: shardtest.Static(t, shard.Database{ID: 1, Name: "g", Driver: "mysql", FirstKey: 1, LastKey: 2}),
	})
	if !errors.Is(err, shard.ErrInvalid) {
		t.Fatalf("router without template: %v", err)
	}
	if _, err := shard.NewRouter(context.Background(), shard.Config{}); !errors.Is(err, shard.ErrInvalid) {
		t.Fatalf("router without directory: %v", err)
	}
}

func TestErrorCodes(t *testing.T) {
	for kind, code := range map[error]protocol.Code{
		shard.ErrUnknownKey: protocol.CodeBadRequest, shard.ErrInvalid: protocol.CodeBadRequest,
		shard.ErrUnavailable: protocol.CodeUnavailable, shard.ErrNoOpenDatabase: protocol.CodeUnavailable,
		shard.ErrClosed: protocol.CodeUnavailable, shard.ErrSchemaBehind: protocol.CodeMaintenance,
		shard.ErrReadOnly: protocol.CodeMaintenance, shard.ErrDirty: protocol.CodeMaintenance,
	} {
		cause := errors.New("cause")
		err := error(&shard.Error{Kind: kind, UserKey: 7, DBID: 2, Err: cause})
		if protocol.CodeOf(err) != code || !errors.Is(err, kind) || !errors.Is(err, cause) {
			t.Errorf("%v: code %v", kind, protocol.CodeOf(err))
		}
		if s := err.Error(); !strings.HasPrefix(s, "shard: ") || !strings.Contains(s, "user key 7") || !strings.Contains(s, "db 2") || !strings.HasSuffix(s, ": cause") {
			t.Errorf("message %q", s)
		}
	}
}

func TestSplitStatements(t *testing.T) {
	for in, want := range map[string][]string{
		"":                           nil,
		"-- only a comment\n":        nil,
		"SELECT 1":                   {"SELECT 1"},
		"SELECT 1;\r\nSELECT 2;\r\n": {"SELECT 1", "SELECT 2"},
		"CREATE TABLE a (\n x INT\n)\n;\n  ;\nSELECT 'a;b' ;  \n":             {"CREATE TABLE a (\n x INT\n)", "SELECT 'a;b'"},
		"  -- c1\nINSERT INTO t VALUES (1); -- not a comment line\nSELECT 2;": {"INSERT INTO t VALUES (1); -- not a comment line\nSELECT 2"},
	} {
		if got := shard.SplitStatements(in); !slices.Equal(got, want) {
			t.Errorf("SplitStatements(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestVitess(t *testing.T) {
	one, err := shard.VitessShards([]shard.Database{db(1, 1, 100)})
	if err != nil || len(one) != 1 || one[0].Name != "-" {
		t.Fatalf("one database: %+v %v", one, err)
	}
	if _, err := shard.VitessShards(nil); !errors.Is(err, shard.ErrInvalid) {
		t.Fatalf("empty: %v", err)
	}
	var b strings.Builder
	if err := shard.WriteVSchema(&b, []shard.Database{db(1, 1, 100)}, shard.VSchemaOptions{}); !errors.Is(err, shard.ErrInvalid) {
		t.Fatalf("no tables: %v", err)
	}
	if err := shard.WriteVSchema(&b, []shard.Database{db(1, 1, 100)}, shard.VSchemaOptions{Tables: map[string]string{"t": ""}}); !errors.Is(err, shard.ErrInvalid) {
		t.Fatalf("empty column: %v", err)
	}
	// Shard ranges in key order, contiguous, each containing its database's keys.
	s, _ := shard.VitessShards([]shard.Database{db(2, 0x40, 0x7f), db(1, 1, 0x3f), db(3, 0x80, 0xffff)})
	names := []string{s[0].Name, s[1].Name, s[2].Name}
	if !slices.Equal(names, []string{"-0000000000000040", "0000000000000040-0000000000000080", "0000000000000080-"}) || s[0].DBID != 1 {
		t.Fatalf("shards %v", names)
	}
}

func TestRouterClose(t *testing.T) {
	games := shardtest.SQLiteDatabases(t, 1)
	r, err := shard.NewRouter(context.Background(), shard.Config{Directory: shardtest.Static(t, games...)})
	if err != nil {
		t.Fatal(err)
	}
	db, err := r.DB(context.Background(), games[0].FirstKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DB(context.Background(), games[0].FirstKey); !errors.Is(err, shard.ErrClosed) {
		t.Fatalf("DB after Close: %v", err)
	}
	if err := r.Refresh(context.Background()); !errors.Is(err, shard.ErrClosed) {
		t.Fatalf("Refresh after Close: %v", err)
	}
	if err := db.Ping(); err == nil {
		t.Fatal("pool still open after Close")
	}
}

// A panicking fn releases its connection, and the panic reaches the caller.
func TestTxPanicReleases(t *testing.T) {
	games := shardtest.SQLiteDatabases(t, 1)
	r, err := shard.NewRouter(context.Background(), shard.Config{Directory: shardtest.Static(t, games...), MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	key := games[0].FirstKey
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic swallowed")
			}
		}()
		_ = r.Tx(context.Background(), key, func(context.Context, *sql.Tx) error { panic("game bug") })
	}()
	// With one connection, this would block forever if the panic had leaked it.
	if err := r.Tx(context.Background(), key, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "CREATE TABLE t (a INT)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// A directory row without a DSN is connected through Config.DSNTemplate,
// with the credentials kept out of the directory.
func TestDSNTemplateMariaDB(t *testing.T) {
	ctx := context.Background()
	cfg, err := mysql.ParseDSN(testdb.MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(cfg.Addr, ":")
	d := shard.Database{ID: 1, Name: cfg.DBName, Host: host, Driver: "mysql", FirstKey: 1, LastKey: 100}
	d.Port = 3306
	if port != "" {
		if d.Port, err = strconv.Atoi(port); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Addr, cfg.DBName = "{host}:{port}", "{db}"
	template := strings.Replace(strings.Replace(cfg.FormatDSN(), "%7B", "{", -1), "%7D", "}", -1)
	r, err := shard.NewRouter(ctx, shard.Config{Directory: shardtest.Static(t, d), DSNTemplate: template})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Tx(ctx, 5, func(ctx context.Context, tx *sql.Tx) error {
		var name string
		if err := tx.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&name); err != nil {
			return err
		}
		if name != d.Name {
			t.Errorf("connected to %q, want %q", name, d.Name)
		}
		return nil
	}); err != nil {
		t.Fatalf("template %q: %v", template, err)
	}
}

// A database that was down serves again once it is back: at once with
// ReopenBackoff negative, not before the backoff ends otherwise.
func TestDatabaseRecovers(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "later")
	d := shard.Database{ID: 1, Name: "g", Driver: "sqlite", DSN: testdb.SQLiteDSN(filepath.Join(dir, "g.db")), FirstKey: 1, LastKey: 10}
	create := func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS t (a INT)")
		return err
	}
	eager, err := shard.NewRouter(ctx, shard.Config{Directory: shardtest.Static(t, d), ReopenBackoff: -1, SlowThreshold: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer eager.Close()
	patient, err := shard.NewRouter(ctx, shard.Config{Directory: shardtest.Static(t, d), ReopenBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer patient.Close()
	for _, r := range []*shard.Router{eager, patient} {
		if err := r.Tx(ctx, 1, create); !errors.Is(err, shard.ErrUnavailable) {
			t.Fatalf("database missing: %v", err)
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := eager.Tx(ctx, 1, create); err != nil {
		t.Fatalf("after the database came back: %v", err)
	}
	if err := patient.Tx(ctx, 1, create); !errors.Is(err, shard.ErrUnavailable) {
		t.Fatalf("within ReopenBackoff: %v", err)
	}
	s := eager.Stats()[0]
	if s.Txs != 1 || s.TxErrors != 0 || s.SlowTxs != 1 || s.Errors != 1 || !s.Open {
		t.Fatalf("stats %+v", s)
	}
}

func TestLoadStaticDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir.json")
	js := `[{"db_id": 7, "db_name": "gamedb07", "driver": "mysql", "host": "h", "port": 3306, "first_key": 70000000, "last_key": 79999999, "state": "draining", "description": "seventh"}]`
	if err := os.WriteFile(path, []byte(js), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := shard.LoadStaticDirectory(path)
	if err != nil {
		t.Fatal(err)
	}
	dbs, _ := d.Databases(context.Background())
	if len(dbs) != 1 || dbs[0].ID != 7 || dbs[0].State != shard.StateDraining || dbs[0].Description != "seventh" || dbs[0].NextKey != 70000000 {
		t.Fatalf("%+v", dbs)
	}
	if _, err := shard.LoadStaticDirectory(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("missing file loaded")
	}
}

// Many goroutines hit databases whose pools are not open yet: one opens,
// the others wait for it, and every transaction lands.
func TestConcurrentFirstUse(t *testing.T) {
	ctx := context.Background()
	games := shardtest.SQLiteDatabases(t, 2)
	for _, g := range games {
		db, err := sql.Open("sqlite", g.DSN)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("CREATE TABLE hits (user_key BIGINT NOT NULL)"); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	r, err := shard.NewRouter(ctx, shard.Config{Directory: shardtest.Static(t, games...)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const workers, each = 16, 10
	errs := make(chan error, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := games[w%2].FirstKey + int64(w)
			for range each {
				errs <- r.Tx(ctx, key, func(ctx context.Context, tx *sql.Tx) error {
					_, err := tx.ExecContext(ctx, "INSERT INTO hits VALUES (?)", key)
					return err
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	err = r.ForEach(ctx, func(ctx context.Context, d shard.Database, db *sql.DB) error {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM hits").Scan(&n); err != nil {
			return err
		}
		if n != workers/2*each {
			return fmt.Errorf("db %d has %d rows", d.ID, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// mariaDBTableC returns a Router on one MariaDB database of the test's own
// (closed when the test ends), that database's first key and its *sql.DB,
// in which it created table c (id INT PRIMARY KEY, n INT NOT NULL).
func mariaDBTableC(t *testing.T) (*shard.Router, int64, *sql.DB) {
	t.Helper()
	ctx := context.Background()
	g := shardtest.MySQL().Database(t, 1)
	r, err := shard.NewRouter(ctx, shard.Config{Directory: shardtest.Static(t, g), RefreshInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	db, err := r.DB(ctx, g.FirstKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE c (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	return r, g.FirstKey, db
}

// A real InnoDB deadlock: two transactions lock two rows in opposite order.
// MariaDB kills one (error 1213); Tx runs it again and both commit.
func TestTxRetriesRealDeadlock(t *testing.T) {
	ctx := context.Background()
	r, key, db := mariaDBTableC(t)
	if _, err := db.Exec("INSERT INTO c VALUES (1, 0), (2, 0)"); err != nil {
		t.Fatal(err)
	}
	ready := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	run := func(me, first, second int) error {
		attempt := 0
		return r.Tx(ctx, key, func(ctx context.Context, tx *sql.Tx) error {
			attempt++
			if _, err := tx.ExecContext(ctx, "UPDATE c SET n = n + 1 WHERE id = ?", first); err != nil {
				return err
			}
			if attempt == 1 {
				close(ready[me])
				<-ready[1-me] // both hold their first row: the next UPDATEs deadlock
			}
			_, err := tx.ExecContext(ctx, "UPDATE c SET n = n + 1 WHERE id = ?", second)
			return err
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- run(0, 1, 2) }()
	go func() { errs <- run(1, 2, 1) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("Tx: %v", err)
		}
	}
	var n1, n2 int
	if err := db.QueryRow("SELECT (SELECT n FROM c WHERE id = 1), (SELECT n FROM c WHERE id = 2)").Scan(&n1, &n2); err != nil {
		t.Fatal(err)
	}
	if n1 != 2 || n2 != 2 {
		t.Fatalf("rows %d %d, want 2 2 (both transactions committed once)", n1, n2)
	}
	if s := r.Stats()[0]; s.TxRetries < 1 || s.TxErrors != 0 || s.Txs != 2 {
		t.Fatalf("stats %+v", s)
	}
}
