package shard_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/madang-io/madang/shard"
)

// The whole flow on the embedded default, SQLite: a common database with the
// directory and accounts, two game databases, a first login that allocates
// a user key, and a transaction on the user's database.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "shard-example")
	defer os.RemoveAll(dir)
	dsn := func(name string) string { return shard.SQLiteDSN(filepath.Join(dir, name+".db")) }

	common, _ := sql.Open("sqlite", dsn("common"))
	defer common.Close()
	if _, err := shard.Migrate(ctx, common, shard.DirectoryMigrations()); err != nil {
		fmt.Println(err)
		return
	}
	directory, _ := shard.NewSQLDirectory(ctx, common, shard.SQLDirectoryConfig{})
	game := shard.Migrations{Source: "game", FS: os.DirFS("testdata/game")}
	for i := 1; i <= 2; i++ {
		d := shard.Database{ID: i, Name: fmt.Sprintf("gamedb%02d", i), Driver: "sqlite", DSN: dsn(fmt.Sprintf("gamedb%02d", i)),
			FirstKey: int64(i) * 10_000_000, LastKey: int64(i)*10_000_000 + 9_999_999}
		if err := directory.Add(ctx, d); err != nil {
			fmt.Println(err)
			return
		}
	}

	router, err := shard.NewRouter(ctx, shard.Config{Directory: directory})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer router.Close()
	if _, err := router.MigrateAll(ctx, game); err != nil {
		fmt.Println(err)
		return
	}

	accounts := shard.NewAccounts(directory, shard.AccountsConfig{})
	for _, id := range []shard.Identity{{Platform: "google", ID: "alice"}, {Platform: "apple", ID: "bob"}, {Platform: "google", ID: "alice"}} {
		key, created, err := accounts.Register(ctx, id)
		if err != nil {
			fmt.Println(err)
			return
		}
		dbID, _ := router.LookupID(key)
		fmt.Printf("%s/%s: user key %d on db %d (new: %v)\n", id.Platform, id.ID, key, dbID, created)
		err = router.Tx(ctx, key, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO gold (user_key, amount) VALUES (?, 100)"+
				" ON CONFLICT(user_key) DO UPDATE SET amount = amount + 100", key)
			return err
		})
		if err != nil {
			fmt.Println(err)
			return
		}
	}
	_, err = router.DB(ctx, 99)
	fmt.Println(err)
	// Output:
	// google/alice: user key 10000000 on db 1 (new: true)
	// apple/bob: user key 20000000 on db 2 (new: true)
	// google/alice: user key 10000000 on db 1 (new: false)
	// shard: unknown user key (user key 99)
}

