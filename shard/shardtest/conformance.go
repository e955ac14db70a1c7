package shardtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
)

// GameSchema is the migration set the suite applies to game databases: one
// table, items(user_key, n).
func GameSchema() shard.Migrations {
	return shard.Migrations{Source: "shardtest", FS: fstest.MapFS{
		"0001_items.sql":        {Data: []byte("CREATE TABLE items (\n  user_key BIGINT NOT NULL,\n  n INT NOT NULL\n);\n")},
		"0002_index.mysql.sql":  {Data: []byte("CREATE INDEX items_user ON items (user_key);\n")},
		"0002_index.sqlite.sql": {Data: []byte("-- SQLite spelling\nCREATE INDEX IF NOT EXISTS items_user ON items (user_key);\n")},
	}}
}

// env is one test's common database and its directory.
type env struct {
	b         Backend
	commonDSN string
	common    *sql.DB
	dir       *shard.SQLDirectory
}

func newEnv(t *testing.T, b Backend) *env {
	t.Helper()
	e := &env{b: b, commonDSN: b.NewDSN(t)}
	e.common = b.Open(t, e.commonDSN)
	if _, err := shard.Migrate(context.Background(), e.common, shard.DirectoryMigrations()); err != nil {
		t.Fatalf("migrate common database: %v", err)
	}
	e.dir = e.directory(t, e.common)
	return e
}

