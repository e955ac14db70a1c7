package sqldialect_test

import (
	"errors"
	"testing"

	"github.com/madang-io/madang/internal/sqldialect"
	"github.com/madang-io/madang/internal/testdb"
)

func TestIsNoSuchTable(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			db := b.Open(t)
			_, err := db.Exec("SELECT * FROM missing_table")
			if !sqldialect.IsNoSuchTable(err) {
				t.Fatalf("missing table: %v", err)
			}
			mustExec(t, db, "CREATE TABLE present (a INT)")
			_, err = db.Exec("SELECT nope FROM present")
			if err == nil || sqldialect.IsNoSuchTable(err) {
				t.Fatalf("missing column classified as missing table: %v", err)
			}
			if sqldialect.IsNoSuchTable(nil) || sqldialect.IsNoSuchTable(errors.New("no such table")) {
				t.Fatal("non-driver errors classified")
			}
		})
	}
}
