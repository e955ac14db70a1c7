package shard_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"

	_ "github.com/go-sql-driver/mysql"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
)

// ClassifyError sorts the errors of a handler's own queries: a database
// that does not answer is unavailable (41, the client retries), a query
// that is wrong stays internal (40, a bug).
func ExampleClassifyError() {
	// A port nothing listens on: the connection is refused.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	db, _ := sql.Open("mysql", "root@tcp("+addr+")/game")
	defer db.Close()

	err := db.PingContext(context.Background())
	fmt.Println("database down:", protocol.CodeOf(shard.ClassifyError(err)))
	fmt.Println("no such row:  ", protocol.CodeOf(shard.ClassifyError(sql.ErrNoRows)))
	fmt.Println("no error:     ", shard.ClassifyError(nil) == nil)
	// Output:
	// database down: unavailable
	// no such row:   internal
	// no error:      true
}