func (e *env) directory(t *testing.T, db *sql.DB) *shard.SQLDirectory {
	t.Helper()
	d, err := shard.NewSQLDirectory(t.Context(), db, shard.SQLDirectoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// addGames creates and registers game databases with the given ids,
// migrated with GameSchema.
func (e *env) addGames(t *testing.T, ids ...int) []shard.Database {
	t.Helper()
	var out []shard.Database
	for _, id := range ids {
		d := e.b.Database(t, id)
		if _, err := shard.Migrate(context.Background(), e.b.Open(t, d.DSN), GameSchema()); err != nil {
			t.Fatalf("migrate game db %d: %v", id, err)
		}
		if err := e.dir.Add(context.Background(), d); err != nil {
			t.Fatalf("add db %d: %v", id, err)
		}
		out = append(out, d)
	}
	return out
}

func (e *env) router(t *testing.T, cfg shard.Config) *shard.Router {
	t.Helper()
	if cfg.Directory == nil {
		cfg.Directory = e.dir
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = -1 // tests refresh explicitly
	}
	r, err := shard.NewRouter(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func (e *env) entry(t *testing.T, id int) shard.Database {
	t.Helper()
	dbs, err := e.dir.Databases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dbs {
		if d.ID == id {
			return d
		}
	}
	t.Fatalf("db %d not in directory", id)
	return shard.Database{}
}

// RunBackendTests runs the package's conformance suite on the database
// backend b: directory, allocation (with concurrent allocators on two
// independent pools), accounts, router (routing, unknown keys,
// transactions and retries, fan-out, replicas, live add, a database down,
// the directory down, read-only) and migrations.
func RunBackendTests(t *testing.T, b Backend) {
	t.Run("Directory", func(t *testing.T) { testDirectory(t, b) })
	t.Run("AllocateConcurrent", func(t *testing.T) { testAllocateConcurrent(t, b) })
	t.Run("AllocatePolicy", func(t *testing.T) { testAllocatePolicy(t, b) })
	t.Run("AllocateFullCloses", func(t *testing.T) { testAllocateFull(t, b) })
	t.Run("Register", func(t *testing.T) { testRegister(t, b) })
	t.Run("RegisterKeyBlocks", func(t *testing.T) { testRegisterBlocks(t, b) })
	t.Run("Routing", func(t *testing.T) { testRouting(t, b) })
	t.Run("TxRetry", func(t *testing.T) { testTxRetry(t, b) })
	t.Run("Replica", func(t *testing.T) { testReplica(t, b) })
	t.Run("LiveAdd", func(t *testing.T) { testLiveAdd(t, b) })
	t.Run("OneDatabaseDown", func(t *testing.T) { testOneDown(t, b) })
	t.Run("DirectoryDown", func(t *testing.T) { testDirectoryDown(t, b) })
	t.Run("ReadOnly", func(t *testing.T) { testReadOnly(t, b) })
	t.Run("Migrations", func(t *testing.T) { testMigrations(t, b) })
	t.Run("SchemaBehind", func(t *testing.T) { testSchemaBehind(t, b) })
}

func testDirectory(t *testing.T, b Backend) {
	ctx := context.Background()
	e := newEnv(t, b)
	applied, err := shard.Migrate(ctx, e.common, shard.DirectoryMigrations())
	if err != nil || len(applied) != 0 {
		t.Fatalf("second migration run applied %v, %v", applied, err)
	}
	v0, err := e.dir.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	games := e.addGames(t, 1, 2)
	v1, _ := e.dir.Version(ctx)
	if v1 == v0 {
		t.Fatal("version did not change after Add")
	}
	dbs, err := e.dir.Databases(ctx)
	if err != nil || len(dbs) != 2 {
		t.Fatalf("databases %v, %v", dbs, err)
	}
	if dbs[0].ID != 1 || dbs[0].FirstKey != games[0].FirstKey || dbs[0].NextKey != games[0].FirstKey || dbs[0].State != shard.StateOpen || dbs[0].Weight != 1 || dbs[0].DSN != games[0].DSN {
		t.Fatalf("db 1 read back as %+v", dbs[0])
	}
	if _, _, err := e.dir.Allocate(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.dir.Version(ctx); v != v1 {
		t.Fatal("version changed after an allocation that closed nothing")
	}
	overlap := b.Database(t, 3)
	overlap.FirstKey, overlap.LastKey = games[1].FirstKey+5, games[1].LastKey+5
	if err := e.dir.Add(ctx, overlap); !errors.Is(err, shard.ErrInvalid) {
		t.Fatalf("overlapping add: %v", err)
	}
	dup := b.Database(t, 1)
	dup.FirstKey, dup.LastKey = 90_000_000, 90_000_100
	if err := e.dir.Add(ctx, dup); !errors.Is(err, shard.ErrInvalid) {
		t.Fatalf("duplicate id add: %v", err)
	}
	bad := b.Database(t, 4)
	bad.LastKey = bad.FirstKey - 1
	if err := e.dir.Add(ctx, bad); !errors.Is(err, shard.ErrInvalid) || protocol.CodeOf(err) != protocol.CodeBadRequest {
		t.Fatalf("empty range add: %v", err)
	}
	if err := e.dir.SetState(ctx, 2, "bogus"); !errors.Is(err, shard.ErrInvalid) {
		t.Fatalf("bad state: %v", err)
	}
	if err := e.dir.SetState(ctx, 2, shard.StateDraining); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.dir.Version(ctx); v == v1 {
		t.Fatal("version did not change after SetState")
	}
	if e.entry(t, 2).State != shard.StateDraining {
		t.Fatal("state not stored")
	}
	if dbs, _ := e.dir.Databases(ctx); len(dbs) != 2 {
		t.Fatalf("rejected adds left rows: %d", len(dbs))
	}
}

func testAllocateConcurrent(t *testing.T, b Backend) {
	ctx := context.Background()
	e := newEnv(t, b)
	e.addGames(t, 1, 2)
	// A second, independent pool: another process.
	dirs := []*shard.SQLDirectory{e.dir, e.directory(t, b.Open(t, e.commonDSN))}
	const workers, each = 8, 25
	type got struct {
		key int64
		db  int
	}
	results := make(chan got, 2*workers*each)
	var wg sync.WaitGroup
	errc := make(chan error, 2*workers)
	for _, d := range dirs {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					k, id, err := d.Allocate(ctx)
					if err != nil {
						errc <- err
						return
					}
					results <- got{k, id}
				}
			}()
		}
	}
	wg.Wait()
	close(results)
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	perDB := map[int]int64{}
	for g := range results {
		if seen[g.key] {
			t.Fatalf("key %d allocated twice", g.key)
		}
		seen[g.key] = true
		first, last := Range(g.db)
		if g.key < first || g.key > last {
			t.Fatalf("key %d outside db %d's range", g.key, g.db)
		}
		perDB[g.db]++
	}
	if len(seen) != 2*workers*each {
		t.Fatalf("%d keys, want %d", len(seen), 2*workers*each)
	}
	for _, id := range []int{1, 2} {
		d := e.entry(t, id)
		if d.UserCount != perDB[id] || d.NextKey-d.FirstKey != perDB[id] {
			t.Fatalf("db %d: user_count %d next_key %d, allocated %d", id, d.UserCount, d.NextKey, perDB[id])
		}
	}
}

func testAllocatePolicy(t *testing.T, b Backend) {
	ctx := context.Background()
	e := newEnv(t, b)
	d1, d2 := b.Database(t, 1), b.Database(t, 2)
	d2.Weight = 3
	for _, d := range []shard.Database{d1, d2} {
		if err := e.dir.Add(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	counts := map[int]int{}
	for range 40 {
		_, id, err := e.dir.Allocate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		counts[id]++
	}
	if counts[1] != 10 || counts[2] != 30 {
		t.Fatalf("weights 1:3 gave %v", counts)
	}
}

func testAllocateFull(t *testing.T, b Backend) {
	ctx := context.Background()
	e := newEnv(t, b)
	small := b.Database(t, 1)
	small.LastKey = small.FirstKey + 2 // three keys
	if err := e.dir.Add(ctx, small); err != nil {
		t.Fatal(err)
	}
	e.addGames(t, 2)
	var keys1 []int64
	for range 10 {
		k, id, err := e.dir.Allocate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if id == 1 {
			keys1 = append(keys1, k)
		}
	}
	if !slices.Equal(keys1, []int64{small.FirstKey, small.FirstKey + 1, small.FirstKey + 2}) {
		t.Fatalf("small database handed out %v", keys1)
	}
	if d := e.entry(t, 1); d.State != shard.StateClosed || d.UserCount != 3 || d.NextKey != d.LastKey+1 {
		t.Fatalf("full database: %+v", d)
	}
	if d := e.entry(t, 2); d.UserCount != 7 {
		t.Fatalf("db 2 user_count %d, want 7", d.UserCount)
	}
	if err := e.dir.SetState(ctx, 2, shard.StateClosed); err != nil {
		t.Fatal(err)
	}
	_, _, err := e.dir.Allocate(ctx)
	if !errors.Is(err, shard.ErrNoOpenDatabase) || protocol.CodeOf(err) != protocol.CodeUnavailable {
		t.Fatalf("allocate with nothing open: %v", err)
	}
}

func testRegister(t *testing.T, b Backend) {
	ctx := context.Background()
	e := newEnv(t, b)
	e.addGames(t, 1, 2)
	accs := []*shard.Accounts{shard.NewAccounts(e.dir, shard.AccountsConfig{}), shard.NewAccounts(e.directory(t, b.Open(t, e.commonDSN)), shard.AccountsConfig{})}
	id := shard.Identity{Platform: "google", ID: "player-1"}
	const racers = 8
	keys := make([]int64, 2*racers)
	created := make([]bool, 2*racers)
	errs := make([]error, 2*racers)
	var wg sync.WaitGroup
	for i := range 2 * racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], created[i], errs[i] = accs[i%2].Register(ctx, id)
		}()
	}
	wg.Wait()
	nCreated := 0
	for i := range keys {
		if errs[i] != nil {
			t.Fatalf("racer %d: %v", i, errs[i])
		}
		if keys[i] != keys[0] {
			t.Fatalf("racers got keys %v", keys)
		}
		if created[i] {
			nCreated++
		}
	}
	if nCreated != 1 {
		t.Fatalf("%d racers created the account", nCreated)
	}
	if total := e.entry(t, 1).UserCount + e.entry(t, 2).UserCount; total != 1 {
		t.Fatalf("user_count total %d after one registration", total)
	}
	k, ok, err := accs[1].Lookup(ctx, id)
	if err != nil || !ok || k != keys[0] {
		t.Fatalf("lookup: %d %v %v", k, ok, err)
	}
	k2, created2, err := accs[0].Register(ctx, shard.Identity{Platform: "apple", ID: "player-1"})
	if err != nil || !created2 || k2 == keys[0] {
		t.Fatalf("second identity: %d %v %v", k2, created2, err)
	}
	if _, ok, _ := accs[0].Lookup(ctx, shard.Identity{Platform: "google", ID: "nobody"}); ok {
		t.Fatal("unknown identity found")
	}
	for _, bad := range []shard.Identity{{}, {Platform: "google"}, {ID: "x"}, {Platform: string(make([]byte, 33)), ID: "x"}, {Platform: "g", ID: "\xff"}} {
		if _, _, err := accs[0].Register(ctx, bad); !errors.Is(err, shard.ErrInvalid) {
			t.Fatalf("identity %q: %v", bad, err)
		}
	}
}

// testRegisterBlocks registers with AccountsConfig.KeyBlock on two
// independent pools (two processes) at once, then on a third (a restart),
// until both small ranges are used up: no key is handed out twice, every
// key lies in its database's range, full databases close, and the racers
// of one identity still share one key.
func testRegisterBlocks(t *testing.T, b Backend) {
	ctx := context.Background()
	e := newEnv(t, b)
	var ranges []shard.Database
	for _, id := range []int{1, 2} {
		d := b.Database(t, id)
		d.LastKey = d.FirstKey + 19 + int64(id)*2 // 22 and 24 keys: blocks of 8 do not fit the tails
		if err := e.dir.Add(ctx, d); err != nil {
			t.Fatal(err)
		}
		ranges = append(ranges, d)
	}
	newAccounts := func() *shard.Accounts {
		return shard.NewAccounts(e.directory(t, b.Open(t, e.commonDSN)), shard.AccountsConfig{KeyBlock: 8})
	}
	type reg struct {
		id  shard.Identity
		key int64
	}
	var mu sync.Mutex
	var regs []reg
	register := func(a *shard.Accounts, id shard.Identity) error {
		key, created, err := a.Register(ctx, id)
		if err != nil {
			return err
		}
		if created {
			mu.Lock()
			regs = append(regs, reg{id, key})
			mu.Unlock()
		}
		return nil
	}
	procs := []*shard.Accounts{newAccounts(), newAccounts()}
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := range 3 {
				if err := register(procs[w%2], shard.Identity{Platform: "guest", ID: fmt.Sprintf("w%d-%d", w, i)}); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	// Racers of one identity over both processes: one key, one creation.
	racer := shard.Identity{Platform: "guest", ID: "racer"}
	keys := make([]int64, 8)
	created := make([]bool, 8)
	errs := make([]error, 8)
	for i := range 8 {
		wg.Go(func() { keys[i], created[i], errs[i] = procs[i%2].Register(ctx, racer) })
	}
	wg.Wait()
	nCreated := 0
	for i := range keys {
		if errs[i] != nil || keys[i] != keys[0] {
			t.Fatalf("racers: keys %v errors %v", keys, errs)
		}
		if created[i] {
			nCreated++
		}
	}
	if nCreated != 1 {
		t.Fatalf("%d racers created the account", nCreated)
	}
	regs = append(regs, reg{racer, keys[0]})
	// A restart: a new process, the first one gone, the second still
	// registering, until nothing is open.
	procs[0] = newAccounts()
	var end error
	for i := 0; end == nil; i++ {
		if i > 100 {
			t.Fatal("46 keys never ran out")
		}
		end = register(procs[i%2], shard.Identity{Platform: "guest", ID: fmt.Sprintf("late-%d", i)})
	}
	if !errors.Is(end, shard.ErrNoOpenDatabase) {
		t.Fatalf("registering past the ranges: %v", end)
	}
	seen := map[int64]bool{}
	for _, r := range regs {
		if seen[r.key] {
			t.Fatalf("key %d handed out twice", r.key)
		}
		seen[r.key] = true
		if !slices.ContainsFunc(ranges, func(d shard.Database) bool { return d.Contains(r.key) }) {
			t.Fatalf("key %d outside the ranges", r.key)
		}
		if k, ok, err := procs[1].Lookup(ctx, r.id); err != nil || !ok || k != r.key {
			t.Fatalf("lookup %v: %d %v %v, registered %d", r.id, k, ok, err, r.key)
		}
	}
	if len(regs) < 8*3+1 {
		t.Fatalf("%d registrations", len(regs))
	}
	for _, d := range ranges {
		got := e.entry(t, d.ID)
		if got.State != shard.StateClosed || got.NextKey != got.LastKey+1 || got.UserCount != got.LastKey-got.FirstKey+1 {
			t.Fatalf("db %d after its range ran out: %+v", d.ID, got)
		}
	}
}

// count returns how many items rows db has for key.
func count(t *testing.T, db *sql.DB, key int64) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM items WHERE user_key = ?", key).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func insertItem(key int64) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO items (user_key, n) VALUES (?, 1)", key)
		return err
	}
}

