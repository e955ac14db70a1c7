package shard_test

import (
	"context"
	"errors"
	"log"

	"github.com/madang-io/madang/shard"
)

// A pipelined MySQL/MariaDB pool: the transaction below costs two round
// trips (START TRANSACTION with the UPDATE, then the deferred ledger row
// with COMMIT) instead of four.
func ExampleDeferred() {
	dsn, err := shard.MySQLDSN("game:secret@tcp(10.0.0.5:3306)/gamedb01?parseTime=true")
	if err != nil {
		log.Fatal(err)
	}
	db, err := shard.OpenMySQL(dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback()
	// Its result is read: sent at once (with START TRANSACTION).
	if _, err := tx.ExecContext(ctx, "UPDATE wallets SET gold = gold - ? WHERE user_key = ? AND gold >= ?", 100, 10000001, 100); err != nil {
		log.Fatal(err)
	}
	// Its result is not read: sent with the COMMIT.
	if _, err := tx.ExecContext(shard.Deferred(ctx), "INSERT INTO ledger (user_key, delta, reason) VALUES (?, ?, ?)", 10000001, -100, "shop"); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(); errors.Is(err, shard.ErrNotCommitted) {
		log.Print("the ledger row was refused: nothing committed")
	} else if err != nil {
		log.Print("commit outcome unknown: ", err)
	}
}
