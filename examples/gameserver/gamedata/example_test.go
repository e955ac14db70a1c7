package gamedata_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	"github.com/madang-io/madang/examples/gameserver/gamedata"
	"github.com/madang-io/madang/shard"
	_ "modernc.org/sqlite"
)

// Two data versions live at once: client 1.1 is mapped to version 2 while
// everyone else gets the published version 1; publishing resets the cache.
func Example() {
	dir, _ := os.MkdirTemp("", "gamedata-example")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite", shard.SQLiteDSN(filepath.Join(dir, "common.db")))
	defer db.Close()
	ctx := context.Background()
	cat, err := gamedata.Open(ctx, gamedata.Default(), gamedata.Config{
		DB: db, Initial: "1",
		OnPublish: func(_ context.Context, e gamedata.Event) {
			fmt.Println("reset the user cache after", e.Kind, e.Version)
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	price := func(clientVersion string) int64 {
		it, _ := cat.ForClient(clientVersion).ShopItem("gold_small")
		return it.Gems
	}
	_ = cat.MapClient(ctx, "1.1.0.0", "2")
	fmt.Println("1.0:", price("1.0.0.0"), "gems; 1.1:", price("1.1.0.0"), "gems")
	_ = cat.Publish(ctx, "2")
	fmt.Println("1.0 after publishing 2:", price("1.0.0.0"), "gems")
	// Output:
	// reset the user cache after map 2
	// 1.0: 10 gems; 1.1: 8 gems
	// reset the user cache after publish 2
	// 1.0 after publishing 2: 8 gems
}