func testRouting(t *testing.T, b Backend) {
	ctx := context.Background()
	e := newEnv(t, b)
	games := e.addGames(t, 1, 2, 3)
	r := e.router(t, shard.Config{})
	direct := map[int]*sql.DB{}
	for _, g := range games {
		direct[g.ID] = b.Open(t, g.DSN)
	}
	for range 6 {
		key, id, err := e.dir.Allocate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := r.LookupID(key); !ok || got != id {
			t.Fatalf("LookupID(%d) = %d %v, allocated on %d", key, got, ok, id)
		}
		if err := r.Tx(ctx, key, insertItem(key)); err != nil {
			t.Fatal(err)
		}
		for _, g := range games {
			want := 0
			if g.ID == id {
				want = 1
			}
			if n := count(t, direct[g.ID], key); n != want {
				t.Fatalf("key %d of db %d: %d rows in db %d", key, id, n, g.ID)
			}
		}
		db, err := r.DB(ctx, key)
		if err != nil || count(t, db, key) != 1 {
			t.Fatalf("DB(%d): %v", key, err)
		}
	}
	for _, key := range []int64{0, -5, 5, 9_999_999, 40_000_000, 1 << 62} {
		_, err := r.DB(ctx, key)
		var se *shard.Error
		if !errors.Is(err, shard.ErrUnknownKey) || !errors.As(err, &se) || se.UserKey != key || protocol.CodeOf(err) != protocol.CodeBadRequest {
			t.Fatalf("DB(%d): %v", key, err)
		}
		if _, ok := r.LookupID(key); ok {
			t.Fatalf("LookupID(%d) found a database", key)
		}
	}
	// fn's own error comes back unchanged and rolls back.
	first, _ := Range(1)
	boom := errors.New("boom")
	if err := r.Tx(ctx, first, func(ctx context.Context, tx *sql.Tx) error {
		if err := insertItem(first)(ctx, tx); err != nil {
			return err
		}
		return boom
	}); err != boom {
		t.Fatalf("Tx returned %v, want fn's error", err)
	}
	if n := count(t, direct[1], first); n != 1 {
		t.Fatalf("rolled-back insert visible: %d rows", n)
	}
	var mu sync.Mutex
	var visited []int
	if err := r.ForEach(ctx, func(ctx context.Context, d shard.Database, db *sql.DB) error {
		if err := db.PingContext(ctx); err != nil {
			return err
		}
		mu.Lock()
		visited = append(visited, d.ID)
		mu.Unlock()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(visited)
	if !slices.Equal(visited, []int{1, 2, 3}) {
		t.Fatalf("ForEach visited %v", visited)
	}
	errStop := errors.New("stop")
	if err := r.ForEach(ctx, func(ctx context.Context, d shard.Database, db *sql.DB) error {
		if d.ID == 2 {
			return errStop
		}
		return nil
	}); err != errStop {
		t.Fatalf("ForEach error: %v", err)
	}
	var txs uint64
	for _, s := range r.Stats() {
		txs += s.Txs
		if !s.Open || s.Pool.OpenConnections < 1 && s.Pool.MaxOpenConnections != 16 {
			t.Fatalf("stats of db %d: %+v", s.ID, s)
		}
	}
	if txs != 7 {
		t.Fatalf("stats count %d transactions, want 7", txs)
	}
}

func testTxRetry(t *testing.T, b Backend) {
	ctx := context.Background()
	e := newEnv(t, b)
	e.addGames(t, 1)
	r := e.router(t, shard.Config{TxRetries: 2})
	key, _, err := e.dir.Allocate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deadlock := &mysql.MySQLError{Number: 1213, Message: "Deadlock found when trying to get lock"}
	calls := 0
	err = r.Tx(ctx, key, func(ctx context.Context, tx *sql.Tx) error {
		calls++
		if err := insertItem(key)(ctx, tx); err != nil {
			return err
		}
		if calls == 1 {
			return deadlock
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("retry after a deadlock: %v after %d calls", err, calls)
	}
	db, _ := r.DB(ctx, key)
	if n := count(t, db, key); n != 1 {
		t.Fatalf("%d rows after a retried transaction, want 1", n)
	}
	calls = 0
	err = r.Tx(ctx, key, func(ctx context.Context, tx *sql.Tx) error { calls++; return deadlock })
	if !errors.Is(err, deadlock) || calls != 3 {
		t.Fatalf("always deadlocking: %v after %d calls, want 3", err, calls)
	}
	if s := r.Stats()[0]; s.TxRetries != 3 || s.TxErrors != 1 || s.Txs != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func testReplica(t *testing.T, b Backend) {
	ctx := context.Background()
	e := newEnv(t, b)
	g := b.Database(t, 1)
	replicaDSN := b.NewDSN(t)
	g.Replicas = []string{replicaDSN}
	for _, dsn := range []string{g.DSN, replicaDSN} {
		if _, err := shard.Migrate(ctx, b.Open(t, dsn), GameSchema()); err != nil {
			t.Fatal(err)
		}
	}
	// The "replica" is an independent database, so a row written to the
	// primary is visible through DB and not through ReadDB.
	r := e.router(t, shard.Config{Directory: Static(t, g)})
	key := g.FirstKey
	if err := r.Tx(ctx, key, insertItem(key)); err != nil {
		t.Fatal(err)
	}
	rdb, err := r.ReadDB(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	pdb, _ := r.DB(ctx, key)
	if count(t, pdb, key) != 1 || count(t, rdb, key) != 0 {
		t.Fatal("ReadDB did not return the replica")
	}
	if s := r.Stats()[0]; len(s.Replicas) != 1 {
		t.Fatalf("replica stats %+v", s)
	}
	// Without replicas ReadDB is the primary.
	e.addGames(t, 2)
	r2 := e.router(t, shard.Config{})
	k2, _ := Range(2)
	db1, _ := r2.DB(ctx, k2)
	db2, err := r2.ReadDB(ctx, k2)
	if err != nil || db1 != db2 {
		t.Fatalf("ReadDB without replicas: %v", err)
	}
}

func testLiveAdd(t *testing.T, b Backend) {
	ctx := context.Background()
	e := newEnv(t, b)
	e.addGames(t, 1, 2)
	r := e.router(t, shard.Config{})
	for range 4 {
		if _, _, err := e.dir.Allocate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Another process (its own pool) adds database 3.
	other := e.directory(t, b.Open(t, e.commonDSN))
	g3 := b.Database(t, 3)
	if _, err := shard.Migrate(ctx, b.Open(t, g3.DSN), GameSchema()); err != nil {
		t.Fatal(err)
	}
	if err := other.Add(ctx, g3); err != nil {
		t.Fatal(err)
	}
	// The allocator sends the next users to the new, empty database...
	key, id, err := e.dir.Allocate(ctx)
	if err != nil || id != 3 {
		t.Fatalf("allocation after live add went to db %d: %v", id, err)
	}
	// ...and the router, which has not polled yet, reloads on the miss.
	if err := r.Tx(ctx, key, insertItem(key)); err != nil {
		t.Fatalf("Tx on the new database: %v", err)
	}
	if n := count(t, b.Open(t, g3.DSN), key); n != 1 {
		t.Fatalf("new database has %d rows", n)
	}
	if len(r.Databases()) != 3 {
		t.Fatalf("router knows %d databases", len(r.Databases()))
	}
	// A polling router picks a change up by itself.
	rp := e.router(t, shard.Config{RefreshInterval: 5 * time.Millisecond})
	if err := other.SetState(ctx, 3, shard.StateReadOnly); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, err := rp.DB(ctx, key)
		return errors.Is(err, shard.ErrReadOnly)
	})
}

func testOneDown(t *testing.T, b Backend) {
	ctx := context.Background()
	e := newEnv(t, b)
	e.addGames(t, 1, 2)
	down := b.Database(t, 3)
	down.DSN = b.BrokenDSN(t)
	if err := e.dir.Add(ctx, down); err != nil {
		t.Fatal(err)
	}
	r := e.router(t, shard.Config{})
	k1, _ := Range(1)
	k3, _ := Range(3)
	for range 3 {
		err := r.Tx(ctx, k3, insertItem(k3))
		if !errors.Is(err, shard.ErrUnavailable) || protocol.CodeOf(err) != protocol.CodeUnavailable {
			t.Fatalf("Tx on the down database: %v", err)
		}
		if err := r.Tx(ctx, k1, insertItem(k1)); err != nil {
			t.Fatalf("Tx on a healthy database: %v", err)
		}
	}
	for _, s := range r.Stats() {
		if (s.ID == 3) != (s.Errors > 0) {
			t.Fatalf("errors of db %d: %d", s.ID, s.Errors)
		}
	}
	err := r.ForEach(ctx, func(context.Context, shard.Database, *sql.DB) error { return nil })
	if !errors.Is(err, shard.ErrUnavailable) {
		t.Fatalf("ForEach with a database down: %v", err)
	}
}

func testDirectoryDown(t *testing.T, b Backend) {
	ctx := context.Background()
	e := newEnv(t, b)
	e.addGames(t, 1, 2)
	pool := b.Open(t, e.commonDSN)
	r := e.router(t, shard.Config{Directory: e.directory(t, pool)})
	pool.Close() // the directory database is gone for this router
	if err := r.Refresh(ctx); err == nil {
		t.Fatal("Refresh succeeded without a directory")
	}
	for _, id := range []int{1, 2} {
		k, _ := Range(id)
		if err := r.Tx(ctx, k, insertItem(k)); err != nil {
			t.Fatalf("cached routing of db %d: %v", id, err)
		}
	}
	if _, err := r.DB(ctx, 77_000_000); !errors.Is(err, shard.ErrUnknownKey) {
		t.Fatalf("unknown key with the directory down: %v", err)
	}
}

func testReadOnly(t *testing.T, b Backend) {
	ctx := context.Background()
	e := newEnv(t, b)
	e.addGames(t, 1)
	r := e.router(t, shard.Config{})
	k, _ := Range(1)
	if err := e.dir.SetState(ctx, 1, shard.StateReadOnly); err != nil {
		t.Fatal(err)
	}
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Tx(ctx, k, insertItem(k)); !errors.Is(err, shard.ErrReadOnly) || protocol.CodeOf(err) != protocol.CodeMaintenance {
		t.Fatalf("Tx on read-only: %v", err)
	}
	if _, err := r.ReadDB(ctx, k); err != nil {
		t.Fatalf("ReadDB on read-only: %v", err)
	}
	if _, _, err := e.dir.Allocate(ctx); !errors.Is(err, shard.ErrNoOpenDatabase) {
		t.Fatalf("allocated on a read-only database: %v", err)
	}
}

func testMigrations(t *testing.T, b Backend) {
	ctx := context.Background()
	dsn := b.NewDSN(t)
	db := b.Open(t, dsn)
	m := GameSchema()
	st, err := shard.Status(ctx, db, m)
	if err != nil || !slices.Equal(st.Pending, []int64{1, 2}) || st.UpToDate() {
		t.Fatalf("fresh status %+v, %v", st, err)
	}
	var wg sync.WaitGroup
	results := make([][]int64, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = shard.Migrate(ctx, b.Open(t, dsn), m)
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("concurrent migrate: %v %v", errs[0], errs[1])
	}
	if total := len(results[0]) + len(results[1]); total != 2 {
		t.Fatalf("concurrent runs applied %v and %v", results[0], results[1])
	}
	st, err = shard.Status(ctx, db, m)
	if err != nil || !st.UpToDate() || !slices.Equal(st.Applied, []int64{1, 2}) || st.Latest != 2 {
		t.Fatalf("status %+v, %v", st, err)
	}
	if _, err := db.Exec("INSERT INTO items (user_key, n) VALUES (1, 1)"); err != nil {
		t.Fatal(err)
	}
	// A failing migration.
	m.FS.(fstest.MapFS)["0003_bad.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE t3 (a INT);\nTHIS IS NOT SQL;\n")}
	_, err = shard.Migrate(ctx, db, m)
	if err == nil {
		t.Fatal("bad migration applied")
	}
	st, _ = shard.Status(ctx, db, m)
	if b.Name == "sqlite" {
		// Transactional DDL: nothing half-applied, nothing dirty.
		if !slices.Equal(st.Pending, []int64{3}) || len(st.Dirty) != 0 {
			t.Fatalf("after a failed SQLite migration: %+v", st)
		}
		if _, err := db.Exec("SELECT * FROM t3"); err == nil {
			t.Fatal("failed SQLite migration left t3 behind")
		}
	} else {
		if !errors.Is(err, shard.ErrDirty) || !slices.Equal(st.Dirty, []int64{3}) || st.UpToDate() {
			t.Fatalf("after a failed MariaDB migration: %v %+v", err, st)
		}
		if _, err := shard.Migrate(ctx, db, m); !errors.Is(err, shard.ErrDirty) {
			t.Fatalf("migrate over a dirty version: %v", err)
		}
	}
	// A router configured with this schema refuses the database: behind
	// (SQLite) or dirty (MariaDB).
	r, err := shard.NewRouter(ctx, shard.Config{Schema: &m, RefreshInterval: -1, Directory: Static(t,
		shard.Database{ID: 1, Name: "g", Driver: b.Driver, DSN: dsn, FirstKey: 1, LastKey: 10})})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.DB(ctx, 1); !errors.Is(err, shard.ErrSchemaBehind) {
		t.Fatalf("router over a database behind: %v", err)
	}
	// Bad file names and a version missing for this dialect.
	for name, fsys := range map[string]fstest.MapFS{
		"bad name":      {"init.sql": {Data: []byte("SELECT 1;")}},
		"zero version":  {"0000_x.sql": {Data: []byte("SELECT 1;")}},
		"same version":  {"0001_a.sql": {Data: []byte("SELECT 1;")}, "0001_b.sql": {Data: []byte("SELECT 1;")}},
		"other dialect": {"0001_a.oracle.sql": {Data: []byte("SELECT 1;")}},
		"only other": {
			"0001_a.mysql.sql":  {Data: []byte("SELECT 1;")},
			"0001_a.sqlite.sql": {Data: []byte("SELECT 1;")},
			"0002_b." + map[string]string{"sqlite": "mysql", "mariadb": "sqlite"}[b.Name] + ".sql": {Data: []byte("SELECT 1;")},
		},
	} {
		if _, err := shard.Migrate(ctx, db, shard.Migrations{FS: fsys, Source: "bad"}); !errors.Is(err, shard.ErrInvalid) {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func testSchemaBehind(t *testing.T, b Backend) {
	ctx := context.Background()
	e := newEnv(t, b)
	g1, g2 := b.Database(t, 1), b.Database(t, 2)
	for _, g := range []shard.Database{g1, g2} {
		if err := e.dir.Add(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	m := GameSchema()
	if _, err := shard.Migrate(ctx, b.Open(t, g2.DSN), m); err != nil {
		t.Fatal(err)
	}
	r := e.router(t, shard.Config{Schema: &m})
	if _, err := r.DB(ctx, g1.FirstKey); !errors.Is(err, shard.ErrSchemaBehind) || protocol.CodeOf(err) != protocol.CodeMaintenance {
		t.Fatalf("DB of an unmigrated database: %v", err)
	}
	if err := r.Tx(ctx, g2.FirstKey, insertItem(g2.FirstKey)); err != nil {
		t.Fatalf("migrated database refused: %v", err)
	}
	sts, err := r.SchemaStatus(ctx, m)
	if err != nil || len(sts) != 2 || sts[0].Status.UpToDate() || !sts[1].Status.UpToDate() {
		t.Fatalf("schema status %+v, %v", sts, err)
	}
	sts, err = r.MigrateAll(ctx, m)
	if err != nil || !slices.Equal(sts[0].Applied, []int64{1, 2}) || len(sts[1].Applied) != 0 {
		t.Fatalf("MigrateAll: %+v, %v", sts, err)
	}
	if err := r.Tx(ctx, g1.FirstKey, insertItem(g1.FirstKey)); err != nil {
		t.Fatalf("after MigrateAll: %v", err)
	}
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline (a wait for a background refresh, not a timing assertion).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
