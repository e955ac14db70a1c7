package console_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/madang-io/madang/examples/gameserver/console"
	"github.com/madang-io/madang/shard"
)

// Operators in the common database: the first one created as the
// command line does, then a sign-in and an audited change.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "console-example")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite", shard.SQLiteDSN(filepath.Join(dir, "common.db")))
	defer db.Close()
	if _, err := shard.Migrate(ctx, db, console.Migrations()); err != nil {
		fmt.Println(err)
		return
	}
	store, _ := console.NewStore(ctx, console.StoreConfig{DB: db})

	// gameserver operator add -name ari -role operator, the password on stdin.
	err := console.RunCommand(ctx, store, []string{"add", "-name", "ari", "-role", "operator"}, strings.NewReader("correct horse battery\n"), os.Stdout)
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, _, err := store.SignIn(ctx, "ari", "wrong password!"); err != nil {
		fmt.Println(err)
	}
	_, sess, _ := store.SignIn(ctx, "ari", "correct horse battery")
	fmt.Println("signed in:", sess.Operator.Name, sess.Operator.Role, sess.Operator.CanChange())

	id, _ := store.Begin(ctx, console.AuditEntry{Operator: "ari", Action: "maintenance.global.on", Target: "global", Before: `{"active":false}`, Comment: "database upgrade"})
	_ = store.Finish(ctx, id, `{"active":true}`, nil)
	log, _ := store.Audit(ctx, "", 0, 10)
	for _, e := range log {
		fmt.Println(e.Operator, e.Action, e.Before, "→", e.After, e.Outcome, "—", e.Comment)
	}
	// Output:
	// operator ari (operator) created
	// console: wrong operator name or password
	// signed in: ari operator true
	// ari maintenance.global.on {"active":false} → {"active":true} ok — database upgrade
}