// A static directory read from JSON, as a server without a common database
// (or a test) would configure it; the lookup needs no I/O.
func ExampleReadStaticDirectory() {
	dir, err := shard.ReadStaticDirectory(strings.NewReader(`[
	  {"db_id": 1, "db_name": "gamedb01", "host": "10.0.0.11", "port": 3306, "driver": "mysql", "first_key": 10000000, "last_key": 19999999},
	  {"db_id": 2, "db_name": "gamedb02", "host": "10.0.0.12", "port": 3306, "driver": "mysql", "first_key": 20000000, "last_key": 29999999,
	   "replicas": ["10.0.0.22:3306"]}
	]`))
	if err != nil {
		fmt.Println(err)
		return
	}
	router, err := shard.NewRouter(context.Background(), shard.Config{
		Directory:   dir,
		DSNTemplate: "game:secret@tcp({host}:{port})/{db}?parseTime=true",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer router.Close()
	for _, key := range []int64{10000000, 25000123, 30000000} {
		id, ok := router.LookupID(key)
		fmt.Println(key, id, ok)
	}
	d := router.Databases()[1]
	primary, replicas, _ := d.DSNs("game:secret@tcp({host}:{port})/{db}?parseTime=true")
	fmt.Println(primary)
	fmt.Println(replicas)
	// Output:
	// 10000000 1 true
	// 25000123 2 true
	// 30000000 0 false
	// game:secret@tcp(10.0.0.12:3306)/gamedb02?parseTime=true
	// [game:secret@tcp(10.0.0.22:3306)/gamedb02?parseTime=true]
}

// The directory as a Vitess sharded keyspace: a numeric vindex on the user
// key, and one shard per database named by its keyspace-id range.
func ExampleWriteVSchema() {
	dbs := []shard.Database{
		{ID: 1, Name: "gamedb01", Driver: "mysql", FirstKey: 10_000_000, LastKey: 19_999_999},
		{ID: 2, Name: "gamedb02", Driver: "mysql", FirstKey: 20_000_000, LastKey: 29_999_999},
		{ID: 3, Name: "gamedb03", Driver: "mysql", FirstKey: 30_000_000, LastKey: 39_999_999},
	}
	shards, _ := shard.VitessShards(dbs)
	for _, s := range shards {
		fmt.Println(s.DBName, s.Name)
	}
	if err := shard.WriteVSchema(os.Stdout, dbs, shard.VSchemaOptions{Tables: map[string]string{"gold": "user_key"}}); err != nil {
		fmt.Println(err)
	}
	// Output:
	// gamedb01 -0000000001312d00
	// gamedb02 0000000001312d00-0000000001c9c380
	// gamedb03 0000000001c9c380-
	// {
	//   "sharded": true,
	//   "vindexes": {
	//     "user_key": {
	//       "type": "numeric"
	//     }
	//   },
	//   "tables": {
	//     "gold": {
	//       "column_vindexes": [
	//         {
	//           "column": "user_key",
	//           "name": "user_key"
	//         }
	//       ]
	//     }
	//   }
	// }
}

// How a migration file is split into statements.
func ExampleSplitStatements() {
	for i, s := range shard.SplitStatements("-- two tables\nCREATE TABLE a (\n  id INT\n);\nCREATE TABLE b (id INT);\n") {
		fmt.Printf("%d: %q\n", i+1, s)
	}
	// Output:
	// 1: "CREATE TABLE a (\n  id INT\n)"
	// 2: "CREATE TABLE b (id INT)"
}

// Reserving user keys in blocks (Hi/Lo): the first registration reserves
// 32 keys of the chosen database with one UPDATE, the next ones are each
// a single INSERT with the following keys. user_count counts the reserved
// keys.
func ExampleAccounts_keyBlock() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "shard-example")
	defer os.RemoveAll(dir)
	common, _ := sql.Open("sqlite", shard.SQLiteDSN(filepath.Join(dir, "common.db")))
	defer common.Close()
	if _, err := shard.Migrate(ctx, common, shard.DirectoryMigrations()); err != nil {
		fmt.Println(err)
		return
	}
	directory, _ := shard.NewSQLDirectory(ctx, common, shard.SQLDirectoryConfig{})
	err := directory.Add(ctx, shard.Database{ID: 1, Name: "gamedb01", Driver: "sqlite",
		DSN: shard.SQLiteDSN(filepath.Join(dir, "gamedb01.db")), FirstKey: 10000000, LastKey: 19999999})
	if err != nil {
		fmt.Println(err)
		return
	}
	accounts := shard.NewAccounts(directory, shard.AccountsConfig{KeyBlock: 32})
	for _, device := range []string{"phone-a", "phone-b", "phone-c"} {
		key, created, err := accounts.Register(ctx, shard.Identity{Platform: "guest", ID: device})
		fmt.Println(device, key, created, err)
	}
	dbs, _ := directory.Databases(ctx)
	fmt.Println("user_count", dbs[0].UserCount, "next_key", dbs[0].NextKey)
	// Output:
	// phone-a 10000000 true <nil>
	// phone-b 10000001 true <nil>
	// phone-c 10000002 true <nil>
	// user_count 32 next_key 10000032
}

// RetryPolicy runs work that is not a Router.Tx (start-up migrations, a
// directory change) again after a deadlock or a busy database, with the
// router's backoff; any other error ends it at once.
func ExampleRetryPolicy() {
	ctx := context.Background()
	deadlock := &mysql.MySQLError{Number: 1213, Message: "Deadlock found when trying to get lock"}
	runs := 0
	err := shard.RetryPolicy{Retries: 4, Backoff: time.Millisecond}.Do(ctx, func(ctx context.Context) error {
		runs++
		if runs < 3 {
			return deadlock // a deadlock victim: rolled back, safe to run again
		}
		return nil
	})
	fmt.Println(runs, err)

	runs = 0
	err = shard.RetryPolicy{}.Do(ctx, func(ctx context.Context) error {
		runs++
		return errors.New("syntax error")
	})
	fmt.Println(runs, err, shard.IsRetryable(err), shard.IsRetryable(deadlock))
	// Output:
	// 3 <nil>
	// 1 syntax error false true
}
