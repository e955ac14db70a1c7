package anticheat_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/shard"
)

// A SQL store in the common database: a receipt's transaction is redeemed
// once. The dialect is detected from the database; name it
// (SQLConfig.Dialect, shard.DialectMySQL or shard.DialectSQLite) when the
// driver is wrapped in a way detection cannot see through.
func ExampleNewSQLStore() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "anticheat-sql")
	defer os.RemoveAll(dir)
	common, err := sql.Open("sqlite", shard.SQLiteDSN(filepath.Join(dir, "common.db")))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer common.Close()

	store, err := anticheat.NewSQLStore(ctx, common, anticheat.SQLConfig{Dialect: shard.DialectSQLite})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := store.CreateTables(ctx); err != nil {
		fmt.Println(err)
		return
	}
	for _, user := range []int64{10000001, 10000002} {
		r, created, err := store.Redeem(ctx, anticheat.Redemption{Store: "google", TransactionID: "GPA.1234", UserKey: user, ProductID: "gems_100"})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("user %d: redeemed by %d, new: %v\n", user, r.UserKey, created)
	}
	// Output:
	// user 10000001: redeemed by 10000001, new: true
	// user 10000002: redeemed by 10000001, new: false
}
